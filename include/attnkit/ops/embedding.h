// attnkit/ops/embedding.h: token ids to vectors.
//
// Shapes: ids [...] i32 with values in [0, V), table [V, E] -> y [..., E], y[..., :] = table[id].
// An id outside [0, V) is an error that names its position.
//
// Gradient (see linear.h for the rule): dtable = scatter-add of dy rows into the rows of their
// ids (an id that appears twice receives both rows); ids take no gradient. A frozen embedding
// (Keras trainable=False) is one whose layer never asks for dtable.
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

Tensor embedding(const Tensor& ids, const Tensor& table);
Tensor embedding_backward(const Tensor& ids, const Tensor& dy, std::int64_t vocabulary_size);

}  // namespace attnkit::ops
