// Internal: softmax over one contiguous row, the vectorized form that the softmax op uses for
// rows of 16 or more and the fused gating attention for each row of its blocks.
//
//   softmax_row           y = softmax(x), or log_softmax(x) with `log`; y may be x
//   softmax_row_backward  softmax: dx = y (dy - sum dy y); log_softmax: dx = dy - exp(y) sum dy
//
// Every loop is `omp simd`; the sums are in T: each vector lane adds n / 16 terms of at most 1
// (exp(x - max)), and the vector lanes are added as a tree. exp is cpu::fast_exp (the C
// library's for double).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "cpu/fast_math.h"

namespace attnkit::ops {

template <typename T>
void softmax_row(const T* x, T* y, std::int64_t n, bool log) {
  T max = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : max)
  for (std::int64_t k = 0; k < n; ++k) max = x[k] > max ? x[k] : max;
  T sum = 0;
  if (log) {
#pragma omp simd reduction(+ : sum)
    for (std::int64_t k = 0; k < n; ++k) sum += cpu::fast_exp(static_cast<T>(x[k] - max));
    const T log_sum = std::log(sum);
#pragma omp simd
    for (std::int64_t k = 0; k < n; ++k) y[k] = (x[k] - max) - log_sum;
    return;
  }
#pragma omp simd reduction(+ : sum)
  for (std::int64_t k = 0; k < n; ++k) {
    y[k] = cpu::fast_exp(static_cast<T>(x[k] - max));
    sum += y[k];
  }
  const T inverse = 1 / sum;
#pragma omp simd
  for (std::int64_t k = 0; k < n; ++k) y[k] *= inverse;
}

template <typename T>
void softmax_row_backward(const T* y, const T* dy, T* dx, std::int64_t n, bool log) {
  T dot = 0;
  if (log) {
#pragma omp simd reduction(+ : dot)
    for (std::int64_t k = 0; k < n; ++k) dot += dy[k];
#pragma omp simd
    for (std::int64_t k = 0; k < n; ++k) dx[k] = dy[k] - cpu::fast_exp(y[k]) * dot;
    return;
  }
#pragma omp simd reduction(+ : dot)
  for (std::int64_t k = 0; k < n; ++k) dot += dy[k] * y[k];
#pragma omp simd
  for (std::int64_t k = 0; k < n; ++k) dx[k] = y[k] * (dy[k] - dot);
}

}  // namespace attnkit::ops
