// The attention ops. On the CPU, the references that the fused kernels are tested against:
// additive pooling and scaled dot-product attention as plain loops over a batch element (and
// head), in double accumulation. On a device, the unfused path: additive pooling as ops around
// an epsilon-softmax kernel, scaled dot-product attention as the device's products around a
// masked softmax kernel (src/device_ops/ops_attention.cpp). The two gating ops are compositions
// of the linear, softmax, multiply, mean and transpose ops everywhere, which is exactly their
// definition.
#include "attnkit/ops/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/reduce.h"
#include "attnkit/ops/shape.h"
#include "attnkit/ops/softmax.h"
#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {

// ------------------------------------------------------------------ additive pooling

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

// e_t = tanh(x_t . w + b_t) for one batch element.
template <typename T>
double additive_score(const T* x_t, const T* w, const T* b, std::int64_t t, std::int64_t D) {
  double dot = b != nullptr ? double(b[t]) : 0.0;
  for (std::int64_t k = 0; k < D; ++k) dot += double(x_t[k]) * double(w[k]);
  return std::tanh(dot);
}

// a [...] repeated along a new last axis of size n: [..., n] (a product with a row of ones, an op
// that runs on every device).
Tensor repeat_along_new_axis(const Tensor& a, std::int64_t n) {
  Shape shape = a.shape();
  shape.push_back(1);
  return linear(a.reshape(shape), Tensor::full({1, n}, 1.0, a.dtype(), a.device()));
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
  const PoolDims d = check_additive(op, x, w, b);
  if (mask.defined())
    ATTNKIT_CHECK(mask.dtype() == DType::u8 && mask.shape() == Shape({d.B, d.T}), op,
                  ": mask must be u8 [B, T] = ", shape_str({d.B, d.T}), ", got ", mask.describe());
  ATTNKIT_CHECK(options.epsilon >= 0, op, ": epsilon must not be negative");
  const Device device = detail::common_device(op, {{"x", &x}, {"w", &w}, {"b", &b}, {"mask", &mask}});
  if (!device.is_cpu()) {
    detail::require_device_f32(op, x);
    return additive_attention_unfused(x, w, b, mask, options, d);
  }
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
      double sum = 0;
      for (std::int64_t t = 0; t < d.T; ++t) {
        const bool visible = pm == nullptr || pm[bi * d.T + t] != 0;
        const double s = visible ? std::exp(additive_score(xb + t * d.D, pw, pb, t, d.D)) : 0.0;
        ab[t] = static_cast<T>(s);
        sum += s;
      }
      const double denominator = sum + options.epsilon;
      for (std::int64_t t = 0; t < d.T; ++t)
        ab[t] = denominator > 0 ? static_cast<T>(double(ab[t]) / denominator) : T(0);
      if (options.return_sequences) {
        for (std::int64_t t = 0; t < d.T; ++t)
          for (std::int64_t k = 0; k < d.D; ++k) py[(bi * d.T + t) * d.D + k] = ab[t] * xb[t * d.D + k];
      } else {
        for (std::int64_t k = 0; k < d.D; ++k) {
          double acc = 0;
          for (std::int64_t t = 0; t < d.T; ++t) acc += double(ab[t]) * double(xb[t * d.D + k]);
          py[bi * d.D + k] = static_cast<T>(acc);
        }
      }
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
  const Device device =
      detail::common_device(op, {{"x", &x}, {"w", &w}, {"b", &b}, {"weights", &weights}, {"dy", &dy}});
  if (!device.is_cpu()) {
    detail::require_device_f32(op, x);
    return additive_attention_backward_unfused(x, w, b, weights, dy, options, d);
  }
  AdditiveAttentionGrads g{Tensor::empty_like(x), Tensor::empty_like(w),
                           b.defined() ? Tensor::empty_like(b) : Tensor()};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *px = x.data<T>(), *pw = w.data<T>(), *pb = b.defined() ? b.data<T>() : nullptr;
    const T *pa = weights.data<T>(), *pdy = dy.data<T>();
    T* pdx = g.dx.data<T>();
    std::vector<double> dpre(static_cast<std::size_t>(d.B * d.T));
    cpu::parallel_for(d.B, 6 * d.T * d.D, [&](std::int64_t bi) {
      const T* xb = px + bi * d.T * d.D;
      const T* ab = pa + bi * d.T;
      // The upstream gradient seen by step t: dy[b] when pooled, dy[b, t] with sequences.
      auto dy_at = [&](std::int64_t t) {
        return options.return_sequences ? pdy + (bi * d.T + t) * d.D : pdy + bi * d.D;
      };
      std::vector<double> da(static_cast<std::size_t>(d.T));
      double weighted = 0;
      for (std::int64_t t = 0; t < d.T; ++t) {
        double dot = 0;
        for (std::int64_t k = 0; k < d.D; ++k) dot += double(dy_at(t)[k]) * double(xb[t * d.D + k]);
        da[static_cast<std::size_t>(t)] = dot;
        weighted += double(ab[t]) * dot;
      }
      for (std::int64_t t = 0; t < d.T; ++t) {
        const double e = additive_score(xb + t * d.D, pw, pb, t, d.D);
        const double de = double(ab[t]) * (da[static_cast<std::size_t>(t)] - weighted);
        const double dp = de * (1 - e * e);
        dpre[static_cast<std::size_t>(bi * d.T + t)] = dp;
        for (std::int64_t k = 0; k < d.D; ++k)
          pdx[(bi * d.T + t) * d.D + k] = static_cast<T>(double(ab[t]) * double(dy_at(t)[k]) + dp * double(pw[k]));
      }
    });
    std::vector<double> dw(static_cast<std::size_t>(d.D), 0.0), db(static_cast<std::size_t>(d.T), 0.0);
    for (std::int64_t bi = 0; bi < d.B; ++bi)
      for (std::int64_t t = 0; t < d.T; ++t) {
        const double dp = dpre[static_cast<std::size_t>(bi * d.T + t)];
        db[static_cast<std::size_t>(t)] += dp;
        for (std::int64_t k = 0; k < d.D; ++k) dw[static_cast<std::size_t>(k)] += dp * double(px[(bi * d.T + t) * d.D + k]);
      }
    for (std::int64_t k = 0; k < d.D; ++k) g.dw.data<T>()[k] = static_cast<T>(dw[static_cast<std::size_t>(k)]);
    if (b.defined())
      for (std::int64_t t = 0; t < d.T; ++t) g.db.data<T>()[t] = static_cast<T>(db[static_cast<std::size_t>(t)]);
  });
  return g;
}

