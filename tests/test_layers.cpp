// Layers: every layer's output shapes and parameter count, Keras's initialisers, and the
// gradients of each layer inside a small model against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "attnkit/layers.h"
#include "attnkit/model.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

struct ShapeCase {
  std::string name;
  std::vector<Shape> input_shapes;
  std::vector<DType> input_dtypes;
  std::function<LayerRef()> make;
  std::vector<Shape> expected_outputs;
  std::int64_t expected_params;
  std::int64_t expected_trainable;
};

std::vector<ShapeCase> shape_cases() {
  using namespace layers;
  const DType f = DType::f32, i = DType::i32, u = DType::u8;
  auto seq = RecurrentOptions().return_sequences(true);
  return {
      {"Embedding", {{7}}, {i}, [] { return Embedding(50, 8); }, {{7, 8}}, 400, 400},
      {"EmbeddingFrozen", {{7}}, {i}, [] { return Embedding(50, 8).trainable(false); }, {{7, 8}}, 400, 0},
      {"PositionEmbedding", {{7, 4}}, {f}, [] { return PositionEmbedding(); }, {{7, 4}}, 28, 28},
      {"Dense", {{7, 4}}, {f}, [] { return Dense(5, "tanh"); }, {{7, 5}}, 25, 25},
      {"DenseNoBias", {{4}}, {f}, [] { return Dense(5, "linear", false); }, {{5}}, 20, 20},
      {"Dropout", {{7, 4}}, {f}, [] { return Dropout(0.3); }, {{7, 4}}, 0, 0},
      {"Flatten", {{7, 4}}, {f}, [] { return Flatten(); }, {{28}}, 0, 0},
      {"Activation", {{7, 4}}, {f}, [] { return Activation("sigmoid"); }, {{7, 4}}, 0, 0},
      {"Conv1DSame", {{9, 3}}, {f}, [] { return Conv1D(6, 4, "same", "relu"); }, {{9, 6}}, 78, 78},
      {"Conv1DValid", {{9, 3}}, {f}, [] { return Conv1D(6, 4); }, {{6, 6}}, 78, 78},
      {"MaxPooling1D", {{9, 3}}, {f}, [] { return MaxPooling1D(2); }, {{4, 3}}, 0, 0},
      {"MaxPooling1DSame", {{9, 3}}, {f}, [] { return MaxPooling1D(2, 0, "same"); }, {{5, 3}}, 0, 0},
      {"GlobalMaxPooling1D", {{9, 3}}, {f}, [] { return GlobalMaxPooling1D(); }, {{3}}, 0, 0},
      {"GlobalAveragePooling1D", {{9, 3}}, {f}, [] { return GlobalAveragePooling1D(); }, {{3}}, 0, 0},
      // SimpleRNN: I*U + U*U + U; LSTM: 4U(I+U) + 4U; GRU: 3U(I+U) + 6U (reset_after) or + 3U.
      {"SimpleRNN", {{6, 3}}, {f}, [] { return SimpleRNN(5); }, {{5}}, 45, 45},
      {"SimpleRNNSequences", {{6, 3}}, {f}, [=] { return SimpleRNN(5, seq); }, {{6, 5}}, 45, 45},
      {"LSTMWithState", {{6, 3}}, {f}, [] { return LSTM(5, RecurrentOptions().return_state(true)); },
       {{5}, {5}, {5}}, 180, 180},
      {"LSTMInitialState", {{6, 3}, {5}, {5}}, {f, f, f}, [] { return LSTM(5); }, {{5}}, 180, 180},
      {"GRU", {{6, 3}}, {f}, [] { return GRU(5); }, {{5}}, 150, 150},
      {"GRUResetBefore", {{6, 3}}, {f}, [] { return GRU(5, RecurrentOptions().reset_after(false)); }, {{5}}, 135, 135},
      {"Bidirectional", {{6, 3}}, {f}, [=] { return Bidirectional(LSTM(5, seq)); }, {{6, 10}}, 360, 360},
      {"Concatenate", {{6, 3}, {6, 2}}, {f, f}, [] { return Concatenate(); }, {{6, 5}}, 0, 0},
      {"ConcatenateAxis1", {{6, 3}, {2, 3}}, {f, f}, [] { return Concatenate(1); }, {{8, 3}}, 0, 0},
      {"Multiply", {{6, 3}, {6, 3}}, {f, f}, [] { return Multiply(); }, {{6, 3}}, 0, 0},
      {"Add", {{6, 3}, {6, 3}, {6, 3}}, {f, f, f}, [] { return Add(); }, {{6, 3}}, 0, 0},
      {"BatchNormalization", {{6, 3}}, {f}, [] { return BatchNormalization(); }, {{6, 3}}, 12, 6},
      {"LayerNormalization", {{6, 3}}, {f}, [] { return LayerNormalization(); }, {{6, 3}}, 6, 6},
      {"PaddingMask", {{7}}, {i}, [] { return PaddingMask(); }, {{7}}, 0, 0},
      // Seed 000's Attention(step_dim): W [D] and b [T]; under its old name, called on one input.
      {"AttentionPooling", {{6, 4}}, {f}, [] { return AttentionPooling(); }, {{4}}, 10, 10},
      {"AttentionPoolingSequencesMasked", {{6, 4}, {6}}, {f, u},
       [] { return AttentionPooling(AttentionPoolingOptions().return_sequences(true).return_attention(true)); },
       {{6, 4}, {6}}, 10, 10},
      {"AdditiveAttentionOnOneInputPools", {{6, 4}, {6}}, {f, u},
       [] { return AdditiveAttention(AdditiveAttentionOptions().return_sequences(true).return_attention(true)); },
       {{6, 4}, {6}}, 10, 10},
      {"GatingAttention", {{6, 4}}, {f}, [] { return GatingAttention(); }, {{6, 4}}, 20, 20},
      {"TemporalGatingAttention", {{6, 4}}, {f}, [] { return TemporalGatingAttention(true, true); },
       {{6, 4}, {6, 4}}, 42, 42},
      // Seed 004: 3 (D w + w) + (w D + D).
      {"MultiHeadSelfAttention", {{5, 4}}, {f}, [] { return MultiHeadSelfAttention(2, 6, false, true); },
       {{5, 4}, {2, 5, 5}}, 118, 118},
      {"DotAttention", {{3, 4}, {5, 4}}, {f, f}, [] { return DotAttention(1.0, true); }, {{3, 4}, {3, 5}}, 0, 0},
      // Keras's MultiHeadAttention: query 4 * 2 * 3 + 6, key 2 * 2 * 3 + 6, value 3 * 2 * 2 + 4,
      // output 2 * 2 * 6 + 6.
      {"MultiHeadAttentionCross", {{5, 4}, {7, 3}, {7, 2}}, {f, f, f},
       [] {
         return MultiHeadAttention(2, 3,
                                   MultiHeadAttentionOptions().value_dim(2).output_shape(6).return_attention_scores(true));
       },
       {{5, 6}, {2, 5, 7}}, 94, 94},
      // Keras's Attention: a learned scale with use_scale.
      {"KerasAttention", {{5, 4}, {7, 3}, {7, 4}}, {f, f, f},
       [] { return Attention(AttentionLayerOptions().use_scale(true).return_attention_scores(true)); },
       {{5, 3}, {5, 7}}, 1, 1},
      {"KerasAttentionMasked", {{5, 4}, {7, 4}, {5}, {7}}, {f, f, u, u}, [] { return Attention(); }, {{5, 4}}, 0, 0},
      {"KerasAttentionConcat", {{5, 4}, {7, 3}, {7, 4}, {7}}, {f, f, f, u},
       [] { return Attention(AttentionLayerOptions().score_mode("concat").use_scale(true)); }, {{5, 3}}, 2, 2},
      // Keras's AdditiveAttention: a scale per feature (use_scale, the default).
      {"KerasAdditiveAttention", {{5, 4}, {7, 3}, {7, 4}, {5}, {7}}, {f, f, f, u, u},
       [] { return AdditiveAttention(AdditiveAttentionOptions().return_attention_scores(true)); }, {{5, 3}, {5, 7}}, 4, 4},
      {"KerasAdditiveAttentionUnscaled", {{5, 4}, {7, 4}}, {f, f},
       [] { return AdditiveAttention(AdditiveAttentionOptions().use_scale(false)); }, {{5, 4}}, 0, 0},
      // Self-attention with the keys' padding mask, no biases: 3 (4 * 2 * 3) + 2 * 3 * 4.
      {"MultiHeadAttentionSelfMasked", {{5, 4}, {5, 4}, {5, 4}, {5}}, {f, f, f, u},
       [] { return MultiHeadAttention(2, 3, MultiHeadAttentionOptions().use_bias(false)); }, {{5, 4}}, 96, 96},
  };
}

