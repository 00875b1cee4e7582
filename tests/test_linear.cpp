// matmul, linear and bias_add: forward against plain loops, backward against finite differences.
#include <gtest/gtest.h>

#include "attnkit/ops/linear.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// Reference: C[b, i, j] = sum_k op(A)[b, i, k] op(B)[b, k, j] in double.
std::vector<double> reference_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const auto va = values(a), vb = values(b);
  const bool batched = a.dim() == 3;
  const std::int64_t batch = batched ? a.size(0) : 1;
  const std::int64_t m = ta ? a.size(-1) : a.size(-2), k = ta ? a.size(-2) : a.size(-1);
  const std::int64_t n = tb ? b.size(-2) : b.size(-1);
  std::vector<double> c;
  for (std::int64_t s = 0; s < batch; ++s)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (std::int64_t p = 0; p < k; ++p) {
          const double x = ta ? va[s * m * k + p * m + i] : va[s * m * k + i * k + p];
          const double y = tb ? vb[s * k * n + j * k + p] : vb[s * k * n + p * n + j];
          sum += x * y;
        }
        c.push_back(sum);
      }
  return c;
}

class MatmulTranspose : public ::testing::TestWithParam<std::tuple<bool, bool, bool>> {};

TEST_P(MatmulTranspose, ForwardMatchesLoopAndGradientsMatchFiniteDifferences) {
  // Plain variables: lambdas below capture them (C++17 lambdas cannot capture structured bindings).
  const bool ta = std::get<0>(GetParam()), tb = std::get<1>(GetParam()), batched = std::get<2>(GetParam());
  Generator gen(17);
  const std::int64_t batch = 3, m = 5, k = 7, n = 4;
  auto shape = [&](std::int64_t rows, std::int64_t cols, bool t) {
    Shape s = t ? Shape{cols, rows} : Shape{rows, cols};
    if (batched) s.insert(s.begin(), batch);
    return s;
  };
  Tensor a = random_tensor(shape(m, k, ta), gen);
  Tensor b = random_tensor(shape(k, n, tb), gen);
  Tensor c = ops::matmul(a, b, ta, tb);
  EXPECT_EQ(c.shape(), batched ? (Shape{batch, m, n}) : (Shape{m, n}));
  EXPECT_TRUE(all_close(c, reference_matmul(a, b, ta, tb), 1e-12));
  EXPECT_TRUE(all_close(ops::matmul(a.to(DType::f32), b.to(DType::f32), ta, tb),
                        reference_matmul(a, b, ta, tb), 1e-5));

  GradCheck check;
  check.inputs = {a, b};
  check.forward = [=](const Tensors& in) { return Tensors{ops::matmul(in[0], in[1], ta, tb)}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    auto g = ops::matmul_backward(in[0], in[1], d[0], ta, tb);
    return Tensors{g.da, g.db};
  };
  check_gradients(check);
}

INSTANTIATE_TEST_SUITE_P(Gradient, MatmulTranspose,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool()));

// Reference: y[r, j] = b[j] + sum_i x[r, i] w[i, j].
std::vector<double> reference_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  const auto vx = values(x), vw = values(w);
  const std::vector<double> vb = b.defined() ? values(b) : std::vector<double>(w.size(1), 0.0);
  const std::int64_t in = w.size(0), out = w.size(1), rows = x.numel() / in;
  std::vector<double> y;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < out; ++j) {
      double sum = vb[j];
      for (std::int64_t i = 0; i < in; ++i) sum += vx[r * in + i] * vw[i * out + j];
      y.push_back(sum);
    }
  return y;
}

TEST(Linear, ForwardMatchesLoop) {
  Generator gen(3);
  Tensor x = random_tensor({3, 5, 7}, gen), w = random_tensor({7, 9}, gen), b = random_tensor({9}, gen);
  Tensor y = ops::linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{3, 5, 9}));
  EXPECT_TRUE(all_close(y, reference_linear(x, w, b), 1e-12));
  EXPECT_TRUE(all_close(ops::linear(x, w), reference_linear(x, w, Tensor()), 1e-12));
  EXPECT_TRUE(all_close(ops::linear(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32)),
                        reference_linear(x, w, b), 1e-5));
}

TEST(Gradient, Linear) {
  Generator gen(4);
  GradCheck check;
  check.inputs = {random_tensor({3, 5, 7}, gen), random_tensor({7, 9}, gen), random_tensor({9}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::linear(in[0], in[1], in[2])}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    auto g = ops::linear_backward(in[0], in[1], d[0], true);
    return Tensors{g.dx, g.dweight, g.dbias};
  };
  check_gradients(check);
}

