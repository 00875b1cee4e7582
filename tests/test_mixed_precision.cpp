// Dtype policies (attnkit/mixed_precision.h) and ops::cast on the cpu: the policies' names, layers
// that take and keep them, conversions against rounding written from its definition, and the
// attention layers under mixed_bfloat16 against plain double loops that round where the policy
// says. The same on a device: sim/test_mixed_precision.cpp.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>

#include "attnkit/ops/attention.h"
#include "attnkit/ops/cast.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/shape.h"
#include "mixed_precision_support.h"

namespace attnkit {
namespace {

using namespace testing;
using mixed_precision::Policy;
using mixed_precision::PolicyScope;

// ------------------------------------------------------------------ policies

TEST(MixedPrecision, PoliciesAreKerasNamesAndOthersAreErrors) {
  EXPECT_EQ(mixed_precision::global_policy().name(), "float32");  // the default
  EXPECT_EQ(Policy("float32").compute_dtype(), DType::f32);
  EXPECT_EQ(Policy("float32").variable_dtype(), DType::f32);
  EXPECT_EQ(Policy("mixed_bfloat16").compute_dtype(), DType::bf16);
  EXPECT_EQ(Policy("mixed_bfloat16").variable_dtype(), DType::f32);
  EXPECT_ATTNKIT_ERROR(Policy("bfloat16"), "unknown dtype policy 'bfloat16' (known: float32, mixed_bfloat16)");
  EXPECT_ATTNKIT_ERROR(mixed_precision::set_global_policy("mixed_float16"), "float16 training needs loss scaling");
  EXPECT_EQ(mixed_precision::global_policy().name(), "float32");  // unchanged by the refusal
  mixed_precision::set_global_policy("mixed_bfloat16");
  EXPECT_EQ(mixed_precision::global_policy(), Policy("mixed_bfloat16"));
  {
    const PolicyScope scope("float32");
    EXPECT_EQ(mixed_precision::global_policy(), Policy("float32"));
  }
  EXPECT_EQ(mixed_precision::global_policy(), Policy("mixed_bfloat16"));
  mixed_precision::set_global_policy(Policy());
  EXPECT_EQ(mixed_precision::global_policy(), Policy("float32"));
}

TEST(MixedPrecision, LayersKeepThePolicyTheyWereMadeUnder) {
  const LayerRef plain = layers::Dense(3);
  LayerRef mixed = layers::Dense(3), recurrent = layers::LSTM(4);
  {
    const PolicyScope scope("mixed_bfloat16");
    mixed = layers::Dense(3);
    recurrent = layers::Bidirectional(layers::LSTM(4));
  }
  EXPECT_EQ(plain->dtype_policy().name(), "float32");
  EXPECT_EQ(mixed->dtype_policy().name(), "mixed_bfloat16");
  EXPECT_EQ(plain->config().at("dtype_policy"), "float32");
  EXPECT_EQ(mixed->config().at("dtype_policy"), "mixed_bfloat16");
  // Keras's dtype argument: one layer's own policy; the directions of a Bidirectional follow it.
  EXPECT_EQ(layers::Dense(3).dtype_policy("mixed_bfloat16")->dtype_policy().name(), "mixed_bfloat16");
  EXPECT_EQ(recurrent->config().at("layer").at("config").at("dtype_policy"), "mixed_bfloat16");
  recurrent->set_dtype_policy(Policy("float32"));
  EXPECT_EQ(recurrent->config().at("layer").at("config").at("dtype_policy"), "float32");
}

TEST(MixedPrecision, ConfigsRestoreThePolicyWhateverTheGlobalOne) {
  const std::unique_ptr<Model> model = small_transformer("mixed_bfloat16");
  const Json config = model->to_config();
  std::unique_ptr<Model> loaded = Model::from_config(config);  // the global policy is float32
  for (const LayerPtr& layer : loaded->layers())
    EXPECT_EQ(layer->dtype_policy().name(), "mixed_bfloat16") << layer->name();
  EXPECT_EQ(loaded->to_config(), config);
  // A config of before the policies computed in float32, under any global policy.
  Json old = config;
  for (Json& layer : old["layers"]) layer["config"].erase("dtype_policy");
  const PolicyScope scope("mixed_bfloat16");
  for (const LayerPtr& layer : Model::from_config(old)->layers())
    EXPECT_EQ(layer->dtype_policy().name(), "float32") << layer->name();
  Json bad = config;
  bad["layers"][2]["config"]["dtype_policy"] = "mixed_float8";
  EXPECT_ATTNKIT_ERROR(Model::from_config(bad), "unknown dtype policy 'mixed_float8'");
  bad["layers"][2]["config"]["dtype_policy"] = 16;
  EXPECT_ATTNKIT_ERROR(Model::from_config(bad), "dtype_policy must be a string, got 16");
}

// ------------------------------------------------------------------ cast

// v rounded to `bits` significant bits, ties to even, by the definition (no bit tricks): the
// nearest multiple of the quantum 2^(e - bits), e the exponent of v, or of `min_exponent` below it
// (subnormals).
double round_to_bits(double v, int bits, int min_exponent) {
  if (v == 0 || !std::isfinite(v)) return v;
  int exponent = 0;
  std::frexp(v, &exponent);  // |v| in [2^(exponent-1), 2^exponent)
  const double quantum = std::ldexp(1.0, std::max(exponent, min_exponent) - bits);
  return std::nearbyint(v / quantum) * quantum;  // the default rounding mode: ties to even
}
// bf16: 8 significant bits, f32's exponents (normal from 2^-126), overflow past 2^128 (f32's).
double reference_bf16(double v) {
  const double r = round_to_bits(v, 8, -125);
  return std::fabs(r) >= std::ldexp(1.0, 128) ? std::copysign(INFINITY, v) : r;
}
// f16: 11 significant bits, normal from 2^-14, largest 65504.
double reference_f16(double v) {
  const double r = round_to_bits(v, 11, -13);
  return std::fabs(r) > 65504 ? std::copysign(INFINITY, v) : r;
}

TEST(Cast, RoundsToNearestEvenAsDefined) {
  // Random magnitudes over 40 binades, and the cases that decide a rounding: ties (to even), the
  // largest finite values, overflow, subnormals, zeros and infinities.
  Generator gen(23);
  std::vector<float> inputs;
  for (int i = 0; i < 1001; ++i) {
    const double mantissa = 1.0 + gen.uniform_int(1 << 23) / double(1 << 23);
    const int exponent = static_cast<int>(gen.uniform_int(40)) - 20;
    inputs.push_back(static_cast<float>((i % 2 ? -1 : 1) * std::ldexp(mantissa, exponent)));
  }
  for (const double special :
       {1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, -(1.0 + 0x1p-8), 1.0 + 0x1p-11, 1.0 + 3 * 0x1p-11, 65504.0, 65519.0, 65520.0,
        0x1p-25, 3 * 0x1p-26, 0x1p-20, double(FLT_MAX), 0x1p-130, 0.0, -0.0, double(INFINITY), -double(INFINITY)})
    inputs.push_back(static_cast<float>(special));
  const auto n = static_cast<std::int64_t>(inputs.size());
  const Tensor x = Tensor::from_vector(inputs, {n});
  const Tensor bf16 = ops::cast(x, DType::bf16), f16 = ops::cast(x, DType::f16);
  ASSERT_EQ(bf16.dtype(), DType::bf16);
  ASSERT_EQ(f16.dtype(), DType::f16);
  EXPECT_EQ(bf16.shape(), x.shape());
  std::vector<double> expected_bf16, expected_f16;
  for (const float v : inputs) {
    expected_bf16.push_back(reference_bf16(v));
    expected_f16.push_back(reference_f16(v));
  }
  EXPECT_TRUE(all_close(bf16, expected_bf16, 0, 0));
  EXPECT_TRUE(all_close(f16, expected_f16, 0, 0));
  // Widening is exact, so narrowing again gives the same values; f32 -> f64 -> f32 too.
  EXPECT_TRUE(all_close(ops::cast(ops::cast(bf16, DType::f32), DType::bf16), bf16, 0, 0));
  EXPECT_TRUE(all_close(ops::cast(ops::cast(f16, DType::f32), DType::f16), f16, 0, 0));
  EXPECT_TRUE(all_close(ops::cast(ops::cast(x, DType::f64), DType::f32), x, 0, 0));
  // f16 -> bf16 rounds once, from the f16 value.
  std::vector<double> f16_to_bf16;
  for (const double v : expected_f16) f16_to_bf16.push_back(reference_bf16(v));
  EXPECT_TRUE(all_close(ops::cast(f16, DType::bf16), f16_to_bf16, 0, 0));
}

TEST(Cast, KeepsATensorOfTheDtypeAndRefusesOthers) {
  Generator gen(24);
  const Tensor x = random_tensor({3, 5}, gen, -1, 1, DType::f32);
  EXPECT_TRUE(ops::cast(x, DType::f32).shares_storage_with(x));
  EXPECT_ATTNKIT_ERROR(ops::cast(Tensor::zeros({2}, DType::i32), DType::f32),
                       "cast: x must be a floating-point tensor, got i32[2] on cpu");
  EXPECT_ATTNKIT_ERROR(ops::cast(x, DType::u8), "cast: dtype must be f32, f64, f16 or bf16, got u8");
  EXPECT_ATTNKIT_ERROR(ops::cast(Tensor(), DType::f32), "got undefined tensor");
}

// ------------------------------------------------------------------ attention layers

// Inputs of a self-attention layer: x [B, T, D] and a key mask [B, T].
constexpr std::int64_t kBatch = 3, kSteps = 11, kFeatures = 24;

// MultiHeadSelfAttention by plain loops in double (seed 004's layer): q, k, v = x W + b; for each
// head, P = softmax(q k^T / sqrt(dk)) over the keys the mask keeps; out = P v; y = out W_o + b_o.
// With `bf16`, q, k, v, P and out are rounded to bf16 as the policy's attention rounds them.
struct SelfAttentionReference {
  std::vector<double> y, weights;
};
SelfAttentionReference reference_self_attention(Layer& layer, const Tensor& x, const Tensor& mask, std::int64_t heads,
                                                bool bf16) {
  std::map<std::string, std::vector<double>> p;
  for (const auto& [name, parameter] : layer.named_parameters()) p[name] = values(parameter->value);
  const std::int64_t w = static_cast<std::int64_t>(p["query/bias"].size()), dk = w / heads;
  const auto round = [&](double v) { return bf16 ? reference_bf16(v) : v; };
  const std::vector<double> vx = values(x);
  SelfAttentionReference r;
  for (std::int64_t b = 0; b < kBatch; ++b) {
    std::vector<double> q(kSteps * w), k(kSteps * w), v(kSteps * w), out(kSteps * w);
    for (std::int64_t t = 0; t < kSteps; ++t)
      for (std::int64_t c = 0; c < w; ++c) {
        double sq = p["query/bias"][c], sk = p["key/bias"][c], sv = p["value/bias"][c];
        for (std::int64_t f = 0; f < kFeatures; ++f) {
          const double xf = vx[(b * kSteps + t) * kFeatures + f];
          sq += xf * p["query/kernel"][f * w + c];
          sk += xf * p["key/kernel"][f * w + c];
          sv += xf * p["value/kernel"][f * w + c];
        }
        q[t * w + c] = round(sq), k[t * w + c] = round(sk), v[t * w + c] = round(sv);
      }
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t i = 0; i < kSteps; ++i) {
        std::vector<double> s(kSteps, -INFINITY);
        double max = -INFINITY, sum = 0;
        for (std::int64_t j = 0; j < kSteps; ++j) {
          if (mask.item(b * kSteps + j) == 0) continue;
          s[j] = 0;
          for (std::int64_t c = h * dk; c < (h + 1) * dk; ++c) s[j] += q[i * w + c] * k[j * w + c];
          s[j] /= std::sqrt(double(dk));
          max = std::max(max, s[j]);
        }
        for (std::int64_t j = 0; j < kSteps; ++j) sum += std::exp(s[j] - max);
        for (std::int64_t j = 0; j < kSteps; ++j) r.weights.push_back(round(std::exp(s[j] - max) / sum));
        for (std::int64_t c = h * dk; c < (h + 1) * dk; ++c) {
          double acc = 0;
          for (std::int64_t j = 0; j < kSteps; ++j) acc += std::exp(s[j] - max) / sum * v[j * w + c];
          out[i * w + c] = round(acc);
        }
      }
    for (std::int64_t t = 0; t < kSteps; ++t)
      for (std::int64_t f = 0; f < kFeatures; ++f) {
        double acc = p["output/bias"][f];
        for (std::int64_t c = 0; c < w; ++c) acc += out[t * w + c] * p["output/kernel"][c * kFeatures + f];
        r.y.push_back(acc);
      }
  }
  return r;
}

// The largest |a - b| over the elements.
double max_difference(const Tensor& a, const std::vector<double>& b) {
  const std::vector<double> va = values(a);
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::fabs(va[i] - b[i]));
  return worst;
}
double max_difference(const Tensor& a, const Tensor& b) { return max_difference(a, values(b)); }