class LayerShapes : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(LayerShapes, OutputShapesAndParameterCounts) {
  const ShapeCase& c = GetParam();
  std::vector<SymbolicTensor> inputs;
  for (std::size_t k = 0; k < c.input_shapes.size(); ++k) inputs.push_back(Input(c.input_shapes[k], c.input_dtypes[k]));
  const LayerRef layer = c.make();
  const std::vector<SymbolicTensor> outputs = layer.call(inputs);
  ASSERT_EQ(outputs.size(), c.expected_outputs.size());
  for (std::size_t k = 0; k < outputs.size(); ++k) EXPECT_EQ(outputs[k].shape(), c.expected_outputs[k]) << "output " << k;
  Model model(inputs, outputs);
  EXPECT_EQ(layer->count_params(), c.expected_params);
  EXPECT_EQ(layer->count_trainable_params(), c.expected_trainable);
  // A forward pass gives tensors of those shapes, with the batch in front.
  Generator gen(7);
  Tensors values_in;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    Shape shape = c.input_shapes[k];
    shape.insert(shape.begin(), 3);
    if (c.input_dtypes[k] == DType::i32)
      values_in.push_back(random_ids(shape, 50, gen));
    else if (c.input_dtypes[k] == DType::u8)
      values_in.push_back(random_mask(3, shape[1], gen));
    else
      values_in.push_back(random_tensor(shape, gen, -1, 1, DType::f32));
  }
  const Tensors out = model.forward(values_in, CallContext{});
  for (std::size_t k = 0; k < out.size(); ++k) {
    Shape expected = c.expected_outputs[k];
    expected.insert(expected.begin(), 3);
    EXPECT_EQ(out[k].shape(), expected) << "output " << k;
  }
}

std::string shape_case_name(const ::testing::TestParamInfo<ShapeCase>& p) { return p.param.name; }
void PrintTo(const ShapeCase& c, std::ostream* out) { *out << c.name; }

INSTANTIATE_TEST_SUITE_P(Layers, LayerShapes, ::testing::ValuesIn(shape_cases()), shape_case_name);

TEST(Layers, MisuseIsReportedWithTheLayer) {
  using namespace layers;
  EXPECT_ATTNKIT_ERROR(MultiHeadSelfAttention(3, 64), "weights_dim = 64 must be divisible by num_heads = 3");
  EXPECT_ATTNKIT_ERROR(Dense(3)(Input({4}, DType::i32)), "Dense layer: input 0 must be floating point, got i32");
  EXPECT_ATTNKIT_ERROR(Embedding(10, 4)(Input({5}, DType::f32)), "Embedding layer: token ids must be i32");
  EXPECT_ATTNKIT_ERROR(LSTM(4)(Input({5})), "needs inputs [steps, features]");
  EXPECT_ATTNKIT_ERROR(Concatenate()({Input({5, 3}), Input({4, 3})}), "does not match input 0");
  EXPECT_ATTNKIT_ERROR(AttentionPooling()(Input({-1, 8})), "both known");
  EXPECT_ATTNKIT_ERROR(Bidirectional(Dense(3)), "Bidirectional wraps a SimpleRNN, LSTM or GRU");
  EXPECT_ATTNKIT_ERROR(LSTM(4, RecurrentOptions().return_state(true))(Input({5, 3})), "use call()");
}

