// Conv1D (same and valid, odd and even kernels) and MaxPool1D (valid and same, strides):
// forward against direct loops, backward against finite differences.
#include <gtest/gtest.h>

#include <limits>

#include "attnkit/ops/conv.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// y[b, t, o] = bias[o] + sum_{k, c} x[b, t + k - left, c] w[k, c, o]; Keras/TensorFlow 'same'
// puts floor((K - 1) / 2) zeros before the sequence and the rest after.
std::vector<double> reference_conv(const Tensor& x, const Tensor& w, const Tensor& bias, bool same) {
  const auto vx = values(x), vw = values(w);
  const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = w.size(0), O = w.size(2);
  const std::int64_t left = same ? (K - 1) / 2 : 0, out_steps = same ? T : T - K + 1;
  std::vector<double> y;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < out_steps; ++t)
      for (std::int64_t o = 0; o < O; ++o) {
        double sum = bias.defined() ? bias.item(o) : 0.0;
        for (std::int64_t k = 0; k < K; ++k) {
          const std::int64_t s = t + k - left;
          if (s < 0 || s >= T) continue;
          for (std::int64_t c = 0; c < C; ++c) sum += vx[(b * T + s) * C + c] * vw[(k * C + c) * O + o];
        }
        y.push_back(sum);
      }
  return y;
}

class Conv1d : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(Conv1d, ForwardMatchesLoopAndGradient) {
  const auto [kernel, same] = GetParam();
  const ops::Padding padding = same ? ops::Padding::same : ops::Padding::valid;
  Generator gen(71);
  Tensor x = random_tensor({3, 9, 4}, gen), w = random_tensor({kernel, 4, 5}, gen), b = random_tensor({5}, gen);
  Tensor y = ops::conv1d(x, w, b, padding);
  EXPECT_EQ(y.shape(), (Shape{3, same ? 9 : 9 - kernel + 1, 5}));
  EXPECT_TRUE(all_close(y, reference_conv(x, w, b, same), 1e-12));

  GradCheck check;
  check.inputs = {x, w, b};
  check.forward = [=](const Tensors& in) { return Tensors{ops::conv1d(in[0], in[1], in[2], padding)}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    auto g = ops::conv1d_backward(in[0], in[1], d[0], true, padding);
    return Tensors{g.dx, g.dweight, g.dbias};
  };
  check_gradients(check);
}

std::string conv_case_name(const ::testing::TestParamInfo<std::tuple<int, bool>>& p) {
  return "Kernel" + std::to_string(std::get<0>(p.param)) + (std::get<1>(p.param) ? "Same" : "Valid");
}

INSTANTIATE_TEST_SUITE_P(Gradient, Conv1d,
                         ::testing::Combine(::testing::Values(1, 3, 4, 5), ::testing::Bool()),
                         conv_case_name);

TEST(Conv1d, EvenKernelPadsMoreOnTheRight) {
  // x = [1, 2, 3], kernel 2 of ones: 'same' gives [1+2, 2+3, 3+0] (one zero after, none before).
  Tensor x = Tensor::from_vector<float>({1, 2, 3}, {1, 3, 1});
  Tensor w = Tensor::from_vector<float>({1, 1}, {2, 1, 1});
  EXPECT_TRUE(all_close(ops::conv1d(x, w), {3, 5, 3}, 0));
  EXPECT_ATTNKIT_ERROR(ops::conv1d(x, Tensor::zeros({2, 3, 1})), "Cin = 1");
}

std::vector<double> reference_pool(const Tensor& x, std::int64_t pool, std::int64_t stride, bool same,
                                   std::int64_t* out_steps) {
  const auto vx = values(x);
  const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  std::int64_t left = 0;
  if (same) {
    *out_steps = (T + stride - 1) / stride;
    left = std::max<std::int64_t>(0, (*out_steps - 1) * stride + pool - T) / 2;
  } else {
    *out_steps = (T - pool) / stride + 1;
  }
  std::vector<double> y;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < *out_steps; ++t)
      for (std::int64_t c = 0; c < C; ++c) {
        double best = -std::numeric_limits<double>::infinity();
        for (std::int64_t s = t * stride - left; s < t * stride - left + pool; ++s)
          if (s >= 0 && s < T) best = std::max(best, vx[(b * T + s) * C + c]);
        y.push_back(best);
      }
  return y;
}

class MaxPool1d : public ::testing::TestWithParam<std::tuple<int, int, bool>> {};

TEST_P(MaxPool1d, ForwardMatchesLoopAndGradient) {
  // Plain variables: lambdas below capture them (C++17 lambdas cannot capture structured bindings).
  const int pool = std::get<0>(GetParam()), stride = std::get<1>(GetParam());
  const bool same = std::get<2>(GetParam());
  const ops::Padding padding = same ? ops::Padding::same : ops::Padding::valid;
  Generator gen(72);
  Tensor x = random_tensor({2, 11, 3}, gen);
  std::int64_t out_steps = 0;
  const auto expected = reference_pool(x, pool, stride, same, &out_steps);
  ops::MaxPool1dResult r = ops::max_pool1d(x, pool, stride, padding);
  EXPECT_EQ(r.y.shape(), (Shape{2, out_steps, 3}));
  EXPECT_TRUE(all_close(r.y, expected, 0));

  GradCheck check;
  check.inputs = {x};
  check.forward = [=](const Tensors& in) { return Tensors{ops::max_pool1d(in[0], pool, stride, padding).y}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    return Tensors{ops::max_pool1d_backward(d[0], ops::max_pool1d(in[0], pool, stride, padding).argmax, in[0].size(1))};
  };
  check_gradients(check);
}

std::string pool_case_name(const ::testing::TestParamInfo<std::tuple<int, int, bool>>& p) {
  return "Pool" + std::to_string(std::get<0>(p.param)) + "Stride" + std::to_string(std::get<1>(p.param)) +
         (std::get<2>(p.param) ? "Same" : "Valid");
}

INSTANTIATE_TEST_SUITE_P(Gradient, MaxPool1d,
                         ::testing::Combine(::testing::Values(2, 3), ::testing::Values(1, 2, 3), ::testing::Bool()),
                         pool_case_name);

TEST(MaxPool1d, KerasDefaultHalvesTheSequence) {
  Tensor x = Tensor::zeros({4, 20, 32});
  EXPECT_EQ(ops::max_pool1d(x, 2).y.shape(), (Shape{4, 10, 32}));
  EXPECT_ATTNKIT_ERROR(ops::max_pool1d(Tensor::zeros({1, 1, 2}), 2), "needs at least 2 steps");
}

}  // namespace
}  // namespace attnkit
