// Model: the graph of layer calls, its forward and backward passes, and Keras's summary.
//
// The graph is kept as its nodes in an order where every node comes after the nodes it reads
// (a depth-first walk from the outputs). Every output of every node owns a slot; a forward pass
// fills the slots' values and each node's cache, a backward pass fills the slots' gradients in
// the reverse order, adding up the gradients of a value that feeds several nodes.
#include "attnkit/model.h"

#include <functional>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>

#include "attnkit/ops/elementwise.h"
#include "layers/layer_classes.h"
#include "model_graph.h"

namespace attnkit {

// ------------------------------------------------------------------ graph

std::size_t Model::Graph::slot_of(const SymbolicTensor& t) const {
  const auto found = index.find(t.node().get());
  ATTNKIT_CHECK(found != index.end(), "the symbolic tensor is not part of this model");
  return first_slot[found->second] + static_cast<std::size_t>(t.index());
}

namespace {

// Keras's names for layers: Dense -> dense, MaxPooling1D -> max_pooling1d, SimpleRNN -> simple_rnn.
std::string snake_case(const std::string& type) {
  if (type == "InputLayer") return "input";
  std::string s = std::regex_replace(type, std::regex("(.)([A-Z][a-z0-9]+)"), "$1_$2");
  s = std::regex_replace(s, std::regex("([a-z])([A-Z])"), "$1_$2");
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Model::Model(const std::string& name, std::uint64_t seed) : name_(name), seed_(seed) {}

Model::Model(const std::vector<SymbolicTensor>& inputs, const std::vector<SymbolicTensor>& outputs,
             const std::string& name, std::uint64_t seed)
    : Model(name, seed) {
  set_graph(inputs, outputs);
}

Model::Model(const SymbolicTensor& input, const SymbolicTensor& output, const std::string& name, std::uint64_t seed)
    : Model(std::vector<SymbolicTensor>{input}, std::vector<SymbolicTensor>{output}, name, seed) {}

Model::~Model() = default;

void Model::set_graph(const std::vector<SymbolicTensor>& inputs, const std::vector<SymbolicTensor>& outputs) {
  ATTNKIT_CHECK(!inputs.empty() && !outputs.empty(), "model '", name_, "' needs at least one input and one output");
  auto graph = std::make_unique<Graph>();
  std::set<const Node*> model_inputs;
  for (const SymbolicTensor& input : inputs) {
    ATTNKIT_CHECK(input.defined() && input.node()->inputs.empty() &&
                      dynamic_cast<layers::InputLayer*>(input.node()->layer.get()) != nullptr,
                  "model '", name_, "': every model input must come from Input()");
    model_inputs.insert(input.node().get());
  }
  // Depth-first from the outputs: a node is placed after everything it reads.
  std::set<const Node*> visiting;
  std::function<void(const std::shared_ptr<Node>&)> visit = [&](const std::shared_ptr<Node>& node) {
    if (graph->index.count(node.get())) return;
    ATTNKIT_CHECK(!visiting.count(node.get()), "model '", name_, "': the graph has a cycle");
    visiting.insert(node.get());
    if (node->inputs.empty())
      ATTNKIT_CHECK(model_inputs.count(node.get()), "model '", name_, "' reads an Input '",
                    node->layer->name(), "' that is not among its inputs");
    for (const SymbolicTensor& t : node->inputs) visit(t.node());
    visiting.erase(node.get());
    graph->index[node.get()] = graph->nodes.size();
    graph->first_slot.push_back(graph->slot_count);
    graph->slot_count += node->output_shapes.size();
    graph->nodes.push_back(node);
  };
  for (const SymbolicTensor& input : inputs) visit(input.node());
  for (const SymbolicTensor& output : outputs) {
    ATTNKIT_CHECK(output.defined(), "model '", name_, "': an output is undefined");
    visit(output.node());
  }

  // Names: the ones given are kept (and must be unique); the others follow Keras's scheme.
  std::set<std::string> taken;
  std::set<const Layer*> seen;
  for (const auto& node : graph->nodes) {
    const Layer* layer = node->layer.get();
    if (layer->name().empty() || !seen.insert(layer).second) continue;
    ATTNKIT_CHECK(taken.insert(layer->name()).second, "model '", name_, "': two layers are named '", layer->name(),
                  "'");
  }
  std::map<std::string, int> counters;
  for (const auto& node : graph->nodes) {
    Layer& layer = *node->layer;
    if (!layer.name().empty()) continue;
    const std::string base = snake_case(layer.type());
    std::string name;
    do {
      const int n = counters[base]++;
      name = n == 0 ? base : base + "_" + std::to_string(n);
    } while (taken.count(name));
    taken.insert(name);
    layer.set_name(name);
  }

  // Parameters of the layers not built yet, from the model's seed.
  Generator init(seed_);
  for (const auto& node : graph->nodes) {
    std::vector<Shape> shapes;
    for (const SymbolicTensor& t : node->inputs) shapes.push_back(t.shape());
    node->layer->build(shapes, init);
  }

  for (const SymbolicTensor& input : inputs) graph->input_slots.push_back(graph->slot_of(input));
  for (const SymbolicTensor& output : outputs) graph->output_slots.push_back(graph->slot_of(output));
  inputs_ = inputs;
  outputs_ = outputs;
  graph_ = std::move(graph);
  for (const auto& named : named_parameters()) graph_->parameters.push_back(named.second);
}

// ------------------------------------------------------------------ structure

std::vector<LayerPtr> Model::layers() const {
  std::vector<LayerPtr> out;
  std::set<const Layer*> seen;
  for (const auto& node : graph_->nodes)
    if (seen.insert(node->layer.get()).second) out.push_back(node->layer);
  return out;
}

LayerPtr Model::get_layer(const std::string& name) const {
  for (const LayerPtr& layer : layers())
    if (layer->name() == name) return layer;
  ATTNKIT_FAIL("model '", name_, "' has no layer named '", name, "'");
}

std::vector<SymbolicTensor> Model::layer_inputs(const std::string& name) const {
  for (const auto& node : graph_->nodes)
    if (node->layer->name() == name) return node->inputs;
  ATTNKIT_FAIL("model '", name_, "' has no layer named '", name, "'");
}

std::vector<SymbolicTensor> Model::layer_outputs(const std::string& name) const {
  for (const auto& node : graph_->nodes)
    if (node->layer->name() == name) {
      std::vector<SymbolicTensor> outputs;
      for (std::size_t k = 0; k < node->output_shapes.size(); ++k) outputs.emplace_back(node, static_cast<int>(k));
      return outputs;
    }
  ATTNKIT_FAIL("model '", name_, "' has no layer named '", name, "'");
}

std::vector<std::pair<std::string, Parameter*>> Model::named_parameters() const {
  std::vector<std::pair<std::string, Parameter*>> named;
  for (const LayerPtr& layer : layers())
    for (auto& [name, parameter] : layer->named_parameters()) named.emplace_back(layer->name() + "/" + name, parameter);
  return named;
}

std::int64_t Model::count_params() const {
  std::int64_t count = 0;
  for (const LayerPtr& layer : layers()) count += layer->count_params();
  return count;
}

std::int64_t Model::count_trainable_params() const {
  std::int64_t count = 0;
  for (const LayerPtr& layer : layers()) count += layer->count_trainable_params();
  return count;
}

Tensors Model::get_weights() const {
  Tensors weights;
  for (const auto& named : named_parameters()) weights.push_back(named.second->value.clone());
  return weights;
}

void Model::to(Device device) {
  for (const auto& named : named_parameters()) {
    Parameter& p = *named.second;
    p.value = p.value.to(device);
    p.grad = Tensor();
  }
  if (compiled_ != nullptr) compiled_->optimizer->to(device);
  device_ = device;
}

void Model::set_weights(const Tensors& weights) {
  const auto named = named_parameters();
  ATTNKIT_CHECK(weights.size() == named.size(), "model '", name_, "' has ", named.size(), " weights, got ",
                weights.size());
  for (std::size_t i = 0; i < named.size(); ++i) {
    Parameter& p = *named[i].second;
    ATTNKIT_CHECK(weights[i].shape() == p.value.shape() && weights[i].dtype() == p.value.dtype(), "set_weights: '",
                  named[i].first, "' is ", p.value.describe(), ", got ", weights[i].describe());
    p.value.copy_from(weights[i]);
  }
}

// ------------------------------------------------------------------ summary

namespace {

std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Fills the columns of one row as Keras's print_summary does: each field starts at its
// position, a field too long for its column is cut, and the last character before the next
// field is always a space.
std::string row(const std::vector<std::string>& fields, const std::vector<std::size_t>& positions) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line = line.substr(0, line.size() - 1) + " ";
    line += fields[i];
    line = line.substr(0, positions[i]);
    line += std::string(positions[i] - line.size(), ' ');
  }
  return line;
}

}  // namespace

std::vector<std::pair<std::string, ops::AttentionSupport>> Model::attention_paths(Device device,
                                                                                 std::int64_t batch_size) const {
  std::vector<std::pair<std::string, ops::AttentionSupport>> paths;
  for (const std::shared_ptr<Node>& node : graph_->nodes) {
    if (node->inputs.empty()) continue;
    std::vector<Shape> shapes;
    std::vector<DType> dtypes;
    for (const SymbolicTensor& input : node->inputs) {
      Shape shape{batch_size};
      shape.insert(shape.end(), input.shape().begin(), input.shape().end());
      shapes.push_back(shape);
      dtypes.push_back(input.dtype());
    }
    for (const ops::AttentionSupport& support : node->layer->attention_support(shapes, dtypes, device))
      paths.emplace_back(node->layer->name(), support);
  }
  return paths;
}

std::string Model::summary() const {
  const auto& nodes = graph_->nodes;
  // A chain of single-input layers prints as Keras prints a Sequential model; anything else
  // gets the functional layout with the inputs and a "Connected to" column.
  bool chain = inputs_.size() == 1 && outputs_.size() == 1;
  for (std::size_t i = 1; chain && i < nodes.size(); ++i)
    chain = nodes[i]->inputs.size() == 1 && nodes[i]->inputs[0].node() == nodes[i - 1] &&
            nodes[i - 1]->output_shapes.size() == 1;
  const std::size_t width = chain ? 65 : 98;
  const std::vector<std::size_t> positions = chain ? std::vector<std::size_t>{29, 55, 65}
                                                   : std::vector<std::size_t>{32, 53, 65, 98};
  std::ostringstream out;
  out << "Model: \"" << name_ << "\"\n" << std::string(width, '_') << "\n";
  std::vector<std::string> header{"Layer (type)", "Output Shape", "Param #"};
  if (!chain) header.push_back("Connected to");
  out << row(header, positions) << "\n" << std::string(width, '=') << "\n";
  bool first = true;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& node = *nodes[i];
    if (chain && node.inputs.empty()) continue;  // a Sequential summary leaves out the input
    if (!first) out << std::string(width, '_') << "\n";
    first = false;
    std::string shapes;
    for (std::size_t k = 0; k < node.output_shapes.size(); ++k)
      shapes += (k ? ", " : "") + SymbolicTensor(nodes[i], static_cast<int>(k)).shape_str();
    if (node.output_shapes.size() > 1 || node.inputs.empty()) shapes = "[" + shapes + "]";
    std::vector<std::string> fields{node.layer->name() + " (" + node.layer->type() + ")", shapes,
                                    std::to_string(node.layer->count_params())};
    if (!chain) {
      // One source per line: ['a[0][0]', then  'b[0][0]', ... and the last closes the list.
      std::vector<std::string> sources;
      for (std::size_t s = 0; s < node.inputs.size(); ++s) {
        const SymbolicTensor& t = node.inputs[s];
        sources.push_back(std::string(s == 0 ? "[" : " ") + "'" + t.node()->layer->name() + "[0][" +
                          std::to_string(t.index()) + "]'" + (s + 1 == node.inputs.size() ? "]" : ","));
      }
      fields.push_back(sources.empty() ? "[]" : sources[0]);
      out << row(fields, positions) << "\n";
      for (std::size_t s = 1; s < sources.size(); ++s) out << row({"", "", "", sources[s]}, positions) << "\n";
    } else {
      out << row(fields, positions) << "\n";
    }
  }
  const std::int64_t total = count_params(), trainable = count_trainable_params();
  out << std::string(width, '=') << "\n"
      << "Total params: " << with_commas(total) << "\n"
      << "Trainable params: " << with_commas(trainable) << "\n"
      << "Non-trainable params: " << with_commas(total - trainable) << "\n"
      << std::string(width, '_') << "\n";
  return out.str();
}

