// attnkit/ops/softmax.h: softmax and log-softmax along any axis.
//
// Shapes: x of any shape -> y of the same shape, normalised along `axis` (negative counts from
// the end). Both subtract the maximum along the axis first, so no finite input overflows.
//   softmax:      y_i = exp(x_i - m) / sum_j exp(x_j - m)
//   log_softmax:  y_i = x_i - m - log(sum_j exp(x_j - m))
//
// Gradients, from the forward's output y (see linear.h for the rule):
//   softmax:      dx_i = y_i (dy_i - sum_j dy_j y_j)
//   log_softmax:  dx_i = dy_i - exp(y_i) sum_j dy_j
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor softmax_backward(const Tensor& y, const Tensor& dy, std::int64_t axis = -1);

Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy, std::int64_t axis = -1);

}  // namespace attnkit::ops
