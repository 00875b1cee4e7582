// kernels/optimizers.cu under the sim executor: the Adam and SGD steps against the optimizers of
// optimizers.h, step after step; the squared norm, the gradient clip and the weight decay before
// them against plain loops in double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "attnkit/optimizers.h"
#include "kernels/optimizers.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

struct Hyperparameters {
  double learning_rate, beta_1, beta_2, epsilon;
};

TEST(SimAdam, StepsMatchTheCpuOptimizer) {
  Generator gen(61);
  const Hyperparameters settings[] = {{1e-3, 0.9, 0.999, 1e-7}, {0.05, 0.8, 0.95, 1e-4}};
  for (const Hyperparameters& h : settings) {
    for (const std::int64_t n : {1, 7, 1001}) {
      const auto size = static_cast<std::size_t>(n);
      Parameter parameter{"kernel", random_tensor({n}, gen, -1.0, 1.0, DType::f32), Tensor(), true};
      const std::shared_ptr<Optimizer> adam = Adam(h.learning_rate, h.beta_1, h.beta_2, h.epsilon);
      Buffer<float> param_sim(floats_of(parameter.value)), m_sim(size), v_sim(size);
      m_sim.fill(0.0f);  // the state of a parameter the optimizer has not seen yet
      v_sim.fill(0.0f);
      // The moments the kernel should reach, in double.
      std::vector<double> m_expected(size, 0.0), v_expected(size, 0.0);
      for (std::int64_t step = 1; step <= 4; ++step) {
        const Tensor grad = random_tensor({n}, gen, -2.0, 2.0, DType::f32);
        Buffer<float> grad_sim(floats_of(grad));
        kern::adam_step(param_sim.data(), grad_sim.data(), m_sim.data(), v_sim.data(), n, h.learning_rate, h.beta_1,
                        h.beta_2, h.epsilon, step, nullptr);
        parameter.grad = grad.clone();
        adam->step({&parameter});
        EXPECT_TRUE(all_close(tensor_of(param_sim, {n}), parameter.value, 0, 0))
            << "lr=" << h.learning_rate << " n=" << n << " step=" << step;
        const std::vector<double> g = values(grad);
        for (std::size_t i = 0; i < size; ++i) {
          m_expected[i] = h.beta_1 * m_expected[i] + (1 - h.beta_1) * g[i];
          v_expected[i] = h.beta_2 * v_expected[i] + (1 - h.beta_2) * g[i] * g[i];
        }
        EXPECT_TRUE(all_close(values(tensor_of(m_sim, {n})), m_expected, 1e-6, 1e-5)) << "m, step=" << step;
        EXPECT_TRUE(all_close(values(tensor_of(v_sim, {n})), v_expected, 1e-6, 1e-5)) << "v, step=" << step;
      }
    }
  }
}

TEST(SimSgd, StepsMatchTheCpuOptimizer) {
  Generator gen(62);
  for (const double momentum : {0.0, 0.9})
    for (const std::int64_t n : {1, 7, 1001}) {
      const auto size = static_cast<std::size_t>(n);
      Parameter parameter{"kernel", random_tensor({n}, gen, -1.0, 1.0, DType::f32), Tensor(), true};
      const std::shared_ptr<Optimizer> sgd = SGD(0.05, momentum);
      Buffer<float> param_sim(floats_of(parameter.value)), velocity_sim(size);
      velocity_sim.fill(0.0f);
      std::vector<double> velocity_expected(size, 0.0), param_expected = values(parameter.value);
      for (int step = 1; step <= 3; ++step) {
        const Tensor grad = random_tensor({n}, gen, -2.0, 2.0, DType::f32);
        Buffer<float> grad_sim(floats_of(grad));
        kern::sgd_step(param_sim.data(), grad_sim.data(), momentum == 0 ? nullptr : velocity_sim.data(), n, 0.05,
                       momentum, nullptr);
        parameter.grad = grad.clone();
        sgd->step({&parameter});
        // Within rounding: either side may fuse the multiply and add of the momentum update.
        EXPECT_TRUE(all_close(tensor_of(param_sim, {n}), parameter.value, 1e-7, 1e-6))
            << "momentum=" << momentum << " n=" << n << " step=" << step;
        // The update in double: v = momentum v - lr g; p += v.
        const std::vector<double> g = values(grad);
        for (std::size_t i = 0; i < size; ++i) {
          velocity_expected[i] = momentum * velocity_expected[i] - 0.05 * g[i];
          param_expected[i] += velocity_expected[i];
        }
        EXPECT_TRUE(all_close(values(tensor_of(param_sim, {n})), param_expected, 1e-6, 1e-5)) << "step=" << step;
      }
    }
}