TEST(Layers, InitialisersFollowKeras) {
  using namespace layers;
  SymbolicTensor x = Input({10, 24});
  LayerRef lstm = LSTM(16);
  LayerRef dense = Dense(40);
  Model model(x, dense(lstm(x)));
  for (const auto& [name, p] : model.named_parameters()) {
    const std::vector<double> w = values(p->value);
    if (name == "lstm/recurrent_kernel") {
      // Orthogonal [16, 64]: its rows are orthonormal.
      for (int r = 0; r < 16; ++r)
        for (int s = 0; s < 16; ++s) {
          double dot = 0;
          for (int c = 0; c < 64; ++c) dot += w[r * 64 + c] * w[s * 64 + c];
          EXPECT_NEAR(dot, r == s ? 1.0 : 0.0, 1e-5) << r << "," << s;
        }
    } else if (name == "lstm/bias") {
      for (int j = 0; j < 64; ++j) EXPECT_EQ(w[j], j >= 16 && j < 32 ? 1.0 : 0.0) << "unit_forget_bias, entry " << j;
    } else if (name == "lstm/kernel" || name == "dense/kernel") {
      // glorot_uniform: within sqrt(6 / (fan_in + fan_out)), and spread over most of it.
      const double limit = name == "lstm/kernel" ? std::sqrt(6.0 / (24 + 64)) : std::sqrt(6.0 / (16 + 40));
      double max_seen = 0;
      for (const double v : w) {
        EXPECT_LE(std::abs(v), limit);
        max_seen = std::max(max_seen, std::abs(v));
      }
      EXPECT_GT(max_seen, 0.9 * limit);
    } else if (name == "dense/bias") {
      for (const double v : w) EXPECT_EQ(v, 0.0);
    }
  }
}

// ------------------------------------------------------------------ gradients through models

// A Dense in front of the layer under test, so that the layer's input gradient is checked
// through the Dense's parameters; then the layer; then its outputs.
void check_layer(const std::function<std::vector<SymbolicTensor>(const SymbolicTensor&)>& build, const Shape& shape,
                 bool training = false) {
  SymbolicTensor x = Input(shape, DType::f64);
  SymbolicTensor h = layers::Dense(shape.back(), "tanh")(x);
  Model model({x}, build(h));
  Generator gen(3);
  Shape batch = shape;
  batch.insert(batch.begin(), 3);
  check_model_gradients(model, {random_tensor(batch, gen)}, training);
}

TEST(LayerGradient, DenseActivations) {
  for (const char* activation : {"linear", "relu", "sigmoid", "softmax"})
    check_layer([&](const SymbolicTensor& h) { return std::vector<SymbolicTensor>{layers::Dense(3, activation)(h)}; },
                {5, 4});
}

TEST(LayerGradient, Conv1DAndPooling) {
  check_layer(
      [](const SymbolicTensor& h) {
        SymbolicTensor c = layers::Conv1D(5, 4, "same", "relu")(h);
        return std::vector<SymbolicTensor>{layers::MaxPooling1D(2)(c), layers::GlobalMaxPooling1D()(c),
                                           layers::GlobalAveragePooling1D()(c)};
      },
      {9, 3});
}

TEST(LayerGradient, RecurrentWithStatesAndBidirectional) {
  using namespace layers;
  check_layer(
      [](const SymbolicTensor& h) {
        std::vector<SymbolicTensor> lstm = LSTM(4, RecurrentOptions().return_sequences(true).return_state(true)).call({h});
        SymbolicTensor gru = GRU(3)({h, Dense(3)(lstm[1])});  // initial state from the LSTM's h
        SymbolicTensor bi = Bidirectional(SimpleRNN(2, RecurrentOptions().return_sequences(true)))(lstm[0]);
        return std::vector<SymbolicTensor>{gru, bi, lstm[2]};
      },
      {6, 3});
}

TEST(LayerGradient, NormalisationInTraining) {
  check_layer(
      [](const SymbolicTensor& h) {
        return std::vector<SymbolicTensor>{layers::LayerNormalization()(layers::BatchNormalization()(h))};
      },
      {5, 4}, true);
}

TEST(LayerGradient, MergesAndBranches) {
  using namespace layers;
  check_layer(
      [](const SymbolicTensor& h) {
        SymbolicTensor a = Dense(4, "sigmoid")(h), b = Dense(4)(h);
        SymbolicTensor m = Multiply()({h, a, b});
        SymbolicTensor s = Add()({m, h});
        return std::vector<SymbolicTensor>{Flatten()(Concatenate()({s, a})), Activation("tanh")(m)};
      },
      {5, 4});
}

TEST(LayerGradient, AttentionLayers) {
  using namespace layers;
  check_layer(
      [](const SymbolicTensor& h) {
        SymbolicTensor g = GatingAttention()(h);
        SymbolicTensor t = TemporalGatingAttention(true)(g);
        SymbolicTensor m = MultiHeadSelfAttention(2, 6, true)(t);
        SymbolicTensor pooled = AttentionPooling()(m);
        SymbolicTensor sequences = AttentionPooling(AttentionPoolingOptions().return_sequences(true).epsilon(0))(t);
        SymbolicTensor context = DotAttention(0.5)({sequences, m});
        return std::vector<SymbolicTensor>{pooled, context};
      },
      {6, 4});
}

