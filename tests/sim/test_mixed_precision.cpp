// ops::cast (kernels/cast.cu) and the mixed_bfloat16 policy on a device, against the cpu: the
// conversions bit for bit, the self-attention layer through the bf16 attention kernels, and a
// small Transformer trained under both policies. Built into the sim tests (the device is `sim`)
// and into the gpu tests (`cuda`), as test_device_ops.cpp is.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>

#include "attnkit/device.h"
#include "attnkit/ops/attention.h"
#include "attnkit/ops/cast.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/shape.h"
#include "mixed_precision_support.h"
#include "sim/sim.h"

namespace attnkit {
namespace {

using namespace testing;
using mixed_precision::PolicyScope;

#ifndef ATTNKIT_TEST_DEVICE
#error "ATTNKIT_TEST_DEVICE must name the device: \"sim\" or \"cuda\""
#endif

class DeviceMixedPrecision : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device.is_cuda() && cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda_status();
  }
  const Device device = Device::parse(ATTNKIT_TEST_DEVICE);
};

// f32 values of many magnitudes, and the cases that decide a rounding: ties, the largest finite
// values of f16 and f32 and past them, subnormals, signed zeros and infinities.
Tensor values_to_round(std::int64_t count, Generator& gen) {
  std::vector<float> v;
  for (const double special : {1.0 + 0x1p-8, 1.0 + 3 * 0x1p-8, 1.0 + 0x1p-11, 1.0 + 3 * 0x1p-11, 65504.0, 65520.0,
                               0x1p-25, 3 * 0x1p-26, double(FLT_MAX), 0x1p-130, -0.0, double(INFINITY)})
    v.push_back(static_cast<float>(special));
  while (static_cast<std::int64_t>(v.size()) < count) {
    const double mantissa = 1.0 + static_cast<double>(gen.uniform_int(1 << 23)) / double(1 << 23);
    const int exponent = static_cast<int>(gen.uniform_int(40)) - 20;
    v.push_back(static_cast<float>((v.size() % 2 ? -1 : 1) * std::ldexp(mantissa, exponent)));
  }
  v.resize(static_cast<std::size_t>(count));
  return Tensor::from_vector(v, {count});
}

TEST_F(DeviceMixedPrecision, CastMatchesTheCpuBitForBit) {
  Generator gen(41);
  for (const std::int64_t count : {1, 37, 1031}) {
    const Tensor x = values_to_round(count, gen);
    for (const DType from : {DType::f32, DType::f16, DType::bf16})
      for (const DType to : {DType::f32, DType::f16, DType::bf16}) {
        SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to) + ", " + std::to_string(count));
        const Tensor source = ops::cast(x, from);
        const Tensor y = ops::cast(source.to(device), to);
        EXPECT_EQ(y.device(), device);
        EXPECT_EQ(y.dtype(), to);
        EXPECT_EQ(y.shape(), x.shape());
        // Values in f64 hold every one of these exactly: equal values are equal bits (but for
        // the sign of zero, checked below).
        EXPECT_TRUE(all_close(y.to(Device::cpu()), ops::cast(source, to), 0, 0));
        if (from != to) {
          EXPECT_FALSE(y.shares_storage_with(source));
        }
      }
  }
  const Tensor negative_zero = ops::cast(Tensor::full({1}, -0.0).to(device), DType::bf16).to(Device::cpu());
  EXPECT_TRUE(std::signbit(negative_zero.item(0)));
  const Tensor x = Tensor::full({3}, 1.5).to(device);
  EXPECT_TRUE(ops::cast(x, DType::f32).shares_storage_with(x));
  EXPECT_ATTNKIT_ERROR(ops::cast(x, DType::f64), "cast: f64 is the cpu's; cannot convert f32[3] on");
  EXPECT_ATTNKIT_ERROR(ops::cast(Tensor::zeros({2}, DType::i32).to(device), DType::bf16),
                       "cast: x must be a floating-point tensor, got i32[2]");
}

constexpr std::int64_t kBatch = 3, kSteps = 11, kFeatures = 24;