TEST(Gradient, LinearWithoutBias) {
  Generator gen(5);
  GradCheck check;
  check.inputs = {random_tensor({11, 6}, gen), random_tensor({6, 3}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::linear(in[0], in[1])}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    auto g = ops::linear_backward(in[0], in[1], d[0], false);
    EXPECT_FALSE(g.dbias.defined());
    return Tensors{g.dx, g.dweight};
  };
  check_gradients(check);
}

TEST(BiasAdd, ForwardMatchesLoop) {
  Generator gen(6);
  Tensor x = random_tensor({4, 3, 5}, gen), b = random_tensor({5}, gen);
  const auto vx = values(x), vb = values(b);
  std::vector<double> expected;
  for (std::size_t i = 0; i < vx.size(); ++i) expected.push_back(vx[i] + vb[i % 5]);
  EXPECT_TRUE(all_close(ops::bias_add(x, b), expected, 1e-15));
}

TEST(Gradient, BiasAdd) {
  Generator gen(7);
  GradCheck check;
  check.inputs = {random_tensor({4, 3, 5}, gen), random_tensor({5}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::bias_add(in[0], in[1])}; };
  check.backward = [](const Tensors&, const Tensors&, const Tensors& d) {
    return Tensors{d[0].clone(), ops::bias_add_backward(d[0])};
  };
  check_gradients(check);
}

TEST(Linear, ShapeMismatchesNameTheArgument) {
  Generator gen(8);
  Tensor x = random_tensor({4, 32}, gen, -1, 1, DType::f32);
  EXPECT_ATTNKIT_ERROR(ops::linear(x, Tensor::zeros({16, 8})), "linear: weight must be [in, out] with in = 32");
  EXPECT_ATTNKIT_ERROR(ops::linear(x, Tensor::zeros({32, 8}), Tensor::zeros({7})), "linear: bias must have shape [8]");
  EXPECT_ATTNKIT_ERROR(ops::matmul(x, Tensor::zeros({5, 2})), "inner extents differ (32 vs 5)");
  EXPECT_ATTNKIT_ERROR(ops::matmul(x, Tensor::zeros({32, 2}, DType::f64)), "differ in dtype");
  EXPECT_ATTNKIT_ERROR(ops::linear(x.to(DType::f16), Tensor::zeros({32, 8})), "must be f32 or f64");
}

}  // namespace
}  // namespace attnkit

#include "attnkit/ops/conv.h"
#include "attnkit/ops/recurrent.h"

namespace attnkit {
namespace {

using namespace testing;

// Skipping the input gradient leaves it undefined and changes none of the others.
TEST(Backward, InputGradientCanBeSkipped) {
  Generator gen(9);
  Tensor x = random_tensor({4, 6, 3}, gen), w = random_tensor({3, 5}, gen), dy = random_tensor({4, 6, 5}, gen);
  const ops::LinearGrads full = ops::linear_backward(x, w, dy), part = ops::linear_backward(x, w, dy, true, false);
  EXPECT_FALSE(part.dx.defined());
  EXPECT_EQ(values(part.dweight), values(full.dweight));
  EXPECT_EQ(values(part.dbias), values(full.dbias));

  Tensor k = random_tensor({3, 3, 5}, gen);
  const ops::Conv1dGrads conv_full = ops::conv1d_backward(x, k, dy);
  const ops::Conv1dGrads conv_part = ops::conv1d_backward(x, k, dy, true, ops::Padding::same, false);
  EXPECT_FALSE(conv_part.dx.defined());
  EXPECT_EQ(values(conv_part.dweight), values(conv_full.dweight));

  Tensor kernel = random_tensor({3, 8}, gen), recurrent = random_tensor({2, 8}, gen), bias = random_tensor({8}, gen);
  ops::RecurrentOptions options;
  options.return_sequences = true;
  const auto r = ops::recurrent(ops::RecurrentCell::lstm, x, kernel, recurrent, bias, Tensor(), Tensor(), options);
  const Tensor d = random_tensor({4, 6, 2}, gen);
  const auto rec_full = ops::recurrent_backward(ops::RecurrentCell::lstm, x, kernel, recurrent, bias, Tensor(), Tensor(),
                                                r, d, Tensor(), Tensor(), options);
  const auto rec_part = ops::recurrent_backward(ops::RecurrentCell::lstm, x, kernel, recurrent, bias, Tensor(), Tensor(),
                                                r, d, Tensor(), Tensor(), options, false);
  EXPECT_FALSE(rec_part.dx.defined());
  EXPECT_EQ(values(rec_part.drecurrent_kernel), values(rec_full.drecurrent_kernel));
}

}  // namespace
}  // namespace attnkit