// Keras 3's MultiHeadAttention, written out in double from its definition with the layer's own
// weights (Keras's shapes): projections by einsum, softmax(q k^T / sqrt(key_dim)) over the keys
// that the attention mask and the causal mask leave, the heads' outputs through the output
// kernel; the scores returned. Then every gradient against finite differences.
TEST(MultiHeadAttention, MatchesKerasDefinitionInDoubleAndGradient) {
  using namespace layers;
  const std::int64_t B = 2, Tq = 5, Tk = 7, Dq = 4, Dv = 3, Dk = 2, H = 2, kd = 3, vd = 2, out = 6;
  SymbolicTensor query = Input({Tq, Dq}, DType::f64), value = Input({Tk, Dv}, DType::f64), key = Input({Tk, Dk}, DType::f64);
  SymbolicTensor mask = Input({Tq, Tk}, DType::u8);
  LayerRef layer = MultiHeadAttention(
      H, kd, MultiHeadAttentionOptions().value_dim(vd).output_shape(out).use_causal_mask(true).return_attention_scores(true));
  Model model({query, value, key, mask}, layer.call({query, value, key, mask}));
  Generator gen(41);
  for (Parameter* p : layer->parameters()) p->value = random_tensor(p->value.shape(), gen, -0.8, 0.8, DType::f64);
  const Tensor q = random_tensor({B, Tq, Dq}, gen, -1, 1, DType::f64), v = random_tensor({B, Tk, Dv}, gen, -1, 1, DType::f64);
  const Tensor k = random_tensor({B, Tk, Dk}, gen, -1, 1, DType::f64);
  std::vector<std::uint8_t> keep = random_mask(B * Tq, Tk, gen, 0.7).to_vector<std::uint8_t>();
  std::fill(keep.begin(), keep.begin() + Tk, std::uint8_t{0});  // query 0 of batch element 0 sees no key
  const Tensor m = Tensor::from_vector(keep, {B, Tq, Tk});
  const Tensors y = model.forward({q, v, k, m}, CallContext{});

  std::map<std::string, std::vector<double>> w;
  for (const auto& [name, p] : layer->named_parameters()) w[name] = values(p->value);
  const auto vq = values(q), vv = values(v), vk = values(k);
  std::vector<double> expected(B * Tq * out, 0.0), scores(B * H * Tq * Tk, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h) {
      // q_h [Tq, kd], k_h [Tk, kd], v_h [Tk, vd]: x W[:, h, :] + bias[h, :] (Keras's einsum).
      const auto project = [&](const std::vector<double>& x, std::int64_t steps, std::int64_t in, const std::string& name,
                               std::int64_t dim) {
        std::vector<double> r(steps * dim);
        for (std::int64_t t = 0; t < steps; ++t)
          for (std::int64_t e = 0; e < dim; ++e) {
            double acc = w[name + "/bias"][h * dim + e];
            for (std::int64_t c = 0; c < in; ++c) acc += x[(b * steps + t) * in + c] * w[name + "/kernel"][(c * H + h) * dim + e];
            r[t * dim + e] = acc;
          }
        return r;
      };
      const auto qh = project(vq, Tq, Dq, "query", kd), kh = project(vk, Tk, Dk, "key", kd);
      const auto vh = project(vv, Tk, Dv, "value", vd);
      for (std::int64_t i = 0; i < Tq; ++i) {
        std::vector<double> s(Tk, 0.0);
        double max = -std::numeric_limits<double>::infinity(), sum = 0;
        for (std::int64_t j = 0; j < Tk; ++j) {
          if (!keep[(b * Tq + i) * Tk + j] || j > i) continue;
          double dot = 0;
          for (std::int64_t e = 0; e < kd; ++e) dot += qh[i * kd + e] * kh[j * kd + e];
          s[j] = dot / std::sqrt(double(kd));
          max = std::max(max, s[j]);
        }
        for (std::int64_t j = 0; j < Tk; ++j)
          if (keep[(b * Tq + i) * Tk + j] && j <= i) sum += std::exp(s[j] - max);
        for (std::int64_t j = 0; j < Tk; ++j) {
          const double p = keep[(b * Tq + i) * Tk + j] && j <= i ? std::exp(s[j] - max) / sum : 0.0;
          scores[((b * H + h) * Tq + i) * Tk + j] = p;
          // The head's output row through its slice of the output kernel [H, vd, out].
          for (std::int64_t e = 0; e < vd; ++e)
            for (std::int64_t o = 0; o < out; ++o)
              expected[(b * Tq + i) * out + o] += p * vh[j * vd + e] * w["attention_output/kernel"][(h * vd + e) * out + o];
        }
      }
    }
  for (std::int64_t r = 0; r < B * Tq; ++r)
    for (std::int64_t o = 0; o < out; ++o) expected[r * out + o] += w["attention_output/bias"][o];
  EXPECT_TRUE(all_close(y[0], expected, 1e-12));
  EXPECT_TRUE(all_close(y[1], scores, 1e-12));
  // Query 0 of batch element 0 sees nothing: the bias alone comes out (Keras would average the values).
  for (std::int64_t o = 0; o < out; ++o) EXPECT_DOUBLE_EQ(y[0].item(o), w["attention_output/bias"][o]);

  // The gradients (the scores output is for inspection only), the inputs' through Dense layers
  // before the attention; and with the value as the key, whose gradient then sums both uses.
  const SymbolicTensor query_in = Dense(Dq)(query), value_in = Dense(Dv)(value), key_in = Dense(Dk)(key);
  Model trained({query, value, key, mask}, {layer.call({query_in, value_in, key_in, mask})[0]});
  check_model_gradients(trained, {q, v, k, m});
  Model value_as_key({query, value}, {MultiHeadAttention(H, kd)({query_in, value_in})});
  check_model_gradients(value_as_key, {q, v});
}

