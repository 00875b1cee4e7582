// Launchers of kernels/reduce.cu: the sum and the mean along an axis, the mean's gradient, the reversal of
// an axis and the swap of two axes, on float32 arrays in device memory, as ops/reduce.h and
// ops/shape.h compute them. The array is
// viewed as [outer, n, inner] around the axis: the mean over time of [B, T, D] is outer = B,
// n = T, inner = D.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// y[o, i] = sum over k of x[o, k, i]; x [outer, n, inner], y [outer, inner]; n = 0 gives zeros.
void sum_forward(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream);
// y[o, i] = sum over k of x[o, k, i] / n; x [outer, n, inner], y [outer, inner]; n > 0.
void mean_forward(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream);
// dx[o, k, i] = dy[o, i] / n; dy [outer, inner], dx [outer, n, inner]; n > 0.
void mean_backward(const float* dy, float* dx, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream);
// y[o, k, i] = x[o, n - 1 - k, i]; its own gradient. x and y must not overlap.
void flip(const float* x, float* y, std::int64_t outer, std::int64_t n, std::int64_t inner, void* stream);

// y [outer, b, mid, a, inner] = x [outer, a, mid, b, inner] with the axes of sizes a and b
// swapped (ops::transpose); its own gradient. x and y must not overlap.
void swap_axes(const float* x, float* y, std::int64_t outer, std::int64_t a, std::int64_t mid, std::int64_t b,
               std::int64_t inner, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
