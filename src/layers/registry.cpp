// Making layers again from their type and config(), for Model::from_config: each class reads its
// own options in its from_config(), beside its options_config(); this table maps the type names
// to them, and make_layer restores the dtype policy that every config() records. An explicit
// table rather than self-registering files: what can be loaded is listed here.
#include <map>

#include "layers/layer_classes.h"

namespace attnkit::layers {
namespace {

using FromConfig = LayerPtr (*)(const Json& config);

const std::map<std::string, FromConfig>& from_config_table() {
  static const std::map<std::string, FromConfig> table{
      {"InputLayer", InputLayer::from_config},
      {"Embedding", EmbeddingLayer::from_config},
      {"PositionEmbedding", PositionEmbeddingLayer::from_config},
      {"Dense", DenseLayer::from_config},
      {"Dropout", DropoutLayer::from_config},
      {"Flatten", FlattenLayer::from_config},
      {"Activation", ActivationLayer::from_config},
      {"Concatenate", ConcatenateLayer::from_config},
      {"Multiply", [](const Json& c) { return MergeLayer::from_config(c, true); }},
      {"Add", [](const Json& c) { return MergeLayer::from_config(c, false); }},
      {"PaddingMask", PaddingMaskLayer::from_config},
      {"Conv1D", Conv1DLayer::from_config},
      {"MaxPooling1D", MaxPooling1DLayer::from_config},
      {"GlobalMaxPooling1D", [](const Json& c) { return GlobalPooling1DLayer::from_config(c, false); }},
      {"GlobalAveragePooling1D", [](const Json& c) { return GlobalPooling1DLayer::from_config(c, true); }},
      {"SimpleRNN",
       [](const Json& c) -> LayerPtr { return RecurrentLayer::from_config(c, ops::RecurrentCell::simple_rnn); }},
      {"LSTM",
       [](const Json& c) -> LayerPtr { return RecurrentLayer::from_config(c, ops::RecurrentCell::lstm); }},
      {"GRU",
       [](const Json& c) -> LayerPtr { return RecurrentLayer::from_config(c, ops::RecurrentCell::gru); }},
      {"Bidirectional", BidirectionalLayer::from_config},
      {"BatchNormalization", BatchNormalizationLayer::from_config},
      {"LayerNormalization", LayerNormalizationLayer::from_config},
      {"AttentionPooling", AttentionPoolingLayer::from_config},
      {"AdditiveAttention", AdditiveAttentionLayer::from_config},
      {"GatingAttention", [](const Json& c) { return GatingAttentionLayer::from_config(c, false); }},
      {"TemporalGatingAttention", [](const Json& c) { return GatingAttentionLayer::from_config(c, true); }},
      {"MultiHeadSelfAttention", MultiHeadSelfAttentionLayer::from_config},
      {"DotAttention", DotAttentionLayer::from_config},
      {"MultiHeadAttention", MultiHeadAttentionLayer::from_config},
      {"Attention", KerasAttentionLayer::from_config},
  };
  return table;
}

}  // namespace

std::vector<std::string> layer_types() {
  std::vector<std::string> types;
  for (const auto& entry : from_config_table()) types.push_back(entry.first);
  return types;
}

LayerPtr make_layer(const std::string& type, const Json& config) {
  const auto& table = from_config_table();
  const auto found = table.find(type);
  if (found == table.end()) {
    std::string known;
    for (const auto& entry : table) known += (known.empty() ? "" : ", ") + entry.first;
    ATTNKIT_FAIL("unknown layer type '", type, "' (known: ", known, ")");
  }
  LayerPtr layer = found->second(config);
  // A config written before dtype policies existed has none: its layer computed in float32.
  const Json policy = config.is_object() ? config.value("dtype_policy", Json("float32")) : Json("float32");
  ATTNKIT_CHECK(policy.is_string(), type, ": dtype_policy must be a string, got ", policy.dump());
  layer->set_dtype_policy(mixed_precision::Policy(policy.get<std::string>()));
  return layer;
}

}  // namespace attnkit::layers
