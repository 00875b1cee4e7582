// attnkit/ops/shape.h: flattening and concatenation.
//
// Shapes:
//   flatten   x [B, d1, d2, ...] -> [B, d1 * d2 * ...], a view of x (no copy)
//   concat    xs[i] with equal extents except along `axis` -> their extents summed on `axis`
//   transpose x with axes a and b swapped (Keras's Permute for two axes), a copy
//
// Gradients (see linear.h for the rule):
//   flatten_backward: dy reshaped to the input shape (a view of dy)
//   concat_backward: dy split along `axis` into pieces of the inputs' extents
//   transpose: its own inverse, dx = transpose(dy, a, b)
#pragma once

#include <vector>

#include "attnkit/tensor.h"

namespace attnkit::ops {

Tensor flatten(const Tensor& x);
Tensor flatten_backward(const Tensor& dy, const Shape& input_shape);

Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis = -1);
// `extents` are the inputs' extents along `axis`, in order.
std::vector<Tensor> concat_backward(const Tensor& dy, const std::vector<std::int64_t>& extents,
                                    std::int64_t axis = -1);

Tensor transpose(const Tensor& x, std::int64_t axis_a, std::int64_t axis_b);

}  // namespace attnkit::ops
