// Launchers of the fused scaled dot-product attention kernels (kernels/flash_attention.cu for
// float32, kernels/flash_attention_mma.cu for f16 and bf16 on the tensor cores), the op of
// ops/attention.h (4.) in one pass over the keys per tile of queries: tiles of q, k and v in
// shared memory, the softmax computed online, the [Tq, Tk] scores never written out.
//
// Layout: element c of head h at step t of batch b of q is
//   q[(b * queries + t) * q_row + h * qk_dim + c]
// (in a variable-length batch, (cu_seqlens_q[b] + t) in place of b * queries + t; below)
// and likewise for k and v (keys steps, v_dim columns a head) and out; q_row is H * qk_dim for
// a [B, Tq, H * dk] tensor, 3 * H * dk for q inside packed [B, T, 3 H dk] projections. The
// gradients dq, dk, dv have the layouts of q, k, v; dout has out's.
//
// Key j is hidden from query i of batch b when key_mask[b * keys + j] == 0, when j >=
// key_lengths[b], when causal and j > i, when it lies outside the window: j < i - window_left
// or j > i + window_right (a negative bound is none), or when attention_mask[b, i, j] == 0. A query that sees no key gets out 0 and lse
// -inf.
//
// Grouped-query attention: k and v hold kv_heads heads (k_row, v_row count them), kv_heads
// dividing heads; query head h reads key and value head h / (heads / kv_heads), and dk, dv of a
// key head sum over the query heads of its group.
//
// Scores: s_ij = scale q_i . k_j; with softcap > 0, softcap tanh(s_ij / softcap); then plus
// bias[b, h, i, j] and minus alibi_slopes[h] |i - j|. Softcap, bias, ALiBi and the window are the
// score modifiers: the kernels take them in instances of their own, so that the plain path
// carries none of their instructions. The attention mask counts among them, and so does dropout,
// which zeroes the probabilities it drops in the products with V (and the dP that the backward
// forms) and scales the kept ones. The backward writes dbias = dS (the gradient of the loss with
// respect to each final score, 0 where hidden) for every (b, h, i, j) when asked.
//
// Forward: out, and lse [batch, heads, queries] = log sum_j exp(s_ij) over the visible keys.
// Backward (P recomputed from lse): delta [batch, heads, queries] (scratch the launcher fills:
// delta_i = dout_i . out_i), then dq by one pass over the keys per tile of queries, and dk, dv by
// one pass over the queries per tile of keys; no atomics, so results do not depend on timing.
//
// float32 takes head dims up to 256 (q and k, and v, each); f16 and bf16 take qk_dim = v_dim in
// {32, 64, 128}, with rows and pointers 16-byte aligned, and a positive scale. Others are a clear
// error. Queries and keys number below 2^31.
#pragma once

#include <cstdint>
#include <string>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

enum class AttentionDType { f32, f16, bf16 };

struct FlashAttentionParams {
  AttentionDType dtype = AttentionDType::f32;
  std::int64_t batch = 0, heads = 0, queries = 0, keys = 0, qk_dim = 0, v_dim = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  std::int64_t q_row = 0, k_row = 0, v_row = 0;
  void* out = nullptr;
  std::int64_t out_row = 0;
  float* lse = nullptr;                        // [batch, heads, queries]
  const std::uint8_t* key_mask = nullptr;      // [batch, keys] or null
  const std::int32_t* key_lengths = nullptr;   // [batch] or null
  bool causal = false;
  float scale = 1.0f;
  std::int64_t kv_heads = 0;  // 0: heads
  // Score modifiers (all off by default). bias is float32 (whatever the operands' dtype): element
  // (b, h, i, j) lies at b * bias_batch_step + h * bias_head_step + i * keys + j (a step of 0
  // broadcasts).
  const float* bias = nullptr;
  std::int64_t bias_batch_step = 0, bias_head_step = 0;
  const float* alibi_slopes = nullptr;  // [heads]
  float softcap = 0.0f;
  std::int64_t window_left = -1, window_right = -1;
  // [batch or 1, queries, keys] bytes, 0 hiding key j from query i; batch step 0 broadcasts.
  const std::uint8_t* attention_mask = nullptr;
  std::int64_t attention_mask_batch_step = 0;
  // Variable-length batches (both or neither), i32 [batch + 1], nondecreasing from 0: batch
  // element b's queries are steps [cu_seqlens_q[b], cu_seqlens_q[b + 1]) of q and out, its keys
  // steps [cu_seqlens_k[b], cu_seqlens_k[b + 1]) of k and v. queries and keys are then the
  // longest sequences' (they size the grid), total_queries the steps of q, and lse and delta are
  // [heads, total_queries]. Neither masks nor a bias go with them.
  const std::int32_t* cu_seqlens_q = nullptr;
  const std::int32_t* cu_seqlens_k = nullptr;
  std::int64_t total_queries = 0;
  // Dropout of the probabilities (attnkit/random.h), for rows laid out by batch, heads, queries
  // and keys as above (a variable-length batch's: its padded batch's): threshold 0 for none; the
  // stream's block of row 0 of (batch element 0, head 0); kept probabilities times scale.
  std::uint32_t dropout_threshold = 0;
  std::uint64_t dropout_seed = 0, dropout_offset = 0;
  float dropout_scale = 1.0f;
};

// Whether any score modifier or dropout is on, or the batch has variable lengths: the launch then
// takes the kernels' instances with modifiers, which take all three (the plain ones read a padded
// batch's sizes from the parameters, so that they hold none of them in registers).
inline bool needs_modifier_instances(const FlashAttentionParams& p) {
  return p.bias != nullptr || p.alibi_slopes != nullptr || p.softcap > 0.0f || p.window_left >= 0 ||
         p.window_right >= 0 || p.attention_mask != nullptr || p.cu_seqlens_q != nullptr || p.dropout_threshold != 0;
}

struct FlashAttentionGradParams {
  FlashAttentionParams forward;  // q, k, v, out and lse as the forward left them
  const void* dout = nullptr;    // out's layout
  float* delta = nullptr;        // [batch, heads, queries], scratch
  void* dq = nullptr;            // q's layout
  void* dk = nullptr;            // k's layout
  void* dv = nullptr;            // v's layout
  float* dbias = nullptr;        // [batch, heads, queries, keys] or null: dS, written by the dq pass
};

// Why the kernels cannot take these sizes, dtype, scale or alignments, or "" when they can; the
// backward's also looks at dout, dq, dk and dv. The op asks before it allocates anything. _check
// throws attnkit::Error with the reason.
std::string flash_attention_unsupported(const FlashAttentionParams& params);
std::string flash_attention_unsupported(const FlashAttentionGradParams& params);
void flash_attention_check(const FlashAttentionParams& params);
void flash_attention_check(const FlashAttentionGradParams& params);

void flash_attention_forward(const FlashAttentionParams& params, void* stream);
void flash_attention_backward(const FlashAttentionGradParams& params, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
