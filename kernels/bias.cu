// Bias addition, float32: the forward one thread per element; the backward is the column sums
// of dy (reduce.cu's axis sum).
#include "kernels/bias.h"

#include "attnkit/error.h"
#include "kernels/dialect.h"
#include "kernels/reduce.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;

__global__ void bias_add_forward_kernel(const float* x, const float* bias, float* y, std::int64_t n,
                                        std::int64_t cols) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    y[i] = x[i] + bias[i % cols];
}

void check_sizes(const char* op, std::int64_t rows, std::int64_t cols) {
  ATTNKIT_CHECK(rows >= 0 && cols >= 0, op, ": sizes must not be negative, got rows ", rows, ", cols ", cols);
}

}  // namespace

void bias_add_forward(const float* x, const float* bias, float* y, std::int64_t rows, std::int64_t cols,
                      void* stream) {
  check_sizes("bias_add_forward", rows, cols);
  if (rows == 0 || cols == 0) return;
  AK_LAUNCH(bias_add_forward_kernel, ak::grid_stride_blocks(rows * cols, kThreads), kThreads, 0, ak::as_stream(stream), x, bias, y, rows * cols,
            cols);
}

void bias_add_backward(const float* dy, float* dbias, std::int64_t rows, std::int64_t cols, void* stream) {
  check_sizes("bias_add_backward", rows, cols);
  sum_forward(dy, dbias, 1, rows, cols, stream);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