// Keras's Attention and AdditiveAttention after their scores, in double: a softmax of score(b, i,
// j) over the keys that seen(b, i, j) leaves, the weights times value [B, Tk, Dv], each row times
// query_mask[b, i] (a mask [B, Tq], or undefined). A query that sees no key gets 0.
struct KerasReference {
  std::vector<double> out, weights;  // [B, Tq, Dv], [B, Tq, Tk]
};
// With `dropout`, each weight times dropout(b, i, j) (Keras's Attention returns them so).
KerasReference keras_attention_reference(std::int64_t Tq, const Tensor& value, const Tensor& query_mask,
                                         const std::function<double(std::int64_t, std::int64_t, std::int64_t)>& score,
                                         const std::function<bool(std::int64_t, std::int64_t, std::int64_t)>& seen,
                                         const std::function<double(std::int64_t, std::int64_t, std::int64_t)>& dropout = {}) {
  const std::int64_t B = value.size(0), Tk = value.size(1), Dv = value.size(2);
  const auto vv = values(value);
  KerasReference r{std::vector<double>(B * Tq * Dv, 0.0), std::vector<double>(B * Tq * Tk, 0.0)};
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < Tq; ++i) {
      std::vector<double> s(Tk, -std::numeric_limits<double>::infinity());
      double max = -std::numeric_limits<double>::infinity(), sum = 0;
      for (std::int64_t j = 0; j < Tk; ++j)
        if (seen(b, i, j)) max = std::max(max, s[j] = score(b, i, j));
      for (std::int64_t j = 0; j < Tk; ++j) sum += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - max);
      const double row = query_mask.defined() ? query_mask.item(b * Tq + i) : 1.0;
      for (std::int64_t j = 0; j < Tk; ++j) {
        const double p = (sum > 0 && !std::isinf(s[j]) ? std::exp(s[j] - max) / sum : 0.0) * (dropout ? dropout(b, i, j) : 1.0);
        r.weights[(b * Tq + i) * Tk + j] = p;
        for (std::int64_t e = 0; e < Dv; ++e) r.out[(b * Tq + i) * Dv + e] += row * p * vv[(b * Tk + j) * Dv + e];
      }
    }
  return r;
}

// Keras 3's Attention from its definition in double: scores = scale query key^T, the value mask
// and the causal mask by -inf (Keras: a large negative bias), softmax, weights value, rows times
// the query mask; then the gradients (the scale's among them) by finite differences.
TEST(KerasAttention, MatchesKerasDefinitionInDoubleAndGradient) {
  using namespace layers;
  const std::int64_t B = 2, Tq = 5, Tk = 6, D = 4, Dv = 3;
  SymbolicTensor query = Input({Tq, D}, DType::f64), value = Input({Tk, Dv}, DType::f64), key = Input({Tk, D}, DType::f64);
  SymbolicTensor query_mask = Input({Tq}, DType::u8), value_mask = Input({Tk}, DType::u8);
  LayerRef layer = Attention(AttentionLayerOptions().use_scale(true).use_causal_mask(true).return_attention_scores(true));
  Model model({query, value, key, query_mask, value_mask}, layer.call({query, value, key, query_mask, value_mask}));
  Generator gen(43);
  layer->parameters()[0]->value = Tensor::full({}, 0.7, DType::f64);
  const Tensor q = random_tensor({B, Tq, D}, gen, -1, 1, DType::f64), v = random_tensor({B, Tk, Dv}, gen, -1, 1, DType::f64);
  const Tensor k = random_tensor({B, Tk, D}, gen, -1, 1, DType::f64);
  const Tensor qm = Tensor::from_vector<std::uint8_t>({1, 0, 1, 1, 1, 1, 1, 1, 0, 1}, {B, Tq});
  const Tensor vm = Tensor::from_vector<std::uint8_t>({0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1}, {B, Tk});
  const Tensors y = model.forward({q, v, k, qm, vm}, CallContext{});
  const auto vq = values(q), vk = values(k);
  const KerasReference ref = keras_attention_reference(
      Tq, v, qm,
      [&](std::int64_t b, std::int64_t i, std::int64_t j) {
        double dot = 0;
        for (std::int64_t e = 0; e < D; ++e) dot += vq[(b * Tq + i) * D + e] * vk[(b * Tk + j) * D + e];
        return 0.7 * dot;
      },
      [&](std::int64_t b, std::int64_t i, std::int64_t j) { return vm.item(b * Tk + j) != 0 && j <= i; });
  EXPECT_TRUE(all_close(y[0], ref.out, 1e-12));
  EXPECT_TRUE(all_close(y[1], ref.weights, 1e-12));

  const SymbolicTensor query_in = Dense(D)(query), value_in = Dense(Dv)(value), key_in = Dense(D)(key);
  Model trained({query, value, key, query_mask, value_mask},
                {layer.call({query_in, value_in, key_in, query_mask, value_mask})[0]});
  check_model_gradients(trained, {q, v, k, qm, vm});
  const SymbolicTensor self_in = Dense(D)(query);
  Model value_as_key({query, query_mask}, {Attention(AttentionLayerOptions().use_scale(true))({self_in, self_in, query_mask})});
  check_model_gradients(value_as_key, {q, qm});
}

