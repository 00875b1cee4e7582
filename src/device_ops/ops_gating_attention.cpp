// Dense-softmax gating on a device, fused (kernels/gating_attention.cu): one kernel forward, one
// backward (over time, after the forward kernel recomputes the rows' softmaxes). The backward
// gives dx and dz; the kernel's and the bias's gradients are a product and a sum over dz's rows
// (src/ops/attention.cpp).
#include "device_ops/common.h"
#include "kernels/gating_attention.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;
namespace {

kern::GatingLayout layout_of(const Tensor& x, bool over_time) {
  return over_time ? kern::gating_over_time(x.size(0), x.size(1), x.size(2))
                   : kern::gating_over_features(rows_of(x, x.size(-1)), x.size(-1));
}
const float* floats_or_null(const Tensor& t) { return t.defined() ? floats(t) : nullptr; }

}  // namespace

std::string gating_attention_unfit(const Tensor& x, bool over_time, bool single_vector) {
  const kern::GatingLayout layout = layout_of(x, over_time);
  if (kern::gating_fused_fits(layout, single_vector)) return "";
  return detail::concat("the fused kernels hold a softmax's rows whole in a block, and ", layout.rows, " rows of ",
                        layout.width, " entries", single_vector ? " averaged in groups" : "",
                        " do not fit its ", kern::kGatingTileElements, " elements");
}

ops::GatingResult gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias, bool over_time,
                                   bool single_vector) {
  ops::GatingResult r{Tensor::empty_like(x), Tensor::empty_like(x)};
  kern::gating_forward(layout_of(x, over_time), floats(x), floats(weight), floats_or_null(bias), single_vector,
                       floats(r.probs), floats(r.y), stream(x.device()));
  return r;
}

Tensor gating_attention_backward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& probs,
                                 const Tensor& dy, bool over_time, bool single_vector, Tensor& dz) {
  const kern::GatingLayout layout = layout_of(x, over_time);
  void* s = stream(x.device());
  Tensor q = probs;  // over features, probs are the rows' softmaxes
  if (over_time) {
    q = Tensor::empty_like(x);
    kern::gating_forward(layout, floats(x), floats(weight), floats_or_null(bias), false, floats(q), nullptr, s);
  }
  Tensor dx = Tensor::empty_like(x);
  dz = empty_on({layout.rows, layout.width}, x.device());
  kern::gating_backward(layout, floats(x), floats(weight), floats(q), floats(dy), single_vector, floats(dx),
                        floats(dz), s);
  return dx;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
