// kernels/bias.cu under the sim executor against ops::bias_add and ops::bias_add_backward. The
// backward's blocks split the rows among 8 warps, so that a missing barrier before the partial
// sums are added would be seen.
#include <gtest/gtest.h>

#include "attnkit/ops/linear.h"
#include "kernels/bias.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

TEST(SimBias, ForwardAndBackwardMatchTheCpuOps) {
  Generator gen(31);
  for (const std::int64_t rows : {1, 7, 33})
    for (const std::int64_t cols : {1, 5, 100, 1000}) {
      const std::size_t n = static_cast<std::size_t>(rows * cols);
      const Tensor x = random_tensor({rows, cols}, gen, -2.0, 2.0, DType::f32);
      const Tensor bias = random_tensor({cols}, gen, -2.0, 2.0, DType::f32);
      const Tensor dy = random_tensor({rows, cols}, gen, -1.0, 1.0, DType::f32);
      Buffer<float> x_sim(floats_of(x)), bias_sim(floats_of(bias)), y_sim(poison(n));
      kern::bias_add_forward(x_sim.data(), bias_sim.data(), y_sim.data(), rows, cols, nullptr);
      EXPECT_TRUE(all_close(tensor_of(y_sim, {rows, cols}), ops::bias_add(x, bias), 0, 0))
          << "rows=" << rows << " cols=" << cols;
      Buffer<float> dy_sim(floats_of(dy)), dbias_sim(poison(static_cast<std::size_t>(cols)));
      kern::bias_add_backward(dy_sim.data(), dbias_sim.data(), rows, cols, nullptr);
      EXPECT_TRUE(all_close(tensor_of(dbias_sim, {cols}), ops::bias_add_backward(dy), 1e-5, 1e-6))
          << "rows=" << rows << " cols=" << cols;
    }
}

TEST(SimBias, BackwardWithNoRowsWritesZeros) {
  const std::int64_t cols = 37;
  Buffer<float> dy_sim(1), dbias_sim(poison(static_cast<std::size_t>(cols)));
  kern::bias_add_backward(dy_sim.data(), dbias_sim.data(), 0, cols, nullptr);
  EXPECT_TRUE(all_close(tensor_of(dbias_sim, {cols}), ops::bias_add_backward(Tensor::zeros({0, cols})), 0, 0));
}

TEST(SimBias, RejectsNegativeSizes) {
  EXPECT_ATTNKIT_ERROR(kern::bias_add_forward(nullptr, nullptr, nullptr, -1, 4, nullptr),
                       "bias_add_forward: sizes must not be negative");
  EXPECT_ATTNKIT_ERROR(kern::bias_add_backward(nullptr, nullptr, 4, -1, nullptr),
                       "bias_add_backward: sizes must not be negative");
}

}  // namespace
}  // namespace attnkit