// score_mode "concat" (Bahdanau's form) from Keras's definition in double: scores =
// concat_score_weight sum_d tanh(scale (q_d + k_d)); then the gradients, both scalars' among them.
TEST(KerasAttention, ConcatScoresMatchKerasDefinitionInDoubleAndGradient) {
  using namespace layers;
  const std::int64_t B = 2, Tq = 4, Tk = 6, D = 3, Dv = 2;
  SymbolicTensor query = Input({Tq, D}, DType::f64), value = Input({Tk, Dv}, DType::f64), key = Input({Tk, D}, DType::f64);
  SymbolicTensor value_mask = Input({Tk}, DType::u8);
  LayerRef layer = Attention(AttentionLayerOptions().score_mode("concat").use_scale(true).return_attention_scores(true));
  Model model({query, value, key, value_mask}, layer.call({query, value, key, value_mask}));
  for (const auto& [name, p] : layer->named_parameters())
    p->value = Tensor::full({}, name.find("scale") != std::string::npos && name.find("concat") == std::string::npos ? 0.6 : 1.3,
                            DType::f64);
  Generator gen(45);
  const Tensor q = random_tensor({B, Tq, D}, gen, -1, 1, DType::f64), v = random_tensor({B, Tk, Dv}, gen, -1, 1, DType::f64);
  const Tensor k = random_tensor({B, Tk, D}, gen, -1, 1, DType::f64);
  const Tensor vm = Tensor::from_vector<std::uint8_t>({1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {B, Tk});
  const Tensors y = model.forward({q, v, k, vm}, CallContext{});
  const auto vq = values(q), vk = values(k);
  const KerasReference ref = keras_attention_reference(
      Tq, v, Tensor(),
      [&](std::int64_t b, std::int64_t i, std::int64_t j) {
        double sum = 0;
        for (std::int64_t e = 0; e < D; ++e) sum += std::tanh(0.6 * (vq[(b * Tq + i) * D + e] + vk[(b * Tk + j) * D + e]));
        return 1.3 * sum;
      },
      [&](std::int64_t b, std::int64_t, std::int64_t j) { return vm.item(b * Tk + j) != 0; });
  EXPECT_TRUE(all_close(y[0], ref.out, 1e-12));
  EXPECT_TRUE(all_close(y[1], ref.weights, 1e-12));
  const SymbolicTensor query_in = Dense(D)(query), value_in = Dense(Dv)(value), key_in = Dense(D)(key);
  Model trained({query, value, key, value_mask}, {layer.call({query_in, value_in, key_in, value_mask})[0]});
  check_model_gradients(trained, {q, v, k, vm});
}

// Keras 3's AdditiveAttention (Bahdanau's) from its definition in double: scores = sum_d scale_d
// tanh(q_d + k_d), the value mask and the causal mask hiding keys, rows times the query mask; then
// the gradients, the scale vector's among them; and without use_scale (the plain sum of tanh).
TEST(KerasAdditiveAttention, MatchesKerasDefinitionInDoubleAndGradient) {
  using namespace layers;
  const std::int64_t B = 2, Tq = 5, Tk = 6, D = 3, Dv = 2;
  for (const bool use_scale : {true, false}) {
    SCOPED_TRACE(use_scale ? "use_scale" : "no scale");
    SymbolicTensor query = Input({Tq, D}, DType::f64), value = Input({Tk, Dv}, DType::f64),
                   key = Input({Tk, D}, DType::f64);
    SymbolicTensor query_mask = Input({Tq}, DType::u8), value_mask = Input({Tk}, DType::u8);
    LayerRef layer = AdditiveAttention(
        AdditiveAttentionOptions().use_scale(use_scale).use_causal_mask(true).return_attention_scores(true));
    Model model({query, value, key, query_mask, value_mask}, layer.call({query, value, key, query_mask, value_mask}));
    const std::vector<double> scale = use_scale ? std::vector<double>{0.6, -1.1, 1.4} : std::vector<double>{1, 1, 1};
    ASSERT_EQ(layer->named_parameters().size(), use_scale ? 1u : 0u);
    if (use_scale) {
      EXPECT_EQ(layer->named_parameters()[0].first, "scale");
      layer->parameters()[0]->value = Tensor::from_vector(scale, {D}).to(DType::f64);
    }
    Generator gen(47);
    const Tensor q = random_tensor({B, Tq, D}, gen, -1, 1, DType::f64);
    const Tensor v = random_tensor({B, Tk, Dv}, gen, -1, 1, DType::f64);
    const Tensor k = random_tensor({B, Tk, D}, gen, -1, 1, DType::f64);
    const Tensor qm = Tensor::from_vector<std::uint8_t>({1, 1, 0, 1, 1, 1, 0, 1, 1, 1}, {B, Tq});
    const Tensor vm = Tensor::from_vector<std::uint8_t>({1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {B, Tk});
    const Tensors y = model.forward({q, v, k, qm, vm}, CallContext{});
    const auto vq = values(q), vk = values(k);
    const KerasReference ref = keras_attention_reference(
        Tq, v, qm,
        [&](std::int64_t b, std::int64_t i, std::int64_t j) {
          double sum = 0;
          for (std::int64_t e = 0; e < D; ++e)
            sum += scale[e] * std::tanh(vq[(b * Tq + i) * D + e] + vk[(b * Tk + j) * D + e]);
          return sum;
        },
        [&](std::int64_t b, std::int64_t i, std::int64_t j) { return vm.item(b * Tk + j) != 0 && j <= i; });
    EXPECT_TRUE(all_close(y[0], ref.out, 1e-12));
    EXPECT_TRUE(all_close(y[1], ref.weights, 1e-12));
    const SymbolicTensor query_in = Dense(D)(query), value_in = Dense(Dv)(value), key_in = Dense(D)(key);
    Model trained({query, value, key, query_mask, value_mask},
                  {layer.call({query_in, value_in, key_in, query_mask, value_mask})[0]});
    check_model_gradients(trained, {q, v, k, qm, vm});
  }
}

// The old name of the blog's pooling: AdditiveAttention called on one input pools as
// AttentionPooling does, with the same parameters under the same names.
TEST(KerasAdditiveAttention, OnOneInputIsTheOldPooling) {
  using namespace layers;
  const SymbolicTensor x = Input({6, 4});
  LayerRef old_name = AdditiveAttention(AdditiveAttentionOptions().return_attention(true));
  LayerRef new_name = AttentionPooling(AttentionPoolingOptions().return_attention(true));
  Model both({x}, {old_name.call({x})[0], new_name.call({x})[0]});
  std::vector<std::string> names;
  for (const auto& [name, p] : old_name->named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"W", "b"}));
  old_name->parameters()[0]->value = new_name->parameters()[0]->value;
  old_name->parameters()[1]->value = Tensor::from_vector<double>({0.1, -0.2, 0.3, 0.0, 0.5, -0.4}, {6}).to(DType::f32);
  new_name->parameters()[1]->value = old_name->parameters()[1]->value;
  Generator gen(49);
  const Tensors y = both.forward({random_tensor({3, 6, 4}, gen, -1, 1, DType::f32)}, CallContext{});
  EXPECT_TRUE(all_close(y[0], y[1], 0.0));
}

