// attnkit/ops/cast.h: conversion between the floating dtypes, on every device.
//
//   y = cast(x, dtype): x's elements in `dtype`, same shape and device; widening is exact and
//   narrowing rounds to nearest, ties to even, as Tensor::to does on the cpu and the cvt.rn
//   instructions on a GPU (the two agree bit for bit). When x already has `dtype`, y is x itself
//   (the same storage), as with Tensor::to.
//   cpu: f32, f64, f16 and bf16 to any of them; cuda and sim: f32, f16 and bf16
//   (kernels/cast.cu), where Tensor::to would copy to the host and back.
//
// Gradient: the op is its own backward: dx = cast(dy, x.dtype()).
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

Tensor cast(const Tensor& x, DType dtype);

}  // namespace attnkit::ops
