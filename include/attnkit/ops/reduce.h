// attnkit/ops/reduce.h: means along an axis, and reversal of an axis.
//
// Shapes:
//   mean   x [..., n, ...] -> the same shape without `axis`; y = sum over the axis / n
//   flip   x -> x with the order along `axis` reversed (Keras's go_backwards sequences)
//
// Gradients (see linear.h for the rule):
//   mean_backward: dx = dy / n, repeated along the axis
//   flip: its own inverse, dx = flip(dy, axis)
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

Tensor mean(const Tensor& x, std::int64_t axis);
Tensor mean_backward(const Tensor& dy, const Shape& input_shape, std::int64_t axis);

Tensor flip(const Tensor& x, std::int64_t axis);

}  // namespace attnkit::ops
