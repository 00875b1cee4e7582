// Activations, multiply and add: forward against closed forms, backward against finite
// differences.
#include <gtest/gtest.h>

#include <cmath>

#include "attnkit/ops/elementwise.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;
using ops::Activation;

double closed_form(Activation kind, double x) {
  switch (kind) {
    case Activation::linear: return x;
    case Activation::relu: return x > 0 ? x : 0;
    case Activation::tanh: return std::tanh(x);
    case Activation::sigmoid: return 1 / (1 + std::exp(-x));
    case Activation::softmax: break;  // not elementwise: the test computes it by rows
  }
  return NAN;
}

class Elementwise : public ::testing::TestWithParam<Activation> {};

TEST_P(Elementwise, ForwardMatchesClosedForm) {
  Generator gen(21);
  Tensor x = random_tensor({3, 7, 5}, gen, -4, 4);
  std::vector<double> expected;
  const std::vector<double> v = values(x);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (GetParam() != Activation::softmax) {
      expected.push_back(closed_form(GetParam(), v[i]));
      continue;
    }
    const std::size_t row = i / 5 * 5;  // softmax over the last axis (extent 5)
    double sum = 0;
    for (std::size_t j = row; j < row + 5; ++j) sum += std::exp(v[j]);
    expected.push_back(std::exp(v[i]) / sum);
  }
  EXPECT_TRUE(all_close(ops::activation(x, GetParam()), expected, 1e-15, 1e-14));
  EXPECT_TRUE(all_close(ops::activation(x.to(DType::f32), GetParam()), expected, 1e-6, 1e-6));
}

TEST_P(Elementwise, Gradient) {
  const Activation kind = GetParam();
  Generator gen(22);
  GradCheck check;
  check.inputs = {random_tensor({3, 7, 5}, gen, -3, 3)};
  check.forward = [=](const Tensors& in) { return Tensors{ops::activation(in[0], kind)}; };
  check.backward = [=](const Tensors&, const Tensors& out, const Tensors& d) {
    return Tensors{ops::activation_backward(out[0], d[0], kind)};
  };
  check_gradients(check);
}

std::string activation_case_name(const ::testing::TestParamInfo<Activation>& param) {
  return ops::activation_name(param.param);
}

INSTANTIATE_TEST_SUITE_P(Activations, Elementwise,
                         ::testing::Values(Activation::linear, Activation::relu, Activation::tanh,
                                           Activation::sigmoid, Activation::softmax),
                         activation_case_name);

TEST(Elementwise, SigmoidDoesNotOverflow) {
  Tensor x = Tensor::from_vector<float>({-1000.f, -50.f, 0.f, 50.f, 1000.f}, {5});
  EXPECT_TRUE(all_close(ops::sigmoid(x), {0, 1.9287498479639178e-22, 0.5, 1, 1}, 1e-7));
}

TEST(Elementwise, ActivationNames) {
  EXPECT_EQ(ops::parse_activation("relu"), Activation::relu);
  EXPECT_EQ(ops::parse_activation(""), Activation::linear);
  EXPECT_ATTNKIT_ERROR(ops::parse_activation("swish"), "unknown activation \"swish\"");
}

TEST(Multiply, ForwardMatchesProduct) {
  Generator gen(23);
  Tensor a = random_tensor({4, 5, 3}, gen), b = random_tensor({4, 5, 3}, gen);
  const auto va = values(a), vb = values(b);
  std::vector<double> product, sum;
  for (std::size_t i = 0; i < va.size(); ++i) {
    product.push_back(va[i] * vb[i]);
    sum.push_back(va[i] + vb[i]);
  }
  EXPECT_TRUE(all_close(ops::multiply(a, b), product, 1e-15));
  EXPECT_TRUE(all_close(ops::add(a, b), sum, 1e-15));
  EXPECT_ATTNKIT_ERROR(ops::multiply(a, Tensor::zeros({4, 5}, DType::f64)), "must match the shape");
}

TEST(Gradient, Multiply) {
  Generator gen(24);
  GradCheck check;
  check.inputs = {random_tensor({4, 5, 3}, gen), random_tensor({4, 5, 3}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::multiply(in[0], in[1])}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    auto g = ops::multiply_backward(in[0], in[1], d[0]);
    return Tensors{g.da, g.db};
  };
  check_gradients(check);
}

TEST(Elementwise, LargeInputsUseBothCoresAndStayCorrect) {
  // Big enough for the parallel path; every element must still be right.
  Generator gen(25);
  Tensor x = random_tensor({300000}, gen, -2, 2, DType::f32);
  std::vector<double> expected;
  for (const double v : values(x)) expected.push_back(std::tanh(v));
  EXPECT_TRUE(all_close(ops::tanh(x), expected, 1e-6));
}

// A NaN that reaches an activation comes out of it (as TensorFlow's relu lets it through), so
// that a fault upstream shows in the loss and stops training instead of vanishing.
TEST(Elementwise, NanPassesThroughEveryActivation) {
  const Tensor x = Tensor::from_vector<float>({NAN, -1.0f, 2.0f}, {3});
  for (const Activation kind : {Activation::linear, Activation::relu, Activation::tanh, Activation::sigmoid})
    EXPECT_TRUE(std::isnan(ops::activation(x, kind).item(0))) << ops::activation_name(kind);
}

}  // namespace
}  // namespace attnkit
