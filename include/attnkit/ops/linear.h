// attnkit/ops/linear.h: matrix products, the Dense transform and bias addition.
//
// Shapes (row-major; "..." is any number of leading axes, flattened into rows):
//   matmul         a [M, K] (or [K, M] transposed), b [K, N] (or [N, K] transposed) -> [M, N];
//                  batched: a [B, M, K], b [B, K, N] -> [B, M, N]
//   linear         x [..., in], weight [in, out] (Keras's Dense kernel), bias [out] -> [..., out]
//   bias_add       x [..., C], bias [C] -> [..., C]
//
// Gradient rule for every op in attnkit: a backward function returns fresh tensors, the gradient
// of the loss with respect to each input and each parameter, given the gradient with respect to
// the outputs. Callers that accumulate (several uses of one parameter) add them up.
//   matmul:  da = dc b^T, db = a^T dc (transposes follow the flags)
//   linear:  dx = dy weight^T, dweight = x^T dy (rows flattened), dbias = sum of dy over rows
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

struct MatmulGrads {
  Tensor da, db;
};
MatmulGrads matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc,
                            bool transpose_a = false, bool transpose_b = false);

// `bias` may be undefined (no bias).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

struct LinearGrads {
  Tensor dx, dweight, dbias;  // dbias undefined when there was no bias
};
// needs_dx false skips the input gradient (dx undefined): the product that makes it is the
// largest of the three, and a layer after a frozen embedding does not need it.
LinearGrads linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy,
                            bool has_bias = true, bool needs_dx = true);

Tensor bias_add(const Tensor& x, const Tensor& bias);
// dx is dy itself; the bias gradient sums dy over all leading axes.
Tensor bias_add_backward(const Tensor& dy);

}  // namespace attnkit::ops