TEST(MixedPrecision, SelfAttentionRunsItsAttentionInBf16OnTheCpu) {
  Generator gen(25);
  const Tensor x = random_tensor({kBatch, kSteps, kFeatures}, gen, -1, 1, DType::f32);
  const Tensor mask = random_mask(kBatch, kSteps, gen);
  const Tensor dy = random_tensor({kBatch, kSteps, kFeatures}, gen, -1, 1, DType::f32);
  // Head dims the bf16 kernels take (others stay f32: HeadDimsTheBf16KernelsLackComputeInF32).
  for (const std::int64_t head_dim : {32, 64}) {
    SCOPED_TRACE("head dim " + std::to_string(head_dim));
    const std::int64_t heads = 2;
    const LayerRef f32_layer = layers::MultiHeadSelfAttention(heads, heads * head_dim, false, true);
    const LayerRun f32 = run_layer(Device::cpu(), f32_layer, {x, mask}, dy);
    LayerRef mixed_layer = f32_layer;
    {
      const PolicyScope scope("mixed_bfloat16");
      mixed_layer = layers::MultiHeadSelfAttention(heads, heads * head_dim, false, true);
    }
    const LayerRun mixed = run_layer(Device::cpu(), mixed_layer, {x, mask}, dy);  // the same weights: seed 7
    for (const Tensor& t : {mixed.outputs[0], mixed.outputs[1], mixed.dx}) EXPECT_EQ(t.dtype(), DType::f32);
    for (Parameter* parameter : mixed_layer->parameters()) {
      EXPECT_EQ(parameter->value.dtype(), DType::f32) << parameter->name;
      EXPECT_EQ(parameter->grad.dtype(), DType::f32) << parameter->name;
    }

    // The attention's operands and results are bf16 values under the policy, not under float32:
    // its weights (P, as the attention returns them) are all bf16 values, and close to the
    // reference's P from q and k rounded to bf16 (within one rounding of bf16, 2^-8 relative).
    EXPECT_EQ(bf16_fraction(mixed.outputs[1]), 1.0);
    EXPECT_LT(bf16_fraction(f32.outputs[1]), 0.2);
    const SelfAttentionReference rounded = reference_self_attention(*mixed_layer, x, mask, heads, true);
    const SelfAttentionReference exact = reference_self_attention(*f32_layer, x, mask, heads, false);
    EXPECT_TRUE(all_close(mixed.outputs[1], rounded.weights, 1e-6, 0x1p-8));
    EXPECT_TRUE(all_close(f32.outputs[1], exact.weights, 1e-6, 1e-5));

    // The outputs: float32's match the exact loops to f32's precision; mixed_bfloat16's match
    // the rounded loops to a few f32 roundings (and a rare bf16 rounding of q, k, v or the
    // output that f32's products put on the other side of a tie: one bf16 step, 2^-8 relative,
    // of one element), and stand off the exact loops by bf16's error, far beyond f32's.
    const double scale = max_difference(Tensor::zeros({kBatch, kSteps, kFeatures}), rounded.y);  // max |y|
    EXPECT_TRUE(all_close(f32.outputs[0], exact.y, 1e-5, 1e-5));
    EXPECT_LT(max_difference(mixed.outputs[0], rounded.y), 0x1p-9 * scale);
    EXPECT_GT(max_difference(mixed.outputs[0], exact.y), 1e-4);

    // The gradient: mixed_bfloat16's is float32's up to bf16's error, and is not float32's.
    const double dx_scale = max_difference(f32.dx, std::vector<double>(f32.dx.numel(), 0.0));
    EXPECT_LT(max_difference(mixed.dx, f32.dx), 0x1p-5 * dx_scale);
    EXPECT_GT(max_difference(mixed.dx, f32.dx), 1e-5 * dx_scale);
  }
}

