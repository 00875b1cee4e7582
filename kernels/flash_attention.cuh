// What the float32 and the tensor-core attention kernels share (included by their .cu files):
// which keys a query sees, and the ranges of keys and queries that a tile needs to visit.
#pragma once

#include "kernels/dialect.h"
#include "kernels/flash_attention.h"
#include "kernels/flash_attention_traits.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE::flash {

// The keys that the queries of one batch element see.
struct KeyVisibility {
  const std::uint8_t* mask;  // this batch element's row of key_mask, or null
  std::int64_t limit;        // keys at or past it are hidden: keys, or the key length if smaller
  bool causal;

  AK_DEVICE bool operator()(std::int64_t query, std::int64_t key) const {
    return key < limit && (mask == nullptr || mask[key] != 0) && !(causal && key > query);
  }
  // Keys at or past this are hidden from queries [first_query, first_query + count).
  AK_DEVICE std::int64_t key_end(std::int64_t first_query, std::int64_t count) const {
    const std::int64_t causal_end = first_query + count;
    return causal && causal_end < limit ? causal_end : limit;
  }
  // Queries before this do not see key `first_key` or any after it.
  AK_DEVICE std::int64_t query_begin(std::int64_t first_key) const { return causal ? first_key : 0; }
};

AK_DEVICE KeyVisibility key_visibility(const FlashAttentionParams& p, std::int64_t b) {
  std::int64_t limit = p.keys;
  if (p.key_lengths != nullptr) {
    const std::int64_t length = p.key_lengths[b];
    limit = length < 0 ? 0 : (length < limit ? length : limit);
  }
  return {p.key_mask != nullptr ? p.key_mask + b * p.keys : nullptr, limit, p.causal};
}

// Where one (batch element, head) of each operand starts; step t lies t rows further (q_row,
// k_row, v_row, out_row elements a row). dout is null in the forward.
template <typename T>
struct HeadView {
  const T *q, *k, *v, *out, *dout;
};
template <typename T>
AK_DEVICE HeadView<T> head_view(const FlashAttentionParams& p, const void* dout, std::int64_t b, std::int64_t h) {
  const std::int64_t out_at = b * p.queries * p.out_row + h * p.v_dim;
  return {static_cast<const T*>(p.q) + b * p.queries * p.q_row + h * p.qk_dim,
          static_cast<const T*>(p.k) + b * p.keys * p.k_row + h * p.qk_dim,
          static_cast<const T*>(p.v) + b * p.keys * p.v_row + h * p.v_dim,
          static_cast<const T*>(p.out) + out_at, dout != nullptr ? static_cast<const T*>(dout) + out_at : nullptr};
}

// log2(e): the kernels work with exp2, the scores scaled by scale * log2(e).
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// f(Traits{}) for the kernel instance that takes p: the one place where the dtype and the head
// dims become template arguments. Tensor cores: Family<T, head dim> (ForwardTraits, DqTraits,
// DkdvTraits) for f16 and bf16; float32: F32Traits<columns a lane> for a head dim of `dim`.
template <template <typename, int> class Family, typename F>
void with_mma_traits(const FlashAttentionParams& p, F&& f) {
  auto for_element = [&](auto element) {
    using T = decltype(element);
    switch (p.qk_dim) {
      case 32: f(Family<T, 32>{}); break;
      case 64: f(Family<T, 64>{}); break;
      default: f(Family<T, 128>{}); break;
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

// The grid of blocks of Traits::kRows rows over `rows` rows of every (batch, head).
template <class Traits>
dim3 grid_for(std::int64_t rows, const FlashAttentionParams& p) {
  return dim3(static_cast<unsigned>((rows + Traits::kRows - 1) / Traits::kRows), static_cast<unsigned>(p.batch * p.heads));
}

// The launchers of each engine, behind flash_attention_forward and _backward.
void forward_f32(const FlashAttentionParams& p, void* stream);
void backward_f32(const FlashAttentionGradParams& p, void* stream);
void forward_mma(const FlashAttentionParams& p, void* stream);
void backward_mma(const FlashAttentionGradParams& p, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE::flash
