// kernels/loss.cu under the sim executor against ops::categorical_crossentropy,
// ops::binary_crossentropy and their backwards, from probabilities and from logits, unweighted and
// with random per-sample weights. Blocks have 8 warps, so that a missing barrier in the
// block-wide sums would be seen.
#include <gtest/gtest.h>

#include <vector>

#include "attnkit/ops/loss.h"
#include "kernels/loss.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

// One-hot rows [rows, cols] at random classes.
Tensor one_hot_targets(std::int64_t rows, std::int64_t cols, Generator& gen) {
  const std::vector<std::int32_t> classes = random_ids({rows}, cols, gen).to_vector<std::int32_t>();
  std::vector<float> values(static_cast<std::size_t>(rows * cols), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) values[static_cast<std::size_t>(r * cols + classes[static_cast<std::size_t>(r)])] = 1;
  return Tensor::from_vector<float>(values, {rows, cols});
}

// The weights' values for a launcher: none (nullptr) for an undefined tensor.
const float* weights_or_null(const Buffer<float>& buffer, const Tensor& weights) {
  return weights.defined() ? buffer.data() : nullptr;
}

// Runs the forward and backward launchers on pred and target, without weights and then with
// random row weights in [0, 2), and compares them with the CPU ops.
void expect_matches_cpu(const Tensor& pred, const Tensor& target, bool from_logits, Generator& gen) {
  const std::int64_t rows = pred.size(0), cols = pred.size(1);
  const double dloss = 0.5;
  for (const Tensor& weights : {Tensor(), random_tensor({rows}, gen, 0.0, 2.0, DType::f32)}) {
    Buffer<float> pred_sim(floats_of(pred)), target_sim(floats_of(target));
    Buffer<float> weights_sim(weights.defined() ? floats_of(weights) : std::vector<float>{});
    Buffer<float> row_losses(poison(static_cast<std::size_t>(rows))), loss(poison(1));
    kern::categorical_crossentropy_forward(pred_sim.data(), target_sim.data(), weights_or_null(weights_sim, weights),
                                           row_losses.data(), loss.data(), rows, cols, from_logits, nullptr);
    EXPECT_TRUE(all_close(tensor_of(loss, {}), ops::categorical_crossentropy(pred, target, from_logits, weights), 1e-6,
                          1e-5))
        << "from_logits=" << from_logits << " rows=" << rows << " cols=" << cols << " weighted=" << weights.defined();
    Buffer<float> dpred(poison(static_cast<std::size_t>(rows * cols)));
    kern::categorical_crossentropy_backward(pred_sim.data(), target_sim.data(), weights_or_null(weights_sim, weights),
                                            dpred.data(), rows, cols, from_logits, static_cast<float>(dloss), nullptr);
    const Tensor expected = ops::categorical_crossentropy_backward(pred, target, from_logits, dloss, weights);
    EXPECT_TRUE(all_close(tensor_of(dpred, {rows, cols}), expected, 1e-6, 1e-5))
        << "from_logits=" << from_logits << " rows=" << rows << " cols=" << cols << " weighted=" << weights.defined();
  }
}

TEST(SimLoss, CategoricalCrossentropyFromProbabilitiesMatchesTheCpuOp) {
  Generator gen(51);
  for (const std::int64_t rows : {1, 7, 33})
    for (const std::int64_t cols : {1, 5, 100, 1000}) {
      // Unnormalised probabilities: the kernels divide by each row's sum, as Keras does.
      const Tensor pred = random_tensor({rows, cols}, gen, 0.01, 1.0, DType::f32);
      expect_matches_cpu(pred, one_hot_targets(rows, cols, gen), false, gen);
    }
}

TEST(SimLoss, CategoricalCrossentropyFromLogitsMatchesTheCpuOp) {
  Generator gen(52);
  for (const std::int64_t rows : {1, 7, 33})
    for (const std::int64_t cols : {1, 5, 100, 1000}) {
      const Tensor logits = random_tensor({rows, cols}, gen, -5.0, 5.0, DType::f32);
      expect_matches_cpu(logits, one_hot_targets(rows, cols, gen), true, gen);
    }
}

