// The attention ops. On the CPU, the references that the kernels are tested against: additive
// pooling and scaled dot-product attention as plain loops over a batch element (and head), in
// double accumulation, and the two gatings as compositions of the linear, softmax, multiply,
// mean and transpose ops, which is exactly their definition. On a device, the fused kernels
// (src/device_ops/ops_*attention.cpp) unless the options ask for the unfused path: additive
// pooling as ops around an epsilon-softmax kernel, scaled dot-product attention as the device's
// products around a masked softmax kernel, the gatings as the same composition of ops. Sizes
// that the fused additive and gating kernels cannot hold in shared memory take the unfused path.
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
#include "ops/attention_operands.h"
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
    if (options.kernel == AttentionKernel::fused && ATTNKIT_DEVICE_OP(device, additive_attention_fits(x)))
      return ATTNKIT_DEVICE_OP(device, additive_attention(x, w, b, mask, options.return_sequences, options.epsilon));
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
    if (options.kernel == AttentionKernel::fused && ATTNKIT_DEVICE_OP(device, additive_attention_fits(x)))
      return ATTNKIT_DEVICE_OP(device, additive_attention_backward(x, w, b, weights, dy, options.return_sequences));
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

namespace {

// Whether a gating op on x runs through the fused kernels (else the composition of ops).
bool gating_fused(const Tensor& x, AttentionKernel kernel, bool over_time, bool single_vector) {
  if (x.is_cpu() || kernel != AttentionKernel::fused) return false;
  detail::require_device_f32("gating attention", x);
  return ATTNKIT_DEVICE_OP(x.device(), gating_attention_fits(x, over_time, single_vector));
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
  if (gating_fused(x, kernel, false, false))
    return ATTNKIT_DEVICE_OP(x.device(), gating_attention(x, weight, bias, false, false));
  GatingResult r;
  r.probs = softmax(linear(x, weight, bias), -1);
  r.y = multiply(x, r.probs);
  return r;
}

GatingGrads gating_attention_backward(const Tensor& x, const Tensor& weight, const Tensor& probs,
                                      const Tensor& dy, bool has_bias, AttentionKernel kernel) {
  check_gating("gating_attention_backward", x, weight, Tensor(), false);
  if (gating_fused(x, kernel, false, false))
    return gating_backward_fused(x, weight, Tensor(), probs, dy, false, false, has_bias);
  const MultiplyGrads product = multiply_backward(x, probs, dy);  // da = dy probs, db = dy x
  const LinearGrads dense = linear_backward(x, weight, softmax_backward(probs, product.db, -1), has_bias);
  return {add(product.da, dense.dx), dense.dweight, dense.dbias};
}

GatingResult temporal_gating_attention(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       bool single_vector, AttentionKernel kernel) {
  check_gating("temporal_gating_attention", x, weight, bias, true);
  if (gating_fused(x, kernel, true, single_vector))
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
  if (gating_fused(x, kernel, true, single_vector))
    return gating_backward_fused(x, weight, bias, Tensor(), dy, true, single_vector, bias.defined());
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

using detail::AttentionOperands;
using detail::Heads;

bool is_16_bit(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16; }

// q is a float tensor (the other operands must match it: check_like).
void check_attention_dtype(const char* op, const Tensor& q) {
  ATTNKIT_CHECK(q.defined(), op, ": q is undefined");
  ATTNKIT_CHECK(is_floating(q.dtype()), op, ": q must be f32, f64, f16 or bf16, got ", q.describe());
}

// The options' heads, scale and causal flag, and key_mask (u8 [B, Tk], or i32 key lengths [B]
// each in [0, Tk]) into `a`, whose tensors and sizes are set; checks where it all lives.
void finish_operands(const char* op, AttentionOperands& a, const Tensor& key_mask, const AttentionOptions& options) {
  a.scale = options.scale.has_value() ? *options.scale : 1.0 / std::sqrt(double(a.qk_dim));
  a.causal = options.causal;
  if (key_mask.defined() && key_mask.dtype() == DType::i32) {
    ATTNKIT_CHECK(key_mask.shape() == Shape({a.batch}), op, ": key lengths must be i32 [B] = ",
                  shape_str({a.batch}), ", got ", key_mask.describe());
    const std::vector<std::int32_t> lengths = key_mask.to_vector<std::int32_t>();
    for (std::size_t b = 0; b < lengths.size(); ++b)
      ATTNKIT_CHECK(lengths[b] >= 0 && lengths[b] <= a.keys, op, ": the key length ", lengths[b], " of batch element ",
                    b, " is outside [0, ", a.keys, "]");
    a.key_lengths = key_mask;
  } else if (key_mask.defined()) {
    ATTNKIT_CHECK(key_mask.dtype() == DType::u8 && key_mask.shape() == Shape({a.batch, a.keys}), op,
                  ": key_mask must be u8 [B, Tk] = ", shape_str({a.batch, a.keys}), " or i32 key lengths [B], got ",
                  key_mask.describe());
    a.key_mask = key_mask;
  }
  const Device device =
      detail::common_device(op, {{"q", &a.q.tensor}, {"k", &a.k.tensor}, {"v", &a.v.tensor}, {"key_mask", &key_mask}});
  const DType dtype = a.q.tensor.dtype();
  if (device.is_cpu()) return;
  ATTNKIT_CHECK(dtype != DType::f64, op, ": f64 runs on the cpu only, got ", a.q.tensor.describe());
  ATTNKIT_CHECK(options.kernel == AttentionKernel::fused || dtype == DType::f32, op,
                ": the unfused path computes in f32 only, got ", a.q.tensor.describe());
}

AttentionOperands separate_operands(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_mask, const AttentionOptions& options) {
  check_attention_dtype(op, q);
  detail::check_rank(op, "q", q, 3, "[B, Tq, H*dk]");
  detail::check_rank(op, "k", k, 3, "[B, Tk, H*dk]");
  detail::check_rank(op, "v", v, 3, "[B, Tk, H*dv]");
  const std::int64_t H = options.num_heads;
  ATTNKIT_CHECK(H >= 1, op, ": num_heads must be at least 1, got ", H);
  ATTNKIT_CHECK(q.size(2) % H == 0, op, ": the width ", q.size(2), " of q is not divisible by ", H, " heads");
  ATTNKIT_CHECK(v.size(2) % H == 0, op, ": the width ", v.size(2), " of v is not divisible by ", H, " heads");
  detail::check_like(op, "k", k, {q.size(0), k.size(1), q.size(2)}, q);
  detail::check_like(op, "v", v, {q.size(0), k.size(1), v.size(2)}, q);
  AttentionOperands a;
  a.q = {q, 0, q.size(2)};
  a.k = {k, 0, k.size(2)};
  a.v = {v, 0, v.size(2)};
  a.batch = q.size(0), a.heads = H, a.queries = q.size(1), a.keys = k.size(1);
  a.qk_dim = q.size(2) / H, a.v_dim = v.size(2) / H;
  finish_operands(op, a, key_mask, options);
  return a;
}

AttentionOperands packed_operands(const char* op, const Tensor& qkv, const Tensor& key_mask,
                                  const AttentionOptions& options) {
  check_attention_dtype(op, qkv);
  detail::check_rank(op, "qkv", qkv, 3, "[B, T, 3 H dk]");
  const std::int64_t H = options.num_heads, width = qkv.size(2) / 3;
  ATTNKIT_CHECK(H >= 1, op, ": num_heads must be at least 1, got ", H);
  ATTNKIT_CHECK(qkv.size(2) % 3 == 0 && width % H == 0, op, ": the width ", qkv.size(2),
                " of qkv is not 3 times a multiple of ", H, " heads");
  AttentionOperands a;
  a.q = {qkv, 0, qkv.size(2)};
  a.k = {qkv, width, qkv.size(2)};
  a.v = {qkv, 2 * width, qkv.size(2)};
  a.batch = qkv.size(0), a.heads = H, a.queries = a.keys = qkv.size(1);
  a.qk_dim = a.v_dim = width / H;
  finish_operands(op, a, key_mask, options);
  return a;
}

// The keys each batch element shows its queries, from key_mask or key_lengths: [B * Tk] bytes on
// the host (empty when every key is visible).
std::vector<std::uint8_t> visible_keys(const AttentionOperands& a) {
  if (a.key_mask.defined()) return a.key_mask.to_vector<std::uint8_t>();
  if (!a.key_lengths.defined()) return {};
  const std::vector<std::int32_t> lengths = a.key_lengths.to_vector<std::int32_t>();
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(a.batch * a.keys));
  for (std::int64_t b = 0; b < a.batch; ++b)
    for (std::int64_t j = 0; j < a.keys; ++j) keep[static_cast<std::size_t>(b * a.keys + j)] = j < lengths[b];
  return keep;
}

// The same operands with the key lengths turned into a u8 mask, for the unfused path.
AttentionOperands with_mask_for_lengths(AttentionOperands a) {
  if (!a.key_lengths.defined()) return a;
  a.key_mask = Tensor::from_vector(visible_keys(a), {a.batch, a.keys}).to(a.q.tensor.device());
  a.key_lengths = Tensor();
  return a;
}

template <typename T>
const T* heads_data(const Heads& x) {
  return x.tensor.data<T>() + x.offset;
}

// Scores of query i of one (batch, head) against every key: -inf where hidden. keep: this batch
// element's visible keys, or null.
template <typename T>
void score_row(const AttentionOperands& a, const T* q_i, const T* k_bh, const std::uint8_t* keep, std::int64_t i,
               double* scores) {
  for (std::int64_t j = 0; j < a.keys; ++j) {
    const bool hidden = (keep != nullptr && keep[j] == 0) || (a.causal && j > i);
    if (hidden) {
      scores[j] = -std::numeric_limits<double>::infinity();
      continue;
    }
    const T* k_j = k_bh + j * a.k.row;
    double dot = 0;
    for (std::int64_t c = 0; c < a.qk_dim; ++c) dot += double(q_i[c]) * double(k_j[c]);
    scores[j] = a.scale * dot;
  }
}

// The plain loops of the cpu, in double, on f32 or f64 operands; lse in the operands' dtype.
AttentionResult cpu_attention(const AttentionOperands& a, bool return_weights) {
  const DType dtype = a.q.tensor.dtype();
  AttentionResult r;
  r.out = Tensor::empty({a.batch, a.queries, a.heads * a.v_dim}, dtype);
  r.lse = Tensor::empty({a.batch, a.heads, a.queries}, dtype);
  if (return_weights) r.weights = Tensor::empty({a.batch, a.heads, a.queries, a.keys}, dtype);
  const std::vector<std::uint8_t> keep = visible_keys(a);
  detail::dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T *pq = heads_data<T>(a.q), *pk = heads_data<T>(a.k), *pv = heads_data<T>(a.v);
    T *po = r.out.data<T>(), *pl = r.lse.data<T>();
    T* pw = return_weights ? r.weights.data<T>() : nullptr;
    cpu::parallel_for(a.batch * a.heads, a.queries * a.keys * (a.qk_dim + a.v_dim), [&](std::int64_t bh) {
      const std::int64_t b = bh / a.heads, h = bh % a.heads;
      const T* k_bh = pk + b * a.keys * a.k.row + h * a.qk_dim;
      const T* v_bh = pv + b * a.keys * a.v.row + h * a.v_dim;
      const std::uint8_t* keep_b = keep.empty() ? nullptr : keep.data() + b * a.keys;
      std::vector<double> scores(static_cast<std::size_t>(a.keys)), acc(static_cast<std::size_t>(a.v_dim));
      for (std::int64_t i = 0; i < a.queries; ++i) {
        score_row(a, pq + (b * a.queries + i) * a.q.row + h * a.qk_dim, k_bh, keep_b, i, scores.data());
        double max = -std::numeric_limits<double>::infinity();
        for (const double s : scores) max = std::max(max, s);
        T* o_i = po + (b * a.queries + i) * a.heads * a.v_dim + h * a.v_dim;
        T* w_i = pw ? pw + (bh * a.queries + i) * a.keys : nullptr;
        if (max == -std::numeric_limits<double>::infinity()) {  // this query sees no key
          for (std::int64_t c = 0; c < a.v_dim; ++c) o_i[c] = T(0);
          if (w_i)
            for (std::int64_t j = 0; j < a.keys; ++j) w_i[j] = T(0);
          pl[bh * a.queries + i] = static_cast<T>(-std::numeric_limits<double>::infinity());
          continue;
        }
        double sum = 0;
        for (double& s : scores) sum += (s = std::exp(s - max));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t j = 0; j < a.keys; ++j) {
          const double p = scores[static_cast<std::size_t>(j)] / sum;
          if (w_i) w_i[j] = static_cast<T>(p);
          if (p == 0) continue;
          const T* v_j = v_bh + j * a.v.row;
          for (std::int64_t c = 0; c < a.v_dim; ++c) acc[static_cast<std::size_t>(c)] += p * double(v_j[c]);
        }
        for (std::int64_t c = 0; c < a.v_dim; ++c) o_i[c] = static_cast<T>(acc[static_cast<std::size_t>(c)]);
        pl[bh * a.queries + i] = static_cast<T>(max + std::log(sum));
      }
    });
  });
  return r;
}

