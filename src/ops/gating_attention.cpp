// Dense-softmax gating over features and over time (attnkit/ops/attention.h). On the CPU,
// gating over features fused by blocks of rows (a product, the softmax and the gate while a block
// is in the cache), and gating over time as the composition of the linear, softmax, multiply, mean
// and transpose ops, which is exactly its definition. On a device, the fused kernels
// (device_ops/ops_gating_attention.cpp) unless the options ask for the same composition of ops;
// sizes the fused kernels cannot hold in shared memory take the composition too.
#include "attnkit/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/reduce.h"
#include "attnkit/ops/shape.h"
#include "attnkit/ops/softmax.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/reduce.h"
#include "device_ops/dispatch.h"
#include "ops/attention_common.h"
#include "ops/op_common.h"
#include "ops/softmax_row.h"

namespace attnkit::ops {

using detail::dot;
using detail::repeat_along_new_axis;

namespace {

// weight is [n, n] and bias [n], with n the features of x (or, over time, its steps).
void check_gating(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  bool over_time) {
  detail::check_float(op, "x", x);
  if (over_time)
    detail::check_rank(op, "x", x, 3, "[B, T, D]");
  else
    ATTNKIT_CHECK(x.dim() >= 1, op, ": x must be [..., D], got ", x.describe());
  const std::int64_t n = over_time ? x.size(1) : x.size(-1);
  detail::check_like(op, "weight", weight, {n, n}, x);
  if (bias.defined()) detail::check_like(op, "bias", bias, {n}, x);
}

// p[b, t] = mean over d of q[b, d, t], broadcast back to [B, T, D].
Tensor shared_time_weights(const Tensor& q) {
  return repeat_along_new_axis(mean(q, 1), q.size(1));
}

// The adjoint of shared_time_weights: dq[b, d, t] = sum_f dprobs[b, t, f] / D.
Tensor shared_time_weights_backward(const Tensor& dprobs) {
  return transpose(repeat_along_new_axis(mean(dprobs, 2), dprobs.size(2)), 1, 2);
}

// Gating over the features of x's rows on the CPU, fused: each block of rows is multiplied by
// the weight, normalised and gated while it is in the L1 cache, and the threads take blocks (one
// parallel loop per call instead of one per op of the composition).
//   forward   p = softmax(x W + c) per row, y = x * p
//   backward  dz = p * (dy x - sum(dy x p)) per row, dx = dy p + dz W^T, dW = x^T dz, dc = sum dz
constexpr std::int64_t kGatingBlockRows = 32;

template <typename Body>
void for_each_row_block(std::int64_t rows, std::int64_t D, Body&& body) {
  const std::int64_t blocks = (rows + kGatingBlockRows - 1) / kGatingBlockRows;
  cpu::parallel_for(blocks, 2 * kGatingBlockRows * D * D, [&](std::int64_t block) {
    const std::int64_t first = block * kGatingBlockRows;
    body(first, std::min(rows, first + kGatingBlockRows) - first);
  });
}

GatingResult gating_forward_cpu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const std::int64_t D = x.size(-1), rows = x.numel() / std::max<std::int64_t>(D, 1);
  GatingResult r{Tensor::empty_like(x), Tensor::empty_like(x)};
  if (x.numel() == 0) return r;
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* w = weight.data<T>();
    const T* c = bias.defined() ? bias.data<T>() : nullptr;
    T* p = r.probs.data<T>();
    T* y = r.y.data<T>();
    for_each_row_block(rows, D, [&](std::int64_t first, std::int64_t count) {
      cpu::gemm<T>(false, false, int(count), int(D), int(D), T(1), px + first * D, int(D), w, int(D), T(0),
                   p + first * D, int(D));
      for (std::int64_t row = first; row < first + count; ++row) {
        T* z = p + row * D;
        const T* xr = px + row * D;
        if (c != nullptr)
#pragma omp simd
          for (std::int64_t k = 0; k < D; ++k) z[k] += c[k];
        softmax_row(z, z, D, false);
        T* yr = y + row * D;
#pragma omp simd
        for (std::int64_t k = 0; k < D; ++k) yr[k] = xr[k] * z[k];
      }
    });
  });
  return r;
}

