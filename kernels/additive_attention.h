// Launchers of kernels/additive_attention.cu: additive tanh-softmax pooling (ops/attention.h, 1.)
// fused, float32, one block per batch element that reads its x [T, D] once.
//
//   e_t = tanh(x_t . w + b_t); s_t = mask_t exp(e_t); a_t = s_t / (sum_t s_t + epsilon)
//   y = sum_t a_t x_t [B, D], or with return_sequences y_t = a_t x_t [B, T, D]
//
// e_t lies in [-1, 1], so exp needs no running maximum: one pass accumulates sum_t s_t x_t and
// sum_t s_t together (return_sequences reads x a second time to scale it). The backward also
// reads x once: with c_t = a_t (1 - e_t^2) and W = sum_t a_t da_t (da_t = dy . x_t),
//   dw_b = sum_t dpre_t x_t = sum_t c_t da_t x_t - W sum_t c_t x_t,
// both sums accumulated in the same pass; then dpre_t = c_t (da_t - W) and dx_t = a_t dy +
// dpre_t w need no x. dw and db are sums over the batch of dw_partial [B, D] and dpre [B, T],
// left to a reduction.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

struct AdditiveAttentionShape {
  std::int64_t batch, steps, features;
  bool return_sequences;
};

// The largest `features` the kernels take (a step of x and two rows of sums in shared memory).
constexpr std::int64_t kAdditiveAttentionMaxFeatures = 4096;

// x [B, T, D], w [D], b [T] or null, mask [B, T] u8 or null; writes y and weights [B, T].
void additive_attention_forward(const AdditiveAttentionShape& shape, const float* x, const float* w, const float* b,
                                const std::uint8_t* mask, float epsilon, float* y, float* weights, void* stream);

// weights [B, T] from the forward, dy like y; writes dx [B, T, D], dw_partial [B, D] (each batch
// element's part of dw), dpre [B, T] (db's parts) and uses slope [B, T] as scratch.
void additive_attention_backward(const AdditiveAttentionShape& shape, const float* x, const float* w, const float* b,
                                 const float* weights, const float* dy, float* dx, float* dw_partial, float* dpre,
                                 float* slope, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
