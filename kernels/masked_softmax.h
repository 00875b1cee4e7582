// Launchers of kernels/masked_softmax.cu: the middle steps of the unfused attention paths
// (ops/attention.h). masked_softmax: the softmax of attention scores over the keys with the keys
// a query may not see removed (a key-padding mask and causal masking), and each row's
// log-sum-exp. epsilon_softmax: the weights of additive pooling, exp over the unmasked steps
// divided by their sum plus epsilon.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// scores [batch, heads, queries, keys] float32, replaced in place by the probabilities; key j is
// hidden from query i of batch b when key_mask[b * keys + j] == 0 (key_mask u8, may be null) or,
// when causal, j > i. lse [batch, heads, queries] = log sum exp over the visible scores. A query
// that sees no key gets probabilities 0 and lse -inf.
void masked_softmax(float* scores, const std::uint8_t* key_mask, float* lse, std::int64_t batch, std::int64_t heads,
                    std::int64_t queries, std::int64_t keys, bool causal, void* stream);

// scores [rows, steps] (tanh values, so exp needs no shift); a[r, t] = m exp(s) / (sum_t m exp(s)
// + epsilon) with m = mask[r * steps + t] != 0 (mask u8, may be null); a row whose denominator
// is 0 (every step masked, epsilon 0) gets weights 0.
void epsilon_softmax(const float* scores, const std::uint8_t* mask, float* a, std::int64_t rows, std::int64_t steps,
                     double epsilon, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
