// Launchers of kernels/gating_attention.cu: Dense-softmax gating (ops/attention.h, 2. and 3.)
// fused, float32: the product with the gate's kernel, the bias, the softmax and the multiply in
// one kernel; and the backward's multiply, softmax backward and input-gradient product in one.
//
// Both gatings are softmax rows over `width` entries of x: over the features of each step
// (rows = B T, width = D), or over the steps of each feature (rows = B D, width = T, a row
// strided by D in x). A layout says where element c of row r lies:
//   (r / group_rows) * group_stride + (r % group_rows) * row_stride + c * column_stride
// and x, probs, y, dy and dx share it. With `average` (seed 003's SINGLE_ATTENTION_VECTOR),
// each group of rows (the D features of one batch element) shares the mean of its rows'
// softmaxes.
//
//   forward   q_r = softmax(x_r weight + bias); probs_r = q_r (or the group's mean); y = x probs
//   backward  dprobs = dy x (with average: the group's mean of it, for every row); dz_r = q_r
//             (dprobs_r - q_r . dprobs_r); dx = dy probs + dz weight^T
// The weight's and bias's gradients, dz^T x and the sum of dz over rows, are products and sums
// over all rows, left to the device's gemm and reductions; dz is written [rows, width].
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

struct GatingLayout {
  std::int64_t rows, width;
  std::int64_t group_rows, group_stride, row_stride, column_stride;
};
// x [rows, D], a softmax over each row's D features.
GatingLayout gating_over_features(std::int64_t rows, std::int64_t features);
// x [B, T, D], a softmax over the T steps of each (batch element, feature); groups of D rows.
GatingLayout gating_over_time(std::int64_t batch, std::int64_t steps, std::int64_t features);

// Whether the fused kernels take this layout: a block holds its rows whole (at most
// kGatingTileElements elements of x: rows of at most that many entries, and with `average` a whole
// group).
constexpr std::int64_t kGatingTileElements = 2048;
bool gating_fused_fits(const GatingLayout& layout, bool average);

// weight [width, width], bias [width] or null; writes probs, and y unless it is null. With y
// null and average false, probs holds the rows' softmaxes q (the backward's input).
void gating_forward(const GatingLayout& layout, const float* x, const float* weight, const float* bias, bool average,
                    float* probs, float* y, void* stream);

// q: the rows' softmaxes (probs of a forward without average); writes dx (x's layout) and dz
// [rows, width].
void gating_backward(const GatingLayout& layout, const float* x, const float* weight, const float* q, const float* dy,
                     bool average, float* dx, float* dz, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
