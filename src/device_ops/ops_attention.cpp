// Scaled dot-product attention on a device, both ways:
//
// - fused (the default): kernels/flash_attention.cu and _mma.cu, one launch forward and two
//   backward, in f32, f16 or bf16;
// - unfused (for comparison, f32): the scores of each head by one batched product, the masked
//   softmax kernel of kernels/masked_softmax.cu, and the output by a second product; the backward
//   recomputes the probabilities and runs the products of the gradient around the softmax's
//   backward kernel. The [B, H, Tq, Tk] scores live in device memory.
// And decoding against a key/value cache: kernels/decode_attention.cu, split over the cached steps.
#include "device_ops/common.h"
#include "kernels/decode_attention.h"
#include "kernels/flash_attention.h"
#include "kernels/masked_softmax.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;
using ops::detail::AttentionOperands;
using ops::detail::Heads;
namespace {

// ---------------------------------------------------------------- unfused

// A head's matrices in a float32 run of heads: head h starts `offset * h` floats after `data`,
// its batches lie `stride` floats apart, its rows `ld` apart.
struct HeadMatrix {
  float* data;
  std::int64_t ld, offset, stride;
};
HeadMatrix matrix_of(const Heads& x, std::int64_t steps, std::int64_t dim) {
  return {floats(x.tensor) + x.offset, x.row, dim, steps * x.row};
}

// C_h = alpha op(A_h) op(B_h) for every head h, each over the batches in one batched call.
void per_head_products(Device device, const AttentionOperands& a, bool transpose_a, bool transpose_b, std::int64_t m,
                       std::int64_t n, std::int64_t k, float alpha, HeadMatrix x, HeadMatrix y, HeadMatrix c) {
  for (std::int64_t h = 0; h < a.heads; ++h)
    gemm(device, transpose_a, transpose_b, m, n, k, alpha, x.data + h * x.offset, x.ld, y.data + h * y.offset, y.ld,
         0.0f, c.data + h * c.offset, c.ld, a.batch, x.stride, y.stride, c.stride);
}

// The probabilities of every head, [B, H, Tq, Tk] as one matrix [Tq, Tk] per (batch, head).
HeadMatrix probability_matrix(const Tensor& p, const AttentionOperands& a) {
  return {floats(p), a.keys, a.queries * a.keys, a.heads * a.queries * a.keys};
}

// P [B, H, Tq, Tk] and lse [B, H, Tq] from q and k.
void probabilities(const AttentionOperands& a, Tensor& p, Tensor& lse) {
  const Device device = a.q.tensor.device();
  p = empty_on({a.batch, a.heads, a.queries, a.keys}, device);
  lse = empty_on({a.batch, a.heads, a.queries}, device);
  // S_h = scale q_h k_h^T.
  per_head_products(device, a, false, true, a.queries, a.keys, a.qk_dim, static_cast<float>(a.scale),
                    matrix_of(a.q, a.queries, a.qk_dim), matrix_of(a.k, a.keys, a.qk_dim), probability_matrix(p, a));
  kern::masked_softmax(floats(p), a.key_mask.defined() ? bytes(a.key_mask) : nullptr, floats(lse), a.batch, a.heads,
                       a.queries, a.keys, a.causal, stream(device));
}

// ---------------------------------------------------------------- fused

kern::AttentionDType attention_dtype(DType dtype) {
  return dtype == DType::f16 ? kern::AttentionDType::f16
                             : dtype == DType::bf16 ? kern::AttentionDType::bf16 : kern::AttentionDType::f32;
}
char* address_of(const Heads& x) {
  return static_cast<char*>(x.tensor.raw_data()) + x.offset * static_cast<std::int64_t>(dtype_size(x.tensor.dtype()));
}

// The kernels' view of the operands (out and lse left for the caller).
kern::FlashAttentionParams flash_params(const AttentionOperands& a) {
  kern::FlashAttentionParams p;
  p.dtype = attention_dtype(a.q.tensor.dtype());
  p.batch = a.batch, p.heads = a.heads, p.queries = a.queries, p.keys = a.keys;
  p.qk_dim = a.qk_dim, p.v_dim = a.v_dim;
  p.q = address_of(a.q), p.k = address_of(a.k), p.v = address_of(a.v);
  p.q_row = a.q.row, p.k_row = a.k.row, p.v_row = a.v.row;
  p.out_row = a.heads * a.v_dim;
  p.key_mask = a.key_mask.defined() ? bytes(a.key_mask) : nullptr;
  p.key_lengths = a.key_lengths.defined() ? int32s(a.key_lengths) : nullptr;
  p.causal = a.causal;
  p.scale = static_cast<float>(a.scale);
  p.kv_heads = a.kv_heads;
  if (a.bias.defined()) {
    p.bias = floats(a.bias);  // float32: the op converts a 16-bit bias
    p.bias_batch_step = a.bias_batch_step(), p.bias_head_step = a.bias_head_step();
  }
  p.alibi_slopes = a.alibi_slopes.defined() ? floats(a.alibi_slopes) : nullptr;
  p.softcap = static_cast<float>(a.softcap);
  p.window_left = a.window_left, p.window_right = a.window_right;
  if (a.attention_mask.defined()) {
    p.attention_mask = bytes(a.attention_mask);
    p.attention_mask_batch_step = a.attention_mask_batch_step();
  }
  if (a.varlen()) {
    p.cu_seqlens_q = int32s(a.cu_seqlens_q), p.cu_seqlens_k = int32s(a.cu_seqlens_k);
    p.total_queries = a.total_queries;
  }
  p.dropout_threshold = a.dropout_threshold;
  p.dropout_seed = a.dropout_seed, p.dropout_offset = a.dropout_first_block;
  p.dropout_scale = static_cast<float>(a.dropout_scale());
  return p;
}

// The decode kernels' view of the operands (out and lse left for the caller): a's keys are the
// caches' capacity.
kern::DecodeAttentionParams decode_params(const AttentionOperands& a, const ops::detail::DecodeSteps& steps) {
  kern::DecodeAttentionParams p;
  p.dtype = attention_dtype(a.q.tensor.dtype());
  p.batch = a.batch, p.heads = a.heads, p.kv_heads = a.kv_heads, p.queries = a.queries;
  p.qk_dim = a.qk_dim, p.v_dim = a.v_dim, p.capacity = a.keys;
  p.q = address_of(a.q), p.k_cache = address_of(a.k), p.v_cache = address_of(a.v);
  p.q_row = a.q.row, p.k_row = a.k.row, p.v_row = a.v.row;
  p.out_row = a.heads * a.v_dim;
  p.cache_lengths = int32s(steps.cache_lengths), p.appended = steps.appended;
  if (steps.appended > 0) p.k_new = steps.k_new.raw_data(), p.v_new = steps.v_new.raw_data();
  p.causal = steps.causal, p.window_left = steps.window_left, p.window_right = steps.window_right;
  p.scale = static_cast<float>(a.scale), p.softcap = static_cast<float>(a.softcap);
  p.alibi_slopes = a.alibi_slopes.defined() ? floats(a.alibi_slopes) : nullptr;
  p.splits = steps.splits > 0 ? steps.splits : kern::decode_attention_splits(p, steps.longest);
  return p;
}

// lse's (and delta's) shape: [B, H, Tq], or [H, total queries] for a variable-length batch.
Shape lse_shape(const AttentionOperands& a) {
  return a.varlen() ? Shape{a.heads, a.total_queries} : Shape{a.batch, a.heads, a.queries};
}

}  // namespace

