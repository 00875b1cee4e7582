// attnkit/ops/attention.h: the attention mechanisms of the Keras tutorials (../MODELS.md).
//
// 1. Additive tanh-softmax pooling (seed 000's Attention(step_dim), seed 001's Attention):
//      x [B, T, D], w [D], b [T] (optional), mask [B, T] u8 (optional, 1 = a real step)
//      e_t = tanh(x_t . w + b_t);  s_t = mask_t exp(e_t);  a_t = s_t / (sum_t s_t + epsilon)
//      y = sum_t a_t x_t  [B, D],  or with return_sequences y_t = a_t x_t  [B, T, D]
//    epsilon is seed 000's K.epsilon() (1e-7) by default; 0 gives seed 001's plain softmax. A row
//    whose steps are all masked has weights 0 and output 0. The weights a [B, T] are returned.
//    Gradient: with da_t = dy . x_t (or dy_t . x_t), de_t = a_t (da_t - sum_s a_s da_s), the
//    softmax rule (it holds with epsilon too); dpre_t = de_t (1 - e_t^2);
//    dx_t = a_t dy (or a_t dy_t) + dpre_t w;  dw = sum_{b,t} dpre_t x_t;  db_t = sum_b dpre_t.
//
// 2. Dense-softmax gating over features (seed 000's "Attention" models):
//      x [..., D], weight [D, D], bias [D] (optional)
//      probs = softmax(x weight + bias) over the last axis;  y = x * probs
//    Gradient: dprobs = dy * x; dz = probs (dprobs - sum(probs dprobs)); dx = dy probs + dz weight^T;
//    dweight = x^T dz; dbias = sum of dz over rows.
//
// 3. Dense-softmax gating over time (seed 003's attention_3d_block):
//      x [B, T, D], weight [T, T], bias [T] (optional)
//      q[b, d, :] = softmax(x[b, :, d] weight + bias), a distribution over time per feature;
//      single_vector (SINGLE_ATTENTION_VECTOR): p[b, t] = mean_d q[b, d, t], shared by features
//      probs[b, t, d] = q[b, d, t] (or p[b, t]);  y = x * probs
//    probs is the seed's 'attention_vec' layer output. The backward recomputes q from x.
//    Gradient: the rule of 2 applied to x transposed to [B, D, T], with dq = dy * x transposed
//    (or, single_vector, its sum over features divided by D), plus the direct dy * probs.
//
// 4. Multi-head scaled dot-product attention (seed 004; seed 002's Luong attention is scale 1):
//      q [B, Tq, H*dk], k [B, Tk, Hkv*dk], v [B, Tk, Hkv*dv], key_mask (optional): u8 [B, Tk]
//      (0 hides key j of batch b) or i32 [B] key lengths (keys j >= length[b] are hidden)
//      head h uses columns [h*dk, (h+1)*dk) of q and its key head g = h / (H / Hkv) columns
//      [g*dk, (g+1)*dk) of k and [g*dv, (g+1)*dv) of v; its output fills columns [h*dv, (h+1)*dv)
//      of out [B, Tq, H*dv] (heads split and merged without copies). Hkv = H unless
//      num_kv_heads says otherwise: grouped-query attention (Hkv dividing H), multi-query (Hkv 1).
//      s_ij = scale q_i . k_j, with scale = 1/sqrt(dk) unless given; then, where asked,
//        softcap tanh(s_ij / softcap)                  (logit soft-capping, softcap > 0)
//        + bias[b, h, i, j]                            (bias [B or 1, H or 1, Tq, Tk], broadcast)
//        - alibi_slopes[h] |i - j|                     (ALiBi, from per-head slopes)
//      Key j is hidden from query i when the mask hides it, when causal and j > i (top-left
//      alignment, as PyTorch's is_causal: query i sees keys 0..i, whatever Tq and Tk are), when
//      outside the window: j < i - window_left or j > i + window_right (a negative bound is
//      none), where attention_mask[b, i, j] is 0 (u8 [B or 1, Tq, Tk], Keras's attention_mask),
//      and where the bias is -inf (a float mask).
//      P = softmax over visible keys; out_i = sum_j P_ij v_j; lse_i = log sum_j exp(s_ij) [B, H, Tq]
//      A query that sees no key gets out 0 and lse -inf. With return_weights, P [B, H, Tq, Tk].
//      With dropout (training): out_i = sum_j P_ij Z_ij v_j / (1 - rate'), where Z_ij is 0 or 1 by
//      the Philox stream of dropout_seed from block dropout_offset, for element (b, h, i, j) as
//      attnkit/random.h lays it out (the cpu, the sim and a GPU drop the same entries, and the
//      backward draws them again rather than storing them), and rate' is the rate taken to a
//      multiple of 2^-16. lse and the returned weights are those before dropout (Keras's
//      MultiHeadAttention returns those too).
//    Gradient (the flash-attention form; P recomputed from lse): dP_ij = dout_i . v_j (times
//    Z_ij / (1 - rate') under dropout, and dv from P Z / (1 - rate')),
//    D_i = dout_i . out_i, dS_ij = P_ij (dP_ij - D_i) (the gradient of each final score: dbias,
//    summed over the axes the bias broadcasts); under the cap dS_ij times 1 - tanh^2; then
//    dq_i = scale sum_j dS_ij k_j, dk_j = scale sum_i dS_ij q_i, dv_j = sum_i P_ij dout_i, dk and
//    dv of a key head summed over the query heads of its group.
//    dtypes: f32 and f64 (cpu), f16 and bf16 (the cpu computes them in f32 and rounds the results;
//    a device runs them on the tensor cores, head dims 32, 64 or 128 alike for q, k and v). The
//    bias is f32 or q's dtype, and its gradient has its dtype. lse is f64 for f64 inputs and f32
//    otherwise. On a device the path follows the rule of AttentionSupport below: the fused kernels
//    (kernels/flash_attention.cu), or the unfused path of products around a masked softmax,
//    float32 only, without key head groups, score modifiers or dropout (nor can a device return
//    the weights with them).
//    packed_self_attention takes q, k and v side by side in one tensor qkv [B, T, (H + 2 Hkv) dk],
//    as one product with the three projections' kernels concatenated gives them; its backward
//    gives dqkv in the same layout.
#pragma once