// The layer's bf16 path is the ops' path with casts around the attention, bit for bit.
TEST(MixedPrecision, SelfAttentionIsTheOpsWithCastsAroundTheAttention) {
  Generator gen(26);
  const Tensor x = random_tensor({kBatch, kSteps, kFeatures}, gen, -1, 1, DType::f32);
  const Tensor mask = random_mask(kBatch, kSteps, gen);
  const Tensor dy = random_tensor({kBatch, kSteps, kFeatures}, gen, -1, 1, DType::f32);
  const PolicyScope scope("mixed_bfloat16");
  const LayerRef layer = layers::MultiHeadSelfAttention(2, 64);
  const LayerRun run = run_layer(Device::cpu(), layer, {x, mask}, dy);
  std::map<std::string, Tensor> p;
  for (const auto& [name, parameter] : layer->named_parameters()) p[name] = parameter->value;
  ops::AttentionOptions options;
  options.num_heads = 2;
  const Tensor qkv = ops::cast(ops::linear(x, ops::concat({p["query/kernel"], p["key/kernel"], p["value/kernel"]}, 1),
                                           ops::concat({p["query/bias"], p["key/bias"], p["value/bias"]}, 0)),
                               DType::bf16);
  const ops::AttentionResult attention = ops::packed_self_attention(qkv, mask, options);
  const Tensor attended = ops::cast(attention.out, DType::f32);
  EXPECT_TRUE(all_close(run.outputs[0], ops::linear(attended, p["output/kernel"], p["output/bias"]), 0, 0));
  const Tensor dattended = ops::linear_backward(attended, p["output/kernel"], dy).dx;
  const Tensor dqkv = ops::cast(
      ops::packed_self_attention_backward(qkv, mask, attention, ops::cast(dattended, DType::bf16), options),
      DType::f32);
  const Tensor qkv_kernel = ops::concat({p["query/kernel"], p["key/kernel"], p["value/kernel"]}, 1);
  EXPECT_TRUE(all_close(run.dx, ops::linear_backward(x, qkv_kernel, dqkv).dx, 0, 0));
}

