// Cross-entropy losses: values against Keras's formulas written out, gradients against finite
// differences, from probabilities and from logits, unweighted and weighted per sample.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "attnkit/ops/loss.h"
#include "attnkit/ops/softmax.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// Rows of probabilities (softmax of random logits) and random one-hot targets.
Tensors probabilities_and_targets(Generator& gen, std::int64_t N, std::int64_t C) {
  Tensor probs = ops::softmax(random_tensor({N, C}, gen, -2, 2));
  std::vector<double> onehot(static_cast<std::size_t>(N * C), 0.0);
  for (std::int64_t n = 0; n < N; ++n) onehot[static_cast<std::size_t>(n * C + gen.uniform_int(C))] = 1.0;
  return {probs, Tensor::from_vector(onehot, {N, C})};
}

TEST(CategoricalCrossentropy, MatchesKerasFormula) {
  Generator gen(111);
  const Tensors pt = probabilities_and_targets(gen, 7, 3);
  const auto p = values(pt[0]), y = values(pt[1]);
  double expected = 0;
  for (std::size_t i = 0; i < p.size(); ++i) expected -= y[i] * std::log(p[i]);
  EXPECT_NEAR(ops::categorical_crossentropy(pt[0], pt[1]).item(), expected / 7, 1e-12);
  // From logits: the same loss for logits whose softmax is p.
  Tensor logits = Tensor::from_vector(std::vector<double>(p.size()), {7, 3});
  for (std::size_t i = 0; i < p.size(); ++i) logits.data<double>()[i] = std::log(p[i]) + 0.7;
  EXPECT_NEAR(ops::categorical_crossentropy(logits, pt[1], true).item(), expected / 7, 1e-12);
  // A confident wrong prediction is clipped at -log(1e-7), as Keras does.
  Tensor wrong = Tensor::from_vector<double>({1.0, 0.0}, {1, 2});
  Tensor target = Tensor::from_vector<double>({0.0, 1.0}, {1, 2});
  EXPECT_NEAR(ops::categorical_crossentropy(wrong, target).item(), -std::log(1e-7), 1e-9);
}

class CrossEntropyGradient : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(CrossEntropyGradient, MatchesFiniteDifferences) {
  // Plain variables: lambdas below capture them (C++17 lambdas cannot capture structured bindings).
  const bool binary = std::get<0>(GetParam()), from_logits = std::get<1>(GetParam());
  for (const bool weighted : {false, true}) {
    SCOPED_TRACE(weighted ? "weighted" : "unweighted");
    Generator gen(112);
    GradCheck check;
    if (binary) {  // two elements per sample, under one weight
      Tensor pred = from_logits ? random_tensor({6, 2}, gen, -3, 3) : random_tensor({6, 2}, gen, 0.05, 0.95);
      check.inputs = {pred, random_tensor({6, 2}, gen, 0, 1)};
    } else {
      Tensors pt = probabilities_and_targets(gen, 6, 4);
      check.inputs = {from_logits ? random_tensor({6, 4}, gen, -3, 3) : pt[0], pt[1]};
    }
    check.inputs.push_back(weighted ? random_tensor({6}, gen, 0, 2) : Tensor());
    check.no_grad = {1, 2};  // targets and weights
    check.forward = [=](const Tensors& in) {
      return Tensors{binary ? ops::binary_crossentropy(in[0], in[1], from_logits, in[2])
                            : ops::categorical_crossentropy(in[0], in[1], from_logits, in[2])};
    };
    check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
      const double dloss = d[0].item();
      return Tensors{binary ? ops::binary_crossentropy_backward(in[0], in[1], from_logits, dloss, in[2])
                            : ops::categorical_crossentropy_backward(in[0], in[1], from_logits, dloss, in[2]),
                     Tensor(), Tensor()};
    };
    check_gradients(check);
  }
}

std::string loss_case_name(const ::testing::TestParamInfo<std::tuple<bool, bool>>& p) {
  return std::string(std::get<0>(p.param) ? "Binary" : "Categorical") +
         (std::get<1>(p.param) ? "FromLogits" : "FromProbabilities");
}