TEST(SimOptimizerPrologue, SquaredNormSumsTheSquares) {
  Generator gen(63);
  for (const std::int64_t n : {0, 1, 7, 255, 1001, 70001}) {
    const Tensor x = random_tensor({n}, gen, -3.0, 3.0, DType::f32);
    Buffer<float> x_sim(floats_of(x)), out(poison(1));
    kern::squared_norm(x_sim.data(), n, out.data(), nullptr);
    double expected = 0;
    for (const double v : values(x)) expected += v * v;
    EXPECT_NEAR(out.values()[0], expected, 1e-5 * expected) << "n=" << n;
  }
}

TEST(SimOptimizerPrologue, ClipGradientScalesThenClamps) {
  Generator gen(64);
  struct Case {
    double scale, clipvalue;
  };
  for (const Case& c : {Case{0.37, 0.0}, Case{1.0, 0.5}, Case{2.5, 1.2}})
    for (const std::int64_t n : {1, 7, 1001}) {
      const Tensor grad = random_tensor({n}, gen, -2.0, 2.0, DType::f32);
      Buffer<float> grad_sim(floats_of(grad)), clipped(poison(static_cast<std::size_t>(n)));
      kern::clip_gradient(grad_sim.data(), clipped.data(), n, c.scale, c.clipvalue, nullptr);
      std::vector<double> expected = values(grad);
      for (double& g : expected) {
        g *= c.scale;
        if (c.clipvalue > 0) g = std::min(std::max(g, -c.clipvalue), c.clipvalue);
      }
      EXPECT_TRUE(all_close(values(tensor_of(clipped, {n})), expected, 1e-7, 1e-6))
          << "scale " << c.scale << " clipvalue " << c.clipvalue << " n=" << n;
    }
}

TEST(SimOptimizerPrologue, DecayWeightsShrinksEachWeight) {
  Generator gen(65);
  for (const std::int64_t n : {1, 7, 1001}) {
    const Tensor param = random_tensor({n}, gen, -1.0, 1.0, DType::f32);
    Buffer<float> param_sim(floats_of(param));
    kern::decay_weights(param_sim.data(), n, 0.013, nullptr);
    std::vector<double> expected = values(param);
    for (double& w : expected) w -= w * 0.013;
    EXPECT_TRUE(all_close(values(tensor_of(param_sim, {n})), expected, 1e-7, 1e-6)) << "n=" << n;
  }
}

TEST(SimSgd, MomentumNeedsAVelocity) {
  Buffer<float> param(poison(3)), grad(poison(3));
  EXPECT_ATTNKIT_ERROR(kern::sgd_step(param.data(), grad.data(), nullptr, 3, 0.1, 0.9, nullptr), "needs a velocity");
}

TEST(SimAdam, StepNumberStartsAtOne) {
  Buffer<float> param(poison(3)), grad(poison(3)), m(poison(3)), v(poison(3));
  EXPECT_ATTNKIT_ERROR(
      kern::adam_step(param.data(), grad.data(), m.data(), v.data(), 3, 1e-3, 0.9, 0.999, 1e-7, 0, nullptr),
      "step number");
}

}  // namespace
}  // namespace attnkit
