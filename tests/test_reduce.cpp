// mean and flip: forward against index arithmetic, backward against finite differences.
#include <gtest/gtest.h>

#include "attnkit/ops/reduce.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

class MeanAxis : public ::testing::TestWithParam<int> {};

TEST_P(MeanAxis, ForwardMatchesLoopAndGradient) {
  const int axis = GetParam();
  Generator gen(151);
  Tensor x = random_tensor({3, 4, 5}, gen);
  Tensor y = ops::mean(x, axis);
  Shape expected_shape{3, 4, 5};
  expected_shape.erase(expected_shape.begin() + axis);
  ASSERT_EQ(y.shape(), expected_shape);
  const auto v = values(x);
  std::vector<double> expected;
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 4; ++j)
      for (std::int64_t k = 0; k < 5; ++k) {
        const std::int64_t idx[3] = {i, j, k};
        if (idx[axis] != 0) continue;  // one output per lane
        double sum = 0;
        const Shape full{3, 4, 5};
        for (std::int64_t m = 0; m < full[axis]; ++m) {
          std::int64_t at[3] = {i, j, k};
          at[axis] = m;
          sum += v[(at[0] * 4 + at[1]) * 5 + at[2]];
        }
        expected.push_back(sum / double(full[axis]));
      }
  EXPECT_TRUE(all_close(y, expected, 1e-14));

  GradCheck check;
  check.inputs = {x};
  check.forward = [=](const Tensors& in) { return Tensors{ops::mean(in[0], axis)}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    return Tensors{ops::mean_backward(d[0], in[0].shape(), axis)};
  };
  check_gradients(check);
}

INSTANTIATE_TEST_SUITE_P(Gradient, MeanAxis, ::testing::Values(0, 1, 2));

TEST(Flip, ReversesTheAxis) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {1, 3, 2});
  EXPECT_TRUE(all_close(ops::flip(x, 1), {5, 6, 3, 4, 1, 2}, 0));
}

TEST(Gradient, Flip) {
  Generator gen(152);
  GradCheck check;
  check.inputs = {random_tensor({2, 5, 3}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::flip(in[0], 1)}; };
  check.backward = [](const Tensors&, const Tensors&, const Tensors& d) { return Tensors{ops::flip(d[0], 1)}; };
  check_gradients(check);
}

}  // namespace
}  // namespace attnkit
