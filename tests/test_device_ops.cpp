// The ops on a device against the same ops on the cpu: every op that the device ops implement,
// forward and backward, on fresh random inputs of odd sizes. The same file is built twice: into
// the sim tests (the device is `sim`: the kernels run on the sim executor, label sim) and into
// the gpu tests (`cuda`, skipped where there is no GPU).
#include <gtest/gtest.h>

#include "attnkit/config.h"
#include "attnkit/device.h"
#include "attnkit/layer.h"
#include "attnkit/layers.h"
#include "attnkit/ops/attention.h"
#include "attnkit/ops/conv.h"
#include "attnkit/ops/dropout.h"
#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/embedding.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/loss.h"
#include "attnkit/ops/norm.h"
#include "attnkit/ops/recurrent.h"
#include "attnkit/ops/reduce.h"
#include "attnkit/ops/shape.h"
#include "attnkit/ops/softmax.h"
#include "attnkit/optimizers.h"
#include "attnkit/zoo.h"
#include "kernels/decode_attention.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

#ifndef ATTNKIT_TEST_DEVICE
#error "ATTNKIT_TEST_DEVICE must name the device: \"sim\" or \"cuda\""
#endif

class DeviceOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device.is_cuda() && cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda_status();
  }
  // A float32 copy on the device under test.
  Tensor on_device(const Tensor& host) const { return host.to(DType::f32).to(device); }
  static Tensor f32(const Shape& shape, Generator& gen, double low = -1.0, double high = 1.0) {
    return random_tensor(shape, gen, low, high, DType::f32);
  }
  // The device's result, back on the cpu, against the cpu op's, in float32.
  static ::testing::AssertionResult matches(const Tensor& on_device, const Tensor& on_cpu, double tolerance = 1e-5) {
    if (on_device.device() == on_cpu.device())
      return ::testing::AssertionFailure() << "the result stayed on " << on_device.device();
    return all_close(on_device.to(Device::cpu()), on_cpu, tolerance, tolerance);
  }

  const Device device = Device::parse(ATTNKIT_TEST_DEVICE);
};

TEST_F(DeviceOps, ActivationsAndTheirGradients) {
  Generator gen(301);
  for (const ops::Activation kind : {ops::Activation::linear, ops::Activation::relu, ops::Activation::tanh,
                                     ops::Activation::sigmoid, ops::Activation::softmax}) {
    const Tensor x = f32({7, 33}, gen, -3, 3), dy = f32({7, 33}, gen);
    const Tensor y = ops::activation(x, kind);
    const Tensor y_dev = ops::activation(on_device(x), kind);
    EXPECT_TRUE(matches(y_dev, y)) << ops::activation_name(kind);
    EXPECT_TRUE(matches(ops::activation_backward(on_device(y), on_device(dy), kind),
                        ops::activation_backward(y, dy, kind)))
        << ops::activation_name(kind);
  }
}

TEST_F(DeviceOps, ProductsAndSumsOfElements) {
  Generator gen(302);
  const Tensor a = f32({5, 3, 11}, gen), b = f32({5, 3, 11}, gen), dy = f32({5, 3, 11}, gen);
  EXPECT_TRUE(matches(ops::multiply(on_device(a), on_device(b)), ops::multiply(a, b)));
  EXPECT_TRUE(matches(ops::add(on_device(a), on_device(b)), ops::add(a, b)));
  const ops::MultiplyGrads expected = ops::multiply_backward(a, b, dy);
  const ops::MultiplyGrads grads = ops::multiply_backward(on_device(a), on_device(b), on_device(dy));
  EXPECT_TRUE(matches(grads.da, expected.da));
  EXPECT_TRUE(matches(grads.db, expected.db));
}

TEST_F(DeviceOps, SoftmaxAndLogSoftmaxOverTheLastAxis) {
  Generator gen(303);
  for (const std::int64_t cols : {1, 9, 130}) {
    const Tensor x = f32({3, 5, cols}, gen, -4, 4), dy = f32({3, 5, cols}, gen);
    const Tensor y = ops::softmax(x), log_y = ops::log_softmax(x);
    EXPECT_TRUE(matches(ops::softmax(on_device(x)), y)) << cols;
    EXPECT_TRUE(matches(ops::log_softmax(on_device(x)), log_y)) << cols;
    EXPECT_TRUE(matches(ops::softmax_backward(on_device(y), on_device(dy)), ops::softmax_backward(y, dy))) << cols;
    EXPECT_TRUE(matches(ops::log_softmax_backward(on_device(log_y), on_device(dy)),
                        ops::log_softmax_backward(log_y, dy)))
        << cols;
  }
  const Tensor x = on_device(f32({4, 6}, gen));
  EXPECT_ATTNKIT_ERROR(ops::softmax(x, 0), "only the last axis is supported");
}

TEST_F(DeviceOps, DropoutDrawsTheCpuMasksBitForBit) {
  Generator gen(304);
  const Tensor x = f32({6, 77}, gen), dy = f32({6, 77}, gen);
  Generator cpu_draws(99), device_draws(99);
  for (int call = 0; call < 2; ++call) {  // the second call continues the Philox stream
    const ops::DropoutResult expected = ops::dropout(x, 0.3, cpu_draws);
    const ops::DropoutResult result = ops::dropout(on_device(x), 0.3, device_draws);
    EXPECT_EQ(result.mask.to_vector<int>(), expected.mask.to_vector<int>()) << "call " << call;
    EXPECT_TRUE(matches(result.y, expected.y, 1e-6));
    EXPECT_TRUE(matches(ops::dropout_backward(on_device(dy), result.mask, 0.3),
                        ops::dropout_backward(dy, expected.mask, 0.3), 1e-6));
  }
}

TEST_F(DeviceOps, MatrixProductsInEveryTransposition) {
  Generator gen(305);
  for (const bool batched : {false, true})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        const std::int64_t m = 7, k = 13, n = 5;
        const Shape a_shape = ta ? Shape{k, m} : Shape{m, k}, b_shape = tb ? Shape{n, k} : Shape{k, n};
        const auto batch = [&](Shape s) {
          if (batched) s.insert(s.begin(), 3);
          return s;
        };
        const Tensor a = f32(batch(a_shape), gen), b = f32(batch(b_shape), gen), dc = f32(batch({m, n}), gen);
        EXPECT_TRUE(matches(ops::matmul(on_device(a), on_device(b), ta, tb), ops::matmul(a, b, ta, tb)))
            << batched << ta << tb;
        const ops::MatmulGrads expected = ops::matmul_backward(a, b, dc, ta, tb);
        const ops::MatmulGrads grads = ops::matmul_backward(on_device(a), on_device(b), on_device(dc), ta, tb);
        EXPECT_TRUE(matches(grads.da, expected.da)) << batched << ta << tb;
        EXPECT_TRUE(matches(grads.db, expected.db)) << batched << ta << tb;
      }
}

TEST_F(DeviceOps, LinearWithAndWithoutBias) {
  Generator gen(306);
  const Tensor x = f32({4, 9, 17}, gen), w = f32({17, 6}, gen), bias = f32({6}, gen), dy = f32({4, 9, 6}, gen);
  EXPECT_TRUE(matches(ops::linear(on_device(x), on_device(w), on_device(bias)), ops::linear(x, w, bias)));
  EXPECT_TRUE(matches(ops::linear(on_device(x), on_device(w)), ops::linear(x, w)));
  const ops::LinearGrads expected = ops::linear_backward(x, w, dy);
  const ops::LinearGrads grads = ops::linear_backward(on_device(x), on_device(w), on_device(dy));
  EXPECT_TRUE(matches(grads.dx, expected.dx));
  EXPECT_TRUE(matches(grads.dweight, expected.dweight));
  EXPECT_TRUE(matches(grads.dbias, expected.dbias));
  const ops::LinearGrads without = ops::linear_backward(on_device(x), on_device(w), on_device(dy), false, false);
  EXPECT_FALSE(without.dx.defined());
  EXPECT_FALSE(without.dbias.defined());
  EXPECT_TRUE(matches(without.dweight, expected.dweight));
}

