// Layer and batch normalisation: forward against the textbook formula in double, running
// statistics against Keras's update rule, backward against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "attnkit/ops/norm.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

TEST(LayerNorm, ForwardMatchesFormula) {
  Generator gen(91);
  Tensor x = random_tensor({3, 4, 7}, gen, -2, 3), g = random_tensor({7}, gen), b = random_tensor({7}, gen);
  const double eps = 1e-3;
  const auto vx = values(x);
  std::vector<double> expected;
  for (std::size_t row = 0; row < 12; ++row) {
    double mean = 0, var = 0;
    for (int c = 0; c < 7; ++c) mean += vx[row * 7 + c] / 7;
    for (int c = 0; c < 7; ++c) var += (vx[row * 7 + c] - mean) * (vx[row * 7 + c] - mean) / 7;
    for (int c = 0; c < 7; ++c)
      expected.push_back(g.item(c) * (vx[row * 7 + c] - mean) / std::sqrt(var + eps) + b.item(c));
  }
  ops::NormResult r = ops::layer_norm(x, g, b, eps);
  EXPECT_TRUE(all_close(r.y, expected, 1e-12));
  EXPECT_EQ(r.mean.shape(), (Shape{3, 4}));
}

TEST(Gradient, LayerNorm) {
  Generator gen(92);
  GradCheck check;
  check.inputs = {random_tensor({3, 4, 7}, gen, -2, 3), random_tensor({7}, gen), random_tensor({7}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::layer_norm(in[0], in[1], in[2]).y}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    ops::NormResult r = ops::layer_norm(in[0], in[1], in[2]);
    ops::NormGrads gr = ops::layer_norm_backward(in[0], in[1], r.mean, r.rstd, d[0]);
    return Tensors{gr.dx, gr.dgamma, gr.dbeta};
  };
  check_gradients(check);
}

TEST(BatchNorm, TrainingUsesBatchStatisticsAndUpdatesRunningOnes) {
  Generator gen(93);
  Tensor x = random_tensor({5, 3, 4}, gen, -1, 2), g = random_tensor({4}, gen), b = random_tensor({4}, gen);
  Tensor running_mean = random_tensor({4}, gen), running_var = random_tensor({4}, gen, 0.5, 1.5);
  const auto old_mean = values(running_mean), old_var = values(running_var);
  const double eps = 1e-3, momentum = 0.99;
  ops::NormResult r = ops::batch_norm(x, g, b, running_mean, running_var, true, momentum, eps);
  const auto vx = values(x);
  std::vector<double> mean(4, 0), var(4, 0), expected(vx.size());
  for (std::size_t i = 0; i < vx.size(); ++i) mean[i % 4] += vx[i] / 15;
  for (std::size_t i = 0; i < vx.size(); ++i) var[i % 4] += (vx[i] - mean[i % 4]) * (vx[i] - mean[i % 4]) / 15;
  for (std::size_t i = 0; i < vx.size(); ++i)
    expected[i] = g.item(i % 4) * (vx[i] - mean[i % 4]) / std::sqrt(var[i % 4] + eps) + b.item(i % 4);
  EXPECT_TRUE(all_close(r.y, expected, 1e-12));
  for (int c = 0; c < 4; ++c) {
    EXPECT_NEAR(running_mean.item(c), momentum * old_mean[c] + (1 - momentum) * mean[c], 1e-14);
    EXPECT_NEAR(running_var.item(c), momentum * old_var[c] + (1 - momentum) * var[c], 1e-14);
  }
  // Inference uses the running statistics and leaves them alone.
  const auto frozen_mean = values(running_mean), frozen_var = values(running_var);
  ops::NormResult inference = ops::batch_norm(x, g, b, running_mean, running_var, false, momentum, eps);
  for (std::size_t i = 0; i < vx.size(); ++i)
    expected[i] = g.item(i % 4) * (vx[i] - frozen_mean[i % 4]) / std::sqrt(frozen_var[i % 4] + eps) + b.item(i % 4);
  EXPECT_TRUE(all_close(inference.y, expected, 1e-12));
  EXPECT_EQ(values(running_mean), frozen_mean);
}

class BatchNormMode : public ::testing::TestWithParam<bool> {};

TEST_P(BatchNormMode, Gradient) {
  const bool training = GetParam();
  Generator gen(94);
  GradCheck check;
  check.inputs = {random_tensor({5, 3, 4}, gen, -1, 2), random_tensor({4}, gen), random_tensor({4}, gen)};
  const Tensor mean0 = random_tensor({4}, gen), var0 = random_tensor({4}, gen, 0.5, 1.5);
  auto run = [=](const Tensors& in) {
    Tensor mean = mean0.to(in[0].dtype()).clone(), var = var0.to(in[0].dtype()).clone();
    return ops::batch_norm(in[0], in[1], in[2], mean, var, training);
  };
  check.forward = [=](const Tensors& in) { return Tensors{run(in).y}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    ops::NormResult r = run(in);
    ops::NormGrads gr = ops::batch_norm_backward(in[0], in[1], r.mean, r.rstd, d[0], training);
    return Tensors{gr.dx, gr.dgamma, gr.dbeta};
  };
  check_gradients(check);
}

std::string mode_name(const ::testing::TestParamInfo<bool>& p) { return p.param ? "Training" : "Inference"; }

INSTANTIATE_TEST_SUITE_P(Gradient, BatchNormMode, ::testing::Bool(), mode_name);

}  // namespace
}  // namespace attnkit
