// Sums and means along an axis, axis reversal and axis swaps, float32, on arrays viewed as
// [outer, n, inner] (swaps: [outer, a, mid, b, inner]).
// The sum gives each block kColumnTile consecutive inner columns of one outer index, and splits
// the n summed rows among kRowLanes warps whose partial sums meet in shared memory.
#include "kernels/reduce.h"

#include "attnkit/error.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kColumnTile = 32;  // threadIdx.x: consecutive inner columns, so a warp reads a row segment
constexpr int kRowLanes = 8;     // threadIdx.y: the n rows are split among 8 warps

// y[o, i] = (sum over k of x[o, k, i]) / divisor. Block b covers outer index b / tiles and inner
// columns (b % tiles) * kColumnTile onwards.
__global__ void axis_sum_kernel(const float* x, float* y, std::int64_t n, std::int64_t inner, std::int64_t tiles,
                                float divisor) {
  AK_SHARED(float, partials, [kRowLanes][kColumnTile + 1]);  // +1: no bank conflicts when read by column
  const std::int64_t o = blockIdx.x / tiles;
  const std::int64_t i = blockIdx.x % tiles * kColumnTile + threadIdx.x;
  float sum = 0.0f;
  if (i < inner)
    for (std::int64_t k = threadIdx.y; k < n; k += kRowLanes) sum += x[(o * n + k) * inner + i];
  partials[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();  // all row lanes' partial sums are written before lane 0 adds them
  if (threadIdx.y == 0 && i < inner) {
    float total = partials[0][threadIdx.x];
    for (int lane = 1; lane < kRowLanes; ++lane) total += partials[lane][threadIdx.x];
    y[o * inner + i] = total / divisor;
  }
}

__global__ void mean_backward_kernel(const float* dy, float* dx, std::int64_t count, std::int64_t n,
                                     std::int64_t inner) {
  for (std::int64_t at = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; at < count;
       at += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t o = at / (n * inner), i = at % inner;
    dx[at] = dy[o * inner + i] / static_cast<float>(n);
  }
}

__global__ void flip_kernel(const float* x, float* y, std::int64_t count, std::int64_t n, std::int64_t inner) {
  for (std::int64_t at = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; at < count;
       at += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t o = at / (n * inner), k = at / inner % n, i = at % inner;
    y[at] = x[(o * n + (n - 1 - k)) * inner + i];
  }
}

// One thread per element of y [outer, b, mid, a, inner], reading its element of x.
__global__ void swap_axes_kernel(const float* x, float* y, std::int64_t count, std::int64_t a, std::int64_t mid,
                                 std::int64_t b, std::int64_t inner) {
  for (std::int64_t at = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; at < count;
       at += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t i = at % inner, ia = at / inner % a, m = at / (inner * a) % mid, jb = at / (inner * a * mid) % b;
    const std::int64_t o = at / (inner * a * mid * b);
    y[at] = x[(((o * a + ia) * mid + m) * b + jb) * inner + i];
  }
}

void check_sizes(const char* op, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  ATTNKIT_CHECK(outer >= 0 && n >= 0 && inner >= 0, op, ": sizes must not be negative, got outer ", outer, ", n ", n,
                ", inner ", inner);
}

void check_mean_sizes(const char* op, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  check_sizes(op, outer, n, inner);
  ATTNKIT_CHECK(n > 0, op, ": the mean of an empty axis is undefined");
}

void launch_axis_sum(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, float divisor,
                     void* stream) {
  if (outer == 0 || inner == 0) return;
  const std::int64_t tiles = (inner + kColumnTile - 1) / kColumnTile;
  AK_LAUNCH(axis_sum_kernel, static_cast<unsigned>(outer * tiles), dim3(kColumnTile, kRowLanes), 0,
            ak::as_stream(stream), x, y, n, inner, tiles, divisor);
}

}  // namespace

void sum_forward(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream) {
  check_sizes("sum_forward", outer, n, inner);
  launch_axis_sum(x, y, outer, n, inner, 1.0f, stream);  // dividing by 1 is exact
}

void mean_forward(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream) {
  check_mean_sizes("mean_forward", outer, n, inner);
  launch_axis_sum(x, y, outer, n, inner, static_cast<float>(n), stream);
}

void mean_backward(const float* dy, float* dx, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream) {
  check_mean_sizes("mean_backward", outer, n, inner);
  const std::int64_t count = outer * n * inner;
  if (count == 0) return;
  AK_LAUNCH(mean_backward_kernel, ak::grid_stride_blocks(count, kThreads), kThreads, 0, ak::as_stream(stream), dy, dx, count, n, inner);
}

void flip(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream) {
  check_sizes("flip", outer, n, inner);
  const std::int64_t count = outer * n * inner;
  if (count == 0) return;
  AK_LAUNCH(flip_kernel, ak::grid_stride_blocks(count, kThreads), kThreads, 0, ak::as_stream(stream), x, y, count, n, inner);
}

void swap_axes(const float* x, float* y, std::int64_t outer, std::int64_t a, std::int64_t mid, std::int64_t b,
               std::int64_t inner, void* stream) {
  ATTNKIT_CHECK(outer >= 0 && a >= 0 && mid >= 0 && b >= 0 && inner >= 0,
                "swap_axes: sizes must not be negative, got outer ", outer, ", a ", a, ", mid ", mid, ", b ", b,
                ", inner ", inner);
  const std::int64_t count = outer * a * mid * b * inner;
  if (count == 0) return;
  AK_LAUNCH(swap_axes_kernel, ak::grid_stride_blocks(count, kThreads), kThreads, 0, ak::as_stream(stream), x, y, count,
            a, mid, b, inner);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
