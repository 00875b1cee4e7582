// What the float32 and the tensor-core attention kernels share (included by their .cu files):
// which keys a query sees, and the ranges of keys and queries that a tile needs to visit.
#pragma once

#include <type_traits>

#include "attnkit/random.h"
#include "kernels/dialect.h"
#include "kernels/flash_attention.h"
#include "kernels/flash_attention_traits.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE::flash {

// log2(e): the kernels work with exp2, the scores scaled by scale * log2(e).
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// The keys that the queries of one batch element see.
struct KeyVisibility {
  const std::uint8_t* mask;  // this batch element's row of key_mask, or null
  std::int64_t limit;        // keys at or past it are hidden: keys, or the key length if smaller
  bool causal;
  std::int64_t left, right;  // the window: keys [i - left, i + right] of query i (negative: no bound)

  AK_DEVICE bool operator()(std::int64_t query, std::int64_t key) const {
    return key < limit && (mask == nullptr || mask[key] != 0) && !(causal && key > query) && in_window(query, key);
  }
  AK_DEVICE bool in_window(std::int64_t query, std::int64_t key) const {
    return !(left >= 0 && key < query - left) && !(right >= 0 && key > query + right);
  }
  // Keys before this are hidden from queries at or after first_query.
  AK_DEVICE std::int64_t key_begin(std::int64_t first_query) const {
    return left >= 0 && first_query > left ? first_query - left : 0;
  }
  // Keys at or past this are hidden from queries [first_query, first_query + count).
  AK_DEVICE std::int64_t key_end(std::int64_t first_query, std::int64_t count) const {
    std::int64_t end = limit;
    if (causal && first_query + count < end) end = first_query + count;
    if (right >= 0 && first_query + count + right < end) end = first_query + count + right;
    return end;
  }
  // Queries before this see none of the keys at or after first_key.
  AK_DEVICE std::int64_t query_begin(std::int64_t first_key) const {
    std::int64_t begin = causal ? first_key : 0;
    if (right >= 0 && first_key - right > begin) begin = first_key - right;
    return begin;
  }
  // Queries at or past this see none of the keys [first_key, first_key + count) (at most `queries`).
  AK_DEVICE std::int64_t query_end(std::int64_t first_key, std::int64_t count, std::int64_t queries) const {
    return left >= 0 && first_key + count + left < queries ? first_key + count + left : queries;
  }
};

// The steps of one batch element: where its queries start among q's steps and how many there
// are, and the same for its keys (a variable-length batch's, or `queries` and `keys` each).
// kVarlen: whether the instance takes variable-length batches (those with modifiers); the plain
// ones compute from the parameters alone.
struct Sequence {
  std::int64_t first_query, queries, first_key, keys;
};
template <bool kVarlen>
AK_DEVICE Sequence sequence_of(const FlashAttentionParams& p, std::int64_t b) {
  if (!kVarlen || p.cu_seqlens_q == nullptr) return {b * p.queries, p.queries, b * p.keys, p.keys};
  const std::int64_t q0 = p.cu_seqlens_q[b], k0 = p.cu_seqlens_k[b];
  return {q0, p.cu_seqlens_q[b + 1] - q0, k0, p.cu_seqlens_k[b + 1] - k0};
}
// Where the lse (and delta) of query 0 of (b, h) lies; the sequence's other queries follow it.
template <bool kVarlen>
AK_DEVICE std::int64_t lse_offset(const FlashAttentionParams& p, const Sequence& seq, std::int64_t b, std::int64_t h) {
  return kVarlen && p.cu_seqlens_q != nullptr ? h * p.total_queries + seq.first_query : (b * p.heads + h) * p.queries;
}

AK_DEVICE KeyVisibility key_visibility(const FlashAttentionParams& p, const Sequence& seq, std::int64_t b) {
  std::int64_t limit = seq.keys;
  if (p.key_lengths != nullptr) {
    const std::int64_t length = p.key_lengths[b];
    limit = length < 0 ? 0 : (length < limit ? length : limit);
  }
  return {p.key_mask != nullptr ? p.key_mask + b * p.keys : nullptr, limit, p.causal, p.window_left, p.window_right};
}

