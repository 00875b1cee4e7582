// Launchers of kernels/bias.cu: adding a bias along the last axis of a float32 [rows, cols]
// array in device memory, and its gradient, as ops::bias_add and ops::bias_add_backward.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// y[r, c] = x[r, c] + bias[c]; x and y [rows, cols], bias [cols].
void bias_add_forward(const float* x, const float* bias, float* y, std::int64_t rows, std::int64_t cols,
                      void* stream);
// dbias[c] = sum over r of dy[r, c] (dx is dy itself); dy [rows, cols], dbias [cols].
void bias_add_backward(const float* dy, float* dbias, std::int64_t rows, std::int64_t cols, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