// ------------------------------------------------------------------ gating

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

}  // namespace

GatingResult gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_gating("gating_attention", x, weight, bias, false);
  GatingResult r;
  r.probs = softmax(linear(x, weight, bias), -1);
  r.y = multiply(x, r.probs);
  return r;
}

GatingGrads gating_attention_backward(const Tensor& x, const Tensor& weight, const Tensor& probs,
                                      const Tensor& dy, bool has_bias) {
  check_gating("gating_attention_backward", x, weight, Tensor(), false);
  const MultiplyGrads product = multiply_backward(x, probs, dy);  // da = dy probs, db = dy x
  const LinearGrads dense = linear_backward(x, weight, softmax_backward(probs, product.db, -1), has_bias);
  return {add(product.da, dense.dx), dense.dweight, dense.dbias};
}

GatingResult temporal_gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       bool single_vector) {
  check_gating("temporal_gating_attention", x, weight, bias, true);
  const Tensor q = softmax(linear(transpose(x, 1, 2), weight, bias), -1);  // [B, D, T]
  GatingResult r;
  r.probs = single_vector ? shared_time_weights(q) : transpose(q, 1, 2);
  r.y = multiply(x, r.probs);
  return r;
}

GatingGrads temporal_gating_attention_backward(const Tensor& x, const Tensor& weight,
                                               const Tensor& bias, const Tensor& dy,
                                               bool single_vector) {
  check_gating("temporal_gating_attention_backward", x, weight, bias, true);
  const Tensor xt = transpose(x, 1, 2);
  const Tensor q = softmax(linear(xt, weight, bias), -1);
  const Tensor probs = single_vector ? shared_time_weights(q) : transpose(q, 1, 2);
  const MultiplyGrads product = multiply_backward(x, probs, dy);
  const Tensor dq = single_vector ? shared_time_weights_backward(product.db) : transpose(product.db, 1, 2);
  const LinearGrads dense = linear_backward(xt, weight, softmax_backward(q, dq, -1), bias.defined());
  return {add(product.da, transpose(dense.dx, 1, 2)), dense.dweight, dense.dbias};
}

