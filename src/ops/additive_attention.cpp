// Additive tanh-softmax pooling (attnkit/ops/attention.h). On the CPU, the reference that the
// kernels are tested against: loops over a batch element, vectorized, accumulating in the
// operands' dtype (f32, or f64 for f64). On a device, the fused kernel (device_ops/
// ops_additive_attention.cpp) unless the options ask for the unfused path, ops around an
// epsilon-softmax kernel; sizes the fused kernel cannot hold in shared memory take that path too.
#include "attnkit/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/softmax.h"
#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/attention_common.h"
#include "ops/op_common.h"

namespace attnkit::ops {

using detail::dot;
using detail::repeat_along_new_axis;
using detail::scaled_row;

namespace {

struct PoolDims {
  std::int64_t B, T, D;
};

PoolDims check_additive(const char* op, const Tensor& x, const Tensor& w, const Tensor& b) {
  detail::check_float(op, "x", x);
  detail::check_rank(op, "x", x, 3, "[B, T, D]");
  const PoolDims d{x.size(0), x.size(1), x.size(2)};
  detail::check_like(op, "w", w, {d.D}, x);
  if (b.defined()) detail::check_like(op, "b", b, {d.T}, x);
  return d;
}

// check_additive and the forward's mask and epsilon, and the operands on one device.
PoolDims check_forward(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mask,
                       const AdditiveAttentionOptions& options) {
  const PoolDims d = check_additive(op, x, w, b);
  if (mask.defined())
    ATTNKIT_CHECK(mask.dtype() == DType::u8 && mask.shape() == Shape({d.B, d.T}), op,
                  ": mask must be u8 [B, T] = ", shape_str({d.B, d.T}), ", got ", mask.describe());
  ATTNKIT_CHECK(options.epsilon >= 0, op, ": epsilon must not be negative");
  detail::common_device(op, {{"x", &x}, {"w", &w}, {"b", &b}, {"mask", &mask}});
  return d;
}

// The path of attention.h's rule for x of checked operands: the fused kernels when they take x;
// the unfused path takes every x.
AttentionSupport additive_support(const char* op, const Tensor& x, const AdditiveAttentionOptions& options) {
  const Device device = x.device();
  if (!device.is_cpu()) detail::require_device_f32(op, x);
  const bool ask_fused = !device.is_cpu() && options.kernel == AttentionKernel::fused;
  return detail::choose_path(device, options.kernel, ask_fused ? ATTNKIT_DEVICE_OP(device, additive_attention_unfit(x)) : "",
                     "");
}

// e_t = tanh(x_t . w + b_t) for one batch element.
template <typename T>
T additive_score(const T* x_t, const T* w, const T* b, std::int64_t t, std::int64_t D) {
  return std::tanh(dot(x_t, w, D) + (b != nullptr ? b[t] : T(0)));
}

// The tanh scores e [B, T] of additive pooling, by ops (the unfused path of a device).
Tensor additive_scores(const Tensor& x, const Tensor& w, const Tensor& b, const PoolDims& d) {
  Tensor e = linear(x, w.reshape({d.D, 1})).reshape({d.B, d.T});
  if (b.defined()) e = bias_add(e, b);
  return tanh(e);
}

// Additive pooling on a device, unfused: the scores by a product and elementwise ops, the
// weights by a masked softmax kernel, the pooling by a batched product.
AdditiveAttentionResult additive_attention_unfused(const Tensor& x, const Tensor& w, const Tensor& b,
                                                   const Tensor& mask, const AdditiveAttentionOptions& options,
                                                   const PoolDims& d) {
  AdditiveAttentionResult r;
  r.weights = ATTNKIT_DEVICE_OP(x.device(), epsilon_softmax(additive_scores(x, w, b, d), mask, options.epsilon));
  r.y = options.return_sequences ? multiply(x, repeat_along_new_axis(r.weights, d.D))
                                 : matmul(r.weights.reshape({d.B, 1, d.T}), x).reshape({d.B, d.D});
  return r;
}

// Its gradient by the rule of the header, each step an op: da, the softmax's backward, tanh's.
AdditiveAttentionGrads additive_attention_backward_unfused(const Tensor& x, const Tensor& w, const Tensor& b,
                                                           const Tensor& weights, const Tensor& dy,
                                                           const AdditiveAttentionOptions& options,
                                                           const PoolDims& d) {
  const Tensor ones = Tensor::full({d.D, 1}, 1.0, x.dtype(), x.device());
  const Tensor da = options.return_sequences ? linear(multiply(dy, x), ones).reshape({d.B, d.T})
                                             : matmul(x, dy.reshape({d.B, d.D, 1})).reshape({d.B, d.T});
  const Tensor dpre =
      activation_backward(additive_scores(x, w, b, d), softmax_backward(weights, da, -1), Activation::tanh);
  const Tensor dx_pooled = options.return_sequences
                               ? multiply(dy, repeat_along_new_axis(weights, d.D))
                               : matmul(weights.reshape({d.B, d.T, 1}), dy.reshape({d.B, 1, d.D}));
  AdditiveAttentionGrads g;
  g.dx = add(dx_pooled, linear(dpre.reshape({d.B, d.T, 1}), w.reshape({1, d.D})));
  g.dw = matmul(x.reshape({d.B * d.T, d.D}), dpre.reshape({d.B * d.T, 1}), true).reshape({d.D});
  if (b.defined()) g.db = bias_add_backward(dpre);
  return g;
}

}  // namespace

AdditiveAttentionResult additive_attention(const Tensor& x, const Tensor& w, const Tensor& b,
                                           const Tensor& mask,
                                           const AdditiveAttentionOptions& options) {
  const char* op = "additive_attention";
  const PoolDims d = check_forward(op, x, w, b, mask, options);
  const AttentionPath path = detail::path_or_throw(op, additive_support(op, x, options));
  if (path == AttentionPath::fused)
    return ATTNKIT_DEVICE_OP(x.device(), additive_attention(x, w, b, mask, options.return_sequences, options.epsilon));
  if (path == AttentionPath::unfused) return additive_attention_unfused(x, w, b, mask, options, d);
  AdditiveAttentionResult r;
  r.y = options.return_sequences ? Tensor::empty(x.shape(), x.dtype()) : Tensor::empty({d.B, d.D}, x.dtype());
  r.weights = Tensor::empty({d.B, d.T}, x.dtype());
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pw = w.data<T>(), *pb = b.defined() ? b.data<T>() : nullptr;
    const std::uint8_t* pm = mask.defined() ? mask.data<std::uint8_t>() : nullptr;
    T *py = r.y.data<T>(), *pa = r.weights.data<T>();
    cpu::parallel_for(d.B, 4 * d.T * d.D, [&](std::int64_t bi) {
      const T* xb = px + bi * d.T * d.D;
      T* ab = pa + bi * d.T;
      T sum = 0;
      for (std::int64_t t = 0; t < d.T; ++t) {
        const bool visible = pm == nullptr || pm[bi * d.T + t] != 0;
        ab[t] = visible ? std::exp(additive_score(xb + t * d.D, pw, pb, t, d.D)) : T(0);
        sum += ab[t];
      }
      const T denominator = sum + static_cast<T>(options.epsilon);
      for (std::int64_t t = 0; t < d.T; ++t) ab[t] = denominator > 0 ? ab[t] / denominator : T(0);
      // y_t = a_t x_t, or y = sum over t of a_t x_t.
      for (std::int64_t t = 0; t < d.T; ++t)
        scaled_row(ab[t], xb + t * d.D, options.return_sequences ? py + (bi * d.T + t) * d.D : py + bi * d.D, d.D,
                   !options.return_sequences && t > 0);
    });
  });
  return r;
}