// The gradient loops of the cpu, writing dq, dk and dv into the heads given (zeros beforehand).
void cpu_attention_backward(const AttentionOperands& a, const AttentionResult& forward, const Tensor& dout, Heads dq,
                            Heads dk, Heads dv) {
  const std::vector<std::uint8_t> keep = visible_keys(a);
  detail::dispatch_float(a.q.tensor.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *pq = heads_data<T>(a.q), *pk = heads_data<T>(a.k), *pv = heads_data<T>(a.v);
    const T *po = forward.out.data<T>(), *pl = forward.lse.data<T>(), *pdo = dout.data<T>();
    T* pdq = dq.tensor.data<T>() + dq.offset;
    T* pdk = dk.tensor.data<T>() + dk.offset;
    T* pdv = dv.tensor.data<T>() + dv.offset;
    const std::int64_t out_row = a.heads * a.v_dim;
    // Each (batch, head) owns its columns of dq, dk and dv: no two tasks write the same element.
    cpu::parallel_for(a.batch * a.heads, 2 * a.queries * a.keys * (a.qk_dim + a.v_dim), [&](std::int64_t bh) {
      const std::int64_t b = bh / a.heads, h = bh % a.heads;
      const T* k_bh = pk + b * a.keys * a.k.row + h * a.qk_dim;
      const T* v_bh = pv + b * a.keys * a.v.row + h * a.v_dim;
      const std::uint8_t* keep_b = keep.empty() ? nullptr : keep.data() + b * a.keys;
      std::vector<double> p(static_cast<std::size_t>(a.keys)), dq_i(static_cast<std::size_t>(a.qk_dim));
      std::vector<double> dk_acc(static_cast<std::size_t>(a.keys * a.qk_dim), 0.0);
      std::vector<double> dv_acc(static_cast<std::size_t>(a.keys * a.v_dim), 0.0);
      for (std::int64_t i = 0; i < a.queries; ++i) {
        const double lse = pl[bh * a.queries + i];
        if (lse == -std::numeric_limits<double>::infinity()) continue;  // saw no key: no gradient
        const T* q_i = pq + (b * a.queries + i) * a.q.row + h * a.qk_dim;
        const T* o_i = po + (b * a.queries + i) * out_row + h * a.v_dim;
        const T* do_i = pdo + (b * a.queries + i) * out_row + h * a.v_dim;
        score_row(a, q_i, k_bh, keep_b, i, p.data());
        double D_i = 0;
        for (std::int64_t c = 0; c < a.v_dim; ++c) D_i += double(do_i[c]) * double(o_i[c]);
        std::fill(dq_i.begin(), dq_i.end(), 0.0);
        for (std::int64_t j = 0; j < a.keys; ++j) {
          const double p_ij = std::exp(p[static_cast<std::size_t>(j)] - lse);
          if (p_ij == 0) continue;
          const T* v_j = v_bh + j * a.v.row;
          const T* k_j = k_bh + j * a.k.row;
          double dp = 0;
          for (std::int64_t c = 0; c < a.v_dim; ++c) {
            dp += double(do_i[c]) * double(v_j[c]);
            dv_acc[static_cast<std::size_t>(j * a.v_dim + c)] += p_ij * double(do_i[c]);
          }
          const double ds = p_ij * (dp - D_i) * a.scale;
          for (std::int64_t c = 0; c < a.qk_dim; ++c) {
            dq_i[static_cast<std::size_t>(c)] += ds * double(k_j[c]);
            dk_acc[static_cast<std::size_t>(j * a.qk_dim + c)] += ds * double(q_i[c]);
          }
        }
        T* dq_out = pdq + (b * a.queries + i) * dq.row + h * a.qk_dim;
        for (std::int64_t c = 0; c < a.qk_dim; ++c) dq_out[c] = static_cast<T>(dq_i[static_cast<std::size_t>(c)]);
      }
      for (std::int64_t j = 0; j < a.keys; ++j) {
        T* dk_out = pdk + (b * a.keys + j) * dk.row + h * a.qk_dim;
        T* dv_out = pdv + (b * a.keys + j) * dv.row + h * a.v_dim;
        for (std::int64_t c = 0; c < a.qk_dim; ++c)
          dk_out[c] = static_cast<T>(dk_acc[static_cast<std::size_t>(j * a.qk_dim + c)]);
        for (std::int64_t c = 0; c < a.v_dim; ++c)
          dv_out[c] = static_cast<T>(dv_acc[static_cast<std::size_t>(j * a.v_dim + c)]);
      }
    });
  });
}

