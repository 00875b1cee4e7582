// Launchers of kernels/conv.cu: the im2col layout of a 1-D convolution and its adjoint, and 1-D
// max pooling, on float32 channels-last arrays [B, T, C] in device memory, as ops/conv.h computes
// them. The convolution itself is a matrix product of the im2col rows with the kernel.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// The shape of a convolution or a pooling over time: x [batch, steps, channels] read through
// windows of `window` steps every `stride` steps, the first starting at step -left (steps
// outside [0, steps) are padding); out_steps windows.
struct WindowDims {
  std::int64_t batch, steps, channels, window, stride, left, out_steps;
};

// cols [batch * out_steps, window * channels]: cols[(b, t), (k, c)] = x[b, t stride + k - left, c],
// 0 on padding.
void im2col(const float* x, float* cols, const WindowDims& d, void* stream);
// The adjoint: dx[b, s, c] = sum over the (t, k) with t stride + k - left = s of
// dcols[(b, t), (k, c)]; every element of dx is written.
void col2im(const float* dcols, float* dx, const WindowDims& d, void* stream);
// y [batch, out_steps, channels] = the window's maximum (padding never wins; ties go to the
// earliest step), argmax the step it came from.
void max_pool1d_forward(const float* x, float* y, std::int32_t* argmax, const WindowDims& d, void* stream);
// dx [batch, steps, channels] = zeros, then dx[b, argmax[b, t, c], c] += dy[b, t, c] for every
// (b, t, c) of dy [batch, out_steps, channels] (overlapping windows add in a varying order).
void max_pool1d_backward(const float* dy, const std::int32_t* argmax, float* dx, std::int64_t batch,
                         std::int64_t steps, std::int64_t out_steps, std::int64_t channels, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
