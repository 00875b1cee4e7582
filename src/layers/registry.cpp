// Making layers again from their type and config(), for Model::from_config.
#include "json_integers.h"
#include "layers/layer_classes.h"

namespace attnkit::layers {
namespace {

RecurrentOptions recurrent_options(const Json& c) {
  return RecurrentOptions()
      .return_sequences(c.at("return_sequences").get<bool>())
      .return_state(c.at("return_state").get<bool>())
      .go_backwards(c.at("go_backwards").get<bool>())
      .reset_after(c.at("reset_after").get<bool>());
}

// A SimpleRNN, LSTM or GRU; null for any other type.
std::shared_ptr<RecurrentLayer> make_recurrent(const std::string& type, const Json& c) {
  ops::RecurrentCell cell;
  if (type == "SimpleRNN")
    cell = ops::RecurrentCell::simple_rnn;
  else if (type == "LSTM")
    cell = ops::RecurrentCell::lstm;
  else if (type == "GRU")
    cell = ops::RecurrentCell::gru;
  else
    return nullptr;
  return std::make_shared<RecurrentLayer>(cell, detail::json_integer(c.at("units"), "units"), recurrent_options(c));
}

}  // namespace

LayerPtr make_layer(const std::string& type, const Json& c) {
  if (type == "Embedding")
    return std::make_shared<EmbeddingLayer>(detail::json_integer(c.at("input_dim"), "input_dim"), detail::json_integer(c.at("output_dim"), "output_dim"));
  if (type == "PositionEmbedding") return std::make_shared<PositionEmbeddingLayer>();
  if (type == "Dense")
    return std::make_shared<DenseLayer>(detail::json_integer(c.at("units"), "units"),
                                        ops::parse_activation(c.at("activation").get<std::string>()),
                                        c.at("use_bias").get<bool>());
  if (type == "Dropout") return std::make_shared<DropoutLayer>(c.at("rate").get<double>());
  if (type == "Flatten") return std::make_shared<FlattenLayer>();
  if (type == "Activation")
    return std::make_shared<ActivationLayer>(ops::parse_activation(c.at("activation").get<std::string>()));
  if (type == "Concatenate") return std::make_shared<ConcatenateLayer>(detail::json_integer(c.at("axis"), "axis"));
  if (type == "Multiply") return std::make_shared<MergeLayer>(true);
  if (type == "Add") return std::make_shared<MergeLayer>(false);
  if (type == "PaddingMask") return std::make_shared<PaddingMaskLayer>();
  if (type == "Conv1D")
    return std::make_shared<Conv1DLayer>(detail::json_integer(c.at("filters"), "filters"), detail::json_integer(c.at("kernel_size"), "kernel_size"),
                                         ops::parse_padding(c.at("padding").get<std::string>()),
                                         ops::parse_activation(c.at("activation").get<std::string>()),
                                         c.at("use_bias").get<bool>());
  if (type == "MaxPooling1D")
    return std::make_shared<MaxPooling1DLayer>(detail::json_integer(c.at("pool_size"), "pool_size"), detail::json_integer(c.at("strides"), "strides"),
                                               ops::parse_padding(c.at("padding").get<std::string>()));
  if (type == "GlobalMaxPooling1D") return std::make_shared<GlobalPooling1DLayer>(false);
  if (type == "GlobalAveragePooling1D") return std::make_shared<GlobalPooling1DLayer>(true);
  if (auto recurrent = make_recurrent(type, c)) return recurrent;
  if (type == "Bidirectional") {
    const Json& inner = c.at("layer");
    auto recurrent_layer = make_recurrent(inner.at("type").get<std::string>(), inner.at("config"));
    ATTNKIT_CHECK(recurrent_layer != nullptr, "Bidirectional wraps a SimpleRNN, LSTM or GRU, not ",
                  inner.at("type").dump());
    return std::make_shared<BidirectionalLayer>(recurrent_layer);
  }
  if (type == "BatchNormalization")
    return std::make_shared<BatchNormalizationLayer>(c.at("momentum").get<double>(), c.at("epsilon").get<double>());
  if (type == "LayerNormalization") return std::make_shared<LayerNormalizationLayer>(c.at("epsilon").get<double>());
  if (type == "AdditiveAttention")
    return std::make_shared<AdditiveAttentionLayer>(AdditiveAttentionOptions()
                                                        .return_sequences(c.at("return_sequences").get<bool>())
                                                        .epsilon(c.at("epsilon").get<double>())
                                                        .use_bias(c.at("use_bias").get<bool>())
                                                        .return_attention(c.at("return_attention").get<bool>()));
  if (type == "GatingAttention")
    return std::make_shared<GatingAttentionLayer>(false, false, c.at("return_attention").get<bool>());
  if (type == "TemporalGatingAttention")
    return std::make_shared<GatingAttentionLayer>(true, c.at("single_vector").get<bool>(),
                                                  c.at("return_attention").get<bool>());
  if (type == "MultiHeadSelfAttention")
    return std::make_shared<MultiHeadSelfAttentionLayer>(detail::json_integer(c.at("num_heads"), "num_heads"),
                                                         detail::json_integer(c.at("weights_dim"), "weights_dim"),
                                                         c.at("causal").get<bool>(), c.at("return_attention").get<bool>());
  if (type == "DotAttention")
    return std::make_shared<DotAttentionLayer>(c.at("scale").get<double>(), c.at("return_attention").get<bool>());
  ATTNKIT_FAIL("unknown layer type '", type, "'");
}

}  // namespace attnkit::layers
