// Internal: what the CPU sides of the attention ops share (additive_attention.cpp,
// gating_attention.cpp, attention.cpp): loops over rows that vectorize, and a repeat along a new
// axis made of an op that runs on every device.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "attnkit/error.h"
#include "attnkit/ops/attention.h"
#include "attnkit/ops/linear.h"
#include "attnkit/tensor.h"

namespace attnkit::ops::detail {

// The rule of attention.h (AttentionSupport) for a call on `device`: `fused_lacks` and
// `unfused_lacks` say what the fused kernel and the unfused path lack for the operands ("" when
// they take them; fused_lacks is not asked for when the options ask for the unfused path).
inline AttentionSupport choose_path(Device device, AttentionKernel kernel, const std::string& fused_lacks,
                                    const std::string& unfused_lacks) {
  if (device.is_cpu()) return {AttentionPath::cpu, ""};
  const std::string why = kernel == AttentionKernel::unfused ? "the options ask for the unfused path" : fused_lacks;
  if (why.empty()) return {AttentionPath::fused, ""};
  if (unfused_lacks.empty()) return {AttentionPath::unfused, why};
  return {AttentionPath::none, ::attnkit::detail::concat(why, "; the unfused path: ", unfused_lacks)};
}

// The path to run, or the error that says why none takes the operands.
inline AttentionPath path_or_throw(const char* op, const AttentionSupport& support) {
  ATTNKIT_CHECK(support.path != AttentionPath::none, op, ": ", support.why);
  return support.path;
}

// Sums and maxima over kLanes partial results, one per vector lane, so that the loops that make
// them vectorize (`omp simd` on the loops over lanes, without which GCC 12 takes the lanes apart
// into scalars).
constexpr std::int64_t kLanes = 16;

// The first `Width` partial results of a reduction, combined pairwise.
template <std::int64_t Width = kLanes, typename T, typename Op>
T combine_lanes(T* lanes, Op op) {
  if constexpr (Width == 1) {
    return lanes[0];
  } else {
    for (std::int64_t l = 0; l < Width / 2; ++l) lanes[l] = op(lanes[l], lanes[l + Width / 2]);
    return combine_lanes<Width / 2>(lanes, op);
  }
}

template <typename T>
T dot(const T* __restrict x, const T* __restrict y, std::int64_t n) {
  T lanes[kLanes] = {};
  std::int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes)
#pragma omp simd
    for (std::int64_t l = 0; l < kLanes; ++l) lanes[l] += x[c + l] * y[c + l];
  for (std::int64_t l = 0; c < n; ++c, ++l) lanes[l] += x[c] * y[c];
  return combine_lanes(lanes, std::plus<T>());
}

// y[k] = a * x[k] + (accumulate ? y[k] : 0) for k < n.
template <typename T>
void scaled_row(T a, const T* __restrict x, T* __restrict y, std::int64_t n, bool accumulate) {
  if (accumulate)
    for (std::int64_t k = 0; k < n; ++k) y[k] += a * x[k];
  else
    for (std::int64_t k = 0; k < n; ++k) y[k] = a * x[k];
}

// a [...] repeated along a new last axis of size n: [..., n] (a product with a row of ones, an op
// that runs on every device).
inline Tensor repeat_along_new_axis(const Tensor& a, std::int64_t n) {
  Shape shape = a.shape();
  shape.push_back(1);
  return linear(a.reshape(shape), Tensor::full({1, n}, 1.0, a.dtype(), a.device()));
}

}  // namespace attnkit::ops::detail