// The operands' tensors in f32 (the cpu computes 16-bit floats in f32).
AttentionOperands in_f32(AttentionOperands a) {
  for (Heads* x : {&a.q, &a.k, &a.v}) x->tensor = x->tensor.to(DType::f32);
  return a;
}

// Forward on any device: the cpu loops (16-bit in f32), or a device's fused kernels or unfused path.
AttentionResult attention_forward(const AttentionOperands& a, const AttentionOptions& options) {
  const Device device = a.q.tensor.device();
  const DType dtype = a.q.tensor.dtype();
  if (device.is_cpu()) {
    if (!is_16_bit(dtype)) return cpu_attention(a, options.return_weights);
    AttentionResult r = cpu_attention(in_f32(a), options.return_weights);
    r.out = r.out.to(dtype);
    if (r.weights.defined()) r.weights = r.weights.to(dtype);
    return r;
  }
  if (options.kernel == AttentionKernel::unfused)
    return ATTNKIT_DEVICE_OP(device, scaled_dot_product_attention(with_mask_for_lengths(a), options.return_weights));
  AttentionResult r = ATTNKIT_DEVICE_OP(device, flash_attention(a));
  // The fused kernels keep no probabilities; for inspection they come from the unfused steps.
  if (options.return_weights)
    r.weights = ATTNKIT_DEVICE_OP(device, attention_weights(with_mask_for_lengths(is_16_bit(dtype) ? in_f32(a) : a)))
                    .to(dtype);
  return r;
}