// ------------------------------------------------------------------ forward and backward

Tensors Model::forward(const Tensors& inputs, const CallContext& context) {
  return forward_pass(graph_->last_pass, inputs, context);
}

void Model::backward(const Tensors& output_grads) { backward_pass(graph_->last_pass, output_grads); }

Tensors Model::forward_pass(Pass& pass, const Tensors& inputs, const CallContext& context) {
  Graph& g = *graph_;
  pass.values.resize(g.slot_count);
  pass.caches.resize(g.nodes.size());
  ATTNKIT_CHECK(inputs.size() == inputs_.size(), "model '", name_, "' takes ", inputs_.size(), " inputs, got ",
                inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const SymbolicTensor& expected = inputs_[i];
    const Tensor& x = inputs[i];
    bool ok = x.defined() && x.dtype() == expected.dtype() && x.dim() == 1 + static_cast<std::int64_t>(expected.shape().size());
    for (std::size_t d = 0; ok && d < expected.shape().size(); ++d)
      ok = expected.shape()[d] < 0 || x.size(static_cast<std::int64_t>(d) + 1) == expected.shape()[d];
    ok = ok && x.size(0) == inputs[0].size(0);
    ATTNKIT_CHECK(ok, "model '", name_, "': input ", i, " ('", expected.node()->layer->name(), "') must be ",
                  dtype_name(expected.dtype()), " ", expected.shape_str(), " with the batch of input 0, got ",
                  x.describe());
    pass.values[g.input_slots[i]] = x;
  }
  for (std::size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = *g.nodes[n];
    if (node.inputs.empty()) continue;  // an Input: already set
    Tensors node_inputs;
    for (const SymbolicTensor& t : node.inputs) node_inputs.push_back(pass.values[g.slot_of(t)]);
    Tensors outputs = node.layer->forward(node_inputs, context, pass.caches[n]);
    ATTNKIT_CHECK(outputs.size() == node.output_shapes.size(), node.layer->name(), " returned ", outputs.size(),
                  " outputs, expected ", node.output_shapes.size());
    for (std::size_t k = 0; k < outputs.size(); ++k) pass.values[g.first_slot[n] + k] = std::move(outputs[k]);
  }
  Tensors outputs;
  for (const std::size_t slot : g.output_slots) outputs.push_back(pass.values[slot]);
  return outputs;
}

