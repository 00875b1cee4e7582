// Launchers of kernels/elementwise.cu: activations and their gradients, products and sums, on
// n float32 elements in device memory. Softmax over an axis is in softmax.h.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// The elementwise activations of ops::Activation (softmax excepted), by the same numbers.
enum class PointwiseActivation : int { linear = 0, relu = 1, tanh = 2, sigmoid = 3 };

// y = f(x).
void activation_forward(const float* x, float* y, std::int64_t n, PointwiseActivation kind, void* stream);
// dx = dy * f'(x), written with the forward's output y (see ops/elementwise.h).
void activation_backward(const float* y, const float* dy, float* dx, std::int64_t n, PointwiseActivation kind,
                         void* stream);
// y = a * b; y = a + b.
void multiply_forward(const float* a, const float* b, float* y, std::int64_t n, void* stream);
void add_forward(const float* a, const float* b, float* y, std::int64_t n, void* stream);
// da = dy * b, db = dy * a.
void multiply_backward(const float* a, const float* b, const float* dy, float* da, float* db, std::int64_t n,
                       void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