#include <optional>
#include <string>

#include "attnkit/tensor.h"

namespace attnkit::ops {

// How an attention op runs on a device (cuda, sim): through its fused kernel, or through the
// unfused path of separate products, softmax and elementwise kernels, kept for comparison. The
// cpu has one implementation of each op and ignores it.
enum class AttentionKernel { fused, unfused };

// Which implementation a call of an attention op runs, by the one rule of every attention op:
//   - on the cpu, the cpu's (each op has one, which takes every operand the op accepts);
//   - on a device, the fused kernel, unless the options ask for the unfused path or the fused
//     kernel does not take the operands (`why` then says what it lacks);
//   - else the unfused path, when it takes them;
//   - else none: the op throws, and `why` says what each path lacks.
// The ops decide by the same functions (the *_supports below), forward and backward alike; they
// throw for operands that the op refuses whatever the path (shapes, dtypes), as the op does.
enum class AttentionPath { cpu, fused, unfused, none };
struct AttentionSupport {
  AttentionPath path = AttentionPath::cpu;
  std::string why;  // empty when the path is the cpu's or the fused kernel
};
const char* attention_path_name(AttentionPath path);  // "cpu", "fused", "unfused", "none"

// ---- 1. additive tanh-softmax pooling

struct AdditiveAttentionOptions {
  bool return_sequences = false;
  double epsilon = 1e-7;
  AttentionKernel kernel = AttentionKernel::fused;
};
struct AdditiveAttentionResult {
  Tensor y;
  Tensor weights;  // [B, T]
};
AdditiveAttentionResult additive_attention(const Tensor& x, const Tensor& w, const Tensor& b,
                                           const Tensor& mask = Tensor(),
                                           const AdditiveAttentionOptions& options = {});
struct AdditiveAttentionGrads {
  Tensor dx, dw, db;  // db undefined without b
};
AdditiveAttentionGrads additive_attention_backward(const Tensor& x, const Tensor& w, const Tensor& b,
                                                   const Tensor& weights, const Tensor& dy,
                                                   const AdditiveAttentionOptions& options = {});
AttentionSupport additive_attention_supports(const Tensor& x, const Tensor& w, const Tensor& b,
                                             const Tensor& mask = Tensor(),
                                             const AdditiveAttentionOptions& options = {});

// ---- 2 and 3. Dense-softmax gating

struct GatingResult {
  Tensor y;
  Tensor probs;  // the shape of x
};
struct GatingGrads {
  Tensor dx, dweight, dbias;  // dbias undefined without bias
};

GatingResult gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias,
                              AttentionKernel kernel = AttentionKernel::fused);