AdditiveAttentionGrads additive_attention_backward(const Tensor& x, const Tensor& w, const Tensor& b,
                                                   const Tensor& weights, const Tensor& dy,
                                                   const AdditiveAttentionOptions& options) {
  const char* op = "additive_attention_backward";
  const PoolDims d = check_additive(op, x, w, b);
  detail::check_like(op, "weights", weights, {d.B, d.T}, x);
  detail::check_like(op, "dy", dy, options.return_sequences ? x.shape() : Shape{d.B, d.D}, x);
  detail::common_device(op, {{"x", &x}, {"w", &w}, {"b", &b}, {"weights", &weights}, {"dy", &dy}});
  const AttentionPath path = detail::path_or_throw(op, additive_support(op, x, options));
  if (path == AttentionPath::fused)
    return ATTNKIT_DEVICE_OP(x.device(), additive_attention_backward(x, w, b, weights, dy, options.return_sequences));
  if (path == AttentionPath::unfused) return additive_attention_backward_unfused(x, w, b, weights, dy, options, d);
  AdditiveAttentionGrads g{Tensor::empty_like(x), Tensor::empty_like(w),
                           b.defined() ? Tensor::empty_like(b) : Tensor()};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pw = w.data<T>(), *pb = b.defined() ? b.data<T>() : nullptr;
    const T *pa = weights.data<T>(), *pdy = dy.data<T>();
    T* pdx = g.dx.data<T>();
    // dpre[b, t]: the gradient of step t's score before tanh (da_t first).
    std::vector<T> dpre(static_cast<std::size_t>(d.B * d.T));
    cpu::parallel_for(d.B, 6 * d.T * d.D, [&](std::int64_t bi) {
      const T* xb = px + bi * d.T * d.D;
      const T* ab = pa + bi * d.T;
      T* dpre_b = dpre.data() + bi * d.T;
      // The upstream gradient seen by step t: dy[b] when pooled, dy[b, t] with sequences.
      auto dy_at = [&](std::int64_t t) {
        return options.return_sequences ? pdy + (bi * d.T + t) * d.D : pdy + bi * d.D;
      };
      T weighted = 0;
      for (std::int64_t t = 0; t < d.T; ++t) {
        dpre_b[t] = dot(dy_at(t), xb + t * d.D, d.D);  // da_t
        weighted += ab[t] * dpre_b[t];
      }
      for (std::int64_t t = 0; t < d.T; ++t) {
        const T e = additive_score(xb + t * d.D, pw, pb, t, d.D);
        dpre_b[t] = ab[t] * (dpre_b[t] - weighted) * (T(1) - e * e);
        // dx_t = a_t dy_t + dpre_t w.
        T* dx_t = pdx + (bi * d.T + t) * d.D;
        scaled_row(ab[t], dy_at(t), dx_t, d.D, false);
        scaled_row(dpre_b[t], pw, dx_t, d.D, true);
      }
    });
    // dw = sum over (b, t) of dpre x_t; db_t = sum over b of dpre[b, t].
    T* dw = g.dw.data<T>();
    for (std::int64_t row = 0; row < d.B * d.T; ++row)
      scaled_row(dpre[static_cast<std::size_t>(row)], px + row * d.D, dw, d.D, row > 0);
    if (b.defined()) {
      T* db = g.db.data<T>();
      std::fill(db, db + d.T, T(0));
      for (std::int64_t row = 0; row < d.B * d.T; ++row) db[row % d.T] += dpre[static_cast<std::size_t>(row)];
    }
  });
  return g;
}

AttentionSupport additive_attention_supports(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mask,
                                             const AdditiveAttentionOptions& options) {
  const char* op = "additive_attention";
  check_forward(op, x, w, b, mask, options);
  return additive_support(op, x, options);
}

}  // namespace attnkit::ops