// Backward on any device into dq, dk and dv (tensors of q, k and v's dtype on their device).
void attention_backward(const AttentionOperands& a, const AttentionResult& forward, const Tensor& dout,
                        const AttentionOptions& options, const Heads& dq, const Heads& dk, const Heads& dv) {
  const Device device = a.q.tensor.device();
  const DType dtype = a.q.tensor.dtype();
  if (!device.is_cpu()) {
    if (options.kernel == AttentionKernel::unfused)
      ATTNKIT_DEVICE_OP(device, scaled_dot_product_attention_backward(with_mask_for_lengths(a), dout, dq, dk, dv));
    else
      ATTNKIT_DEVICE_OP(device, flash_attention_backward(a, forward, dout, dq, dk, dv));
    return;
  }
  if (!is_16_bit(dtype)) {
    cpu_attention_backward(a, forward, dout, dq, dk, dv);
    return;
  }
  // In f32, into f32 copies of the gradients' tensors (one copy when they share a tensor).
  AttentionResult forward_f32 = forward;
  forward_f32.out = forward.out.to(DType::f32);
  Heads dq32{Tensor::zeros(dq.tensor.shape()), dq.offset, dq.row}, dk32{dq32.tensor, dk.offset, dk.row},
      dv32{dq32.tensor, dv.offset, dv.row};
  if (!dk.tensor.shares_storage_with(dq.tensor)) dk32.tensor = Tensor::zeros(dk.tensor.shape());
  if (!dv.tensor.shares_storage_with(dq.tensor)) dv32.tensor = Tensor::zeros(dv.tensor.shape());
  cpu_attention_backward(in_f32(a), forward_f32, dout.to(DType::f32), dq32, dk32, dv32);
  Tensor(dq.tensor).copy_from(dq32.tensor.to(dtype));
  if (!dk.tensor.shares_storage_with(dq.tensor)) Tensor(dk.tensor).copy_from(dk32.tensor.to(dtype));
  if (!dv.tensor.shares_storage_with(dq.tensor)) Tensor(dv.tensor).copy_from(dv32.tensor.to(dtype));
}