GatingGrads gating_attention_backward(const Tensor& x, const Tensor& weight, const Tensor& probs,
                                      const Tensor& dy, bool has_bias = true,
                                      AttentionKernel kernel = AttentionKernel::fused);

GatingResult temporal_gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       bool single_vector = false,
                                       AttentionKernel kernel = AttentionKernel::fused);
GatingGrads temporal_gating_attention_backward(const Tensor& x, const Tensor& weight,
                                               const Tensor& bias, const Tensor& dy,
                                               bool single_vector = false,
                                               AttentionKernel kernel = AttentionKernel::fused);

AttentionSupport gating_attention_supports(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                           AttentionKernel kernel = AttentionKernel::fused);
AttentionSupport temporal_gating_attention_supports(const Tensor& x, const Tensor& weight,
                                                    const Tensor& bias, bool single_vector = false,
                                                    AttentionKernel kernel = AttentionKernel::fused);

// ---- 4. multi-head scaled dot-product attention

struct AttentionOptions {
  std::int64_t num_heads = 1;
  std::int64_t num_kv_heads = 0;  // heads of k and v, dividing num_heads; 0: num_heads
  bool causal = false;
  std::optional<double> scale;  // 1 / sqrt(dk) when not given
  Tensor bias;                  // [B or 1, H or 1, Tq, Tk], f32 or q's dtype; undefined: none
  bool bias_grad = false;       // the backward returns dbias
  Tensor alibi_slopes;          // f32 [H]; undefined: none
  double softcap = 0;           // 0: none
  std::int64_t window_left = -1, window_right = -1;  // negative: no bound
  Tensor attention_mask;        // u8 [B or 1, Tq, Tk], 0 hides key j from query i; undefined: none
  // Attention dropout: the rate, in [0, 1 - 2^-17) (0: none), and where in the Philox stream its
  // mask lies (reserve attention_dropout_numbers(...) of a Generator for each draw). The backward
  // must be given the same three.
  double dropout = 0;
  std::uint64_t dropout_seed = 0, dropout_offset = 0;
  bool return_weights = false;
  AttentionKernel kernel = AttentionKernel::fused;
};
struct AttentionResult {
  Tensor out;      // [B, Tq, H*dv]
  Tensor lse;      // [B, H, Tq], log-sum-exp of each query's scores (f32, or f64)
  Tensor weights;  // [B, H, Tq, Tk] when return_weights
};
AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& key_mask = Tensor(),
                                             const AttentionOptions& options = {});
struct AttentionGrads {
  Tensor dq, dk, dv;
  Tensor dbias;  // the bias's shape and dtype, when options.bias_grad
};
AttentionGrads scaled_dot_product_attention_backward(const Tensor& q, const Tensor& k,
                                                     const Tensor& v, const Tensor& key_mask,
                                                     const AttentionResult& forward,
                                                     const Tensor& dout,
                                                     const AttentionOptions& options = {});

AttentionSupport scaled_dot_product_attention_supports(const Tensor& q, const Tensor& k,
                                                      const Tensor& v,
                                                      const Tensor& key_mask = Tensor(),
                                                      const AttentionOptions& options = {});

// The random numbers that the dropout of an attention of B, H, Tq and Tk takes from a stream
// (Generator::reserve), and its mask: u8 [B, H, Tq, Tk] on the cpu, 1 where options.dropout keeps
// a probability (all ones without dropout).
std::uint64_t attention_dropout_numbers(std::int64_t batch, std::int64_t heads, std::int64_t queries,
                                        std::int64_t keys);
Tensor attention_dropout_mask(std::int64_t batch, std::int64_t heads, std::int64_t queries, std::int64_t keys,
                              const AttentionOptions& options);