// ------------------------------------------------------------------ scaled dot-product attention

namespace {

struct SdpaDims {
  std::int64_t B, Tq, Tk, H, dk, dv;
  double scale;
};

SdpaDims check_sdpa(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                    const Tensor& key_mask, const AttentionOptions& options) {
  detail::check_float(op, "q", q);
  detail::check_rank(op, "q", q, 3, "[B, Tq, H*dk]");
  detail::check_rank(op, "k", k, 3, "[B, Tk, H*dk]");
  detail::check_rank(op, "v", v, 3, "[B, Tk, H*dv]");
  const std::int64_t H = options.num_heads;
  ATTNKIT_CHECK(H >= 1, op, ": num_heads must be at least 1, got ", H);
  ATTNKIT_CHECK(q.size(2) % H == 0, op, ": the width ", q.size(2), " of q is not divisible by ", H,
                " heads");
  ATTNKIT_CHECK(v.size(2) % H == 0, op, ": the width ", v.size(2), " of v is not divisible by ", H,
                " heads");
  SdpaDims d{q.size(0), q.size(1), k.size(1), H, q.size(2) / H, v.size(2) / H, 0.0};
  detail::check_like(op, "k", k, {d.B, d.Tk, q.size(2)}, q);
  detail::check_like(op, "v", v, {d.B, d.Tk, v.size(2)}, q);
  if (key_mask.defined())
    ATTNKIT_CHECK(key_mask.dtype() == DType::u8 && key_mask.shape() == Shape({d.B, d.Tk}), op,
                  ": key_mask must be u8 [B, Tk] = ", shape_str({d.B, d.Tk}), ", got ",
                  key_mask.describe());
  d.scale = options.scale.has_value() ? *options.scale : 1.0 / std::sqrt(double(d.dk));
  const Device device = detail::common_device(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"key_mask", &key_mask}});
  if (!device.is_cpu()) detail::require_device_f32(op, q);
  return d;
}

// Scores of query i of one (batch, head) against every key: -inf where hidden.
template <typename T>
void score_row(const SdpaDims& d, const T* q_i, const T* k_bh, const std::uint8_t* mask_b,
               bool causal, std::int64_t i, double* scores) {
  const std::int64_t row = d.H * d.dk;
  for (std::int64_t j = 0; j < d.Tk; ++j) {
    const bool hidden = (mask_b != nullptr && mask_b[j] == 0) || (causal && j > i);
    if (hidden) {
      scores[j] = -std::numeric_limits<double>::infinity();
      continue;
    }
    const T* k_j = k_bh + j * row;
    double dot = 0;
    for (std::int64_t c = 0; c < d.dk; ++c) dot += double(q_i[c]) * double(k_j[c]);
    scores[j] = d.scale * dot;
  }
}

}  // namespace

AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& key_mask, const AttentionOptions& options) {
  const SdpaDims d = check_sdpa("scaled_dot_product_attention", q, k, v, key_mask, options);
  if (!q.is_cpu())  // the unfused path: products, a masked softmax kernel, products
    return ATTNKIT_DEVICE_OP(q.device(), scaled_dot_product_attention(q, k, v, key_mask, d.H, options.causal, d.scale,
                                                                      options.return_weights));
  AttentionResult r;
  r.out = Tensor::empty({d.B, d.Tq, d.H * d.dv}, q.dtype());
  r.lse = Tensor::empty({d.B, d.H, d.Tq}, q.dtype());
  if (options.return_weights) r.weights = Tensor::empty({d.B, d.H, d.Tq, d.Tk}, q.dtype());
  detail::dispatch_float(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
    const std::uint8_t* pm = key_mask.defined() ? key_mask.data<std::uint8_t>() : nullptr;
    T *po = r.out.data<T>(), *pl = r.lse.data<T>();
    T* pw = options.return_weights ? r.weights.data<T>() : nullptr;
    cpu::parallel_for(d.B * d.H, d.Tq * d.Tk * (d.dk + d.dv), [&](std::int64_t bh) {
      const std::int64_t b = bh / d.H, h = bh % d.H;
      const T* k_bh = pk + b * d.Tk * d.H * d.dk + h * d.dk;
      const T* v_bh = pv + b * d.Tk * d.H * d.dv + h * d.dv;
      std::vector<double> scores(static_cast<std::size_t>(d.Tk)), acc(static_cast<std::size_t>(d.dv));
      for (std::int64_t i = 0; i < d.Tq; ++i) {
        score_row(d, pq + (b * d.Tq + i) * d.H * d.dk + h * d.dk, k_bh, pm ? pm + b * d.Tk : nullptr,
                  options.causal, i, scores.data());
        double max = -std::numeric_limits<double>::infinity();
        for (const double s : scores) max = std::max(max, s);
        T* o_i = po + (b * d.Tq + i) * d.H * d.dv + h * d.dv;
        T* w_i = pw ? pw + (bh * d.Tq + i) * d.Tk : nullptr;
        if (max == -std::numeric_limits<double>::infinity()) {  // this query sees no key
          for (std::int64_t c = 0; c < d.dv; ++c) o_i[c] = T(0);
          if (w_i) for (std::int64_t j = 0; j < d.Tk; ++j) w_i[j] = T(0);
          pl[bh * d.Tq + i] = static_cast<T>(-std::numeric_limits<double>::infinity());
          continue;
        }
        double sum = 0;
        for (double& s : scores) sum += (s = std::exp(s - max));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t j = 0; j < d.Tk; ++j) {
          const double p = scores[static_cast<std::size_t>(j)] / sum;
          if (w_i) w_i[j] = static_cast<T>(p);
          if (p == 0) continue;
          const T* v_j = v_bh + j * d.H * d.dv;
          for (std::int64_t c = 0; c < d.dv; ++c) acc[static_cast<std::size_t>(c)] += p * double(v_j[c]);
        }
        for (std::int64_t c = 0; c < d.dv; ++c) o_i[c] = static_cast<T>(acc[static_cast<std::size_t>(c)]);
        pl[bh * d.Tq + i] = static_cast<T>(max + std::log(sum));
      }
    });
  });
  return r;
}