ops::AttentionResult scaled_dot_product_attention(const AttentionOperands& a, bool return_weights) {
  ops::AttentionResult r;
  Tensor p;
  probabilities(a, p, r.lse);
  r.out = empty_on({a.batch, a.queries, a.heads * a.v_dim}, a.q.tensor.device());
  // out_h = P_h v_h into the columns of head h.
  per_head_products(a.q.tensor.device(), a, false, false, a.queries, a.v_dim, a.keys, 1.0f, probability_matrix(p, a),
                    matrix_of(a.v, a.keys, a.v_dim), matrix_of({r.out, 0, a.heads * a.v_dim}, a.queries, a.v_dim));
  if (return_weights) r.weights = p;
  return r;
}

void scaled_dot_product_attention_backward(const AttentionOperands& a, const Tensor& dout, const Heads& dq,
                                           const Heads& dk, const Heads& dv) {
  const Device device = a.q.tensor.device();
  Tensor p, lse;
  probabilities(a, p, lse);
  const HeadMatrix q_h = matrix_of(a.q, a.queries, a.qk_dim), k_h = matrix_of(a.k, a.keys, a.qk_dim);
  const HeadMatrix v_h = matrix_of(a.v, a.keys, a.v_dim);
  const HeadMatrix dout_h = matrix_of({dout, 0, a.heads * a.v_dim}, a.queries, a.v_dim);
  // dP_h = dout_h v_h^T; dS = P (dP - rowsum(P dP)), the softmax's backward (0 where P is 0).
  Tensor dp = empty_on({a.batch, a.heads, a.queries, a.keys}, device);
  per_head_products(device, a, false, true, a.queries, a.keys, a.v_dim, 1.0f, dout_h, v_h, probability_matrix(dp, a));
  const Tensor ds = softmax_backward(p, dp, false);
  const HeadMatrix ds_h = probability_matrix(ds, a);
  const auto scale = static_cast<float>(a.scale);
  // dq_h = scale dS_h k_h; dk_h = scale dS_h^T q_h; dv_h = P_h^T dout_h.
  per_head_products(device, a, false, false, a.queries, a.qk_dim, a.keys, scale, ds_h, k_h,
                    matrix_of(dq, a.queries, a.qk_dim));
  per_head_products(device, a, true, false, a.keys, a.qk_dim, a.queries, scale, ds_h, q_h,
                    matrix_of(dk, a.keys, a.qk_dim));
  per_head_products(device, a, true, false, a.keys, a.v_dim, a.queries, 1.0f, probability_matrix(p, a), dout_h,
                    matrix_of(dv, a.keys, a.v_dim));
}

