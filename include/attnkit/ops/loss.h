// attnkit/ops/loss.h: the cross-entropy losses of Keras, averaged over the batch.
//
// Shapes: pred and target of one shape -> a scalar tensor (shape []).
//   categorical_crossentropy  pred, target [N, C]; target rows are distributions (one-hot labels)
//     from probabilities (Keras's default): p = pred / sum_c pred, clipped to [eps, 1 - eps],
//       loss = mean_n( -sum_c target log p )
//     from logits: loss = mean_n( -sum_c target log_softmax(pred) )
//   binary_crossentropy  pred, target [...] with target in [0, 1]
//     from probabilities: p = clip(pred, eps, 1 - eps),
//       loss = mean( -(target log(p + eps) + (1 - target) log(1 - p + eps)) )
//     from logits: loss = mean( max(z, 0) - z target + log(1 + exp(-|z|)) )
// eps is Keras's epsilon, 1e-7. The mean runs over all elements but the class axis (categorical)
// or over all elements (binary), as Keras's mean over the last axis and then the batch.
//
// Gradients (see linear.h for the rule): the gradient of `dloss` times the loss with respect to
// pred; clipping passes no gradient where it clipped. Targets take no gradient.
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

constexpr double kKerasEpsilon = 1e-7;

Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits = false);
Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target,
                                         bool from_logits = false, double dloss = 1.0);

Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits = false);
Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target,
                                    bool from_logits = false, double dloss = 1.0);

}  // namespace attnkit::ops
