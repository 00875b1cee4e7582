// Saving and loading models: weights as safetensors, structure as JSON.
//
// The structure lists the layers (name, type, config, trainable) and the nodes of the graph in
// order, each node naming its layer and its inputs as [node, output] pairs; from_config makes
// the layers again and replays the calls.
#include <iostream>
#include <set>

#include "attnkit/model.h"
#include "attnkit/safetensors.h"
#include "json_integers.h"
#include "layers/layer_classes.h"
#include "model_graph.h"

namespace attnkit {

void Model::save_weights(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, parameter] : named_parameters()) tensors.emplace_back(name, parameter->value);
  write_safetensors(path, tensors, {{"format", "attnkit"}, {"model", name_}});
}

void Model::load_weights(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  if (!file.verified)
    std::cerr << "attnkit: notice: '" << path << "' carries no SHA-256 digests (written elsewhere, or by attnkit "
              << "before it stored them): its weights are loaded unverified\n";
  std::map<std::string, Tensor> saved(file.tensors.begin(), file.tensors.end());
  std::vector<std::string> problems;
  const auto named = named_parameters();
  for (const auto& [name, parameter] : named) {
    const auto found = saved.find(name);
    if (found == saved.end()) {
      problems.push_back("'" + name + "' is missing from the file");
      continue;
    }
    if (found->second.shape() != parameter->value.shape() || found->second.dtype() != parameter->value.dtype())
      problems.push_back("'" + name + "' is " + found->second.describe() + " in the file but " +
                         parameter->value.describe() + " in the model");
    saved.erase(found);
  }
  for (const auto& entry : saved) problems.push_back("'" + entry.first + "' in the file is not a weight of the model");
  if (!problems.empty()) {
    std::string text;
    for (std::size_t i = 0; i < problems.size() && i < 8; ++i) text += "\n  " + problems[i];
    if (problems.size() > 8) text += "\n  ... and " + std::to_string(problems.size() - 8) + " more";
    ATTNKIT_FAIL("cannot load '", path, "' into model '", name_, "': ", problems.size(), " mismatches:", text);
  }
  const std::map<std::string, Tensor> values(file.tensors.begin(), file.tensors.end());
  for (const auto& [name, parameter] : named) parameter->value.copy_from(values.at(name));
}

Json Model::to_config() const {
  const Graph& g = *graph_;
  Json layers_json = Json::array(), nodes_json = Json::array();
  std::set<const Layer*> seen;
  for (const auto& node : g.nodes) {
    const Layer& layer = *node->layer;
    if (seen.insert(&layer).second)
      layers_json.push_back(
          {{"name", layer.name()}, {"type", layer.type()}, {"config", layer.config()}, {"trainable", layer.trainable()}});
    Json inputs = Json::array();
    for (const SymbolicTensor& t : node->inputs) inputs.push_back({g.index.at(t.node().get()), t.index()});
    nodes_json.push_back({{"layer", layer.name()}, {"inputs", inputs}});
  }
  auto refs = [&](const std::vector<SymbolicTensor>& ts) {
    Json out = Json::array();
    for (const SymbolicTensor& t : ts) out.push_back({g.index.at(t.node().get()), t.index()});
    return out;
  };
  return {{"format", "attnkit-model"}, {"version", 1},    {"name", name_},         {"seed", seed_},
          {"layers", layers_json},     {"nodes", nodes_json}, {"inputs", refs(inputs_)}, {"outputs", refs(outputs_)}};
}

std::unique_ptr<Model> Model::from_config(const Json& config) {
  try {
    ATTNKIT_CHECK(config.value("format", "") == "attnkit-model", "not an attnkit model config (format is ",
                  config.value("format", Json("missing")).dump(), ")");
    std::map<std::string, LayerPtr> layers;  // by name
    for (const Json& entry : config.at("layers")) {
      const std::string name = entry.at("name").get<std::string>();
      LayerPtr layer = layers::make_layer(entry.at("type").get<std::string>(), entry.at("config"));
      layer->set_name(name);
      layer->set_trainable(entry.value("trainable", true));
      ATTNKIT_CHECK(layers.emplace(name, layer).second, "layer '", name, "' appears twice");
    }
    std::vector<std::vector<SymbolicTensor>> node_outputs;
    auto ref = [&](const Json& pair) {
      const std::int64_t node = detail::json_integer(pair.at(0), "a node reference"),
                         index = detail::json_integer(pair.at(1), "a node reference");
      ATTNKIT_CHECK(node >= 0 && index >= 0 && node < static_cast<std::int64_t>(node_outputs.size()) &&
                        index < static_cast<std::int64_t>(node_outputs[static_cast<std::size_t>(node)].size()),
                    "node reference ", pair.dump(), " points to no earlier node output");
      return node_outputs[static_cast<std::size_t>(node)][static_cast<std::size_t>(index)];
    };
    for (const Json& node : config.at("nodes")) {
      const std::string name = node.at("layer").get<std::string>();
      const auto found = layers.find(name);
      ATTNKIT_CHECK(found != layers.end(), "a node calls the unknown layer '", name, "'");
      std::vector<SymbolicTensor> inputs;  // none for an Input, whose call makes its node as Input() does
      for (const Json& pair : node.at("inputs")) inputs.push_back(ref(pair));
      node_outputs.push_back(found->second->call(inputs));
    }
    std::vector<SymbolicTensor> inputs, outputs;
    for (const Json& pair : config.at("inputs")) inputs.push_back(ref(pair));
    for (const Json& pair : config.at("outputs")) outputs.push_back(ref(pair));
    return std::make_unique<Model>(inputs, outputs, config.at("name").get<std::string>(),
                                   config.contains("seed")
                                       ? static_cast<std::uint64_t>(detail::json_integer(config.at("seed"), "seed"))
                                       : 0);
  } catch (const nlohmann::json::exception& e) {
    ATTNKIT_FAIL("invalid model config: ", e.what());
  }
}

void Model::save(const std::string& prefix) const {
  write_file_atomically(prefix + ".json", to_config().dump(2) + "\n");
  save_weights(prefix + ".safetensors");
}

std::unique_ptr<Model> Model::load(const std::string& prefix) {
  Json config;
  const std::string path = prefix + ".json";
  try {
    config = Json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    ATTNKIT_FAIL("'", path, "' is not valid JSON: ", e.what());
  }
  std::unique_ptr<Model> model;
  try {
    model = from_config(config);
  } catch (const Error& e) {
    ATTNKIT_FAIL("'", path, "': ", e.message());
  }
  model->load_weights(prefix + ".safetensors");
  return model;
}

}  // namespace attnkit