void Model::backward_pass(Pass& pass, const Tensors& output_grads) {
  Graph& g = *graph_;
  ATTNKIT_CHECK(output_grads.size() == g.output_slots.size(), "model '", name_, "': backward needs ",
                g.output_slots.size(), " output gradients, got ", output_grads.size());
  // A value needs a gradient when a trainable parameter lies on its way back.
  std::vector<bool> needs(g.slot_count, false);
  std::vector<bool> node_trains(g.nodes.size(), false);
  for (std::size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = *g.nodes[n];
    bool reaches = false;
    for (Parameter* p : node.layer->parameters()) reaches = reaches || p->trainable;
    node_trains[n] = reaches;
    for (const SymbolicTensor& t : node.inputs) reaches = reaches || needs[g.slot_of(t)];
    for (std::size_t k = 0; k < node.output_shapes.size(); ++k) needs[g.first_slot[n] + k] = reaches;
  }
  std::vector<Tensor> grads(g.slot_count);
  auto add_grad = [&](std::size_t slot, const Tensor& grad) {
    grads[slot] = grads[slot].defined() ? ops::add(grads[slot], grad) : grad;
  };
  for (std::size_t i = 0; i < output_grads.size(); ++i)
    if (output_grads[i].defined()) add_grad(g.output_slots[i], output_grads[i]);
  for (std::size_t n = g.nodes.size(); n-- > 0;) {
    const Node& node = *g.nodes[n];
    if (node.inputs.empty()) continue;
    Tensors out_grads;
    bool any = false;
    for (std::size_t k = 0; k < node.output_shapes.size(); ++k) {
      out_grads.push_back(grads[g.first_slot[n] + k]);
      any = any || out_grads.back().defined();
    }
    std::vector<bool> input_needs;
    bool any_input_needs = false;
    for (const SymbolicTensor& t : node.inputs) {
      input_needs.push_back(needs[g.slot_of(t)]);
      any_input_needs = any_input_needs || input_needs.back();
    }
    if (!any || (!any_input_needs && !node_trains[n])) continue;
    Tensors node_inputs;
    for (const SymbolicTensor& t : node.inputs) node_inputs.push_back(pass.values[g.slot_of(t)]);
    const Tensors in_grads = node.layer->backward(node_inputs, pass.caches[n], out_grads, input_needs);
    for (std::size_t j = 0; j < node.inputs.size() && j < in_grads.size(); ++j)
      if (input_needs[j] && in_grads[j].defined()) add_grad(g.slot_of(node.inputs[j]), in_grads[j]);
  }
}

// ------------------------------------------------------------------ Sequential

Sequential::Sequential(const Shape& input_shape, DType input_dtype, const std::string& name, std::uint64_t seed)
    : Model(name, seed) {
  const SymbolicTensor input = Input(input_shape, input_dtype);
  set_graph({input}, {input});
}

Sequential& Sequential::add(const LayerRef& layer) {
  const SymbolicTensor output = layer(outputs().front());
  set_graph(inputs(), {output});
  return *this;
}

}  // namespace attnkit