TEST(KerasAdditiveAttention, RefusesTheOtherFormsOptions) {
  using namespace layers;
  const SymbolicTensor x = Input({6, 4}), query = Input({5, 4}), value = Input({6, 4});
  EXPECT_ATTNKIT_ERROR(AdditiveAttention(AdditiveAttentionOptions().return_sequences(true))({query, value}),
                       "called on query and value, it is Keras's AdditiveAttention, which takes none of "
                       "return_sequences, epsilon, use_bias and return_attention");
  EXPECT_ATTNKIT_ERROR(AdditiveAttention(AdditiveAttentionOptions().use_causal_mask(true))(x),
                       "called on one input, it is AttentionPooling, which takes none of use_scale");
  EXPECT_ATTNKIT_ERROR(AdditiveAttention(AdditiveAttentionOptions().dropout(1.5))({query, value}),
                       "AdditiveAttention: dropout must be in [0, 1), got 1.5");
  LayerRef layer = AdditiveAttention();
  layer({query, value});
  EXPECT_ATTNKIT_ERROR(layer(x), "first called on query and value (Bahdanau's attention), it cannot be called on one "
                                 "input too");
}

// Attention's dropout in training: the weights of Keras's definition in double dropped by the
// mask of the batch's draw (the stream of the call's generator from its offset, support.h's
// reference), and the output from them; the weights returned after dropout, as Keras returns
// them; none at inference. Then the gradients in training (the mask drawn again for each
// evaluation from a generator of the same seed), for Attention and for AdditiveAttention.
TEST(KerasAttention, DropoutInTrainingDropsTheWeightsByTheDrawnMask) {
  using namespace layers;
  const std::int64_t B = 2, Tq = 5, Tk = 40, D = 4, Dv = 3;
  const double rate = 0.4;
  SymbolicTensor query = Input({Tq, D}, DType::f64), value = Input({Tk, Dv}, DType::f64), key = Input({Tk, D}, DType::f64);
  SymbolicTensor value_mask = Input({Tk}, DType::u8);
  LayerRef layer = Attention(AttentionLayerOptions().dropout(rate).use_causal_mask(true).return_attention_scores(true));
  Model model({query, value, key, value_mask}, layer.call({query, value, key, value_mask}));
  Generator gen(51);
  const Tensor q = random_tensor({B, Tq, D}, gen, -1, 1, DType::f64), v = random_tensor({B, Tk, Dv}, gen, -1, 1, DType::f64);
  const Tensor k = random_tensor({B, Tk, D}, gen, -1, 1, DType::f64);
  const Tensor vm = random_mask(B, Tk, gen, 0.8);
  const auto vq = values(q), vk = values(k);
  const auto score = [&](std::int64_t b, std::int64_t i, std::int64_t j) {
    double dot = 0;
    for (std::int64_t e = 0; e < D; ++e) dot += vq[(b * Tq + i) * D + e] * vk[(b * Tk + j) * D + e];
    return dot;
  };
  const auto seen = [&](std::int64_t b, std::int64_t i, std::int64_t j) { return vm.item(b * Tk + j) != 0 && j <= i; };
  Generator draws(77);
  draws.set_offset(1000);
  CallContext training;
  training.training = true, training.generator = &draws;
  const Tensors y = model.forward({q, v, k, vm}, training);
  const KerasReference dropped =
      keras_attention_reference(Tq, v, Tensor(), score, seen, [&](std::int64_t b, std::int64_t i, std::int64_t j) {
        return reference_dropout_keeps(77, 1000, rate, b * Tq + i, Tk, j) ? reference_dropout_scale(rate) : 0.0;
      });
  EXPECT_TRUE(all_close(y[0], dropped.out, 1e-12));
  EXPECT_TRUE(all_close(y[1], dropped.weights, 1e-12));
  EXPECT_EQ(draws.offset(), 1000 + ops::attention_dropout_numbers(B, 1, Tq, Tk) / 4);
  const Tensors inference = model.forward({q, v, k, vm}, CallContext{});
  const KerasReference plain = keras_attention_reference(Tq, v, Tensor(), score, seen);
  EXPECT_TRUE(all_close(inference[0], plain.out, 1e-12));
  EXPECT_TRUE(all_close(inference[1], plain.weights, 1e-12));

  for (LayerRef attention :
       {Attention(AttentionLayerOptions().dropout(rate)), AdditiveAttention(AdditiveAttentionOptions().dropout(rate))}) {
    const SymbolicTensor query_in = Dense(D)(query), value_in = Dense(Dv)(value), key_in = Dense(D)(key);
    Model trained({query, value, key, value_mask}, {attention.call({query_in, value_in, key_in, value_mask})[0]});
    check_model_gradients(trained, {q, v, k, vm}, true);
  }
}

