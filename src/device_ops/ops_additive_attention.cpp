// Additive tanh-softmax pooling on a device: fused (kernels/additive_attention.cu: one kernel
// forward, one backward, then the batch sums of the parameters' gradients), and the epsilon
// softmax of kernels/masked_softmax.cu, the one step of the unfused path that is not an op
// (the others are, in src/ops/attention.cpp).
#include "device_ops/common.h"
#include "kernels/additive_attention.h"
#include "kernels/masked_softmax.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;
namespace {

kern::AdditiveAttentionShape shape_of(const Tensor& x, bool return_sequences) {
  return {x.size(0), x.size(1), x.size(2), return_sequences};
}
const float* floats_or_null(const Tensor& t) { return t.defined() ? floats(t) : nullptr; }

}  // namespace

std::string additive_attention_unfit(const Tensor& x) {
  if (x.numel() == 0) return detail::concat("the fused kernels take no empty x, got ", x.describe());
  if (x.size(2) > kern::kAdditiveAttentionMaxFeatures)
    return detail::concat("the fused kernels take at most ", kern::kAdditiveAttentionMaxFeatures, " features, got ",
                          x.size(2));
  return "";
}

ops::AdditiveAttentionResult additive_attention(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mask,
                                                bool return_sequences, double epsilon) {
  const Device device = x.device();
  ops::AdditiveAttentionResult r;
  r.y = return_sequences ? Tensor::empty_like(x) : empty_on({x.size(0), x.size(2)}, device);
  r.weights = empty_on({x.size(0), x.size(1)}, device);
  kern::additive_attention_forward(shape_of(x, return_sequences), floats(x), floats(w), floats_or_null(b),
                                   mask.defined() ? bytes(mask) : nullptr, static_cast<float>(epsilon), floats(r.y),
                                   floats(r.weights), stream(device));
  return r;
}

ops::AdditiveAttentionGrads additive_attention_backward(const Tensor& x, const Tensor& w, const Tensor& b,
                                                        const Tensor& weights, const Tensor& dy,
                                                        bool return_sequences) {
  const Device device = x.device();
  const std::int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  ops::AdditiveAttentionGrads g;
  g.dx = Tensor::empty_like(x);
  const Tensor dw_partial = empty_on({B, D}, device), dpre = empty_on({B, T}, device), slope = empty_on({B, T}, device);
  kern::additive_attention_backward(shape_of(x, return_sequences), floats(x), floats(w), floats_or_null(b),
                                    floats(weights), floats(dy), floats(g.dx), floats(dw_partial), floats(dpre),
                                    floats(slope), stream(device));
  g.dw = bias_add_backward(dw_partial);  // the sums over the batch
  if (b.defined()) g.db = bias_add_backward(dpre);
  return g;
}

Tensor epsilon_softmax(const Tensor& scores, const Tensor& mask, double epsilon) {
  Tensor a = Tensor::empty_like(scores);
  const std::int64_t steps = scores.size(-1);
  kern::epsilon_softmax(floats(scores), mask.defined() ? bytes(mask) : nullptr, floats(a), rows_of(scores, steps),
                        steps, epsilon, stream(scores.device()));
  return a;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