TEST(MixedPrecision, DotAttentionRunsItsAttentionInBf16OnTheCpu) {
  Generator gen(27);
  const Tensor query = random_tensor({2, 5, 32}, gen, -1, 1, DType::f32);
  const Tensor value = random_tensor({2, 9, 32}, gen, -1, 1, DType::f32);
  const Tensor mask = random_mask(2, 9, gen);
  const Tensor dy = random_tensor({2, 5, 32}, gen, -1, 1, DType::f32);
  const LayerRun f32 = run_layer(Device::cpu(), layers::DotAttention(0.25, true), {query, value, mask}, dy);
  LayerRef mixed_layer = layers::DotAttention(0.25, true).dtype_policy("mixed_bfloat16");
  const LayerRun mixed = run_layer(Device::cpu(), mixed_layer, {query, value, mask}, dy);
  // Luong's attention by plain loops, on query and value rounded to bf16, P and the context too.
  std::vector<double> context, weights;
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t i = 0; i < 5; ++i) {
      std::vector<double> s(9, -INFINITY);
      double max = -INFINITY, sum = 0;
      for (std::int64_t j = 0; j < 9; ++j) {
        if (mask.item(b * 9 + j) == 0) continue;
        s[j] = 0;
        for (std::int64_t c = 0; c < 32; ++c)
          s[j] += reference_bf16(query.item((b * 5 + i) * 32 + c)) * reference_bf16(value.item((b * 9 + j) * 32 + c));
        s[j] *= 0.25;
        max = std::max(max, s[j]);
      }
      for (std::int64_t j = 0; j < 9; ++j) sum += std::exp(s[j] - max);
      for (std::int64_t j = 0; j < 9; ++j) weights.push_back(reference_bf16(std::exp(s[j] - max) / sum));
      for (std::int64_t c = 0; c < 32; ++c) {
        double acc = 0;
        for (std::int64_t j = 0; j < 9; ++j)
          acc += std::exp(s[j] - max) / sum * reference_bf16(value.item((b * 9 + j) * 32 + c));
        context.push_back(reference_bf16(acc));
      }
    }
  EXPECT_EQ(bf16_fraction(mixed.outputs[0]), 1.0);
  EXPECT_EQ(bf16_fraction(mixed.outputs[1]), 1.0);
  EXPECT_LT(bf16_fraction(f32.outputs[0]), 0.2);
  EXPECT_TRUE(all_close(mixed.outputs[0], context, 1e-6, 0x1p-8));
  EXPECT_TRUE(all_close(mixed.outputs[1], weights, 1e-6, 0x1p-8));
  const double dx_scale = max_difference(f32.dx, std::vector<double>(f32.dx.numel(), 0.0));
  EXPECT_EQ(mixed.dx.dtype(), DType::f32);
  EXPECT_LT(max_difference(mixed.dx, f32.dx), 0x1p-5 * dx_scale);
  EXPECT_GT(max_difference(mixed.dx, f32.dx), 1e-5 * dx_scale);
}

// ------------------------------------------------------------------ training

TEST(MixedPrecision, TrainingUnderMixedBfloat16FollowsFloat32OnTheCpu) {
  const TransformerData data = transformer_data(24);
  const std::unique_ptr<Model> f32 = small_transformer("float32");
  const std::unique_ptr<Model> mixed = small_transformer("mixed_bfloat16");
  expect_training_follows_float32(train_steps(*f32, data, Device::cpu(), 6),
                                  train_steps(*mixed, data, Device::cpu(), 6));
  for (const auto& [name, parameter] : mixed->named_parameters()) {
    EXPECT_EQ(parameter->value.dtype(), DType::f32) << name;
    EXPECT_EQ(parameter->grad.dtype(), DType::f32) << name;
  }
}

}  // namespace
}  // namespace attnkit