GatingGrads gating_backward_cpu(const Tensor& x, const Tensor& weight, const Tensor& probs, const Tensor& dy,
                                bool has_bias) {
  detail::check_like("gating_attention_backward", "probs", probs, x.shape(), x);
  detail::check_like("gating_attention_backward", "dy", dy, x.shape(), x);
  const std::int64_t D = x.size(-1), rows = x.numel() / std::max<std::int64_t>(D, 1);
  if (x.numel() == 0)  // no rows: the parameters' gradients are zero
    return {Tensor::empty_like(x), Tensor::zeros_like(weight), has_bias ? Tensor::zeros({D}, x.dtype()) : Tensor()};
  // The products and column sums below write every element of dW and dc.
  GatingGrads g{Tensor::empty_like(x), Tensor::empty_like(weight), Tensor()};
  if (has_bias) g.dbias = Tensor::empty({D}, x.dtype());
  Tensor dz = Tensor::empty({rows, D}, x.dtype());
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* w = weight.data<T>();
    const T* p = probs.data<T>();
    const T* pdy = dy.data<T>();
    T* dx = g.dx.data<T>();
    T* pdz = dz.data<T>();
    for_each_row_block(rows, D, [&](std::int64_t first, std::int64_t count) {
      for (std::int64_t row = first; row < first + count; ++row) {
        const T *xr = px + row * D, *pr = p + row * D, *dyr = pdy + row * D;
        T *dzr = pdz + row * D, *dxr = dx + row * D;
#pragma omp simd
        for (std::int64_t k = 0; k < D; ++k) dzr[k] = dyr[k] * xr[k];  // dp
        const T dot_dp_p = dot(dzr, pr, D);
#pragma omp simd
        for (std::int64_t k = 0; k < D; ++k) {
          dzr[k] = pr[k] * (dzr[k] - dot_dp_p);
          dxr[k] = dyr[k] * pr[k];
        }
      }
      cpu::gemm<T>(false, true, int(count), int(D), int(D), T(1), pdz + first * D, int(D), w, int(D), T(1),
                   dx + first * D, int(D));
    });
    cpu::gemm<T>(true, false, int(D), int(D), int(rows), T(1), px, int(D), pdz, int(D), T(0), g.dweight.data<T>(),
                 int(D));
    if (has_bias) cpu::column_sums(pdz, rows, D, g.dbias.data<T>());
  });
  return g;
}

}  // namespace

namespace {

// The path of attention.h's rule for x of checked operands: the fused kernels when they take x;
// the unfused path (a composition of ops) takes every x.
AttentionSupport gating_support(const char* op, const Tensor& x, AttentionKernel kernel, bool over_time,
                                bool single_vector) {
  const Device device = x.device();
  if (!device.is_cpu()) detail::require_device_f32(op, x);
  const bool ask_fused = !device.is_cpu() && kernel == AttentionKernel::fused;
  return detail::choose_path(
      device, kernel, ask_fused ? ATTNKIT_DEVICE_OP(device, gating_attention_unfit(x, over_time, single_vector)) : "",
      "");
}
// Whether a gating op on x runs through the fused kernels (else the cpu's, or the composition).
bool gating_fused(const char* op, const Tensor& x, AttentionKernel kernel, bool over_time, bool single_vector) {
  return detail::path_or_throw(op, gating_support(op, x, kernel, over_time, single_vector)) == AttentionPath::fused;
}

// The fused backward's dx, and the kernel's and bias's gradients from its dz over x's rows.
GatingGrads gating_backward_fused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& probs,
                                  const Tensor& dy, bool over_time, bool single_vector, bool has_bias) {
  Tensor dz;
  GatingGrads g;
  g.dx = ATTNKIT_DEVICE_OP(x.device(),
                           gating_attention_backward(x, weight, bias, probs, dy, over_time, single_vector, dz));
  const Tensor x_rows = over_time ? transpose(x, 1, 2).reshape(dz.shape()) : x.reshape(dz.shape());
  g.dweight = matmul(x_rows, dz, true);
  if (has_bias) g.dbias = bias_add_backward(dz);
  return g;
}

}  // namespace

