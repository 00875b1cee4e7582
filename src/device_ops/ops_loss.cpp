// Categorical and binary cross-entropy on a device, through kernels/loss.cu, weighted per sample
// or not.
#include "device_ops/common.h"
#include "kernels/loss.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

namespace {

// The weights' values, or nullptr when there are none.
const float* weights_or_null(const Tensor& sample_weight) {
  return sample_weight.defined() ? floats(sample_weight) : nullptr;
}

// The binary loss's elements under each weight: those of one sample.
std::int64_t elements_per_weight(const Tensor& pred, const Tensor& sample_weight) {
  return sample_weight.defined() ? pred.numel() / pred.size(0) : 1;
}

}  // namespace

Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits,
                                const Tensor& sample_weight) {
  const std::int64_t rows = pred.size(0), cols = pred.size(1);
  Tensor row_losses = empty_on({rows}, pred.device());
  Tensor loss = empty_on({}, pred.device());
  kern::categorical_crossentropy_forward(floats(pred), floats(target), weights_or_null(sample_weight),
                                         floats(row_losses), floats(loss), rows, cols, from_logits,
                                         stream(pred.device()));
  return loss;
}

Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target, float dloss, bool from_logits,
                                         const Tensor& sample_weight) {
  Tensor dpred = Tensor::empty_like(pred);
  kern::categorical_crossentropy_backward(floats(pred), floats(target), weights_or_null(sample_weight), floats(dpred),
                                          pred.size(0), pred.size(1), from_logits, dloss, stream(pred.device()));
  return dpred;
}

Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits, const Tensor& sample_weight) {
  Tensor element_losses = Tensor::empty_like(pred);
  Tensor loss = empty_on({}, pred.device());
  kern::binary_crossentropy_forward(floats(pred), floats(target), weights_or_null(sample_weight),
                                    elements_per_weight(pred, sample_weight), floats(element_losses), floats(loss),
                                    pred.numel(), from_logits, stream(pred.device()));
  return loss;
}

Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target, float dloss, bool from_logits,
                                    const Tensor& sample_weight) {
  Tensor dpred = Tensor::empty_like(pred);
  kern::binary_crossentropy_backward(floats(pred), floats(target), weights_or_null(sample_weight),
                                     elements_per_weight(pred, sample_weight), floats(dpred), pred.numel(), from_logits,
                                     dloss, stream(pred.device()));
  return dpred;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
