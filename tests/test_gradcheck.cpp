// The gradient checker itself: it must fail on a wrong backward, a missing gradient, and a float32
// path that drifts from the float64 one.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "attnkit/ops/elementwise.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

GradCheck tanh_check() {
  Generator gen(41);
  GradCheck check;
  check.inputs = {random_tensor({3, 4}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::tanh(in[0])}; };
  check.backward = [](const Tensors&, const Tensors& out, const Tensors& d) {
    return Tensors{ops::activation_backward(out[0], d[0], ops::Activation::tanh)};
  };
  return check;
}

// Runs the checker with its failures captured instead of reported; returns their messages.
std::vector<std::string> failures_of(const GradCheck& check) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter capture(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    check_gradients(check);
  }
  std::vector<std::string> messages;
  for (int i = 0; i < results.size(); ++i) messages.push_back(results.GetTestPartResult(i).message());
  return messages;
}

bool any_contains(const std::vector<std::string>& messages, const std::string& fragment) {
  for (const auto& m : messages)
    if (m.find(fragment) != std::string::npos) return true;
  return false;
}

TEST(GradCheck, PassesACorrectBackward) { EXPECT_TRUE(failures_of(tanh_check()).empty()); }

TEST(GradCheck, CatchesAWrongBackward) {
  GradCheck check = tanh_check();
  // The sigmoid's derivative y (1 - y) in place of the tanh's 1 - y^2.
  check.backward = [](const Tensors&, const Tensors& out, const Tensors& d) {
    return Tensors{ops::activation_backward(out[0], d[0], ops::Activation::sigmoid)};
  };
  EXPECT_TRUE(any_contains(failures_of(check), "finite difference"));
}

TEST(GradCheck, CatchesAMissingGradient) {
  GradCheck check = tanh_check();
  check.backward = [](const Tensors&, const Tensors&, const Tensors&) { return Tensors{Tensor()}; };
  EXPECT_TRUE(any_contains(failures_of(check), "no gradient for input 0"));
}

TEST(GradCheck, CatchesAFloat32PathThatDrifts) {
  GradCheck check = tanh_check();
  check.forward = [](const Tensors& in) {
    Tensor y = ops::tanh(in[0]);
    if (y.dtype() == DType::f32) y = ops::add(y, Tensor::full(y.shape(), 1e-3, DType::f32));
    return Tensors{y};
  };
  const auto messages = failures_of(check);
  EXPECT_TRUE(any_contains(messages, "float32 differs from float64"));
  EXPECT_FALSE(any_contains(messages, "finite difference"));  // the float64 part is right
}

}  // namespace
}  // namespace attnkit