TEST_F(DeviceOps, BiasAdditionAndItsGradient) {
  Generator gen(307);
  const Tensor x = f32({3, 5, 19}, gen), bias = f32({19}, gen);
  EXPECT_TRUE(matches(ops::bias_add(on_device(x), on_device(bias)), ops::bias_add(x, bias)));
  EXPECT_TRUE(matches(ops::bias_add_backward(on_device(x)), ops::bias_add_backward(x)));
}

TEST_F(DeviceOps, EmbeddingLookupAndScatterAdd) {
  Generator gen(308);
  const Tensor ids = random_ids({6, 11}, 9, gen);  // 66 ids over 9 rows: repeats
  const Tensor table = f32({9, 13}, gen), dy = f32({6, 11, 13}, gen);
  EXPECT_TRUE(matches(ops::embedding(ids.to(device), on_device(table)), ops::embedding(ids, table), 0));
  EXPECT_TRUE(matches(ops::embedding_backward(ids.to(device), on_device(dy), 9), ops::embedding_backward(ids, dy, 9)));
  Tensor bad = ids.clone();
  bad.data<std::int32_t>()[17] = 9;
  EXPECT_ATTNKIT_ERROR(ops::embedding(bad.to(device), on_device(table)), "id 9 at position 17 is outside");
}

TEST_F(DeviceOps, CategoricalCrossEntropyOnProbabilitiesAndLogits) {
  Generator gen(309);
  const Tensor logits = f32({13, 3}, gen, -3, 3);
  const Tensor probs = ops::softmax(logits);
  const Tensor target = ops::softmax(f32({13, 3}, gen, -5, 5));
  for (const bool from_logits : {false, true}) {
    const Tensor& pred = from_logits ? logits : probs;
    const Tensor loss = ops::categorical_crossentropy(on_device(pred), on_device(target), from_logits);
    EXPECT_EQ(loss.shape(), Shape{});
    EXPECT_TRUE(matches(loss, ops::categorical_crossentropy(pred, target, from_logits)));
    EXPECT_TRUE(matches(ops::categorical_crossentropy_backward(on_device(pred), on_device(target), from_logits, 0.7),
                        ops::categorical_crossentropy_backward(pred, target, from_logits, 0.7)));
    const Tensor weights = f32({13}, gen, 0, 2), device_weights = on_device(weights);
    EXPECT_TRUE(matches(ops::categorical_crossentropy(on_device(pred), on_device(target), from_logits, device_weights),
                        ops::categorical_crossentropy(pred, target, from_logits, weights)));
    EXPECT_TRUE(matches(
        ops::categorical_crossentropy_backward(on_device(pred), on_device(target), from_logits, 0.7, device_weights),
        ops::categorical_crossentropy_backward(pred, target, from_logits, 0.7, weights)));
  }
}

TEST_F(DeviceOps, BinaryCrossEntropyOnProbabilitiesAndLogits) {
  Generator gen(315);
  const Tensor logits = f32({17, 1}, gen, -4, 4);
  const Tensor probs = ops::sigmoid(logits);
  const Tensor target = f32({17, 1}, gen, 0, 1);
  for (const bool from_logits : {false, true}) {
    const Tensor& pred = from_logits ? logits : probs;
    const Tensor loss = ops::binary_crossentropy(on_device(pred), on_device(target), from_logits);
    EXPECT_EQ(loss.shape(), Shape{});
    EXPECT_TRUE(matches(loss, ops::binary_crossentropy(pred, target, from_logits)));
    EXPECT_TRUE(matches(ops::binary_crossentropy_backward(on_device(pred), on_device(target), from_logits, 0.7),
                        ops::binary_crossentropy_backward(pred, target, from_logits, 0.7)));
  }
  // Weighted per sample, each weight over the 3 elements of its sample.
  const Tensor pred = ops::sigmoid(f32({5, 3}, gen, -4, 4)), wide_target = f32({5, 3}, gen, 0, 1);
  const Tensor weights = f32({5}, gen, 0, 2);
  EXPECT_TRUE(matches(ops::binary_crossentropy(on_device(pred), on_device(wide_target), false, on_device(weights)),
                      ops::binary_crossentropy(pred, wide_target, false, weights)));
  EXPECT_TRUE(matches(
      ops::binary_crossentropy_backward(on_device(pred), on_device(wide_target), false, 0.7, on_device(weights)),
      ops::binary_crossentropy_backward(pred, wide_target, false, 0.7, weights)));
}

TEST_F(DeviceOps, MeansFlipsAndConcatenationAlongEveryAxis) {
  Generator gen(310);
  const Tensor x = f32({3, 7, 5}, gen);
  for (const std::int64_t axis : {0, 1, 2}) {
    const Tensor y = ops::mean(x, axis);
    EXPECT_TRUE(matches(ops::mean(on_device(x), axis), y)) << axis;
    const Tensor dy = f32(y.shape(), gen);
    EXPECT_TRUE(matches(ops::mean_backward(on_device(dy), x.shape(), axis), ops::mean_backward(dy, x.shape(), axis)))
        << axis;
    EXPECT_TRUE(matches(ops::flip(on_device(x), axis), ops::flip(x, axis), 0)) << axis;
    Shape other = x.shape();
    other[static_cast<std::size_t>(axis)] = 2;
    const Tensor z = f32(other, gen);
    const Tensor joined = ops::concat({x, z}, axis);
    EXPECT_TRUE(matches(ops::concat({on_device(x), on_device(z)}, axis), joined, 0)) << axis;
    const std::vector<Tensor> expected = ops::concat_backward(joined, {x.size(axis), 2}, axis);
    const std::vector<Tensor> parts = ops::concat_backward(on_device(joined), {x.size(axis), 2}, axis);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_TRUE(matches(parts[0], expected[0], 0)) << axis;
    EXPECT_TRUE(matches(parts[1], expected[1], 0)) << axis;
  }
}

TEST_F(DeviceOps, ConvolutionOverTimeWithEveryPadding) {
  Generator gen(314);
  for (const ops::Padding padding : {ops::Padding::same, ops::Padding::valid})
    for (const std::int64_t kernel : {1, 3, 4}) {
      const Tensor x = f32({3, 11, 5}, gen), w = f32({kernel, 5, 7}, gen), bias = f32({7}, gen);
      const Tensor y = ops::conv1d(x, w, bias, padding);
      EXPECT_TRUE(matches(ops::conv1d(on_device(x), on_device(w), on_device(bias), padding), y))
          << ops::padding_name(padding) << " K=" << kernel;
      const Tensor dy = f32(y.shape(), gen);
      const ops::Conv1dGrads expected = ops::conv1d_backward(x, w, dy, true, padding);
      const ops::Conv1dGrads grads = ops::conv1d_backward(on_device(x), on_device(w), on_device(dy), true, padding);
      EXPECT_TRUE(matches(grads.dx, expected.dx)) << ops::padding_name(padding) << " K=" << kernel;
      EXPECT_TRUE(matches(grads.dweight, expected.dweight)) << ops::padding_name(padding) << " K=" << kernel;
      EXPECT_TRUE(matches(grads.dbias, expected.dbias)) << ops::padding_name(padding) << " K=" << kernel;
    }
}

TEST_F(DeviceOps, MaxPoolingOverTimeWithOverlapsAndPadding) {
  Generator gen(315);
  struct Case {
    std::int64_t pool, stride;
    ops::Padding padding;
  };
  for (const Case c : {Case{2, 0, ops::Padding::valid}, Case{3, 2, ops::Padding::same}, Case{3, 1, ops::Padding::valid},
                       Case{4, 3, ops::Padding::same}}) {
    const Tensor x = f32({2, 13, 6}, gen);
    const ops::MaxPool1dResult expected = ops::max_pool1d(x, c.pool, c.stride, c.padding);
    const ops::MaxPool1dResult result = ops::max_pool1d(on_device(x), c.pool, c.stride, c.padding);
    EXPECT_TRUE(matches(result.y, expected.y, 0)) << c.pool << "/" << c.stride;
    EXPECT_EQ(result.argmax.to_vector<int>(), expected.argmax.to_vector<int>()) << c.pool << "/" << c.stride;
    const Tensor dy = f32(expected.y.shape(), gen);
    EXPECT_TRUE(matches(ops::max_pool1d_backward(on_device(dy), result.argmax, 13),
                        ops::max_pool1d_backward(dy, expected.argmax, 13), 1e-6))
        << c.pool << "/" << c.stride;
  }
}

