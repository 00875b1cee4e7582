// Bias addition, float32: the forward one thread per element; the backward sums dy over rows
// with blocks of kColumnTile x kRowLanes threads, each block owning kColumnTile columns.
#include "kernels/bias.h"

#include "attnkit/error.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kColumnTile = 32;  // threadIdx.x: consecutive columns, so a warp reads a row segment
constexpr int kRowLanes = 8;     // threadIdx.y: the rows are split among 8 warps


__global__ void bias_add_forward_kernel(const float* x, const float* bias, float* y, std::int64_t n,
                                        std::int64_t cols) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    y[i] = x[i] + bias[i % cols];
}

// Thread (x, y) sums rows y, y + kRowLanes, ... of column x of the block's tile; the kRowLanes
// partial sums of each column then meet in shared memory and row lane 0 adds them in order.
__global__ void bias_add_backward_kernel(const float* dy, float* dbias, std::int64_t rows, std::int64_t cols) {
  AK_SHARED(float, partials, [kRowLanes][kColumnTile + 1]);  // +1: no bank conflicts when read by column
  const std::int64_t col = static_cast<std::int64_t>(blockIdx.x) * kColumnTile + threadIdx.x;
  float sum = 0.0f;
  if (col < cols)
    for (std::int64_t r = threadIdx.y; r < rows; r += kRowLanes) sum += dy[r * cols + col];
  partials[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();  // all row lanes' partial sums are written before lane 0 adds them
  if (threadIdx.y == 0 && col < cols) {
    float total = partials[0][threadIdx.x];
    for (int lane = 1; lane < kRowLanes; ++lane) total += partials[lane][threadIdx.x];
    dbias[col] = total;
  }
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
  if (cols == 0) return;
  // With no rows the sums are zero; the kernel writes them like any other.
  const unsigned tiles = static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile);
  AK_LAUNCH(bias_add_backward_kernel, tiles, dim3(kColumnTile, kRowLanes), 0, ak::as_stream(stream), dy, dbias, rows,
            cols);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
