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
// sample_weight (optional; undefined: every weight 1) is [N], of pred's dtype and device: one
// weight per row (categorical) or per index of pred's first axis (binary, for all the elements
// under it). The losses are weighted and still divided by their count, as Keras's reduction
// "sum_over_batch_size" does (not by the sum of the weights):
//   categorical  loss = sum_n w_n l_n / N
//   binary       loss = sum_i w_(sample of i) l_i / numel(pred)
//
// Gradients (see linear.h for the rule): the gradient of `dloss` times the loss with respect to
// pred; clipping passes no gradient where it clipped. Targets and weights take no gradient.
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

constexpr double kKerasEpsilon = 1e-7;

Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits = false,
                                const Tensor& sample_weight = Tensor());
Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target,
                                         bool from_logits = false, double dloss = 1.0,
                                         const Tensor& sample_weight = Tensor());

Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits = false,
                           const Tensor& sample_weight = Tensor());
Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target,
                                    bool from_logits = false, double dloss = 1.0,
                                    const Tensor& sample_weight = Tensor());

}  // namespace attnkit::ops