Tensor attention_weights(const AttentionOperands& a) {
  Tensor p, lse;
  probabilities(a, p, lse);
  return p;
}

std::string flash_attention_unfit(const AttentionOperands& a) {
  return kern::flash_attention_unsupported(flash_params(a));  // out: the op's own allocation, aligned, not yet made
}

ops::AttentionResult flash_attention(const AttentionOperands& a) {
  const Device device = a.q.tensor.device();
  kern::FlashAttentionParams p = flash_params(a);
  kern::flash_attention_check(p);
  ops::AttentionResult r;
  r.out = a.varlen() ? empty_on({a.total_queries, a.heads, a.v_dim}, device, a.q.tensor.dtype())
                     : empty_on({a.batch, a.queries, a.heads * a.v_dim}, device, a.q.tensor.dtype());
  r.lse = empty_on(lse_shape(a), device);
  p.out = r.out.raw_data();
  p.lse = floats(r.lse);
  kern::flash_attention_forward(p, stream(device));
  return r;
}

std::string decode_attention_unfit(const AttentionOperands& a, const ops::detail::DecodeSteps& steps) {
  return kern::decode_attention_unsupported(decode_params(a, steps));
}

ops::AttentionResult decode_attention(const AttentionOperands& a, const ops::detail::DecodeSteps& steps) {
  const Device device = a.q.tensor.device();
  kern::DecodeAttentionParams p = decode_params(a, steps);
  ops::AttentionResult r;
  r.out = empty_on({a.batch, a.queries, a.heads * a.v_dim}, device, a.q.tensor.dtype());
  r.lse = empty_on({a.batch, a.heads, a.queries}, device);
  p.out = r.out.raw_data(), p.lse = floats(r.lse);
  Tensor partial_out, partial_lse;
  if (p.splits > 1) {
    partial_out = empty_on({p.splits, a.batch, a.heads, a.queries, a.v_dim}, device);
    partial_lse = empty_on({p.splits, a.batch, a.heads, a.queries}, device);
    p.partial_out = floats(partial_out), p.partial_lse = floats(partial_lse);
  }
  kern::decode_attention_forward(p, stream(device));
  return r;
}

void flash_attention_backward(const AttentionOperands& a, const ops::AttentionResult& forward, const Tensor& dout,
                              const Heads& dq, const Heads& dk, const Heads& dv, const Tensor& ds) {
  const Device device = a.q.tensor.device();
  kern::FlashAttentionGradParams g;
  g.forward = flash_params(a);
  g.forward.out = forward.out.raw_data();
  g.forward.lse = floats(forward.lse);
  g.dout = dout.raw_data();
  g.dq = address_of(dq), g.dk = address_of(dk), g.dv = address_of(dv);
  g.dbias = ds.defined() ? floats(ds) : nullptr;
  kern::flash_attention_check(g);
  const Tensor delta = empty_on(lse_shape(a), device);
  g.delta = floats(delta);
  kern::flash_attention_backward(g, stream(device));
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