// Under mixed_bfloat16 the layer's attention runs through the bf16 kernels (the tensor-core
// flash attention): its result is the ops' path with casts around the attention, bit for bit;
// its weights are bf16 values; and it agrees with the cpu's bf16 path to bf16's precision.
TEST_F(DeviceMixedPrecision, SelfAttentionRunsTheBf16Kernels) {
  Generator gen(42);
  const Tensor x = random_tensor({kBatch, kSteps, kFeatures}, gen, -1, 1, DType::f32);
  const Tensor mask = random_mask(kBatch, kSteps, gen);
  const Tensor dy = random_tensor({kBatch, kSteps, kFeatures}, gen, -1, 1, DType::f32);
  const LayerRun f32 = run_layer(device, layers::MultiHeadSelfAttention(2, 64, false, true), {x, mask}, dy);
  const PolicyScope scope("mixed_bfloat16");
  const LayerRef layer = layers::MultiHeadSelfAttention(2, 64, false, true);
  const LayerRun mixed = run_layer(device, layer, {x, mask}, dy);
  const LayerRun on_cpu = run_layer(Device::cpu(), layers::MultiHeadSelfAttention(2, 64, false, true), {x, mask}, dy);

  for (const Tensor& t : {mixed.outputs[0], mixed.outputs[1], mixed.dx}) EXPECT_EQ(t.dtype(), DType::f32);
  for (Parameter* parameter : layer->parameters()) {
    EXPECT_EQ(parameter->value.dtype(), DType::f32) << parameter->name;
    EXPECT_EQ(parameter->grad.dtype(), DType::f32) << parameter->name;
  }
  EXPECT_EQ(bf16_fraction(mixed.outputs[1]), 1.0);
  EXPECT_LT(bf16_fraction(f32.outputs[1]), 0.2);

  std::map<std::string, Tensor> p;
  for (const auto& [name, parameter] : layer->named_parameters()) p[name] = parameter->value;
  ops::AttentionOptions options;
  options.num_heads = 2;
  const Tensor xd = x.to(device), maskd = mask.to(device), dyd = dy.to(device);
  const Tensor qkv_kernel = ops::concat({p["query/kernel"], p["key/kernel"], p["value/kernel"]}, 1);
  const Tensor qkv = ops::cast(
      ops::linear(xd, qkv_kernel, ops::concat({p["query/bias"], p["key/bias"], p["value/bias"]}, 0)), DType::bf16);
  const ops::AttentionResult attention = ops::packed_self_attention(qkv, maskd, options);
  const Tensor attended = ops::cast(attention.out, DType::f32);
  EXPECT_TRUE(all_close(mixed.outputs[0], ops::linear(attended, p["output/kernel"], p["output/bias"]), 0, 0));
  const Tensor dattended = ops::linear_backward(attended, p["output/kernel"], dyd).dx;
  const Tensor dqkv = ops::cast(
      ops::packed_self_attention_backward(qkv, maskd, attention, ops::cast(dattended, DType::bf16), options),
      DType::f32);
  EXPECT_TRUE(all_close(mixed.dx, ops::linear_backward(xd, qkv_kernel, dqkv).dx, 0, 0));

  // Against the cpu's bf16 path: the kernels also round the probabilities to bf16 before their
  // second product and take ex2.approx, so a few bf16 roundings apart (2^-6 of the largest
  // magnitude); against float32, bf16's error shows.
  const auto largest = [](const Tensor& t) {
    double m = 0;
    for (const double v : values(t)) m = std::max(m, std::fabs(v));
    return m;
  };
  EXPECT_TRUE(all_close(mixed.outputs[0], on_cpu.outputs[0], 0x1p-6 * largest(on_cpu.outputs[0])));
  EXPECT_TRUE(all_close(mixed.dx, on_cpu.dx, 0x1p-6 * largest(on_cpu.dx)));
  EXPECT_FALSE(all_close(mixed.outputs[0], f32.outputs[0], 1e-5 * largest(f32.outputs[0])));
}

// Keras's MultiHeadAttention on the device: cross-attention with an attention mask and causal
// masking (the kernels' score modifiers) gives the cpu's outputs and input gradient, in float32
// and under mixed_bfloat16 (its attention then in bf16).
TEST_F(DeviceMixedPrecision, MultiHeadAttentionWithAnAttentionMaskRunsLikeTheCpu) {
  Generator gen(43);
  const Tensor query = random_tensor({kBatch, 11, 24}, gen, -1, 1, DType::f32);
  const Tensor value = random_tensor({kBatch, 19, 20}, gen, -1, 1, DType::f32);
  const Tensor mask = random_mask(kBatch * 11, 19, gen, 0.8).reshape({kBatch, 11, 19});
  const Tensor dy = random_tensor({kBatch, 11, 24}, gen, -1, 1, DType::f32);
  const auto layer = [] {
    return layers::MultiHeadAttention(2, 32, layers::MultiHeadAttentionOptions().use_causal_mask(true));
  };
  const auto largest = [](const Tensor& t) {
    double m = 0;
    for (const double v : values(t)) m = std::max(m, std::fabs(v));
    return m;
  };
  for (const char* policy : {"float32", "mixed_bfloat16"}) {
    const LayerRun on_device = run_layer(device, layer().dtype_policy(policy), {query, value, value, mask}, dy);
    const LayerRun on_cpu = run_layer(Device::cpu(), layer().dtype_policy(policy), {query, value, value, mask}, dy);
    const double tolerance = std::string(policy) == "float32" ? 1e-5 : 0x1p-6;
    EXPECT_TRUE(all_close(on_device.outputs[0], on_cpu.outputs[0], tolerance * largest(on_cpu.outputs[0]))) << policy;
    EXPECT_TRUE(all_close(on_device.dx, on_cpu.dx, tolerance * largest(on_cpu.dx))) << policy;
  }
}