AttentionGrads scaled_dot_product_attention_backward(const Tensor& q, const Tensor& k,
                                                     const Tensor& v, const Tensor& key_mask,
                                                     const AttentionResult& forward,
                                                     const Tensor& dout,
                                                     const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention_backward";
  const SdpaDims d = check_sdpa(op, q, k, v, key_mask, options);
  detail::check_like(op, "out", forward.out, {d.B, d.Tq, d.H * d.dv}, q);
  detail::check_like(op, "lse", forward.lse, {d.B, d.H, d.Tq}, q);
  detail::check_like(op, "dout", dout, {d.B, d.Tq, d.H * d.dv}, q);
  if (!q.is_cpu())
    return ATTNKIT_DEVICE_OP(q.device(), scaled_dot_product_attention_backward(q, k, v, key_mask, dout, d.H,
                                                                               options.causal, d.scale));
  AttentionGrads g{Tensor::zeros_like(q), Tensor::zeros_like(k), Tensor::zeros_like(v)};
  detail::dispatch_float(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *pq = q.data<T>(), *pk = k.data<T>(), *pv = v.data<T>();
    const T *po = forward.out.data<T>(), *pl = forward.lse.data<T>(), *pdo = dout.data<T>();
    const std::uint8_t* pm = key_mask.defined() ? key_mask.data<std::uint8_t>() : nullptr;
    T *pdq = g.dq.data<T>(), *pdk = g.dk.data<T>(), *pdv = g.dv.data<T>();
    // Each (batch, head) owns its columns of dq, dk and dv: no two tasks write the same element.
    cpu::parallel_for(d.B * d.H, 2 * d.Tq * d.Tk * (d.dk + d.dv), [&](std::int64_t bh) {
      const std::int64_t b = bh / d.H, h = bh % d.H;
      const std::int64_t qk_row = d.H * d.dk, v_row = d.H * d.dv;
      const T* k_bh = pk + b * d.Tk * qk_row + h * d.dk;
      const T* v_bh = pv + b * d.Tk * v_row + h * d.dv;
      std::vector<double> p(static_cast<std::size_t>(d.Tk)), dq_i(static_cast<std::size_t>(d.dk));
      std::vector<double> dk_acc(static_cast<std::size_t>(d.Tk * d.dk), 0.0), dv_acc(static_cast<std::size_t>(d.Tk * d.dv), 0.0);
      for (std::int64_t i = 0; i < d.Tq; ++i) {
        const double lse = pl[bh * d.Tq + i];
        if (lse == -std::numeric_limits<double>::infinity()) continue;  // saw no key: no gradient
        const T* q_i = pq + (b * d.Tq + i) * qk_row + h * d.dk;
        const T* o_i = po + (b * d.Tq + i) * v_row + h * d.dv;
        const T* do_i = pdo + (b * d.Tq + i) * v_row + h * d.dv;
        score_row(d, q_i, k_bh, pm ? pm + b * d.Tk : nullptr, options.causal, i, p.data());
        double D_i = 0;
        for (std::int64_t c = 0; c < d.dv; ++c) D_i += double(do_i[c]) * double(o_i[c]);
        std::fill(dq_i.begin(), dq_i.end(), 0.0);
        for (std::int64_t j = 0; j < d.Tk; ++j) {
          const double p_ij = std::exp(p[static_cast<std::size_t>(j)] - lse);
          if (p_ij == 0) continue;
          const T* v_j = v_bh + j * v_row;
          const T* k_j = k_bh + j * qk_row;
          double dp = 0;
          for (std::int64_t c = 0; c < d.dv; ++c) {
            dp += double(do_i[c]) * double(v_j[c]);
            dv_acc[static_cast<std::size_t>(j * d.dv + c)] += p_ij * double(do_i[c]);
          }
          const double ds = p_ij * (dp - D_i) * d.scale;
          for (std::int64_t c = 0; c < d.dk; ++c) {
            dq_i[static_cast<std::size_t>(c)] += ds * double(k_j[c]);
            dk_acc[static_cast<std::size_t>(j * d.dk + c)] += ds * double(q_i[c]);
          }
        }
        T* dq_out = pdq + (b * d.Tq + i) * qk_row + h * d.dk;
        for (std::int64_t c = 0; c < d.dk; ++c) dq_out[c] = static_cast<T>(dq_i[static_cast<std::size_t>(c)]);
      }
      for (std::int64_t j = 0; j < d.Tk; ++j) {
        for (std::int64_t c = 0; c < d.dk; ++c)
          pdk[(b * d.Tk + j) * qk_row + h * d.dk + c] = static_cast<T>(dk_acc[static_cast<std::size_t>(j * d.dk + c)]);
        for (std::int64_t c = 0; c < d.dv; ++c)
          pdv[(b * d.Tk + j) * v_row + h * d.dv + c] = static_cast<T>(dv_acc[static_cast<std::size_t>(j * d.dv + c)]);
      }
    });
  });
  return g;
}

}  // namespace attnkit::ops