void check_backward_inputs(const char* op, const AttentionOperands& a, const AttentionResult& forward,
                           const Tensor& dout) {
  const Tensor& q = a.q.tensor;
  detail::check_like(op, "out", forward.out, {a.batch, a.queries, a.heads * a.v_dim}, q);
  detail::check_like(op, "dout", dout, {a.batch, a.queries, a.heads * a.v_dim}, q);
  detail::check_shape(op, "lse", forward.lse, {a.batch, a.heads, a.queries});
  const DType lse_dtype = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  ATTNKIT_CHECK(forward.lse.dtype() == lse_dtype, op, ": lse must be ", lse_dtype, ", got ", forward.lse.describe());
  detail::common_device(op, {{"q", &q}, {"out", &forward.out}, {"lse", &forward.lse}, {"dout", &dout}});
}

}  // namespace

AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& key_mask, const AttentionOptions& options) {
  return attention_forward(separate_operands("scaled_dot_product_attention", q, k, v, key_mask, options), options);
}

AttentionGrads scaled_dot_product_attention_backward(const Tensor& q, const Tensor& k,
                                                     const Tensor& v, const Tensor& key_mask,
                                                     const AttentionResult& forward,
                                                     const Tensor& dout,
                                                     const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention_backward";
  const AttentionOperands a = separate_operands(op, q, k, v, key_mask, options);
  check_backward_inputs(op, a, forward, dout);
  AttentionGrads g;
  const auto fresh = [&](const Tensor& like) { return q.is_cpu() ? Tensor::zeros_like(like) : Tensor::empty_like(like); };
  g.dq = fresh(q), g.dk = fresh(k), g.dv = fresh(v);
  attention_backward(a, forward, dout, options, {g.dq, 0, a.q.row}, {g.dk, 0, a.k.row}, {g.dv, 0, a.v.row});
  return g;
}

AttentionResult packed_self_attention(const Tensor& qkv, const Tensor& key_mask, const AttentionOptions& options) {
  return attention_forward(packed_operands("packed_self_attention", qkv, key_mask, options), options);
}

Tensor packed_self_attention_backward(const Tensor& qkv, const Tensor& key_mask, const AttentionResult& forward,
                                      const Tensor& dout, const AttentionOptions& options) {
  const char* op = "packed_self_attention_backward";
  const AttentionOperands a = packed_operands(op, qkv, key_mask, options);
  check_backward_inputs(op, a, forward, dout);
  Tensor dqkv = qkv.is_cpu() ? Tensor::zeros_like(qkv) : Tensor::empty_like(qkv);
  attention_backward(a, forward, dout, options, {dqkv, a.q.offset, a.q.row}, {dqkv, a.k.offset, a.k.row},
                     {dqkv, a.v.offset, a.v.row});
  return dqkv;
}

}  // namespace attnkit::ops
