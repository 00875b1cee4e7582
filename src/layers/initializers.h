// Internal: Keras's weight initialisers, drawn from attnkit's Philox generator.
//
//   glorot_uniform   U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); fans as Keras computes them:
//                    a vector [n] has fan_in = fan_out = n; a matrix [in, out]; a Conv1D kernel
//                    [k, in, out] has fan_in = k in, fan_out = k out
//   orthogonal       a matrix with orthonormal rows or columns: Gram-Schmidt on a normal matrix
//                    (Keras takes the QR factor with a positive diagonal of R: the same thing)
//   embedding        U(-0.05, 0.05)
#pragma once

#include "attnkit/random.h"
#include "attnkit/tensor.h"

namespace attnkit::layers {

Tensor glorot_uniform(const Shape& shape, Generator& gen);
Tensor orthogonal(std::int64_t rows, std::int64_t cols, Generator& gen);

}  // namespace attnkit::layers