TEST_F(DeviceOps, AdamUpdatesLikeTheCpu) {
  Generator gen(311);
  Parameter on_cpu{"kernel", f32({37, 5}, gen), Tensor(), true};
  Parameter on_dev{"kernel", on_device(on_cpu.value), Tensor(), true};
  const auto cpu_adam = Adam(0.01), device_adam = Adam(0.01);
  for (int step = 0; step < 3; ++step) {
    const Tensor grad = f32({37, 5}, gen);
    on_cpu.grad = grad;
    on_dev.grad = on_device(grad);
    cpu_adam->step({&on_cpu});
    device_adam->step({&on_dev});
    EXPECT_TRUE(matches(on_dev.value, on_cpu.value, 1e-6)) << "step " << step;
  }
}

TEST_F(DeviceOps, LayerNormalisationAndItsGradients) {
  Generator gen(316);
  for (const Shape& shape : {Shape{1, 1}, Shape{5, 7, 33}, Shape{3, 130}, Shape{2, 9, 4}}) {
    const std::int64_t c = shape.back();
    const Tensor x = f32(shape, gen, -2, 3), gamma = f32({c}, gen, 0.5, 1.5), beta = f32({c}, gen);
    const Tensor dy = f32(shape, gen);
    const ops::NormResult expected = ops::layer_norm(x, gamma, beta);
    const ops::NormResult result = ops::layer_norm(on_device(x), on_device(gamma), on_device(beta));
    EXPECT_TRUE(matches(result.y, expected.y)) << shape_str(shape);
    EXPECT_TRUE(matches(result.mean, expected.mean)) << shape_str(shape);
    EXPECT_TRUE(matches(result.rstd, expected.rstd, 1e-4)) << shape_str(shape);  // 1 / sqrt(eps) when C = 1
    const ops::NormGrads grads =
        ops::layer_norm_backward(on_device(x), on_device(gamma), result.mean, result.rstd, on_device(dy));
    const ops::NormGrads expected_grads = ops::layer_norm_backward(x, gamma, expected.mean, expected.rstd, dy);
    EXPECT_TRUE(matches(grads.dx, expected_grads.dx, 1e-4)) << shape_str(shape);
    EXPECT_TRUE(matches(grads.dgamma, expected_grads.dgamma, 1e-4)) << shape_str(shape);
    EXPECT_TRUE(matches(grads.dbeta, expected_grads.dbeta)) << shape_str(shape);
  }
}

TEST_F(DeviceOps, BatchNormalisationInTrainingAndInference) {
  Generator gen(317);
  for (const Shape& shape : {Shape{1, 3}, Shape{6, 5, 37}, Shape{300, 2}})
    for (const bool training : {true, false}) {
      const std::int64_t c = shape.back();
      const Tensor x = f32(shape, gen, -2, 3), gamma = f32({c}, gen, 0.5, 1.5), beta = f32({c}, gen);
      const Tensor dy = f32(shape, gen);
      Tensor running_mean = f32({c}, gen), running_var = f32({c}, gen, 0.5, 2);
      Tensor running_mean_dev = on_device(running_mean), running_var_dev = on_device(running_var);
      const ops::NormResult expected = ops::batch_norm(x, gamma, beta, running_mean, running_var, training, 0.9);
      const ops::NormResult result = ops::batch_norm(on_device(x), on_device(gamma), on_device(beta),
                                                     running_mean_dev, running_var_dev, training, 0.9);
      EXPECT_TRUE(matches(result.y, expected.y, 1e-4)) << shape_str(shape) << training;
      EXPECT_TRUE(matches(result.mean, expected.mean)) << shape_str(shape) << training;
      EXPECT_TRUE(matches(result.rstd, expected.rstd, 1e-4)) << shape_str(shape) << training;
      EXPECT_TRUE(matches(running_mean_dev, running_mean)) << shape_str(shape) << training;
      EXPECT_TRUE(matches(running_var_dev, running_var)) << shape_str(shape) << training;
      const ops::NormGrads grads = ops::batch_norm_backward(on_device(x), on_device(gamma), result.mean, result.rstd,
                                                            on_device(dy), training);
      const ops::NormGrads expected_grads =
          ops::batch_norm_backward(x, gamma, expected.mean, expected.rstd, dy, training);
      EXPECT_TRUE(matches(grads.dx, expected_grads.dx, 1e-4)) << shape_str(shape) << training;
      EXPECT_TRUE(matches(grads.dgamma, expected_grads.dgamma, 1e-4)) << shape_str(shape) << training;
      EXPECT_TRUE(matches(grads.dbeta, expected_grads.dbeta, 1e-4)) << shape_str(shape) << training;
    }
}

TEST_F(DeviceOps, TransposeOfAnyTwoAxes) {
  Generator gen(318);
  const Tensor x = f32({3, 4, 5, 6}, gen);
  for (const auto& [a, b] : std::vector<std::pair<int, int>>{{0, 1}, {1, 2}, {2, 3}, {0, 3}, {1, -1}, {2, 2}})
    EXPECT_TRUE(matches(ops::transpose(on_device(x), a, b), ops::transpose(x, a, b), 0)) << a << "," << b;
}

// Both engines, fused and unfused, against the cpu; over time with and without the shared
// attention vector, and sizes the fused kernels cannot hold (they take the unfused path).
TEST_F(DeviceOps, GatingAttentionOverFeaturesAndOverTime) {
  Generator gen(319);
  for (const ops::AttentionKernel kernel : {ops::AttentionKernel::fused, ops::AttentionKernel::unfused})
    for (const Shape& shape : {Shape{3, 7, 5}, Shape{2, 3, 2100}}) {
      const std::string label = std::string(kernel == ops::AttentionKernel::fused ? "fused " : "unfused ") +
                                shape_str(shape);
      const Tensor x = f32(shape, gen), dy = f32(shape, gen);
      const Tensor weight = f32({shape[2], shape[2]}, gen, -0.1, 0.1), bias = f32({shape[2]}, gen);
      const ops::GatingResult expected = ops::gating_attention(x, weight, bias);
      const ops::GatingResult result = ops::gating_attention(on_device(x), on_device(weight), on_device(bias), kernel);
      EXPECT_TRUE(matches(result.y, expected.y)) << label;
      EXPECT_TRUE(matches(result.probs, expected.probs)) << label;
      const ops::GatingGrads grads =
          ops::gating_attention_backward(on_device(x), on_device(weight), result.probs, on_device(dy), true, kernel);
      const ops::GatingGrads expected_grads = ops::gating_attention_backward(x, weight, expected.probs, dy);
      EXPECT_TRUE(matches(grads.dx, expected_grads.dx)) << label;
      EXPECT_TRUE(matches(grads.dweight, expected_grads.dweight)) << label;
      EXPECT_TRUE(matches(grads.dbias, expected_grads.dbias)) << label;
    }
  for (const ops::AttentionKernel kernel : {ops::AttentionKernel::fused, ops::AttentionKernel::unfused})
    for (const Shape& shape : {Shape{3, 7, 5}, Shape{2, 60, 40}})  // a group of 2400 does not fit
      for (const bool single_vector : {false, true}) {
        const std::string label = std::string(kernel == ops::AttentionKernel::fused ? "fused " : "unfused ") +
                                  shape_str(shape) + (single_vector ? " single vector" : "");
        const Tensor x = f32(shape, gen), dy = f32(shape, gen);
        const Tensor weight = f32({shape[1], shape[1]}, gen, -0.3, 0.3), bias = f32({shape[1]}, gen);
        const ops::GatingResult expected = ops::temporal_gating_attention(x, weight, bias, single_vector);
        const ops::GatingResult result =
            ops::temporal_gating_attention(on_device(x), on_device(weight), on_device(bias), single_vector, kernel);
        EXPECT_TRUE(matches(result.y, expected.y)) << label;
        EXPECT_TRUE(matches(result.probs, expected.probs)) << label;
        const ops::GatingGrads grads = ops::temporal_gating_attention_backward(
            on_device(x), on_device(weight), on_device(bias), on_device(dy), single_vector, kernel);
        const ops::GatingGrads expected_grads =
            ops::temporal_gating_attention_backward(x, weight, bias, dy, single_vector);
        EXPECT_TRUE(matches(grads.dx, expected_grads.dx)) << label;
        EXPECT_TRUE(matches(grads.dweight, expected_grads.dweight, 1e-4)) << label;
        EXPECT_TRUE(matches(grads.dbias, expected_grads.dbias)) << label;
      }
}

