// flatten, concat and transpose: forward against index arithmetic, backward against finite
// differences.
#include <gtest/gtest.h>

#include "attnkit/ops/shape.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

TEST(Flatten, IsAViewWithBatchFirst) {
  Generator gen(81);
  Tensor x = random_tensor({3, 4, 5}, gen);
  Tensor y = ops::flatten(x);
  EXPECT_EQ(y.shape(), (Shape{3, 20}));
  EXPECT_TRUE(y.shares_storage_with(x));
  EXPECT_TRUE(all_close(y, values(x), 0));
}

TEST(Gradient, Flatten) {
  Generator gen(82);
  GradCheck check;
  check.inputs = {random_tensor({3, 4, 5}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::flatten(in[0])}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    return Tensors{ops::flatten_backward(d[0], in[0].shape())};
  };
  check_gradients(check);
}

class Concat : public ::testing::TestWithParam<int> {};

TEST_P(Concat, ForwardMatchesIndexingAndGradient) {
  const int axis = GetParam();
  Generator gen(83);
  Shape a{2, 3, 4}, b{2, 3, 4}, c{2, 3, 4};
  a[axis] = 1, b[axis] = 2, c[axis] = 3;
  Tensors xs{random_tensor(a, gen), random_tensor(b, gen), random_tensor(c, gen)};
  Tensor y = ops::concat(xs, axis);
  Shape expected_shape{2, 3, 4};
  expected_shape[axis] = 6;
  ASSERT_EQ(y.shape(), expected_shape);
  // y[i, j, k] comes from the input whose range on `axis` holds the index.
  const auto vy = values(y);
  for (std::int64_t i = 0; i < expected_shape[0]; ++i)
    for (std::int64_t j = 0; j < expected_shape[1]; ++j)
      for (std::int64_t k = 0; k < expected_shape[2]; ++k) {
        std::int64_t idx[3] = {i, j, k};
        std::size_t which = 0;
        std::int64_t offset = 0;
        while (idx[axis] - offset >= xs[which].size(axis)) offset += xs[which++].size(axis);
        idx[axis] -= offset;
        const Shape& s = xs[which].shape();
        const double expected = xs[which].item((idx[0] * s[1] + idx[1]) * s[2] + idx[2]);
        ASSERT_EQ(vy[static_cast<std::size_t>((i * expected_shape[1] + j) * expected_shape[2] + k)], expected);
      }

  GradCheck check;
  check.inputs = xs;
  check.forward = [=](const Tensors& in) { return Tensors{ops::concat(in, axis)}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    return ops::concat_backward(d[0], {in[0].size(axis), in[1].size(axis), in[2].size(axis)}, axis);
  };
  check_gradients(check);
}

INSTANTIATE_TEST_SUITE_P(Gradient, Concat, ::testing::Values(0, 1, 2));

TEST(Concat, MismatchesAreNamed) {
  EXPECT_ATTNKIT_ERROR(ops::concat({Tensor::zeros({2, 3}), Tensor::zeros({3, 3})}, -1),
                       "input 1 f32[3, 3] on cpu must match input 0");
  EXPECT_ATTNKIT_ERROR(ops::concat_backward(Tensor::zeros({2, 3}), {1, 1}, -1), "the extents sum to 2");
}

TEST(Transpose, SwapsAxes) {
  Generator gen(84);
  Tensor x = random_tensor({2, 3, 4, 5}, gen);
  Tensor y = ops::transpose(x, 1, 3);
  ASSERT_EQ(y.shape(), (Shape{2, 5, 4, 3}));
  for (std::int64_t a = 0; a < 2; ++a)
    for (std::int64_t b = 0; b < 3; ++b)
      for (std::int64_t c = 0; c < 4; ++c)
        for (std::int64_t d = 0; d < 5; ++d)
          ASSERT_EQ(y.item(((a * 5 + d) * 4 + c) * 3 + b), x.item(((a * 3 + b) * 4 + c) * 5 + d));
}

TEST(Gradient, Transpose) {
  Generator gen(85);
  GradCheck check;
  check.inputs = {random_tensor({3, 4, 5}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::transpose(in[0], 2, 1)}; };
  check.backward = [](const Tensors&, const Tensors&, const Tensors& d) {
    return Tensors{ops::transpose(d[0], 1, 2)};
  };
  check_gradients(check);
}

}  // namespace
}  // namespace attnkit