// Self-attention over packed projections: qkv [B, T, (H + 2 Hkv) dk] holds q, k and v in its
// columns [0, H dk), [H dk, (H + Hkv) dk) and [(H + Hkv) dk, (H + 2 Hkv) dk); out [B, T, H dk].
AttentionResult packed_self_attention(const Tensor& qkv, const Tensor& key_mask = Tensor(),
                                      const AttentionOptions& options = {});
// dqkv in qkv's layout (the bias's gradient is not returned here: bias_grad is refused).
Tensor packed_self_attention_backward(const Tensor& qkv, const Tensor& key_mask,
                                      const AttentionResult& forward, const Tensor& dout,
                                      const AttentionOptions& options = {});
AttentionSupport packed_self_attention_supports(const Tensor& qkv, const Tensor& key_mask = Tensor(),
                                                const AttentionOptions& options = {});

// Variable-length packed batches (FlashAttention's varlen): the sequences of a batch one after
// another, with no padding stored or computed.
//   q [total_q, H, dk], k [total_k, Hkv, dk], v [total_k, Hkv, dv]; cu_seqlens_q and cu_seqlens_k
//   i32 [B + 1] on their device, each from 0, nondecreasing, to total_q (total_k): sequence b's
//   queries are steps [cu_seqlens_q[b], cu_seqlens_q[b + 1]) of q, its keys steps
//   [cu_seqlens_k[b], cu_seqlens_k[b + 1]) of k and v.
// Each sequence attends as scaled_dot_product_attention does a batch of one, with the options'
// causal flag (top-left within the sequence), scale, ALiBi, softcap, window and dropout (its mask
// that of the padded batch [B, H, longest Tq, longest Tk]); the heads come
// from the shapes (num_heads and num_kv_heads may be left unset). No key mask, bias, attention
// mask or returned weights: the sequences differ in length. out [total_q, H, dv], lse
// [H, total_q] (f32, or f64). The offsets are read on the host, to check them: a call waits for
// them. On a device: the fused kernels only.
AttentionResult varlen_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q,
                                 const Tensor& cu_seqlens_k, const AttentionOptions& options = {});
AttentionGrads varlen_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q,
                                         const Tensor& cu_seqlens_k, const AttentionResult& forward,
                                         const Tensor& dout, const AttentionOptions& options = {});
AttentionSupport varlen_attention_supports(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                                           const AttentionOptions& options = {});

// Decoding against a key/value cache (FlashAttention's flash_attn_with_kvcache):
//   k_cache [B, capacity, Hkv dk] and v_cache [B, capacity, Hkv dv] hold batch element b's keys
//   and values at steps [0, cache_lengths[b]) (i32 [B], read on the host); k_new and v_new
//   [B, Tn, ...] (both or neither) are written into them at steps [cache_lengths[b],
//   cache_lengths[b] + Tn), in place, and must fit the capacity (cache_lengths itself is left as
//   it is: the caller adds Tn). q [B, Tq, H dk] then attends to the L_b = cache_lengths[b] + Tn
//   steps, the queries being the last Tq of them (bottom-right): under causal, query t sees steps
//   up to L_b - Tq + t, and the window and ALiBi count from that position too. Scale and softcap
//   as in scaled_dot_product_attention; no key mask, bias, attention mask, dropout or returned
//   weights. out [B, Tq, H dv], lse [B, H, Tq]; a query that sees no step gets 0 and -inf.
//   num_splits: on a device, the steps of each (batch element, key head) split into that many
//   ranges attended side by side and combined by their lse (split-KV), for the parallel work that
//   B H Tq alone does not give; 0 lets the op choose (kernels/decode_attention.h). The cpu
//   ignores it. A device runs the kernels of kernels/decode_attention.cu (f32, f16, bf16, head
//   dims up to 256, at most 128 splits), or refuses: decoding has no unfused path.
//   Forward only: decoding is inference, and the cache changes in place.
AttentionResult decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                 const Tensor& cache_lengths, const Tensor& k_new = Tensor(),
                                 const Tensor& v_new = Tensor(), const AttentionOptions& options = {},
                                 std::int64_t num_splits = 0);
AttentionSupport decode_attention_supports(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                           const Tensor& cache_lengths, const Tensor& k_new = Tensor(),
                                           const Tensor& v_new = Tensor(), const AttentionOptions& options = {},
                                           std::int64_t num_splits = 0);

}  // namespace attnkit::ops