// Both engines, fused and unfused, against the cpu: heads, cross-attention (Tq != Tk, dk != dv),
// key masks as bytes (a batch that hides every key) and as lengths, causal masking, a given
// scale, the weights, and packed projections.
TEST_F(DeviceOps, ScaledDotProductAttentionFusedAndUnfused) {
  Generator gen(320);
  enum class Mask { none, bytes, lengths };
  struct Case {
    std::int64_t B, Tq, Tk, H, dk, dv;
    Mask mask;
    bool causal;
    std::optional<double> scale;
  };
  for (const ops::AttentionKernel kernel : {ops::AttentionKernel::fused, ops::AttentionKernel::unfused})
    for (const Case& c : {Case{2, 5, 5, 1, 8, 8, Mask::none, false, {}}, Case{3, 7, 9, 2, 5, 3, Mask::bytes, false, {}},
                          Case{2, 9, 6, 3, 4, 4, Mask::bytes, true, {}}, Case{3, 33, 40, 2, 3, 6, Mask::lengths, true, 1.0},
                          Case{2, 40, 37, 1, 64, 64, Mask::lengths, false, {}}}) {
      const Tensor q = f32({c.B, c.Tq, c.H * c.dk}, gen, -2, 2), k = f32({c.B, c.Tk, c.H * c.dk}, gen, -2, 2);
      const Tensor v = f32({c.B, c.Tk, c.H * c.dv}, gen), dout = f32({c.B, c.Tq, c.H * c.dv}, gen);
      Tensor mask;
      if (c.mask == Mask::bytes) {
        std::vector<std::uint8_t> keep(static_cast<std::size_t>(c.B * c.Tk));
        for (std::int64_t b = 0; b < c.B; ++b)
          for (std::int64_t j = 0; j < c.Tk; ++j)  // batch 1 hides every key; the others their last b + 1
            keep[static_cast<std::size_t>(b * c.Tk + j)] = b != 1 && j < c.Tk - 1 - b;
        mask = Tensor::from_vector<std::uint8_t>(keep, {c.B, c.Tk});
      } else if (c.mask == Mask::lengths) {
        std::vector<std::int32_t> lengths;
        for (std::int64_t b = 0; b < c.B; ++b) lengths.push_back(static_cast<std::int32_t>(b == 1 ? 0 : c.Tk - 3 * b));
        mask = Tensor::from_vector(lengths, {c.B});
      }
      ops::AttentionOptions options;
      options.num_heads = c.H;
      options.causal = c.causal;
      options.scale = c.scale;
      options.return_weights = true;
      options.kernel = kernel;
      const std::string label = std::string(kernel == ops::AttentionKernel::fused ? "fused " : "unfused ") +
                                shape_str({c.B, c.Tq, c.Tk, c.H, c.dk, c.dv}) +
                                (c.mask == Mask::bytes ? " masked" : c.mask == Mask::lengths ? " lengths" : "") +
                                (c.causal ? " causal" : "");
      const ops::AttentionResult expected = ops::scaled_dot_product_attention(q, k, v, mask, options);
      const Tensor mask_dev = mask.defined() ? mask.to(device) : Tensor();
      const ops::AttentionResult result =
          ops::scaled_dot_product_attention(on_device(q), on_device(k), on_device(v), mask_dev, options);
      EXPECT_TRUE(matches(result.out, expected.out)) << label;
      EXPECT_TRUE(matches(result.lse, expected.lse)) << label;
      EXPECT_TRUE(matches(result.weights, expected.weights)) << label;
      const ops::AttentionGrads expected_grads =
          ops::scaled_dot_product_attention_backward(q, k, v, mask, expected, dout, options);
      const ops::AttentionGrads grads = ops::scaled_dot_product_attention_backward(
          on_device(q), on_device(k), on_device(v), mask_dev, result, on_device(dout), options);
      EXPECT_TRUE(matches(grads.dq, expected_grads.dq, 1e-4)) << label;
      EXPECT_TRUE(matches(grads.dk, expected_grads.dk, 1e-4)) << label;
      EXPECT_TRUE(matches(grads.dv, expected_grads.dv, 1e-4)) << label;
    }
}

// Self-attention on packed projections [B, T, 3 W], both engines.
TEST_F(DeviceOps, PackedSelfAttentionFusedAndUnfused) {
  Generator gen(322);
  const std::int64_t B = 3, T = 21, H = 4, W = 32;
  const Tensor qkv = f32({B, T, 3 * W}, gen, -2, 2), dout = f32({B, T, W}, gen);
  const Tensor mask = random_mask(B, T, gen);
  for (const ops::AttentionKernel kernel : {ops::AttentionKernel::fused, ops::AttentionKernel::unfused}) {
    ops::AttentionOptions options;
    options.num_heads = H;
    options.kernel = kernel;
    const ops::AttentionResult expected = ops::packed_self_attention(qkv, mask, options);
    const ops::AttentionResult result = ops::packed_self_attention(on_device(qkv), mask.to(device), options);
    EXPECT_TRUE(matches(result.out, expected.out));
    EXPECT_TRUE(matches(result.lse, expected.lse));
    const Tensor dqkv = ops::packed_self_attention_backward(on_device(qkv), mask.to(device), result, on_device(dout), options);
    EXPECT_TRUE(matches(dqkv, ops::packed_self_attention_backward(qkv, mask, expected, dout, options), 1e-4));
  }
}

// f16 and bf16 through the tensor cores against the cpu (which computes them in f32): within
// the dtype's rounding. tests/sim/test_flash_attention.cpp bounds the error more tightly.
TEST_F(DeviceOps, ScaledDotProductAttentionInSixteenBitFloats) {
  Generator gen(323);
  for (const DType dtype : {DType::f16, DType::bf16})
    for (const std::int64_t d : {32, 64, 128}) {
      const std::int64_t B = 2, Tq = 19, Tk = 70, H = 2;
      const Tensor q = random_tensor({B, Tq, H * d}, gen, -1, 1, dtype), k = random_tensor({B, Tk, H * d}, gen, -1, 1, dtype);
      const Tensor v = random_tensor({B, Tk, H * d}, gen, -1, 1, dtype), dout = random_tensor({B, Tq, H * d}, gen, -1, 1, dtype);
      const Tensor lengths = Tensor::from_vector<std::int32_t>({70, 33}, {B});
      ops::AttentionOptions options;
      options.num_heads = H;
      options.causal = d == 64;
      const std::string label = std::string(dtype_name(dtype)) + " d " + std::to_string(d);
      const ops::AttentionResult expected = ops::scaled_dot_product_attention(q, k, v, lengths, options);
      const ops::AttentionResult result =
          ops::scaled_dot_product_attention(q.to(device), k.to(device), v.to(device), lengths.to(device), options);
      ASSERT_EQ(result.out.dtype(), dtype) << label;
      const double tolerance = dtype == DType::f16 ? 4e-3 : 3e-2;
      EXPECT_TRUE(matches(result.out, expected.out, tolerance)) << label;
      EXPECT_TRUE(matches(result.lse, expected.lse, 1e-4)) << label;
      const ops::AttentionGrads expected_grads =
          ops::scaled_dot_product_attention_backward(q, k, v, lengths, expected, dout, options);
      const ops::AttentionGrads grads = ops::scaled_dot_product_attention_backward(
          q.to(device), k.to(device), v.to(device), lengths.to(device), result, dout.to(device), options);
      EXPECT_TRUE(matches(grads.dq, expected_grads.dq, tolerance)) << label;
      EXPECT_TRUE(matches(grads.dk, expected_grads.dk, tolerance)) << label;
      EXPECT_TRUE(matches(grads.dv, expected_grads.dv, tolerance)) << label;
    }
  const Tensor odd = random_tensor({1, 4, 48}, gen, -1, 1, DType::f16).to(device);
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(odd, odd, odd), "head dims 32, 64 or 128");
  const Tensor even = random_tensor({1, 4, 64}, gen, -1, 1, DType::bf16).to(device);
  ops::AttentionOptions negative;
  negative.scale = -0.5;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(even, even, even, Tensor(), negative),
                       "f16 and bf16 take a positive finite scale, got -0.5");
  ops::AttentionOptions unfused;
  unfused.kernel = ops::AttentionKernel::unfused;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(odd, odd, odd, Tensor(), unfused),
                       "the unfused path: it computes in f32 only");
}

