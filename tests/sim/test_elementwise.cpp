// kernels/elementwise.cu under the sim executor against the CPU ops of ops/elementwise.h.
#include <gtest/gtest.h>

#include "attnkit/ops/elementwise.h"
#include "kernels/elementwise.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

const std::pair<ops::Activation, kern::PointwiseActivation> kActivations[] = {
    {ops::Activation::linear, kern::PointwiseActivation::linear},
    {ops::Activation::relu, kern::PointwiseActivation::relu},
    {ops::Activation::tanh, kern::PointwiseActivation::tanh},
    {ops::Activation::sigmoid, kern::PointwiseActivation::sigmoid},
};

TEST(SimElementwise, ActivationsForwardAndBackwardMatchTheCpuOps) {
  Generator gen(11);
  for (const std::int64_t n : {1, 255, 1001}) {
    const Tensor x = random_tensor({n}, gen, -3.0, 3.0, DType::f32);
    const Tensor dy = random_tensor({n}, gen, -1.0, 1.0, DType::f32);
    for (const auto& [op_kind, kernel_kind] : kActivations) {
      const Tensor y = ops::activation(x, op_kind);
      const Tensor dx = ops::activation_backward(y, dy, op_kind);
      Buffer<float> x_sim(floats_of(x)), y_sim(poison(static_cast<std::size_t>(n)));
      kern::activation_forward(x_sim.data(), y_sim.data(), n, kernel_kind, nullptr);
      EXPECT_TRUE(all_close(tensor_of(y_sim, {n}), y, 1e-6, 1e-6)) << ops::activation_name(op_kind) << " n=" << n;
      Buffer<float> dy_sim(floats_of(dy)), dx_sim(poison(static_cast<std::size_t>(n)));
      kern::activation_backward(y_sim.data(), dy_sim.data(), dx_sim.data(), n, kernel_kind, nullptr);
      EXPECT_TRUE(all_close(tensor_of(dx_sim, {n}), dx, 1e-6, 1e-6)) << ops::activation_name(op_kind) << " n=" << n;
    }
  }
}

TEST(SimElementwise, MultiplyAndAddMatchTheCpuOps) {
  Generator gen(12);
  const std::int64_t n = 777;
  const Tensor a = random_tensor({n}, gen, -2.0, 2.0, DType::f32), b = random_tensor({n}, gen, -2.0, 2.0, DType::f32);
  const Tensor dy = random_tensor({n}, gen, -1.0, 1.0, DType::f32);
  Buffer<float> a_sim(floats_of(a)), b_sim(floats_of(b)), dy_sim(floats_of(dy));
  Buffer<float> product(poison(n)), sum(poison(n)), da(poison(n)), db(poison(n));
  kern::multiply_forward(a_sim.data(), b_sim.data(), product.data(), n, nullptr);
  kern::add_forward(a_sim.data(), b_sim.data(), sum.data(), n, nullptr);
  kern::multiply_backward(a_sim.data(), b_sim.data(), dy_sim.data(), da.data(), db.data(), n, nullptr);
  const ops::MultiplyGrads grads = ops::multiply_backward(a, b, dy);
  EXPECT_TRUE(all_close(tensor_of(product, {n}), ops::multiply(a, b), 0, 0));
  EXPECT_TRUE(all_close(tensor_of(sum, {n}), ops::add(a, b), 0, 0));
  EXPECT_TRUE(all_close(tensor_of(da, {n}), grads.da, 0, 0));
  EXPECT_TRUE(all_close(tensor_of(db, {n}), grads.db, 0, 0));
}

}  // namespace
}  // namespace attnkit
