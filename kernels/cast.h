// Launchers of kernels/cast.cu: converting n elements between the float formats of device
// memory (f32, f16, bf16), as ops::cast.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

enum class FloatFormat : int { f32 = 0, f16 = 1, bf16 = 2 };

// y[i] = x[i] converted from `from` to `to`: widening is exact, narrowing rounds to nearest,
// ties to even (cvt.rn), as attnkit's host conversions do. x and y must not overlap.
void cast(const void* x, FloatFormat from, void* y, FloatFormat to, std::int64_t n, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
