// kernels/softmax.cu under the sim executor against the CPU ops of ops/softmax.h. Column counts
// cover both kernels: one warp per row (up to 128 columns) and one block of 8 warps per row,
// whose shared-memory reduction a missing barrier would break.
#include <gtest/gtest.h>

#include "attnkit/ops/softmax.h"
#include "kernels/softmax.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

const std::int64_t kRows[] = {1, 7, 33};
const std::int64_t kCols[] = {1, 5, 100, 129, 1000};

// Runs the forward and backward launchers of softmax (log = false) or log-softmax on x and dy
// and compares them with the CPU ops.
void expect_matches_cpu(const Tensor& x, const Tensor& dy, bool log) {
  const std::int64_t rows = x.size(0), cols = x.size(1);
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  const Tensor y = log ? ops::log_softmax(x) : ops::softmax(x);
  const Tensor dx = log ? ops::log_softmax_backward(y, dy) : ops::softmax_backward(y, dy);
  Buffer<float> x_sim(floats_of(x)), y_sim(poison(n)), dy_sim(floats_of(dy)), dx_sim(poison(n));
  if (log)
    kern::log_softmax_forward(x_sim.data(), y_sim.data(), rows, cols, nullptr);
  else
    kern::softmax_forward(x_sim.data(), y_sim.data(), rows, cols, nullptr);
  EXPECT_TRUE(all_close(tensor_of(y_sim, {rows, cols}), y, 1e-6, 1e-5))
      << (log ? "log_softmax" : "softmax") << " rows=" << rows << " cols=" << cols;
  // The backward reads the CPU's y, so that it is checked on its own.
  Buffer<float> y_cpu(floats_of(y));
  if (log)
    kern::log_softmax_backward(y_cpu.data(), dy_sim.data(), dx_sim.data(), rows, cols, nullptr);
  else
    kern::softmax_backward(y_cpu.data(), dy_sim.data(), dx_sim.data(), rows, cols, nullptr);
  EXPECT_TRUE(all_close(tensor_of(dx_sim, {rows, cols}), dx, 1e-6, 1e-5))
      << (log ? "log_softmax_backward" : "softmax_backward") << " rows=" << rows << " cols=" << cols;
}

TEST(SimSoftmax, SoftmaxForwardAndBackwardMatchTheCpuOps) {
  Generator gen(21);
  for (const std::int64_t rows : kRows)
    for (const std::int64_t cols : kCols) {
      const Tensor x = random_tensor({rows, cols}, gen, -5.0, 5.0, DType::f32);
      const Tensor dy = random_tensor({rows, cols}, gen, -1.0, 1.0, DType::f32);
      expect_matches_cpu(x, dy, false);
    }
}

TEST(SimSoftmax, LogSoftmaxForwardAndBackwardMatchTheCpuOps) {
  Generator gen(22);
  for (const std::int64_t rows : kRows)
    for (const std::int64_t cols : kCols) {
      const Tensor x = random_tensor({rows, cols}, gen, -5.0, 5.0, DType::f32);
      const Tensor dy = random_tensor({rows, cols}, gen, -1.0, 1.0, DType::f32);
      expect_matches_cpu(x, dy, true);
    }
}

// Inputs whose exponentials overflow float32: the maximum must be subtracted first.
TEST(SimSoftmax, LargeInputsDoNotOverflow) {
  Generator gen(23);
  for (const std::int64_t cols : {100, 1000}) {
    const Tensor x = random_tensor({7, cols}, gen, 1000.0, 1010.0, DType::f32);
    const Tensor dy = random_tensor({7, cols}, gen, -1.0, 1.0, DType::f32);
    expect_matches_cpu(x, dy, false);
    expect_matches_cpu(x, dy, true);
  }
}

TEST(SimSoftmax, RejectsNegativeSizes) {
  EXPECT_ATTNKIT_ERROR(kern::softmax_forward(nullptr, nullptr, -1, 5, nullptr),
                       "softmax_forward: sizes must not be negative");
  EXPECT_ATTNKIT_ERROR(kern::log_softmax_backward(nullptr, nullptr, nullptr, 3, -2, nullptr),
                       "log_softmax_backward: sizes must not be negative");
}

}  // namespace
}  // namespace attnkit
