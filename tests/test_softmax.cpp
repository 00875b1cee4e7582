// softmax and log_softmax on every axis: forward against the closed form, backward against finite
// differences.
#include <gtest/gtest.h>

#include <cmath>

#include "attnkit/ops/softmax.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// Reference along `axis` of a [3, 4, 5] tensor, in double.
std::vector<double> reference(const Tensor& x, int axis, bool log) {
  const auto v = values(x);
  const Shape s = x.shape();
  std::vector<double> y(v.size());
  auto at = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return (i * s[1] + j) * s[2] + k; };
  for (std::int64_t i = 0; i < s[0]; ++i)
    for (std::int64_t j = 0; j < s[1]; ++j)
      for (std::int64_t k = 0; k < s[2]; ++k) {
        double sum = 0;
        for (std::int64_t m = 0; m < s[axis]; ++m) {
          std::int64_t idx[3] = {i, j, k};
          idx[axis] = m;
          sum += std::exp(v[at(idx[0], idx[1], idx[2])]);
        }
        const double e = v[at(i, j, k)];
        y[at(i, j, k)] = log ? e - std::log(sum) : std::exp(e) / sum;
      }
  return y;
}

class SoftmaxAxis : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(SoftmaxAxis, ForwardMatchesClosedForm) {
  const auto [axis, log] = GetParam();
  Generator gen(31);
  Tensor x = random_tensor({3, 4, 5}, gen, -5, 5);
  Tensor y = log ? ops::log_softmax(x, axis) : ops::softmax(x, axis);
  EXPECT_TRUE(all_close(y, reference(x, axis, log), 1e-14));
  // A negative axis names the same one.
  Tensor y_negative = log ? ops::log_softmax(x, axis - 3) : ops::softmax(x, axis - 3);
  EXPECT_TRUE(all_close(y_negative, values(y), 0));
}

TEST_P(SoftmaxAxis, Gradient) {
  // Plain variables: lambdas below capture them (C++17 lambdas cannot capture structured bindings).
  const int axis = std::get<0>(GetParam());
  const bool log = std::get<1>(GetParam());
  Generator gen(32);
  GradCheck check;
  check.inputs = {random_tensor({3, 4, 5}, gen, -3, 3)};
  check.forward = [=](const Tensors& in) {
    return Tensors{log ? ops::log_softmax(in[0], axis) : ops::softmax(in[0], axis)};
  };
  check.backward = [=](const Tensors&, const Tensors& out, const Tensors& d) {
    return Tensors{log ? ops::log_softmax_backward(out[0], d[0], axis)
                       : ops::softmax_backward(out[0], d[0], axis)};
  };
  check_gradients(check);
}

std::string softmax_case_name(const ::testing::TestParamInfo<std::tuple<int, bool>>& param) {
  return std::string(std::get<1>(param.param) ? "LogSoftmax" : "Softmax") + "Axis" +
         std::to_string(std::get<0>(param.param));
}

INSTANTIATE_TEST_SUITE_P(Gradient, SoftmaxAxis,
                         ::testing::Combine(::testing::Values(0, 1, 2), ::testing::Bool()),
                         softmax_case_name);

TEST(Softmax, LargeLogitsDoNotOverflow) {
  Tensor x = Tensor::from_vector<float>({1000.f, 1001.f, -1000.f}, {1, 3});
  const double e = std::exp(-1.0);
  EXPECT_TRUE(all_close(ops::softmax(x), {e / (1 + e), 1 / (1 + e), 0}, 1e-7));
  EXPECT_TRUE(all_close(ops::log_softmax(x), {-std::log1p(std::exp(1.0)) , -std::log1p(e), -2001 - std::log1p(e)}, 1e-4));
  EXPECT_ATTNKIT_ERROR(ops::softmax(x, 2), "axis 2 is out of range");
}

// Lanes of 16 or more contiguous floats take the vectorized form (sums in float); shorter or
// strided ones the plain loops. Both against the closed form in double, forward and backward, at
// lengths around the vector width and a long one.
TEST(Softmax, FloatLanesOfEveryLengthMatchTheClosedForm) {
  Generator gen(33);
  for (const std::int64_t n : {2, 15, 16, 17, 33, 1001}) {
    const Tensor x = random_tensor({7, n}, gen, -6, 6, DType::f32), dy = random_tensor({7, n}, gen, -1, 1, DType::f32);
    const std::vector<double> xv = values(x), dyv = values(dy);
    for (const bool log : {false, true}) {
      const Tensor y = log ? ops::log_softmax(x) : ops::softmax(x);
      const Tensor dx = log ? ops::log_softmax_backward(y, dy) : ops::softmax_backward(y, dy);
      std::vector<double> y_ref(xv.size()), dx_ref(xv.size());
      for (std::int64_t r = 0; r < 7; ++r) {
        double max = -INFINITY, sum = 0, dot = 0;
        for (std::int64_t k = 0; k < n; ++k) max = std::max(max, xv[r * n + k]);
        for (std::int64_t k = 0; k < n; ++k) sum += std::exp(xv[r * n + k] - max);
        for (std::int64_t k = 0; k < n; ++k) {
          const double p = std::exp(xv[r * n + k] - max) / sum;
          y_ref[r * n + k] = log ? std::log(p) : p;
          dot += log ? dyv[r * n + k] : dyv[r * n + k] * p;
        }
        for (std::int64_t k = 0; k < n; ++k) {
          const double p = std::exp(xv[r * n + k] - max) / sum;
          dx_ref[r * n + k] = log ? dyv[r * n + k] - p * dot : p * (dyv[r * n + k] - dot);
        }
      }
      EXPECT_EQ(y.dtype(), DType::f32);
      EXPECT_TRUE(all_close(y, y_ref, 2e-6, 2e-6)) << "n " << n << (log ? " log_softmax" : " softmax");
      EXPECT_TRUE(all_close(dx, dx_ref, 2e-6, 2e-6)) << "n " << n << (log ? " log_softmax" : " softmax");
    }
  }
}

}  // namespace
}  // namespace attnkit