// Grouped key heads, every score modifier and dropout through the fused kernels, in each dtype,
// against the cpu: the operands, the bias in each shape it broadcasts from (f32 or the operands'
// dtype, with -inf entries), the slopes, dbias summed back to the bias's shape, and dropout's
// mask drawn from the same stream (but with the bias [1, H, Tq, Tk]).
TEST_F(DeviceOps, ScaledDotProductAttentionWithGroupedHeadsScoreModifiersAndDropout) {
  Generator gen(324);
  const std::int64_t B = 2, Tq = 21, Tk = 45, H = 4, Hkv = 2, d = 32;
  const std::vector<Shape> bias_shapes{{B, H, Tq, Tk}, {1, H, Tq, Tk}, {B, 1, Tq, Tk}, {1, 1, Tq, Tk}};
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (std::size_t n = 0; n < bias_shapes.size(); ++n) {
      const Tensor q = random_tensor({B, Tq, H * d}, gen, -1, 1, dtype);
      const Tensor k = random_tensor({B, Tk, Hkv * d}, gen, -1, 1, dtype);
      const Tensor v = random_tensor({B, Tk, Hkv * d}, gen, -1, 1, dtype), dout = random_tensor({B, Tq, H * d}, gen, -1, 1, dtype);
      std::vector<double> bias = values(random_tensor(bias_shapes[n], gen, -2, 2));
      for (std::size_t e = 0; e < bias.size(); e += 7) bias[e] = -std::numeric_limits<double>::infinity();
      ops::AttentionOptions options;
      options.num_heads = H, options.num_kv_heads = Hkv;
      options.bias = Tensor::from_vector(bias, bias_shapes[n]).to(n % 2 == 0 ? DType::f32 : dtype);
      options.bias_grad = true;
      options.alibi_slopes = Tensor::from_vector<float>({0.5f, 0.25f, 0.125f, 0.0625f}, {H});
      options.softcap = n == 3 ? 0.0 : 2.5;
      options.window_left = n == 1 ? -1 : 9, options.window_right = n == 2 ? -1 : 4;
      options.causal = n == 3;
      options.dropout = n == 1 ? 0.0 : 0.35, options.dropout_seed = 11, options.dropout_offset = n;
      if (n >= 2) options.attention_mask = random_mask(n == 2 ? B * Tq : Tq, Tk, gen, 0.8).reshape({n == 2 ? B : 1, Tq, Tk});
      const std::string label = std::string(dtype_name(dtype)) + " bias " + shape_str(bias_shapes[n]);
      const Tensor mask = random_mask(B, Tk, gen, 0.8);
      const ops::AttentionResult expected = ops::scaled_dot_product_attention(q, k, v, mask, options);
      ops::AttentionOptions on_device_options = options;
      on_device_options.bias = options.bias.to(device), on_device_options.alibi_slopes = options.alibi_slopes.to(device);
      if (options.attention_mask.defined()) on_device_options.attention_mask = options.attention_mask.to(device);
      const ops::AttentionResult result = ops::scaled_dot_product_attention(q.to(device), k.to(device), v.to(device),
                                                                            mask.to(device), on_device_options);
      const double tolerance = dtype == DType::f32 ? 1e-4 : dtype == DType::f16 ? 4e-3 : 3e-2;
      EXPECT_TRUE(matches(result.out, expected.out, tolerance)) << label;
      EXPECT_TRUE(matches(result.lse, expected.lse, 1e-4)) << label;
      const ops::AttentionGrads expected_grads =
          ops::scaled_dot_product_attention_backward(q, k, v, mask, expected, dout, options);
      const ops::AttentionGrads grads = ops::scaled_dot_product_attention_backward(
          q.to(device), k.to(device), v.to(device), mask.to(device), result, dout.to(device), on_device_options);
      EXPECT_TRUE(matches(grads.dq, expected_grads.dq, tolerance)) << label;
      EXPECT_TRUE(matches(grads.dk, expected_grads.dk, tolerance)) << label;
      EXPECT_TRUE(matches(grads.dv, expected_grads.dv, tolerance)) << label;
      ASSERT_EQ(grads.dbias.shape(), bias_shapes[n]) << label;
      EXPECT_EQ(grads.dbias.dtype(), options.bias.dtype()) << label;
      EXPECT_TRUE(matches(grads.dbias, expected_grads.dbias, tolerance)) << label;
    }
  const Tensor x = f32({1, 4, 8}, gen).to(device);
  ops::AttentionOptions options;
  options.softcap = 1;
  options.return_weights = true;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(x, x, x, Tensor(), options),
                       "the weights it returns come from the unfused steps, which take neither key head groups nor "
                       "score modifiers (the cpu returns them)");
  options.return_weights = false;
  options.kernel = ops::AttentionKernel::unfused;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(x, x, x, Tensor(), options),
                       "the unfused path: it takes neither key head groups nor score modifiers");
  options.softcap = 0, options.dropout = 0.1;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(x, x, x, Tensor(), options), "the unfused path: it takes no dropout");
}

// Variable-length batches on the device (the fused kernels) against the cpu, in every dtype:
// sequences of 21, 0, 45 and 7 queries against 30, 12, 0 and 64 keys, grouped heads, causal,
// ALiBi and a window.
TEST_F(DeviceOps, VariableLengthAttentionRunsLikeTheCpu) {
  Generator gen(326);
  const std::int64_t H = 4, Hkv = 2, d = 32;
  const Tensor cu_q = Tensor::from_vector<std::int32_t>({0, 21, 21, 66, 73}, {5});
  const Tensor cu_k = Tensor::from_vector<std::int32_t>({0, 30, 42, 42, 106}, {5});
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    const Tensor q = random_tensor({73, H, d}, gen, -1, 1, dtype), dout = random_tensor({73, H, d}, gen, -1, 1, dtype);
    const Tensor k = random_tensor({106, Hkv, d}, gen, -1, 1, dtype), v = random_tensor({106, Hkv, d}, gen, -1, 1, dtype);
    ops::AttentionOptions options;
    options.causal = true, options.window_left = 12;
    options.alibi_slopes = Tensor::from_vector<float>({0.5f, 0.25f, 0.125f, 0.0625f}, {H});
    ops::AttentionOptions on_device_options = options;
    on_device_options.alibi_slopes = options.alibi_slopes.to(device);
    const std::string label = dtype_name(dtype);
    EXPECT_EQ(ops::varlen_attention_supports(q.to(device), k.to(device), v.to(device), cu_q.to(device), cu_k.to(device),
                                             on_device_options)
                  .path,
              ops::AttentionPath::fused)
        << label;
    const ops::AttentionResult expected = ops::varlen_attention(q, k, v, cu_q, cu_k, options);
    const ops::AttentionResult result =
        ops::varlen_attention(q.to(device), k.to(device), v.to(device), cu_q.to(device), cu_k.to(device), on_device_options);
    const double tolerance = dtype == DType::f32 ? 1e-4 : dtype == DType::f16 ? 4e-3 : 3e-2;
    EXPECT_TRUE(matches(result.out, expected.out, tolerance)) << label;
    EXPECT_TRUE(matches(result.lse, expected.lse, 1e-4)) << label;
    const ops::AttentionGrads expected_grads = ops::varlen_attention_backward(q, k, v, cu_q, cu_k, expected, dout, options);
    const ops::AttentionGrads grads = ops::varlen_attention_backward(q.to(device), k.to(device), v.to(device),
                                                                     cu_q.to(device), cu_k.to(device), result,
                                                                     dout.to(device), on_device_options);
    EXPECT_TRUE(matches(grads.dq, expected_grads.dq, tolerance)) << label;
    EXPECT_TRUE(matches(grads.dk, expected_grads.dk, tolerance)) << label;
    EXPECT_TRUE(matches(grads.dv, expected_grads.dv, tolerance)) << label;
  }
  const Tensor x = f32({8, 1, 300}, gen).to(device);
  const Tensor offsets = Tensor::from_vector<std::int32_t>({0, 8}, {2}).to(device);
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(x, x, x, offsets, offsets),
                       "the unfused path: it takes no variable-length batches");
}