// Keras's Attention on the device, dot and concat scores, with a query mask and a value mask and a
// learned scale: the cpu's outputs and input gradient, in float32 and under mixed_bfloat16.
TEST_F(DeviceMixedPrecision, KerasAttentionWithMasksRunsLikeTheCpu) {
  Generator gen(44);
  const Tensor query = random_tensor({kBatch, 11, 32}, gen, -1, 1, DType::f32);
  const Tensor value = random_tensor({kBatch, 19, 32}, gen, -1, 1, DType::f32);
  const Tensor query_mask = random_mask(kBatch, 11, gen, 0.7), value_mask = random_mask(kBatch, 19, gen, 0.8);
  const Tensor dy = random_tensor({kBatch, 11, 32}, gen, -1, 1, DType::f32);
  const auto largest = [](const Tensor& t) {
    double m = 0;
    for (const double v : values(t)) m = std::max(m, std::fabs(v));
    return m;
  };
  for (const std::string mode : {"dot", "concat", "additive"})
    for (const char* policy : {"float32", "mixed_bfloat16"}) {
      const auto layer = [&] {
        if (mode == "additive") return layers::AdditiveAttention().dtype_policy(policy);  // Keras's (Bahdanau's)
        return layers::Attention(layers::AttentionLayerOptions().use_scale(true).score_mode(mode)).dtype_policy(policy);
      };
      const Tensors inputs{query, value, query_mask, value_mask};
      const LayerRun on_device = run_layer(device, layer(), inputs, dy);
      const LayerRun on_cpu = run_layer(Device::cpu(), layer(), inputs, dy);
      const double tolerance = std::string(policy) == "float32" ? 1e-5 : 0x1p-6;
      EXPECT_TRUE(all_close(on_device.outputs[0], on_cpu.outputs[0], tolerance * largest(on_cpu.outputs[0])))
          << mode << " " << policy;
      EXPECT_TRUE(all_close(on_device.dx, on_cpu.dx, tolerance * largest(on_cpu.dx))) << mode << " " << policy;
    }
}

TEST_F(DeviceMixedPrecision, HeadDimsTheBf16KernelsLackComputeInF32) {
  Generator gen(43);
  const Tensor x = random_tensor({2, 5, 8}, gen, -1, 1, DType::f32);
  const Tensor dy = random_tensor({2, 5, 8}, gen, -1, 1, DType::f32);
  // Heads of 16: under the policy the attention stays f32, on the device and on the cpu alike,
  // so both give float32's results (its weights are not bf16 values).
  auto layer = [] { return layers::MultiHeadSelfAttention(2, 32, false, true); };
  const LayerRun f32 = run_layer(device, layer(), {x}, dy);
  const LayerRun mixed = run_layer(device, layer().dtype_policy("mixed_bfloat16"), {x}, dy);
  const LayerRun mixed_cpu = run_layer(Device::cpu(), layer().dtype_policy("mixed_bfloat16"), {x}, dy);
  EXPECT_LT(bf16_fraction(mixed.outputs[1]), 0.2);
  EXPECT_LT(bf16_fraction(mixed_cpu.outputs[1]), 0.2);
  EXPECT_TRUE(all_close(mixed.outputs[0], f32.outputs[0], 0.0));
  EXPECT_TRUE(all_close(mixed.dx, f32.dx, 0.0));
}

TEST_F(DeviceMixedPrecision, TrainingUnderMixedBfloat16FollowsFloat32) {
  // The kernels' schedules are compared by their own tests; one suffices for these numbers, and
  // spares the sim two thirds of its work.
  const sim::ScopedOptions one_schedule(sim::Options{{sim::Schedule::forward}});
  const TransformerData data = transformer_data(12);
  const std::unique_ptr<Model> f32 = small_transformer("float32");
  const std::unique_ptr<Model> mixed = small_transformer("mixed_bfloat16");
  expect_training_follows_float32(train_steps(*f32, data, device, 4), train_steps(*mixed, data, device, 4));
  for (const auto& [name, parameter] : mixed->named_parameters()) {
    EXPECT_EQ(parameter->value.dtype(), DType::f32) << name;
    EXPECT_EQ(parameter->value.device(), device) << name;
  }
}

}  // namespace
}  // namespace attnkit
