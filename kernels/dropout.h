// Launchers of kernels/dropout.cu: inverted dropout with the Philox mask of attnkit/random.h,
// float32 in device memory, computing the same mask and values as ops::dropout.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// mask_i = uniform_i >= rate (1 = kept), y_i = mask_i ? x_i / (1 - rate) : 0, for i in [0, n),
// where uniform_i is number i of the Philox stream of `seed` starting at block `offset`: the
// caller reserves the blocks (Generator::reserve(n)) and passes the offset it returns.
// rate in [0, 1).
void dropout_forward(const float* x, float* y, std::uint8_t* mask, std::int64_t n, double rate, std::uint64_t seed,
                     std::uint64_t offset, void* stream);
// dx_i = mask_i ? dy_i / (1 - rate) : 0.
void dropout_backward(const float* dy, const std::uint8_t* mask, float* dx, std::int64_t n, double rate,
                      void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