INSTANTIATE_TEST_SUITE_P(Gradient, CrossEntropyGradient,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()), loss_case_name);

TEST(BinaryCrossentropy, MatchesKerasFormula) {
  Generator gen(113);
  Tensor p = random_tensor({4, 3}, gen, 0.01, 0.99), y = random_tensor({4, 3}, gen, 0, 1);
  const auto vp = values(p), vy = values(y);
  double expected = 0, from_logits = 0;
  for (std::size_t i = 0; i < vp.size(); ++i) {
    expected -= vy[i] * std::log(vp[i] + 1e-7) + (1 - vy[i]) * std::log(1 - vp[i] + 1e-7);
    from_logits -= vy[i] * std::log(vp[i]) + (1 - vy[i]) * std::log(1 - vp[i]);
  }
  EXPECT_NEAR(ops::binary_crossentropy(p, y).item(), expected / 12, 1e-12);
  Tensor logits = Tensor::empty({4, 3}, DType::f64);
  for (std::size_t i = 0; i < vp.size(); ++i) logits.data<double>()[i] = std::log(vp[i] / (1 - vp[i]));
  EXPECT_NEAR(ops::binary_crossentropy(logits, y, true).item(), from_logits / 12, 1e-12);
  EXPECT_ATTNKIT_ERROR(ops::binary_crossentropy(p, Tensor::zeros({4, 2}, DType::f64)), "target must have shape [4, 3]");
}

// Keras's "sum_over_batch_size": the weighted losses summed and divided by their count, not by
// the sum of the weights; a binary sample's weight covers each of its elements.
TEST(CrossEntropy, WeightedPerSampleAsKerasReducesIt) {
  Generator gen(114);
  const Tensors pt = probabilities_and_targets(gen, 9, 5);
  const Tensor w = random_tensor({9}, gen, 0, 3);
  const auto p = values(pt[0]), y = values(pt[1]), vw = values(w);
  double expected = 0;
  for (std::size_t n = 0; n < 9; ++n)
    for (std::size_t c = 0; c < 5; ++c) expected -= vw[n] * y[n * 5 + c] * std::log(p[n * 5 + c]);
  EXPECT_NEAR(ops::categorical_crossentropy(pt[0], pt[1], false, w).item(), expected / 9, 1e-12);

  Tensor bp = random_tensor({9, 2}, gen, 0.01, 0.99), by = random_tensor({9, 2}, gen, 0, 1);
  const auto vp = values(bp), vy = values(by);
  double binary = 0;
  for (std::size_t i = 0; i < vp.size(); ++i)
    binary -= vw[i / 2] * (vy[i] * std::log(vp[i] + 1e-7) + (1 - vy[i]) * std::log(1 - vp[i] + 1e-7));
  EXPECT_NEAR(ops::binary_crossentropy(bp, by, false, w).item(), binary / 18, 1e-12);

  // Weights of 1 change no bit; weights must be one per sample, of pred's dtype.
  const Tensor ones = Tensor::full({9}, 1.0, DType::f64);
  EXPECT_EQ(ops::categorical_crossentropy(pt[0], pt[1], false, ones).item(),
            ops::categorical_crossentropy(pt[0], pt[1]).item());
  EXPECT_TRUE(all_close(ops::binary_crossentropy_backward(bp, by, true, 0.3, ones),
                        ops::binary_crossentropy_backward(bp, by, true, 0.3), 0));
  EXPECT_ATTNKIT_ERROR(ops::categorical_crossentropy(pt[0], pt[1], false, Tensor::full({8}, 1.0, DType::f64)),
                       "categorical_crossentropy: sample_weight must have shape [9]");
  EXPECT_ATTNKIT_ERROR(ops::binary_crossentropy(bp, by, false, Tensor::full({9}, 1.0, DType::f32)),
                       "binary_crossentropy: sample_weight must be f64");
}

}  // namespace
}  // namespace attnkit
