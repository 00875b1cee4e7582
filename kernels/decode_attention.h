// Launchers of kernels/decode_attention.cu: decoding attention against a key/value cache
// (ops::decode_attention), split over the cached steps (split-KV) and combined by log-sum-exp.
//
// A decoding step has one or a few queries per (batch element, head) and a long cache, so the
// B H Tq rows alone give a GPU too little parallel work, and the flash kernels' tiles of 64 or
// 128 queries would be mostly empty. Here a block takes the queries of one (batch element, key
// head): every query head of the group and every query (up to kDecodeRows rows), so a grouped
// cache is read once per group; and one of `splits` ranges of the steps. With splits > 1 each
// range leaves its rows' output, normalised over the range, and the range's lse in float32
// scratch, and a second kernel combines them: lse = log sum_s exp(lse_s), out = sum_s
// exp(lse_s - lse) out_s.
//
// Layout: element c of head h of query t of batch element b lies at q[(b * queries + t) * q_row
// + h * qk_dim + c], and likewise in out (out_row); step j of key head g of batch element b at
// k_cache[(b * capacity + j) * k_row + g * qk_dim + c], and in v_cache (v_row, v_dim). lse is
// [batch, heads, queries].
//
// The new steps first go into the caches (one launch); then batch element b attends to its
// L_b = cache_lengths[b] + appended steps, the queries being the last: query t at position
// L_b - queries + t. Step j is hidden from it when causal and j past that position, or outside
// the window around it (j < position - window_left, j > position + window_right; a negative
// bound is none). Scores: scale q . k; with softcap > 0, softcap tanh(s / softcap); minus
// alibi_slopes[h] |position - j|. A query that sees no step gets out 0 and lse -inf.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/flash_attention.h"

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

constexpr std::int64_t kDecodeRows = 16;     // query rows (heads of a group times queries) a block
constexpr std::int64_t kDecodeMaxDim = 256;  // head dims of q and k, and of v
constexpr std::int64_t kDecodeMaxSplits = 128;

struct DecodeAttentionParams {
  AttentionDType dtype = AttentionDType::f32;
  std::int64_t batch = 0, heads = 0, kv_heads = 0, queries = 0, qk_dim = 0, v_dim = 0, capacity = 0;
  const void* q = nullptr;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  std::int64_t q_row = 0, k_row = 0, v_row = 0;
  const std::int32_t* cache_lengths = nullptr;  // [batch], on the device
  // The new steps [batch, appended, kv_heads qk_dim] and [batch, appended, kv_heads v_dim], written
  // into the caches at steps [cache_lengths[b], cache_lengths[b] + appended) before the attention
  // (null when appended is 0). The caller has checked that they fit the capacity.
  const void* k_new = nullptr;
  const void* v_new = nullptr;
  std::int64_t appended = 0;
  bool causal = false;
  float scale = 1.0f, softcap = 0.0f;
  const float* alibi_slopes = nullptr;  // [heads] or null
  std::int64_t window_left = -1, window_right = -1;
  std::int64_t splits = 1;
  void* out = nullptr;
  std::int64_t out_row = 0;
  float* lse = nullptr;
  // With splits > 1: [splits, batch, heads, queries, v_dim] and [splits, batch, heads, queries].
  float* partial_out = nullptr;
  float* partial_lse = nullptr;
};

// The splits the op takes when the caller leaves them to it: enough blocks to fill a GPU of
// about 132 multiprocessors twice over, and at least 256 steps a split, for a cache of up to
// `longest` steps.
std::int64_t decode_attention_splits(const DecodeAttentionParams& params, std::int64_t longest);

// Why the kernels cannot take these sizes or this split, or "" when they can (the scratch of the
// partial results aside: the forward checks that). _check throws attnkit::Error with the reason.
std::string decode_attention_unsupported(const DecodeAttentionParams& params);
void decode_attention_check(const DecodeAttentionParams& params);

void decode_attention_forward(const DecodeAttentionParams& params, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
