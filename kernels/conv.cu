// The im2col layout, its adjoint and max pooling over time, float32, channels last. One thread
// per output element, grid-stride. col2im gathers (each dx element sums the windows that read
// it), so its sums have a fixed order; the pooling's backward scatters to the argmax steps.
#include "kernels/conv.h"

#include "attnkit/error.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;

AK_DEVICE std::int64_t first_index() { return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; }
AK_DEVICE std::int64_t grid_stride() { return static_cast<std::int64_t>(blockDim.x) * gridDim.x; }

// The windows t that read step s: t stride + k - left = s for some k in [0, window), t in
// [0, out_steps). Returns [first, last]; empty when first > last.
AK_DEVICE void windows_reading(const WindowDims& d, std::int64_t s, std::int64_t& first, std::int64_t& last) {
  // t stride >= s + left - window + 1  and  t stride <= s + left.
  const std::int64_t low = s + d.left - d.window + 1;
  first = low <= 0 ? 0 : (low + d.stride - 1) / d.stride;
  last = (s + d.left) / d.stride;
  if (last > d.out_steps - 1) last = d.out_steps - 1;
}

__global__ void im2col_kernel(const float* x, float* cols, WindowDims d) {
  const std::int64_t width = d.window * d.channels, total = d.batch * d.out_steps * width;
  for (std::int64_t i = first_index(); i < total; i += grid_stride()) {
    const std::int64_t row = i / width, column = i % width;
    const std::int64_t b = row / d.out_steps, t = row % d.out_steps;
    const std::int64_t k = column / d.channels, c = column % d.channels;
    const std::int64_t s = t * d.stride + k - d.left;
    cols[i] = (s >= 0 && s < d.steps) ? x[(b * d.steps + s) * d.channels + c] : 0.0f;
  }
}

__global__ void col2im_kernel(const float* dcols, float* dx, WindowDims d) {
  const std::int64_t width = d.window * d.channels, total = d.batch * d.steps * d.channels;
  for (std::int64_t i = first_index(); i < total; i += grid_stride()) {
    const std::int64_t c = i % d.channels, s = (i / d.channels) % d.steps, b = i / (d.channels * d.steps);
    std::int64_t first = 0, last = -1;
    windows_reading(d, s, first, last);
    float sum = 0.0f;
    for (std::int64_t t = first; t <= last; ++t) {
      const std::int64_t k = s + d.left - t * d.stride;
      sum += dcols[(b * d.out_steps + t) * width + k * d.channels + c];
    }
    dx[i] = sum;
  }
}

__global__ void max_pool1d_forward_kernel(const float* x, float* y, std::int32_t* argmax, WindowDims d) {
  const std::int64_t total = d.batch * d.out_steps * d.channels;
  for (std::int64_t i = first_index(); i < total; i += grid_stride()) {
    const std::int64_t c = i % d.channels, t = (i / d.channels) % d.out_steps, b = i / (d.channels * d.out_steps);
    std::int64_t begin = t * d.stride - d.left, end = begin + d.window;
    if (begin < 0) begin = 0;
    if (end > d.steps) end = d.steps;
    std::int64_t best_step = begin;
    float best = -INFINITY;
    for (std::int64_t s = begin; s < end; ++s) {
      const float v = x[(b * d.steps + s) * d.channels + c];
      if (v > best) {
        best = v;
        best_step = s;
      }
    }
    y[i] = x[(b * d.steps + best_step) * d.channels + c];
    argmax[i] = static_cast<std::int32_t>(best_step);
  }
}

__global__ void zero_kernel(float* x, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_stride()) x[i] = 0.0f;
}

__global__ void max_pool1d_backward_kernel(const float* dy, const std::int32_t* argmax, float* dx, std::int64_t total,
                                           std::int64_t steps, std::int64_t out_steps, std::int64_t channels) {
  for (std::int64_t i = first_index(); i < total; i += grid_stride()) {
    const std::int64_t c = i % channels, b = i / (channels * out_steps);
    ak::atomic_add(&dx[(b * steps + argmax[i]) * channels + c], dy[i]);
  }
}

void check_dims(const char* op, const WindowDims& d) {
  ATTNKIT_CHECK(d.batch >= 0 && d.steps >= 0 && d.channels >= 0 && d.out_steps >= 0 && d.left >= 0 &&
                    d.window >= 1 && d.stride >= 1,
                op, ": invalid window dims (batch ", d.batch, ", steps ", d.steps, ", channels ", d.channels,
                ", window ", d.window, ", stride ", d.stride, ", left ", d.left, ", out_steps ", d.out_steps, ")");
}

}  // namespace

void im2col(const float* x, float* cols, const WindowDims& d, void* stream) {
  check_dims("im2col", d);
  const std::int64_t total = d.batch * d.out_steps * d.window * d.channels;
  if (total == 0) return;
  AK_LAUNCH(im2col_kernel, ak::grid_stride_blocks(total, kThreads), kThreads, 0, ak::as_stream(stream), x, cols, d);
}

void col2im(const float* dcols, float* dx, const WindowDims& d, void* stream) {
  check_dims("col2im", d);
  const std::int64_t total = d.batch * d.steps * d.channels;
  if (total == 0) return;
  AK_LAUNCH(col2im_kernel, ak::grid_stride_blocks(total, kThreads), kThreads, 0, ak::as_stream(stream), dcols, dx, d);
}

void max_pool1d_forward(const float* x, float* y, std::int32_t* argmax, const WindowDims& d, void* stream) {
  check_dims("max_pool1d_forward", d);
  const std::int64_t total = d.batch * d.out_steps * d.channels;
  if (total == 0) return;
  AK_LAUNCH(max_pool1d_forward_kernel, ak::grid_stride_blocks(total, kThreads), kThreads, 0, ak::as_stream(stream), x,
            y, argmax, d);
}

void max_pool1d_backward(const float* dy, const std::int32_t* argmax, float* dx, std::int64_t batch,
                         std::int64_t steps, std::int64_t out_steps, std::int64_t channels, void* stream) {
  ATTNKIT_CHECK(batch >= 0 && steps >= 0 && out_steps >= 0 && channels >= 0,
                "max_pool1d_backward: sizes must not be negative");
  const std::int64_t input_size = batch * steps * channels, total = batch * out_steps * channels;
  if (input_size == 0) return;
  AK_LAUNCH(zero_kernel, ak::grid_stride_blocks(input_size, kThreads), kThreads, 0, ak::as_stream(stream), dx,
            input_size);
  if (total == 0) return;
  // Overlapping windows (stride < pool) may pick one step twice.
  const ak::UnorderedSums unordered(1e-6);
  AK_LAUNCH(max_pool1d_backward_kernel, ak::grid_stride_blocks(total, kThreads), kThreads, 0, ak::as_stream(stream),
            dy, argmax, dx, total, steps, out_steps, channels);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
