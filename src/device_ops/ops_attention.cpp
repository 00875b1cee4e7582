// The attention steps that need kernels of their own on a device (kernels/masked_softmax.cu).
// Scaled dot-product attention, unfused: the scores of each head by one batched product, the
// masked softmax, and the output by a second product; the backward recomputes the probabilities
// and runs the products of the gradient and the softmax's backward kernel. The [B, H, Tq, Tk]
// scores live in device memory. (Additive pooling's other steps are ops, in src/ops/attention.cpp.)
#include "device_ops/common.h"
#include "kernels/masked_softmax.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;
namespace {

struct Dims {
  std::int64_t B, Tq, Tk, H, dk, dv;
};

Dims dims_of(const Tensor& q, const Tensor& v, std::int64_t heads) {
  return {q.size(0), q.size(1), v.size(1), heads, q.size(2) / heads, v.size(2) / heads};
}

// C_h = alpha op(A_h) op(B_h) for every head h, each over the B batches in one batched call.
// A head's matrix starts at `offset * h` floats and its batches lie `stride` floats apart.
struct HeadMatrix {
  const float* data;
  std::int64_t ld, offset, stride;
};
void per_head_products(Device device, const Dims& d, bool transpose_a, bool transpose_b, std::int64_t m,
                       std::int64_t n, std::int64_t k, float alpha, HeadMatrix a, HeadMatrix b, float* c,
                       std::int64_t ldc, std::int64_t c_offset, std::int64_t c_stride) {
  for (std::int64_t h = 0; h < d.H; ++h)
    gemm(device, transpose_a, transpose_b, m, n, k, alpha, a.data + h * a.offset, a.ld, b.data + h * b.offset, b.ld,
         0.0f, c + h * c_offset, ldc, d.B, a.stride, b.stride, c_stride);
}

// P [B, H, Tq, Tk] and lse [B, H, Tq] from q and k.
void probabilities(const Tensor& q, const Tensor& k, const Tensor& key_mask, const Dims& d, bool causal, double scale,
                   Tensor& p, Tensor& lse) {
  const Device device = q.device();
  p = empty_on({d.B, d.H, d.Tq, d.Tk}, device);
  lse = empty_on({d.B, d.H, d.Tq}, device);
  // S_h = scale q_h k_h^T: q_h [Tq, dk] and k_h [Tk, dk], rows H * dk apart.
  per_head_products(device, d, false, true, d.Tq, d.Tk, d.dk, static_cast<float>(scale),
                    {floats(q), d.H * d.dk, d.dk, d.Tq * d.H * d.dk}, {floats(k), d.H * d.dk, d.dk, d.Tk * d.H * d.dk},
                    floats(p), d.Tk, d.Tq * d.Tk, d.H * d.Tq * d.Tk);
  kern::masked_softmax(floats(p), key_mask.defined() ? bytes(key_mask) : nullptr, floats(lse), d.B, d.H, d.Tq, d.Tk,
                       causal, stream(device));
}

}  // namespace

ops::AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& key_mask, std::int64_t heads, bool causal,
                                                  double scale, bool return_weights) {
  const Dims d = dims_of(q, v, heads);
  ops::AttentionResult r;
  Tensor p;
  probabilities(q, k, key_mask, d, causal, scale, p, r.lse);
  r.out = empty_on({d.B, d.Tq, d.H * d.dv}, q.device());
  // out_h = P_h v_h into the columns of head h.
  per_head_products(q.device(), d, false, false, d.Tq, d.dv, d.Tk, 1.0f, {floats(p), d.Tk, d.Tq * d.Tk, d.H * d.Tq * d.Tk},
                    {floats(v), d.H * d.dv, d.dv, d.Tk * d.H * d.dv}, floats(r.out), d.H * d.dv, d.dv,
                    d.Tq * d.H * d.dv);
  if (return_weights) r.weights = p;
  return r;
}

ops::AttentionGrads scaled_dot_product_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                          const Tensor& key_mask, const Tensor& dout,
                                                          std::int64_t heads, bool causal, double scale) {
  const Dims d = dims_of(q, v, heads);
  const Device device = q.device();
  Tensor p, lse;
  probabilities(q, k, key_mask, d, causal, scale, p, lse);
  const HeadMatrix q_h{floats(q), d.H * d.dk, d.dk, d.Tq * d.H * d.dk}, k_h{floats(k), d.H * d.dk, d.dk, d.Tk * d.H * d.dk};
  const HeadMatrix v_h{floats(v), d.H * d.dv, d.dv, d.Tk * d.H * d.dv}, dout_h{floats(dout), d.H * d.dv, d.dv, d.Tq * d.H * d.dv};
  const HeadMatrix p_h{floats(p), d.Tk, d.Tq * d.Tk, d.H * d.Tq * d.Tk};
  // dP_h = dout_h v_h^T; dS = P (dP - rowsum(P dP)), the softmax's backward (0 where P is 0).
  Tensor dp = empty_on({d.B, d.H, d.Tq, d.Tk}, device);
  per_head_products(device, d, false, true, d.Tq, d.Tk, d.dv, 1.0f, dout_h, v_h, floats(dp), d.Tk, d.Tq * d.Tk,
                    d.H * d.Tq * d.Tk);
  const Tensor ds = softmax_backward(p, dp, false);
  const HeadMatrix ds_h{floats(ds), d.Tk, d.Tq * d.Tk, d.H * d.Tq * d.Tk};
  ops::AttentionGrads g{Tensor::empty_like(q), Tensor::empty_like(k), Tensor::empty_like(v)};
  const auto scale_f = static_cast<float>(scale);
  // dq_h = scale dS_h k_h; dk_h = scale dS_h^T q_h; dv_h = P_h^T dout_h.
  per_head_products(device, d, false, false, d.Tq, d.dk, d.Tk, scale_f, ds_h, k_h, floats(g.dq), d.H * d.dk, d.dk,
                    d.Tq * d.H * d.dk);
  per_head_products(device, d, true, false, d.Tk, d.dk, d.Tq, scale_f, ds_h, q_h, floats(g.dk), d.H * d.dk, d.dk,
                    d.Tk * d.H * d.dk);
  per_head_products(device, d, true, false, d.Tk, d.dv, d.Tq, 1.0f, p_h, dout_h, floats(g.dv), d.H * d.dv, d.dv,
                    d.Tk * d.H * d.dv);
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