// Decoding against a cache on the device (the split-KV kernels) against the cpu, in every dtype:
// the new steps land in the device's caches as in the cpu's, and out and lse agree. Cases: one
// split, several, the op's choice, and more splits than a short cache has tiles (empty ranges);
// a batch element with an empty cache, one whose first queries precede every step (causal), one
// that attends to nothing at all; more query rows a key head than a block holds (multi-query);
// grouped heads; causal with a window, ALiBi and softcap; head dims that differ, and 256.
TEST_F(DeviceOps, DecodeAttentionSplitOverTheCacheRunsLikeTheCpu) {
  Generator gen(327);
  struct DecodeCase {
    std::int64_t H, Hkv, Tq, Tn, dk, dv, capacity, splits;
    std::vector<std::int32_t> lengths;
    bool causal, modifiers;
  };
  // Queries that give one key head of 8 query heads more rows than a block holds.
  const std::int64_t past_a_block = ATTNKIT_KERNEL_NAMESPACE::kDecodeRows / 8 + 1;
  const std::vector<DecodeCase> cases{
      {4, 2, 1, 1, 40, 40, 150, 1, {37, 0, 140}, false, false},
      {4, 2, 1, 1, 40, 40, 150, 3, {37, 0, 140}, true, false},
      {4, 4, 2, 0, 24, 72, 90, 0, {1, 70, 0}, true, false},
      {8, 1, past_a_block, 3, 32, 32, 120, 5, {0, 100, 61}, true, true},
      {2, 1, 1, 2, 256, 256, 70, 2, {66, 9}, false, true},
  };
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const DecodeCase& c : cases) {
      const std::int64_t B = static_cast<std::int64_t>(c.lengths.size());
      const std::string label = std::string(dtype_name(dtype)) + " H " + std::to_string(c.H) + " Hkv " +
                                std::to_string(c.Hkv) + " Tq " + std::to_string(c.Tq) + " splits " +
                                std::to_string(c.splits);
      const Tensor q = random_tensor({B, c.Tq, c.H * c.dk}, gen, -1.5, 1.5, dtype);
      Tensor k_cache = random_tensor({B, c.capacity, c.Hkv * c.dk}, gen, -1.5, 1.5, dtype);
      Tensor v_cache = random_tensor({B, c.capacity, c.Hkv * c.dv}, gen, -1, 1, dtype);
      Tensor k_new, v_new;
      if (c.Tn > 0)
        k_new = random_tensor({B, c.Tn, c.Hkv * c.dk}, gen, -1.5, 1.5, dtype),
        v_new = random_tensor({B, c.Tn, c.Hkv * c.dv}, gen, -1, 1, dtype);
      const Tensor lengths = Tensor::from_vector(c.lengths, {B});
      ops::AttentionOptions options;
      options.num_heads = c.H, options.num_kv_heads = c.Hkv, options.causal = c.causal;
      if (c.modifiers) {
        options.window_left = 20, options.softcap = 3.0;
        std::vector<float> slopes;
        for (std::int64_t h = 0; h < c.H; ++h) slopes.push_back(std::ldexp(1.0f, -1 - static_cast<int>(h)));
        options.alibi_slopes = Tensor::from_vector(slopes, {c.H});
      }
      ops::AttentionOptions on_device_options = options;
      if (c.modifiers) on_device_options.alibi_slopes = options.alibi_slopes.to(device);
      Tensor k_cache_on_device = k_cache.to(device), v_cache_on_device = v_cache.to(device);
      const Tensor k_new_on_device = c.Tn > 0 ? k_new.to(device) : Tensor();
      const Tensor v_new_on_device = c.Tn > 0 ? v_new.to(device) : Tensor();
      EXPECT_EQ(ops::decode_attention_supports(q.to(device), k_cache_on_device, v_cache_on_device, lengths.to(device),
                                               k_new_on_device, v_new_on_device, on_device_options, c.splits)
                    .path,
                ops::AttentionPath::fused)
          << label;
      const ops::AttentionResult expected = ops::decode_attention(q, k_cache, v_cache, lengths, k_new, v_new, options);
      const ops::AttentionResult result =
          ops::decode_attention(q.to(device), k_cache_on_device, v_cache_on_device, lengths.to(device),
                                k_new_on_device, v_new_on_device, on_device_options, c.splits);
      EXPECT_TRUE(matches(k_cache_on_device, k_cache, 0)) << label;
      EXPECT_TRUE(matches(v_cache_on_device, v_cache, 0)) << label;
      const double tolerance = dtype == DType::f32 ? 1e-5 : dtype == DType::f16 ? 2e-3 : 1.6e-2;
      EXPECT_TRUE(matches(result.out, expected.out, tolerance)) << label;
      EXPECT_TRUE(matches(result.lse, expected.lse, 1e-5)) << label;
    }
  // A refused call leaves the caches as they were.
  const Tensor x = f32({1, 1, 8}, gen).to(device), step = f32({1, 1, 8}, gen).to(device);
  const Tensor cache_before = f32({1, 4, 8}, gen);
  Tensor cache = cache_before.to(device);
  const Tensor lengths = Tensor::from_vector<std::int32_t>({2}, {1}).to(device);
  EXPECT_ATTNKIT_ERROR(ops::decode_attention(x, cache, cache, lengths, step, step, {}, 129),
                       "the kernels take 1 to 128 splits, got 129");
  EXPECT_TRUE(matches(cache, cache_before, 0));
  ops::AttentionOptions unfused;
  unfused.kernel = ops::AttentionKernel::unfused;
  EXPECT_ATTNKIT_ERROR(ops::decode_attention(x, cache, cache, lengths, Tensor(), Tensor(), unfused),
                       "the options ask for the unfused path; the unfused path: decoding has none");
}

