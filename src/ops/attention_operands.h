// Internal: the operands of one scaled dot-product attention call (ops/attention.h, 4.), as the
// cpu loops, the unfused device path and the fused kernels all read them.
#pragma once

#include <cstdint>
#include <vector>

#include "attnkit/random.h"
#include "attnkit/tensor.h"

namespace attnkit::ops::detail {

// A run of heads inside a tensor: element c of head h at step t of batch element b lies at flat
// index offset + (b * steps + t) * row + h * dim + c. A [B, T, H d] tensor of its own has offset 0
// and row H d; q, k and v inside packed projections [B, T, 3 H d] share one tensor, with offsets
// 0, H d and 2 H d, and row 3 H d.
struct Heads {
  Tensor tensor;
  std::int64_t offset = 0, row = 0;
};

struct AttentionOperands {
  Heads q, k, v;  // k and v hold kv_heads heads: query head h reads key head h / (heads / kv_heads)
  std::int64_t batch = 0, heads = 0, kv_heads = 0, queries = 0, keys = 0, qk_dim = 0, v_dim = 0;
  double scale = 1.0;
  bool causal = false;
  Tensor key_mask;     // u8 [batch, keys], or undefined
  Tensor key_lengths;  // i32 [batch], or undefined
  // The score modifiers (ops/attention.h, 4.).
  Tensor bias;  // [batch or 1, heads or 1, queries, keys], contiguous, or undefined
  Tensor alibi_slopes;  // f32 [heads], or undefined
  double softcap = 0;
  std::int64_t window_left = -1, window_right = -1;
  Tensor attention_mask;  // u8 [batch or 1, queries, keys], or undefined
  // A variable-length batch (varlen_attention): i32 [batch + 1] offsets of each batch element's
  // first query and key among the steps of q and of k and v (then one batch element of
  // total_queries steps each: offsets count steps from the tensors' start), with their values on
  // the host; queries and keys are the longest sequences'. Undefined otherwise.
  Tensor cu_seqlens_q, cu_seqlens_k;
  std::vector<std::int64_t> query_starts, key_starts;
  std::int64_t total_queries = 0;

  // Attention dropout: its threshold (attnkit/random.h; 0: no dropout), seed, the stream's block
  // of row 0 of (batch element 0, head 0), and the queries and keys that lay its rows out (the
  // batch's, which a sequence of a variable-length batch keeps: its mask is the padded batch's).
  std::uint32_t dropout_threshold = 0;
  std::uint64_t dropout_seed = 0, dropout_first_block = 0;
  std::int64_t dropout_queries = 0, dropout_keys = 0;

  // The factor of a kept probability, 1 / (1 - the rate taken to a multiple of 2^-16).
  double dropout_scale() const { return attention_dropout_scale(dropout_threshold); }
  // The stream's first block of the dropout's row of query i of (b, h).
  std::uint64_t dropout_row_block(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return dropout_first_block + static_cast<std::uint64_t>((b * heads + h) * dropout_queries + i) *
                                     attention_dropout_row_blocks(dropout_keys);
  }
  // Element (b, h, i, j) of the bias lies at b * bias_batch_step() + h * bias_head_step() + i * keys + j.
  std::int64_t bias_batch_step() const { return bias.size(0) == 1 ? 0 : bias.size(1) * queries * keys; }
  std::int64_t bias_head_step() const { return bias.size(1) == 1 ? 0 : queries * keys; }
  std::int64_t attention_mask_batch_step() const { return attention_mask.size(0) == 1 ? 0 : queries * keys; }
  bool varlen() const { return cu_seqlens_q.defined(); }
  bool has_score_modifiers() const {
    return bias.defined() || alibi_slopes.defined() || softcap > 0 || window_left >= 0 || window_right >= 0 ||
           attention_mask.defined();
  }
  bool has_dropout() const { return dropout_threshold != 0; }
};

// What decoding against a cache adds to the operands (ops::decode_attention), whose keys are the
// caches' capacity: batch element b attends to its first cache_lengths[b] + appended steps, the
// queries last; the causal bound and the window count from each query's position among them.
struct DecodeSteps {
  Tensor cache_lengths;  // i32 [batch], on the operands' device
  Tensor k_new, v_new;   // [batch, appended, ...], written into the caches first
  std::int64_t appended = 0, longest = 0;  // longest: the most steps a batch element attends to
  std::int64_t splits = 0;                 // 0: the kernels choose
  bool causal = false;
  std::int64_t window_left = -1, window_right = -1;
};

}  // namespace attnkit::ops::detail