// The heads of k and v: kv_heads, or heads when 0.
AK_HOST_DEVICE inline std::int64_t kv_heads_of(const FlashAttentionParams& p) { return p.kv_heads > 0 ? p.kv_heads : p.heads; }

// The score modifiers of one (batch element, query head): the final score of a dot product
// (flash_attention.h), its derivative, and the window, for the kernels' instances with modifiers.
// Rows and keys in 32 bits (flash_attention_check keeps them below 2^31), which leaves the
// tensor-core kernels' accumulators their registers.
struct ScoreModifiers {
  const float* bias;  // this (batch, head)'s [queries, keys] matrix (rows `keys` apart), or null
  const std::uint8_t* mask;  // this batch element's [queries, keys] attention mask, or null
  int keys;
  float slope;        // ALiBi's, or 0
  float scale, softcap;
  int left, right;    // the window (negative: no bound)

  // Whether the window or the attention mask hides key j from query i (i and j inside the operands).
  AK_DEVICE bool hides(int i, int j) const {
    return (left >= 0 && j < i - left) || (right >= 0 && j > i + right) ||
           (mask != nullptr && mask[static_cast<std::int64_t>(i) * keys + j] == 0);
  }
  // tanh(x) = 1 - 2 / (e^2x + 1), by ex2.approx: a few instructions where tanhf's polynomial and
  // range handling would take the registers of the tensor-core kernels' accumulators. Its error
  // is an absolute 2^-21 or so, next to the 2^-8 to 2^-11 of a 16-bit probability.
  static AK_DEVICE float fast_tanh(float x) { return 1.0f - 2.0f / (ak::exp2_approx(2.0f * kLog2e * x) + 1.0f); }
  // The scaled dot product, capped, plus bias and ALiBi.
  AK_DEVICE float score(float dot, int i, int j) const {
    float s = dot * scale;
    if (softcap > 0.0f) s = softcap * fast_tanh(s / softcap);
    if (bias != nullptr) s += bias[static_cast<std::int64_t>(i) * keys + j];
    if (slope != 0.0f) s -= slope * static_cast<float>(i > j ? i - j : j - i);
    return s;
  }
  // d score / d (scale dot): 1 - tanh^2 under the cap, else 1.
  AK_DEVICE float slope_of_cap(float dot) const {
    if (softcap <= 0.0f) return 1.0f;
    const float t = fast_tanh(dot * scale / softcap);
    return 1.0f - t * t;
  }
};

AK_DEVICE ScoreModifiers score_modifiers(const FlashAttentionParams& p, std::int64_t b, std::int64_t h) {
  return {p.bias != nullptr ? p.bias + b * p.bias_batch_step + h * p.bias_head_step : nullptr,
          p.attention_mask != nullptr ? p.attention_mask + b * p.attention_mask_batch_step : nullptr,
          static_cast<int>(p.keys),
          p.alibi_slopes != nullptr ? p.alibi_slopes[h] : 0.0f,
          p.scale,
          p.softcap,
          static_cast<int>(p.window_left < 0 ? -1 : p.window_left),
          static_cast<int>(p.window_right < 0 ? -1 : p.window_right)};
}

// The dropout of one (batch element, head) (attnkit/random.h), for the instances with modifiers.
struct DropoutMask {
  std::uint64_t seed, row0;  // row0: the stream's first block of the head's query 0
  std::uint32_t row_blocks, threshold;  // threshold 0: no dropout

  AK_DEVICE bool on() const { return threshold != 0; }
  // The block that holds the bits of query i's key j: those of the keys of j's 32 whose j % 8 / 2
  // is the same (attention_dropout_keeps then reads only key % 32).
  AK_DEVICE Philox4x32 block(int i, int j) const {
    return philox_block(seed, attention_dropout_block(row0 + static_cast<std::uint64_t>(i) * row_blocks, j));
  }
  AK_DEVICE bool keeps(int i, int j) const { return attention_dropout_keeps(block(i, j), j, threshold); }
};