// The one rule of attention.h, as each op's *_supports tells it and as the op then runs: the
// fused kernel where it takes the operands, the unfused path where it does not (with the reason),
// an error naming both where neither does.
TEST_F(DeviceOps, AttentionOpsSayWhichPathTheyTakeAndTakeIt) {
  Generator gen(325);
  using ops::AttentionPath;
  // Scaled dot-product attention: heads of 32 fit the float32 kernels, heads of 300 do not.
  const Tensor q32 = f32({1, 5, 32}, gen), q300 = f32({1, 5, 300}, gen);
  ops::AttentionSupport support = ops::scaled_dot_product_attention_supports(q32.to(device), q32.to(device), q32.to(device));
  EXPECT_EQ(support.path, AttentionPath::fused);
  EXPECT_EQ(support.why, "");
  support = ops::scaled_dot_product_attention_supports(q300.to(device), q300.to(device), q300.to(device));
  EXPECT_EQ(support.path, AttentionPath::unfused);
  EXPECT_NE(support.why.find("float32 takes head dims 1 to 256, got 300"), std::string::npos) << support.why;
  EXPECT_TRUE(matches(ops::scaled_dot_product_attention(q300.to(device), q300.to(device), q300.to(device)).out,
                      ops::scaled_dot_product_attention(q300, q300, q300).out));
  ops::AttentionOptions unfused;
  unfused.kernel = ops::AttentionKernel::unfused;
  support = ops::scaled_dot_product_attention_supports(q32.to(device), q32.to(device), q32.to(device), Tensor(), unfused);
  EXPECT_EQ(support.path, AttentionPath::unfused);
  EXPECT_EQ(support.why, "the options ask for the unfused path");
  const Tensor h48 = random_tensor({1, 5, 48}, gen, -1, 1, DType::f16).to(device);
  support = ops::scaled_dot_product_attention_supports(h48, h48, h48);
  EXPECT_EQ(support.path, AttentionPath::none);
  EXPECT_NE(support.why.find("head dims 32, 64 or 128"), std::string::npos) << support.why;
  EXPECT_NE(support.why.find("the unfused path: it computes in f32 only"), std::string::npos) << support.why;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(h48, h48, h48), support.why);
  EXPECT_EQ(ops::packed_self_attention_supports(f32({1, 5, 96}, gen).to(device)).path, AttentionPath::fused);
  // Additive pooling: up to 4096 features fused.
  const Tensor w = f32({5000}, gen);
  const Tensor wide = f32({1, 3, 5000}, gen);
  support = ops::additive_attention_supports(wide.to(device), w.to(device), Tensor());
  EXPECT_EQ(support.path, AttentionPath::unfused);
  EXPECT_NE(support.why.find("at most 4096 features, got 5000"), std::string::npos) << support.why;
  EXPECT_EQ(ops::additive_attention_supports(f32({1, 3, 8}, gen).to(device), f32({8}, gen).to(device), Tensor()).path,
            AttentionPath::fused);
  // Gating over features: rows of up to 2048 entries fused.
  const Tensor x = f32({2, 3000}, gen), weight = f32({3000, 3000}, gen);
  support = ops::gating_attention_supports(x.to(device), weight.to(device), Tensor());
  EXPECT_EQ(support.path, AttentionPath::unfused);
  EXPECT_NE(support.why.find("2 rows of 3000 entries do not fit its 2048 elements"), std::string::npos) << support.why;
  EXPECT_EQ(ops::temporal_gating_attention_supports(f32({2, 5, 3}, gen).to(device), f32({5, 5}, gen).to(device),
                                                    Tensor())
                .path,
            AttentionPath::fused);
  // The cpu has one implementation of each.
  EXPECT_EQ(ops::scaled_dot_product_attention_supports(q300, q300, q300).path, AttentionPath::cpu);
  EXPECT_EQ(ops::additive_attention_supports(wide, w, Tensor()).path, AttentionPath::cpu);
  EXPECT_STREQ(ops::attention_path_name(AttentionPath::unfused), "unfused");
}

// Both engines: pooled and as sequences, with and without the per-step bias, masked (one row
// wholly), with seed 000's epsilon and seed 001's plain softmax; and rows wider than the fused
// kernel's chunk (the unfused path).
TEST_F(DeviceOps, AdditiveAttentionFusedAndUnfused) {
  Generator gen(321);
  for (const ops::AttentionKernel kernel : {ops::AttentionKernel::fused, ops::AttentionKernel::unfused})
    for (const Shape& shape : {Shape{4, 9, 37}, Shape{2, 3, 4100}}) {
      const std::int64_t B = shape[0], T = shape[1], D = shape[2];
      const Tensor x = f32({B, T, D}, gen), w = f32({D}, gen, -0.1, 0.1), b = f32({T}, gen);
      std::vector<std::uint8_t> keep(static_cast<std::size_t>(B * T));
      for (std::int64_t i = 0; i < B * T; ++i) keep[static_cast<std::size_t>(i)] = i / T != 2 && i % T >= i / T;
      const Tensor mask = Tensor::from_vector<std::uint8_t>(keep, {B, T});
      for (const bool sequences : {false, true})
        for (const bool with_bias : {false, true})
          for (const bool masked : {false, true})
            for (const double epsilon : {1e-7, 0.0}) {
              ops::AdditiveAttentionOptions options;
              options.return_sequences = sequences;
              options.epsilon = epsilon;
              options.kernel = kernel;
              const Tensor bias = with_bias ? b : Tensor(), m = masked ? mask : Tensor();
              const Tensor bias_dev = with_bias ? on_device(b) : Tensor(), m_dev = masked ? mask.to(device) : Tensor();
              const Tensor dy = sequences ? f32({B, T, D}, gen) : f32({B, D}, gen);
              const std::string label = std::string(kernel == ops::AttentionKernel::fused ? "fused " : "unfused ") +
                                        shape_str(shape) + (sequences ? " sequences" : " pooled") +
                                        (with_bias ? " bias" : "") + (masked ? " masked" : "") + " eps " +
                                        std::to_string(epsilon);
              const ops::AdditiveAttentionResult result =
                  ops::additive_attention(on_device(x), on_device(w), bias_dev, m_dev, options);
              const ops::AdditiveAttentionResult reference = ops::additive_attention(x, w, bias, m, options);
              EXPECT_TRUE(matches(result.y, reference.y)) << label;
              EXPECT_TRUE(matches(result.weights, reference.weights)) << label;
              const ops::AdditiveAttentionGrads grads = ops::additive_attention_backward(
                  on_device(x), on_device(w), bias_dev, result.weights, on_device(dy), options);
              const ops::AdditiveAttentionGrads expected_grads =
                  ops::additive_attention_backward(x, w, bias, reference.weights, dy, options);
              EXPECT_TRUE(matches(grads.dx, expected_grads.dx, 1e-4)) << label;
              EXPECT_TRUE(matches(grads.dw, expected_grads.dw, 1e-4)) << label;
              EXPECT_EQ(grads.db.defined(), with_bias) << label;
              if (with_bias) {
                EXPECT_TRUE(matches(grads.db, expected_grads.db, 1e-4)) << label;
              }
            }
    }
}

TEST_F(DeviceOps, SgdUpdatesLikeTheCpu) {
  Generator gen(314);
  for (const double momentum : {0.0, 0.8}) {
    Parameter on_cpu{"kernel", f32({13, 7}, gen), Tensor(), true};
    Parameter on_dev{"kernel", on_device(on_cpu.value), Tensor(), true};
    const auto cpu_sgd = SGD(0.1, momentum), device_sgd = SGD(0.1, momentum);
    for (int step = 0; step < 3; ++step) {
      const Tensor grad = f32({13, 7}, gen);
      on_cpu.grad = grad;
      on_dev.grad = on_device(grad);
      cpu_sgd->step({&on_cpu});
      device_sgd->step({&on_dev});
      EXPECT_TRUE(matches(on_dev.value, on_cpu.value, 1e-6)) << "momentum " << momentum << " step " << step;
    }
  }
}

// Every cell, in both directions, returning sequences or the last state, from given or zero
// initial states, with and without bias, with gradients flowing into the sequence and the final
// states: the outputs and every gradient against the cpu. On cuda both engines: cuDNN and the
// step kernels (the sim has the step kernels only).
TEST_F(DeviceOps, RecurrentCellsForwardAndBackward) {
  Generator gen(314);
  const std::int64_t B = 3, T = 5, I = 7, U = 9;
  for (const bool use_cudnn : {true, false})
    for (const ops::RecurrentCell cell :
         {ops::RecurrentCell::simple_rnn, ops::RecurrentCell::lstm, ops::RecurrentCell::gru})
      for (const bool return_sequences : {false, true})
        for (const bool go_backwards : {false, true})
          for (const bool given_states : {false, true}) {
            if (use_cudnn && !(device.is_cuda() && ATTNKIT_WITH_CUDNN)) continue;
            const bool lstm = cell == ops::RecurrentCell::lstm, gru = cell == ops::RecurrentCell::gru;
            const std::int64_t GU = ops::recurrent_gate_count(cell) * U;
            ops::RecurrentOptions options;
            options.return_sequences = return_sequences;
            options.go_backwards = go_backwards;
            options.use_cudnn = use_cudnn;
            const Tensor x = f32({B, T, I}, gen), kernel = f32({I, GU}, gen, -0.5, 0.5);
            const Tensor recurrent_kernel = f32({U, GU}, gen, -0.5, 0.5);
            // Without bias when the states are given, to cover both.
            const Tensor bias = given_states ? Tensor() : f32(gru ? Shape{2, GU} : Shape{GU}, gen);
            const Tensor h0 = given_states ? f32({B, U}, gen) : Tensor();
            const Tensor c0 = given_states && lstm ? f32({B, U}, gen) : Tensor();
            const Tensor dy = f32(return_sequences ? Shape{B, T, U} : Shape{B, U}, gen);
            const Tensor dh_last = given_states ? f32({B, U}, gen) : Tensor();
            const Tensor dc_last = given_states && lstm ? f32({B, U}, gen) : Tensor();
            const auto dev = [&](const Tensor& t) { return t.defined() ? on_device(t) : Tensor(); };
            const std::string what = std::string(ops::recurrent_cell_name(cell)) +
                                     (return_sequences ? " sequences" : " last") + (go_backwards ? " backwards" : "") +
                                     (given_states ? " given states, no bias" : "") + (use_cudnn ? " (cuDNN)" : "");

            const ops::RecurrentResult expected =
                ops::recurrent(cell, x, kernel, recurrent_kernel, bias, h0, c0, options);
            const ops::RecurrentResult result =
                ops::recurrent(cell, dev(x), dev(kernel), dev(recurrent_kernel), dev(bias), dev(h0), dev(c0), options);
            EXPECT_TRUE(matches(result.y, expected.y)) << what;
            EXPECT_TRUE(matches(result.h_last, expected.h_last)) << what;
            if (lstm) {
              EXPECT_TRUE(matches(result.c_last, expected.c_last)) << what;
            }
            if (!use_cudnn) {
              EXPECT_TRUE(matches(result.cache.gates, expected.cache.gates)) << what;
            }

            const ops::RecurrentGrads want = ops::recurrent_backward(cell, x, kernel, recurrent_kernel, bias, h0, c0,
                                                                     expected, dy, dh_last, dc_last, options);
            const ops::RecurrentGrads got =
                ops::recurrent_backward(cell, dev(x), dev(kernel), dev(recurrent_kernel), dev(bias), dev(h0), dev(c0),
                                        result, dev(dy), dev(dh_last), dev(dc_last), options);
            EXPECT_TRUE(matches(got.dx, want.dx, 1e-4)) << what;
            EXPECT_TRUE(matches(got.dkernel, want.dkernel, 1e-4)) << what;
            EXPECT_TRUE(matches(got.drecurrent_kernel, want.drecurrent_kernel, 1e-4)) << what;
            if (bias.defined()) {
              EXPECT_TRUE(matches(got.dbias, want.dbias, 1e-4)) << what;
            }
            EXPECT_TRUE(matches(got.dh0, want.dh0, 1e-4)) << what;
            if (lstm) {
              EXPECT_TRUE(matches(got.dc0, want.dc0, 1e-4)) << what;
            }
          }
}