// MultiHeadAttention's dropout in training: the output differs from inference's, the returned
// scores do not (Keras returns them before dropout), and every gradient in training matches finite
// differences (the same mask drawn again for each evaluation).
TEST(MultiHeadAttention, DropoutInTrainingDropsTheProbabilities) {
  using namespace layers;
  const std::int64_t B = 2, Tq = 5, Tk = 7, D = 4, H = 2, kd = 3;
  SymbolicTensor query = Input({Tq, D}, DType::f64), value = Input({Tk, D}, DType::f64);
  LayerRef layer = MultiHeadAttention(H, kd, MultiHeadAttentionOptions().dropout(0.3).return_attention_scores(true));
  Model model({query, value}, layer.call({query, value}));
  for (Parameter* p : layer->parameters()) p->value = p->value.to(DType::f64);
  Generator gen(52);
  const Tensor q = random_tensor({B, Tq, D}, gen, -1, 1, DType::f64), v = random_tensor({B, Tk, D}, gen, -1, 1, DType::f64);
  Generator draws(78);
  CallContext training;
  training.training = true, training.generator = &draws;
  const Tensors y = model.forward({q, v}, training);
  const Tensors inference = model.forward({q, v}, CallContext{});
  EXPECT_FALSE(all_close(y[0], inference[0], 1e-3));
  EXPECT_TRUE(all_close(y[1], inference[1], 1e-15));
  EXPECT_EQ(draws.offset(), ops::attention_dropout_numbers(B, H, Tq, Tk) / 4);
  const SymbolicTensor query_in = Dense(D)(query), value_in = Dense(D)(value);
  Model trained({query, value}, {MultiHeadAttention(H, kd, MultiHeadAttentionOptions().dropout(0.3))({query_in, value_in})});
  check_model_gradients(trained, {q, v}, true);
}

TEST(KerasAttention, RefusesWhatItCannotDo) {
  using namespace layers;
  EXPECT_ATTNKIT_ERROR(Attention(AttentionLayerOptions().score_mode("general")), "score_mode must be \"dot\" or \"concat\"");
  EXPECT_ATTNKIT_ERROR(Attention(AttentionLayerOptions().dropout(-0.2)), "Attention: dropout must be in [0, 1), got -0.2");
  EXPECT_ATTNKIT_ERROR(Attention()({Input({5, 4}), Input({7, 3})}), "query [5, 4] and key [7, 3] must share");
}

TEST(MultiHeadAttention, RefusesWhatItCannotDo) {
  using namespace layers;
  EXPECT_ATTNKIT_ERROR(MultiHeadAttention(2, 4, MultiHeadAttentionOptions().dropout(1)),
                       "MultiHeadAttention: dropout must be in [0, 1), got 1");
  EXPECT_ATTNKIT_ERROR(MultiHeadAttention(0, 4), "num_heads and key_dim must be positive, got 0 and 4");
  SymbolicTensor query = Input({5, 4}), value = Input({7, 3}), key = Input({6, 3});
  EXPECT_ATTNKIT_ERROR(MultiHeadAttention(2, 4)({query, value, key}), "must have the same steps");
  EXPECT_ATTNKIT_ERROR(MultiHeadAttention(2, 4)({query, value, value, Input({5, 6}, DType::u8)}),
                       "the mask must be [5, 7] (an attention mask) or [7] (the keys' padding)");
}

TEST(LayerGradient, PositionEmbedding) {
  check_layer([](const SymbolicTensor& h) { return std::vector<SymbolicTensor>{layers::PositionEmbedding()(h)}; },
              {5, 4});
}

TEST(LayerGradient, MasksFromTokenIds) {
  using namespace layers;
  SymbolicTensor ids = Input({6}, DType::i32);
  SymbolicTensor mask = PaddingMask()(ids);
  SymbolicTensor e = Embedding(20, 4)(ids);
  SymbolicTensor attended = MultiHeadSelfAttention(2, 4)({e, mask});
  SymbolicTensor pooled = AdditiveAttention()({attended, mask});
  Model model(ids, Dense(2, "softmax")(pooled));
  // Pre-padded ids (zeros first, as pad_sequences makes them).
  Tensor batch = Tensor::from_vector<std::int32_t>({0, 0, 3, 5, 7, 2, 0, 1, 4, 4, 9, 12, 6, 8, 10, 11, 13, 19}, {3, 6});
  check_model_gradients(model, {batch});
}

TEST(LayerGradient, FrozenEmbeddingGetsNoGradient) {
  using namespace layers;
  SymbolicTensor ids = Input({5}, DType::i32);
  Model model(ids, Dense(2, "softmax")(Flatten()(Embedding(20, 3).trainable(false)(ids))));
  Tensor batch = Tensor::from_vector<std::int32_t>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5});
  check_model_gradients(model, {batch});  // asserts the frozen table received none
  EXPECT_EQ(model.count_trainable_params(), 32);
}

TEST(Layers, DropoutDropsOnlyInTraining) {
  SymbolicTensor x = Input({100});
  Model model(x, layers::Dropout(0.5)(x));
  Tensor ones = Tensor::full({4, 100}, 1.0);
  EXPECT_TRUE(all_close(model.forward({ones}, CallContext{})[0], values(ones), 0));
  Generator gen(5);
  CallContext training{true, &gen};
  const std::vector<double> y = values(model.forward({ones}, training)[0]);
  int dropped = 0;
  for (const double v : y) {
    EXPECT_TRUE(v == 0.0 || v == 2.0) << v;
    dropped += v == 0.0;
  }
  EXPECT_GT(dropped, 120);
  EXPECT_LT(dropped, 280);
}

}  // namespace
}  // namespace attnkit