// Soft targets, and probabilities of 0 and 1 that Keras's clipping catches: the loss stays
// finite and the clipped entries take no gradient.
TEST(SimLoss, SoftTargetsAndClippedProbabilities) {
  Generator gen(53);
  const std::int64_t rows = 7, cols = 300;
  std::vector<float> pred = random_tensor({rows, cols}, gen, 0.01, 1.0, DType::f32).to_vector<float>();
  for (std::int64_t c = 0; c < cols; ++c) pred[static_cast<std::size_t>(c)] = c == 3 ? 1.0f : 0.0f;  // row 0: one-hot
  pred[static_cast<std::size_t>(cols + 10)] = 0.0f;  // row 1: one zero probability
  const Tensor target = random_tensor({rows, cols}, gen, 0.0, 1.0, DType::f32);
  expect_matches_cpu(Tensor::from_vector<float>(pred, {rows, cols}), target, false, gen);
  expect_matches_cpu(random_tensor({rows, cols}, gen, -20.0, 20.0, DType::f32), target, true, gen);
}

// Binary: predictions [samples, per_sample] against targets in [0, 1], with 0 and 1 among the
// probabilities (clipped, no gradient there) and large logits (the stable form); unweighted, and
// with one random weight per sample for all its elements.
TEST(SimLoss, BinaryCrossentropyMatchesTheCpuOp) {
  Generator gen(54);
  const double dloss = 0.75;
  const std::vector<std::pair<std::int64_t, std::int64_t>> shapes{{1, 1}, {37, 1}, {7, 143}};
  for (const auto& [samples, per_sample] : shapes)
    for (const bool from_logits : {false, true}) {
      const std::int64_t n = samples * per_sample;
      std::vector<float> pred = from_logits ? random_tensor({n}, gen, -30.0, 30.0, DType::f32).to_vector<float>()
                                            : random_tensor({n}, gen, 0.0, 1.0, DType::f32).to_vector<float>();
      if (!from_logits && n > 2) pred[0] = 0.0f, pred[1] = 1.0f;
      const Tensor p = Tensor::from_vector<float>(pred, {samples, per_sample});
      const Tensor target = random_tensor({samples, per_sample}, gen, 0.0, 1.0, DType::f32);
      for (const Tensor& weights : {Tensor(), random_tensor({samples}, gen, 0.0, 2.0, DType::f32)}) {
        Buffer<float> pred_sim(floats_of(p)), target_sim(floats_of(target));
        Buffer<float> weights_sim(weights.defined() ? floats_of(weights) : std::vector<float>{});
        Buffer<float> losses(poison(static_cast<std::size_t>(n))), loss(poison(1)),
            dpred(poison(static_cast<std::size_t>(n)));
        const std::int64_t per_weight = weights.defined() ? per_sample : 1;
        kern::binary_crossentropy_forward(pred_sim.data(), target_sim.data(), weights_or_null(weights_sim, weights),
                                          per_weight, losses.data(), loss.data(), n, from_logits, nullptr);
        EXPECT_TRUE(all_close(tensor_of(loss, {}), ops::binary_crossentropy(p, target, from_logits, weights), 1e-6,
                              1e-5))
            << "n=" << n << " from_logits=" << from_logits << " weighted=" << weights.defined();
        kern::binary_crossentropy_backward(pred_sim.data(), target_sim.data(), weights_or_null(weights_sim, weights),
                                           per_weight, dpred.data(), n, from_logits, static_cast<float>(dloss),
                                           nullptr);
        EXPECT_TRUE(all_close(tensor_of(dpred, {samples, per_sample}),
                              ops::binary_crossentropy_backward(p, target, from_logits, dloss, weights), 1e-6, 1e-5))
            << "n=" << n << " from_logits=" << from_logits << " weighted=" << weights.defined();
      }
    }
}

TEST(SimLoss, RejectsEmptyPredictionsAndWeightsThatDoNotDivideThem) {
  EXPECT_ATTNKIT_ERROR(
      kern::categorical_crossentropy_forward(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 5, false, nullptr),
      "categorical_crossentropy_forward: pred must not be empty");
  EXPECT_ATTNKIT_ERROR(
      kern::categorical_crossentropy_backward(nullptr, nullptr, nullptr, nullptr, 3, 0, true, 1.0f, nullptr),
      "categorical_crossentropy_backward: pred must not be empty");
  EXPECT_ATTNKIT_ERROR(
      kern::binary_crossentropy_forward(nullptr, nullptr, nullptr, 1, nullptr, nullptr, 0, false, nullptr),
      "binary_crossentropy_forward: pred must not be empty");
  EXPECT_ATTNKIT_ERROR(
      kern::binary_crossentropy_backward(nullptr, nullptr, nullptr, 4, nullptr, 10, false, 1.0f, nullptr),
      "binary_crossentropy_backward: elements_per_weight must divide n = 10, got 4");
}

}  // namespace
}  // namespace attnkit