// cuDNN's inference mode (keep_for_backward false, as layers run outside training): the same
// outputs, no reserve space, and a backward that says why it cannot run; a layer called outside
// training and then differentiated runs its forward again and gives training's gradients.
TEST_F(DeviceOps, CudnnInferenceModeKeepsNoReserveSpace) {
  if (!device.is_cuda()) GTEST_SKIP() << "cuDNN runs on cuda only";
  if (!ATTNKIT_WITH_CUDNN) GTEST_SKIP() << "this build has no cuDNN";
  Generator gen(315);
  const std::int64_t B = 3, T = 6, I = 5, U = 8, GU = 4 * U;
  const Tensor x = f32({B, T, I}, gen), kernel = f32({I, GU}, gen, -0.5, 0.5);
  const Tensor recurrent_kernel = f32({U, GU}, gen, -0.5, 0.5), bias = f32({GU}, gen);
  ops::RecurrentOptions inference;
  inference.keep_for_backward = false;
  const auto cell = ops::RecurrentCell::lstm;
  const ops::RecurrentResult expected = ops::recurrent(cell, x, kernel, recurrent_kernel, bias, Tensor(), Tensor(), {});
  const ops::RecurrentResult result = ops::recurrent(cell, on_device(x), on_device(kernel), on_device(recurrent_kernel),
                                                     on_device(bias), Tensor(), Tensor(), inference);
  EXPECT_TRUE(matches(result.y, expected.y));
  EXPECT_FALSE(result.cache.cudnn_reserve.defined());
  EXPECT_ATTNKIT_ERROR(ops::recurrent_backward(cell, on_device(x), on_device(kernel), on_device(recurrent_kernel),
                                               on_device(bias), Tensor(), Tensor(), result, on_device(f32({B, U}, gen)),
                                               Tensor(), Tensor(), inference),
                       "the forward ran in cuDNN's inference mode");

  LayerRef layer = layers::LSTM(U);
  Generator init(316);
  layer->build({{T, I}}, init);
  for (Parameter* parameter : layer->parameters()) parameter->value = parameter->value.to(device);
  const Tensor dy = f32({B, U}, gen);
  std::vector<Tensor> grads[2];
  for (const bool training : {true, false}) {
    for (Parameter* parameter : layer->parameters()) parameter->grad = Tensor();
    std::any cache;
    CallContext context;
    context.training = training;
    Generator dropout(1);
    if (training) context.generator = &dropout;
    layer->forward({on_device(x)}, context, cache);
    layer->backward({on_device(x)}, cache, {on_device(dy)}, {true});
    for (const Parameter* parameter : layer->parameters()) grads[training].push_back(parameter->grad.to(Device::cpu()));
  }
  for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_TRUE(all_close(grads[0][i], values(grads[1][i]), 1e-6));
}

TEST_F(DeviceOps, SayWhatTheyCannotDo) {
  Generator gen(312);
  const Tensor x64 = random_tensor({3, 4}, gen).to(device);  // f64
  EXPECT_ATTNKIT_ERROR(ops::relu(x64), "the ops compute in f32 only");
  EXPECT_ATTNKIT_ERROR(ops::add(on_device(f32({3, 4}, gen)), f32({3, 4}, gen)), "add: b is on cpu but a is on");
  ops::RecurrentOptions keras1_gru;
  keras1_gru.reset_after = false;
  EXPECT_ATTNKIT_ERROR(ops::recurrent(ops::RecurrentCell::gru, on_device(f32({2, 3, 4}, gen)),
                                      on_device(f32({4, 15}, gen)), on_device(f32({5, 15}, gen)), Tensor(), Tensor(),
                                      Tensor(), keras1_gru),
                       "needs reset_after=true (Keras's default); reset_after=false runs on the cpu only");
}

// A model moved to the device trains there with no change to its code: every zoo model
// (embedding, dropout, flatten, dense, relu, softmax, convolution, pooling, concatenation, gating,
// recurrent cells in both directions, attention, Adam), two epochs from the same seed on the cpu
// and on the device, gives the same losses and the same weights. On cuda this includes one LSTM
// model's epochs through cuDNN.
TEST_F(DeviceOps, ZooModelsTrainLikeOnTheCpu) {
  Generator gen(313);
  const zoo::ZooOptions options = zoo::ZooOptions().vocabulary(40).sequence_length(9).embedding_dim(6);
  const Tensor ids = random_ids({48, 9}, 40, gen);
  std::vector<float> labels;
  for (int i = 0; i < 48; ++i) {
    const bool positive = ids.data<std::int32_t>()[i * 9] % 2 == 0;
    labels.push_back(positive ? 1.0f : 0.0f);
    labels.push_back(positive ? 0.0f : 1.0f);
  }
  const Tensor targets = Tensor::from_vector(labels, {48, 2});
  for (const std::string name : {"mlp", "cnn", "rnn", "lstm", "gru", "cnn-lstm", "bilstm", "textcnn", "attention",
                                 "bilstm-attention", "bigru-attention", "attention3", "transformer"}) {
    std::vector<double> losses[2];
    Tensors weights[2];
    for (int run = 0; run < 2; ++run) {
      std::unique_ptr<Model> model = zoo::build(name, options);
      if (run == 1) model->to(device);
      model->compile(CompileOptions().optimizer(Adam(0.01)));
      const History history = model->fit(ids, targets, FitOptions().epochs(2).batch_size(16).verbose(0).seed(5));
      losses[run] = history.history.at("loss");
      weights[run] = model->get_weights();
      EXPECT_EQ(weights[run][0].device(), run == 1 ? device : Device::cpu()) << name;
    }
    EXPECT_TRUE(all_close(losses[1], losses[0], 1e-5, 1e-5)) << name;
    ASSERT_EQ(weights[0].size(), weights[1].size()) << name;
    for (std::size_t i = 0; i < weights[0].size(); ++i)
      EXPECT_TRUE(all_close(weights[1][i].to(Device::cpu()), weights[0][i], 1e-4, 1e-4)) << name << " weight " << i;
  }
}

}  // namespace
}  // namespace attnkit
