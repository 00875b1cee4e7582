// Categorical and binary cross-entropy on a device, through kernels/loss.cu.
#include "device_ops/common.h"
#include "kernels/loss.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

Tensor categorical_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits) {
  const std::int64_t rows = pred.size(0), cols = pred.size(1);
  Tensor row_losses = empty_on({rows}, pred.device());
  Tensor loss = empty_on({}, pred.device());
  kern::categorical_crossentropy_forward(floats(pred), floats(target), floats(row_losses), floats(loss), rows, cols,
                                         from_logits, stream(pred.device()));
  return loss;
}

Tensor categorical_crossentropy_backward(const Tensor& pred, const Tensor& target, float dloss, bool from_logits) {
  Tensor dpred = Tensor::empty_like(pred);
  kern::categorical_crossentropy_backward(floats(pred), floats(target), floats(dpred), pred.size(0), pred.size(1),
                                          from_logits, dloss, stream(pred.device()));
  return dpred;
}

Tensor binary_crossentropy(const Tensor& pred, const Tensor& target, bool from_logits) {
  Tensor element_losses = Tensor::empty_like(pred);
  Tensor loss = empty_on({}, pred.device());
  kern::binary_crossentropy_forward(floats(pred), floats(target), floats(element_losses), floats(loss), pred.numel(),
                                    from_logits, stream(pred.device()));
  return loss;
}

Tensor binary_crossentropy_backward(const Tensor& pred, const Tensor& target, float dloss, bool from_logits) {
  Tensor dpred = Tensor::empty_like(pred);
  kern::binary_crossentropy_backward(floats(pred), floats(target), floats(dpred), pred.numel(), from_logits, dloss,
                                     stream(pred.device()));
  return dpred;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