GatingResult gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias, AttentionKernel kernel) {
  check_gating("gating_attention", x, weight, bias, false);
  if (gating_fused("gating_attention", x, kernel, false, false))
    return ATTNKIT_DEVICE_OP(x.device(), gating_attention(x, weight, bias, false, false));
  if (x.is_cpu()) return gating_forward_cpu(x, weight, bias);
  GatingResult r;
  r.probs = softmax(linear(x, weight, bias), -1);
  r.y = multiply(x, r.probs);
  return r;
}

GatingGrads gating_attention_backward(const Tensor& x, const Tensor& weight, const Tensor& probs,
                                      const Tensor& dy, bool has_bias, AttentionKernel kernel) {
  check_gating("gating_attention_backward", x, weight, Tensor(), false);
  if (gating_fused("gating_attention_backward", x, kernel, false, false))
    return gating_backward_fused(x, weight, Tensor(), probs, dy, false, false, has_bias);
  if (x.is_cpu()) return gating_backward_cpu(x, weight, probs, dy, has_bias);
  const MultiplyGrads product = multiply_backward(x, probs, dy);  // da = dy probs, db = dy x
  const LinearGrads dense = linear_backward(x, weight, softmax_backward(probs, product.db, -1), has_bias);
  return {add(product.da, dense.dx), dense.dweight, dense.dbias};
}

GatingResult temporal_gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       bool single_vector, AttentionKernel kernel) {
  check_gating("temporal_gating_attention", x, weight, bias, true);
  if (gating_fused("temporal_gating_attention", x, kernel, true, single_vector))
    return ATTNKIT_DEVICE_OP(x.device(), gating_attention(x, weight, bias, true, single_vector));
  const Tensor q = softmax(linear(transpose(x, 1, 2), weight, bias), -1);  // [B, D, T]
  GatingResult r;
  r.probs = single_vector ? shared_time_weights(q) : transpose(q, 1, 2);
  r.y = multiply(x, r.probs);
  return r;
}

GatingGrads temporal_gating_attention_backward(const Tensor& x, const Tensor& weight,
                                               const Tensor& bias, const Tensor& dy,
                                               bool single_vector, AttentionKernel kernel) {
  check_gating("temporal_gating_attention_backward", x, weight, bias, true);
  if (gating_fused("temporal_gating_attention_backward", x, kernel, true, single_vector))
    return gating_backward_fused(x, weight, bias, Tensor(), dy, true, single_vector, bias.defined());
  const Tensor xt = transpose(x, 1, 2);
  const Tensor q = softmax(linear(xt, weight, bias), -1);
  const Tensor probs = single_vector ? shared_time_weights(q) : transpose(q, 1, 2);
  const MultiplyGrads product = multiply_backward(x, probs, dy);
  const Tensor dq = single_vector ? shared_time_weights_backward(product.db) : transpose(product.db, 1, 2);
  const LinearGrads dense = linear_backward(xt, weight, softmax_backward(q, dq, -1), bias.defined());
  return {add(product.da, transpose(dense.dx, 1, 2)), dense.dweight, dense.dbias};
}

AttentionSupport gating_attention_supports(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                           AttentionKernel kernel) {
  check_gating("gating_attention", x, weight, bias, false);
  return gating_support("gating_attention", x, kernel, false, false);
}

AttentionSupport temporal_gating_attention_supports(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                                    bool single_vector, AttentionKernel kernel) {
  check_gating("temporal_gating_attention", x, weight, bias, true);
  return gating_support("temporal_gating_attention", x, kernel, true, single_vector);
}

}  // namespace attnkit::ops
