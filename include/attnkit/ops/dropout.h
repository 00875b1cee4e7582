// attnkit/ops/dropout.h: inverted dropout with a counter-based mask.
//
// Shapes: x of any shape -> y of the same shape, and a u8 mask of that shape (1 = kept).
//   keep_i = uniform_i >= rate, where uniform_i is number i of the Philox stream drawn from
//   `generator` (random.h); y_i = keep_i ? x_i / (1 - rate) : 0.
// Because uniform_i depends only on (seed, offset, i), a GPU kernel computes the same mask.
// As in Keras, dropout is only applied in training; at inference the layer skips the op.
//
// Gradient (see linear.h for the rule): dx_i = keep_i ? dy_i / (1 - rate) : 0.
#pragma once

#include <cstdint>

#include "attnkit/tensor.h"

namespace attnkit::ops {

struct DropoutResult {
  Tensor y;
  Tensor mask;  // u8, same shape as x
};
// rate in [0, 1).
DropoutResult dropout(const Tensor& x, double rate, Generator& generator);
// The same with the stream given: uniform_i is number i of the Philox stream of `seed` from block
// `offset` (four numbers a block; Generator::reserve hands out offsets). Rows of a larger tensor
// whose first element is number 4k of that tensor's stream take offset + k, and so draw their
// part of its mask.
DropoutResult dropout(const Tensor& x, double rate, std::uint64_t seed, std::uint64_t offset);
Tensor dropout_backward(const Tensor& dy, const Tensor& mask, double rate);

}  // namespace attnkit::ops