AK_DEVICE DropoutMask dropout_mask(const FlashAttentionParams& p, std::int64_t b, std::int64_t h) {
  const std::uint64_t row_blocks = attention_dropout_row_blocks(p.keys);
  return {p.dropout_seed, p.dropout_offset + static_cast<std::uint64_t>((b * p.heads + h) * p.queries) * row_blocks,
          static_cast<std::uint32_t>(row_blocks), p.dropout_threshold};
}

// Where one (batch element, head) of each operand starts; step t lies t rows further (q_row,
// k_row, v_row, out_row elements a row). dout is null in the forward.
template <typename T>
struct HeadView {
  const T *q, *k, *v, *out, *dout;
};
// h is a query head; k and v are read at its key head.
template <typename T>
AK_DEVICE HeadView<T> head_view(const FlashAttentionParams& p, const void* dout, const Sequence& seq, std::int64_t h) {
  const std::int64_t out_at = seq.first_query * p.out_row + h * p.v_dim;
  const std::int64_t kv_h = h / (p.heads / kv_heads_of(p));
  return {static_cast<const T*>(p.q) + seq.first_query * p.q_row + h * p.qk_dim,
          static_cast<const T*>(p.k) + seq.first_key * p.k_row + kv_h * p.qk_dim,
          static_cast<const T*>(p.v) + seq.first_key * p.v_row + kv_h * p.v_dim,
          static_cast<const T*>(p.out) + out_at, dout != nullptr ? static_cast<const T*>(dout) + out_at : nullptr};
}

// f(Traits{}) for the kernel instance that takes p: the one place where the dtype and the head
// dims become template arguments. Tensor cores: Family<T, head dim, kModified> (ForwardTraits,
// DqTraits, DkdvTraits) for f16 and bf16; float32: F32Traits<columns a lane> for a head dim of
// `dim`.
template <template <typename, int, bool> class Family, bool kModified, typename F>
void with_mma_traits(const FlashAttentionParams& p, F&& f) {
  auto for_element = [&](auto element) {
    using T = decltype(element);
    switch (p.qk_dim) {
      case 32: f(Family<T, 32, kModified>{}); break;
      case 64: f(Family<T, 64, kModified>{}); break;
      default: f(Family<T, 128, kModified>{}); break;
    }
  };
  if (p.dtype == AttentionDType::f16)
    for_element(ak::half{});
  else
    for_element(ak::bfloat16{});
}
template <typename F>
void with_f32_traits(std::int64_t dim, F&& f) {
  switch (f32_cols_for(dim)) {
    case 1: f(F32Traits<1>{}); break;
    case 2: f(F32Traits<2>{}); break;
    case 4: f(F32Traits<4>{}); break;
    default: f(F32Traits<8>{}); break;
  }
}

// f(std::true_type{}) for the kernels' instances with score modifiers, f(std::false_type{}) for
// the plain ones.
template <typename F>
void with_modifiers(bool on, F&& f) {
  if (on)
    f(std::true_type{});
  else
    f(std::false_type{});
}

// The grid of blocks of Traits::kRows rows over `rows` rows of every (batch, head): query heads,
// or, for the dk/dv pass (over_key_heads), key heads.
template <class Traits>
dim3 grid_for(std::int64_t rows, const FlashAttentionParams& p, bool over_key_heads = false) {
  return dim3(static_cast<unsigned>((rows + Traits::kRows - 1) / Traits::kRows),
              static_cast<unsigned>(p.batch * (over_key_heads ? kv_heads_of(p) : p.heads)));
}

// The launchers of each engine, behind flash_attention_forward and _backward.
void forward_f32(const FlashAttentionParams& p, void* stream);
void backward_f32(const FlashAttentionGradParams& p, void* stream);
void forward_mma(const FlashAttentionParams& p, void* stream);
void backward_mma(const FlashAttentionGradParams& p, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE::flash
