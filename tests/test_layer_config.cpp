// Layers made again from their config(): every type through its from_config and back, with its
// dtype policy.
#include <gtest/gtest.h>

#include <set>

#include "attnkit/layers.h"
#include "layers/layer_classes.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace layers;

// One layer of every type, each with options away from their defaults, so that a from_config
// that dropped one would give another config.
std::vector<LayerPtr> one_layer_of_every_type() {
  AttentionPoolingOptions pooling;
  pooling.return_sequences(true).epsilon(0.0).use_bias(false).return_attention(true);
  AdditiveAttentionOptions additive;
  additive.use_scale(false).use_causal_mask(true).return_attention_scores(true).return_sequences(true).epsilon(0.5)
      .use_bias(false).return_attention(true);
  RecurrentOptions sequences;
  sequences.return_sequences(true).go_backwards(true);
  RecurrentOptions states;
  states.return_state(true).reset_after(false);
  const std::vector<LayerRef> refs{
      Embedding(11, 6),
      PositionEmbedding(),
      Dense(7, "tanh", false),
      Dropout(0.375),
      Flatten(),
      Activation("sigmoid"),
      Concatenate(1),
      Multiply(),
      Add(),
      PaddingMask(),
      Conv1D(5, 4, "same", "relu", false),
      MaxPooling1D(3, 2, "same"),
      GlobalMaxPooling1D(),
      GlobalAveragePooling1D(),
      SimpleRNN(3, sequences),
      LSTM(5, states),
      GRU(4, states),
      Bidirectional(GRU(6, sequences)),
      BatchNormalization(0.875, 1e-4),
      LayerNormalization(1e-5),
      AttentionPooling(pooling),
      AdditiveAttention(additive),
      GatingAttention(true),
      TemporalGatingAttention(true, true),
      MultiHeadSelfAttention(4, 16, true, true),
      DotAttention(0.5, true),
      Attention(AttentionLayerOptions().use_scale(true).score_mode("concat").use_causal_mask(true).return_attention_scores(
          true)),
      MultiHeadAttention(4, 8,
                         MultiHeadAttentionOptions().value_dim(6).use_bias(false).output_shape(10).use_causal_mask(true)
                             .return_attention_scores(true)),
  };
  std::vector<LayerPtr> all{Input({-1, 9}, DType::f16, "tokens").node()->layer};
  for (const LayerRef& ref : refs) all.push_back(ref.get());
  return all;
}

// Under each dtype policy, made again under the other global policy: the config (which records
// the policy) comes back the same.
TEST(LayerConfig, EveryTypeRoundTripsThroughFromConfig) {
  for (const auto& [made_under, loaded_under] : {std::pair<std::string, std::string>{"float32", "mixed_bfloat16"},
                                                 std::pair<std::string, std::string>{"mixed_bfloat16", "float32"}}) {
    SCOPED_TRACE("made under " + made_under);
    std::vector<LayerPtr> all;
    {
      const mixed_precision::PolicyScope scope(made_under);
      all = one_layer_of_every_type();
    }
    const mixed_precision::PolicyScope scope(loaded_under);
    std::set<std::string> covered;
    for (const LayerPtr& layer : all) {
      const Json config = layer->config();
      EXPECT_EQ(config.at("dtype_policy"), made_under) << layer->type();
      const LayerPtr again = make_layer(layer->type(), config);
      EXPECT_EQ(again->type(), layer->type());
      EXPECT_EQ(again->config(), config) << layer->type();
      covered.insert(layer->type());
    }
    const std::vector<std::string> known = layer_types();
    EXPECT_EQ(covered, std::set<std::string>(known.begin(), known.end()));
    EXPECT_EQ(covered.size(), all.size());  // one of each
  }
}

// A config saved when AdditiveAttention was the pooling's only name (its options alone) loads
// as the pooling: called on one input, it has the pooling's shapes and parameters.
TEST(LayerConfig, AdditiveAttentionSavedAsThePoolingLoadsAsThePooling) {
  const Json saved{{"epsilon", 1e-7}, {"return_attention", true}, {"return_sequences", true}, {"use_bias", true}};
  const LayerPtr loaded = make_layer("AdditiveAttention", saved);
  EXPECT_EQ(loaded->output_shapes({{6, 4}}), (std::vector<Shape>{{6, 4}, {6}}));
  Generator init(3);
  loaded->build({{6, 4}}, init);
  EXPECT_EQ(loaded->count_params(), 4 + 6);
  EXPECT_EQ(loaded->config().at("return_sequences"), true);
}

TEST(LayerConfig, BadConfigsAreClearErrors) {
  EXPECT_ATTNKIT_ERROR(make_layer("Dense2", Json::object()), "unknown layer type 'Dense2' (known: Activation, Add,");
  const Json wraps_dense{{"layer", {{"type", "Dense"}, {"config", Dense(3)->config()}}}, {"merge_mode", "concat"}};
  EXPECT_ATTNKIT_ERROR(make_layer("Bidirectional", wraps_dense),
                       "Bidirectional wraps a SimpleRNN, LSTM or GRU, not 'Dense'");
  EXPECT_ATTNKIT_ERROR(make_layer("InputLayer", Json{{"shape", {4}}, {"dtype", "f8"}}), "unknown dtype 'f8'");
  EXPECT_ATTNKIT_ERROR(make_layer("InputLayer", Json{{"shape", {0}}, {"dtype", "f32"}}),
                       "Input: extents must be positive or -1 (unknown), got [0]");
  EXPECT_ATTNKIT_ERROR(make_layer("Embedding", Json{{"input_dim", 2.5}, {"output_dim", 3}}),
                       "input_dim must be an integer of 64 bits, got 2.5");
  // An Input is called on nothing.
  const LayerPtr input = make_layer("InputLayer", Input({3}).node()->layer->config());
  EXPECT_ATTNKIT_ERROR(input->call({Input({3})}), "InputLayer layer takes 0 inputs, got 1");
}

}  // namespace
}  // namespace attnkit
