// Launchers of kernels/softmax.cu: softmax and log-softmax over the last axis of a float32
// [rows, cols] array in device memory, forward and backward, as ops/softmax.h computes them.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// y = softmax(x) along each row; x and y [rows, cols].
void softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t cols, void* stream);
// dx_i = y_i (dy_i - sum_j dy_j y_j), from the forward's output y.
void softmax_backward(const float* y, const float* dy, float* dx, std::int64_t rows, std::int64_t cols,
                      void* stream);
// y = log_softmax(x) along each row.
void log_softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t cols, void* stream);
// dx_i = dy_i - exp(y_i) sum_j dy_j, from the forward's output y.
void log_softmax_backward(const float* y, const float* dy, float* dx, std::int64_t rows, std::int64_t cols,
                          void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
