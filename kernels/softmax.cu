// Softmax and log-softmax over the last axis, float32. Rows of at most kWarpRowCols columns go
// one warp per row (shuffles only); longer rows one block per row, reduced by shuffles within
// each warp and then across the warps through shared memory.
#include "kernels/softmax.h"

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kBlockThreads = 256;  // the block-per-row kernels: 8 warps
constexpr int kBlockWarps = kBlockThreads / ak::kWarpSize;
constexpr int kWarpsPerBlock = 4;  // the warp-per-row kernels: 4 rows per block
constexpr std::int64_t kWarpRowCols = 128;

// One row per block of kBlockThreads threads.
__global__ void softmax_forward_block_kernel(const float* x, float* y, std::int64_t cols, bool log) {
  AK_SHARED(float, max_partials, [kBlockWarps]);
  AK_SHARED(float, sum_partials, [kBlockWarps]);
  const float* x_row = x + blockIdx.x * cols;
  float* y_row = y + blockIdx.x * cols;
  float max = -INFINITY;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) max = ak::MaxOf()(max, x_row[c]);
  max = ak::block_reduce<kBlockWarps>(max, max_partials, ak::MaxOf());
  float sum = 0.0f;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(x_row[c] - max);
  sum = ak::block_reduce<kBlockWarps>(sum, sum_partials, ak::SumOf());
  const float log_sum = logf(sum);
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    y_row[c] = log ? x_row[c] - max - log_sum : expf(x_row[c] - max) / sum;
}

// One row per warp, kWarpsPerBlock rows per block.
__global__ void softmax_forward_warp_kernel(const float* x, float* y, std::int64_t rows, std::int64_t cols, bool log) {
  const std::int64_t row = ak::warp_row();
  if (row >= rows) return;  // the whole warp leaves together
  const float* x_row = x + row * cols;
  float* y_row = y + row * cols;
  const unsigned lane = ak::lane_id();
  float max = -INFINITY;
  for (std::int64_t c = lane; c < cols; c += ak::kWarpSize) max = ak::MaxOf()(max, x_row[c]);
  max = ak::warp_reduce(max, ak::MaxOf());
  float sum = 0.0f;
  for (std::int64_t c = lane; c < cols; c += ak::kWarpSize) sum += expf(x_row[c] - max);
  sum = ak::warp_reduce(sum, ak::SumOf());
  const float log_sum = logf(sum);
  for (std::int64_t c = lane; c < cols; c += ak::kWarpSize)
    y_row[c] = log ? x_row[c] - max - log_sum : expf(x_row[c] - max) / sum;
}

// The sum the backward needs: dy_j y_j for softmax, dy_j for log-softmax.
AK_DEVICE float backward_term(float y, float dy, bool log) { return log ? dy : dy * y; }
AK_DEVICE float backward_dx(float y, float dy, float dot, bool log) { return log ? dy - expf(y) * dot : y * (dy - dot); }

__global__ void softmax_backward_block_kernel(const float* y, const float* dy, float* dx, std::int64_t cols,
                                              bool log) {
  AK_SHARED(float, partials, [kBlockWarps]);
  const std::int64_t offset = static_cast<std::int64_t>(blockIdx.x) * cols;
  float dot = 0.0f;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) dot += backward_term(y[offset + c], dy[offset + c], log);
  dot = ak::block_reduce<kBlockWarps>(dot, partials, ak::SumOf());
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dx[offset + c] = backward_dx(y[offset + c], dy[offset + c], dot, log);
}

__global__ void softmax_backward_warp_kernel(const float* y, const float* dy, float* dx, std::int64_t rows,
                                             std::int64_t cols, bool log) {
  const std::int64_t row = ak::warp_row();
  if (row >= rows) return;  // the whole warp leaves together
  const std::int64_t offset = row * cols;
  const unsigned lane = ak::lane_id();
  float dot = 0.0f;
  for (std::int64_t c = lane; c < cols; c += ak::kWarpSize) dot += backward_term(y[offset + c], dy[offset + c], log);
  dot = ak::warp_reduce(dot, ak::SumOf());
  for (std::int64_t c = lane; c < cols; c += ak::kWarpSize)
    dx[offset + c] = backward_dx(y[offset + c], dy[offset + c], dot, log);
}

void check_sizes(const char* op, std::int64_t rows, std::int64_t cols) {
  ATTNKIT_CHECK(rows >= 0 && cols >= 0, op, ": sizes must not be negative, got rows ", rows, ", cols ", cols);
}

void forward(const char* op, const float* x, float* y, std::int64_t rows, std::int64_t cols, bool log, void* stream) {
  check_sizes(op, rows, cols);
  if (rows == 0 || cols == 0) return;
  if (cols <= kWarpRowCols)
    AK_LAUNCH(softmax_forward_warp_kernel, ak::warp_row_blocks(rows, kWarpsPerBlock * ak::kWarpSize), kWarpsPerBlock * ak::kWarpSize, 0,
              ak::as_stream(stream), x, y, rows, cols, log);
  else
    AK_LAUNCH(softmax_forward_block_kernel, static_cast<unsigned>(rows), kBlockThreads, 0, ak::as_stream(stream), x, y,
              cols, log);
}

void backward(const char* op, const float* y, const float* dy, float* dx, std::int64_t rows, std::int64_t cols,
              bool log, void* stream) {
  check_sizes(op, rows, cols);
  if (rows == 0 || cols == 0) return;
  if (cols <= kWarpRowCols)
    AK_LAUNCH(softmax_backward_warp_kernel, ak::warp_row_blocks(rows, kWarpsPerBlock * ak::kWarpSize), kWarpsPerBlock * ak::kWarpSize, 0,
              ak::as_stream(stream), y, dy, dx, rows, cols, log);
  else
    AK_LAUNCH(softmax_backward_block_kernel, static_cast<unsigned>(rows), kBlockThreads, 0, ak::as_stream(stream), y, dy,
              dx, cols, log);
}

}  // namespace

void softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t cols, void* stream) {
  forward("softmax_forward", x, y, rows, cols, false, stream);
}

void softmax_backward(const float* y, const float* dy, float* dx, std::int64_t rows, std::int64_t cols,
                      void* stream) {
  backward("softmax_backward", y, dy, dx, rows, cols, false, stream);
}

void log_softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t cols, void* stream) {
  forward("log_softmax_forward", x, y, rows, cols, true, stream);
}

void log_softmax_backward(const float* y, const float* dy, float* dx, std::int64_t rows, std::int64_t cols,
                          void* stream) {
  backward("log_softmax_backward", y, dy, dx, rows, cols, true, stream);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
