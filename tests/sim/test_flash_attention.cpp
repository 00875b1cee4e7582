// kernels/flash_attention.cu (float32) and kernels/flash_attention_mma.cu (f16 and bf16 through
// the host mma.sync, ldmatrix and cp.async) under the sim executor, forward and backward,
// against plain attention evaluated in double in this file: odd lengths that are not multiples
// of the tiles, cross-attention, causal masking, key masks as bytes and as lengths (a batch
// element whose queries see no key among them), byte masks that leave whole tiles unmasked (the
// kernels' path without masking beside the masked one), packed q/k/v projections, and outputs
// that start as NaN.
//
// float32 must match the double reference closely. For f16 and bf16 the rule of
// flash-attention's own tests applies: the fused kernel's error against the double reference is
// at most twice that of a plain attention computed in the same precision (probabilities and
// gradients rounded to it where an unfused 16-bit implementation rounds them), plus a little.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attnkit/ops/attention.h"
#include "kernels/flash_attention.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;
using kern::AttentionDType;

constexpr std::uint64_t kDropoutSeed = 0xD20, kDropoutOffset = 12345;

// bytes: random, about 30% hidden; sparse: keys [Tk / 2, Tk / 2 + 5) hidden, the other tiles whole.
enum class Masking { none, bytes, sparse, lengths };

// The bias's shape: [B, H, Tq, Tk] with any float32 values, [1, H, Tq, Tk] or [B, 1, Tq, Tk] with
// values of the operands' dtype (broadcast over batch elements or heads; the kernels read float32).
enum class BiasShape { none, full_f32, per_head, per_batch };

// The features beyond plain attention (flash_attention.h): grouped key heads, score modifiers and
// the bias gradient.
struct Features {
  std::int64_t kv_heads = 0;  // 0: H
  BiasShape bias = BiasShape::none;
  bool alibi = false;
  double softcap = 0;
  std::int64_t left = -1, right = -1;  // the window
  bool dbias = false;
  std::int64_t mask_batch = 0;  // the attention mask's first extent (1 or B; about 20% hidden), 0: none
  double dropout = 0;           // the rate, from kDropoutSeed's stream at kDropoutOffset

  std::string name() const {
    std::string n;
    if (kv_heads != 0) n += " kv_heads" + std::to_string(kv_heads);
    if (bias == BiasShape::full_f32) n += " bias";
    if (bias == BiasShape::per_head) n += " bias[1,H]";
    if (bias == BiasShape::per_batch) n += " bias[B,1]";
    if (alibi) n += " alibi";
    if (softcap != 0) n += " softcap" + std::to_string(softcap);
    if (left >= 0 || right >= 0) n += " window(" + std::to_string(left) + "," + std::to_string(right) + ")";
    if (dbias) n += " dbias";
    if (mask_batch > 0) n += " attention_mask[" + std::to_string(mask_batch) + "]";
    if (dropout > 0) n += " dropout" + std::to_string(dropout);
    return n;
  }
};

struct Case {
  AttentionDType dtype;
  std::int64_t B, H, Tq, Tk, dk, dv;
  bool causal = false;
  Masking masking = Masking::none;
  bool packed = false;  // q, k, v side by side in one [B, T, 3 H d] array (self-attention)
  double scale = 0;     // 0: 1 / sqrt(dk)
  Features features = {};
  // A variable-length batch: batch element b's queries and keys (Tq and Tk the longest), packed one
  // after another; empty: a padded batch.
  std::vector<std::int32_t> varlen_queries = {}, varlen_keys = {};

  std::string name() const {
    const char* type = dtype == AttentionDType::f32 ? "f32" : dtype == AttentionDType::f16 ? "f16" : "bf16";
    return std::string(type) + " B" + std::to_string(B) + " H" + std::to_string(H) + " Tq" + std::to_string(Tq) +
           " Tk" + std::to_string(Tk) + " dk" + std::to_string(dk) + " dv" + std::to_string(dv) +
           (causal ? " causal" : "") + (masking == Masking::bytes ? " mask" : "") + (masking == Masking::sparse ? " sparse mask" : "") +
           (masking == Masking::lengths ? " lengths" : "") + (packed ? " packed" : "") +
           (scale != 0 ? " scale" + std::to_string(scale) : "") + features.name() + (varlen() ? " varlen" : "");
  }
  bool varlen() const { return !varlen_queries.empty(); }
  double softmax_scale() const { return scale != 0 ? scale : 1.0 / std::sqrt(double(dk)); }
  std::int64_t kv_heads() const { return features.kv_heads != 0 ? features.kv_heads : H; }
  // The bias's batch and head steps, in elements (0: broadcast).
  std::int64_t bias_batch_step() const {
    return features.bias == BiasShape::per_head ? 0 : features.bias == BiasShape::per_batch ? Tq * Tk : H * Tq * Tk;
  }
  std::int64_t bias_head_step() const { return features.bias == BiasShape::per_batch ? 0 : Tq * Tk; }
  std::int64_t bias_size() const {
    return features.bias == BiasShape::none ? 0
           : features.bias == BiasShape::full_f32 ? B * H * Tq * Tk
           : features.bias == BiasShape::per_head ? H * Tq * Tk
                                                  : B * Tq * Tk;
  }
  double alibi_slope(std::int64_t h) const { return features.alibi ? std::exp2(-8.0 * double(h + 1) / double(H)) : 0.0; }
};

// Rounds to the case's dtype (identity for float32, which the reference keeps in double).
double round_to(AttentionDType dtype, double x) {
  if (dtype == AttentionDType::f16) return static_cast<float>(Half(static_cast<float>(x)));
  if (dtype == AttentionDType::bf16) return static_cast<float>(BFloat16(static_cast<float>(x)));
  return x;
}

// The inputs, in logical layouts: q [B, Tq, H dk], k [B, Tk, Hkv dk], v [B, Tk, Hkv dv], dout
// [B, Tq, H dv], each value representable in the dtype; visible [B, Tk]; the bias in its shape,
// values in [-2, 2] and about 10% -inf (a float mask), representable in its dtype.
struct Problem {
  Case c;
  std::vector<double> q, k, v, dout, bias;
  std::vector<std::uint8_t> attention_mask;  // [mask_batch, Tq, Tk]
  std::vector<std::uint8_t> keep;      // the byte mask, or the lengths' visible keys
  std::vector<std::int32_t> lengths;   // with Masking::lengths
};

Problem make_problem(const Case& c, Generator& gen) {
  Problem p{c, {}, {}, {}, {}, {}, {}, {}, {}};
  const auto draw = [&](std::int64_t n) {
    std::vector<double> x = values(random_tensor({n}, gen, -1.0, 1.0, DType::f32));
    for (double& e : x) e = round_to(c.dtype, e);
    return x;
  };
  p.q = draw(c.B * c.Tq * c.H * c.dk);
  p.k = draw(c.B * c.Tk * c.kv_heads() * c.dk);
  p.v = draw(c.B * c.Tk * c.kv_heads() * c.dv);
  p.dout = draw(c.B * c.Tq * c.H * c.dv);
  if (c.features.bias != BiasShape::none) {
    p.bias = values(random_tensor({c.bias_size()}, gen, -2.0, 2.0, DType::f32));
    const std::vector<double> hide = values(random_tensor({c.bias_size()}, gen, 0.0, 1.0, DType::f32));
    for (std::size_t e = 0; e < p.bias.size(); ++e) {
      if (c.features.bias != BiasShape::full_f32) p.bias[e] = round_to(c.dtype, p.bias[e]);
      if (hide[e] < 0.1) p.bias[e] = -std::numeric_limits<double>::infinity();
    }
    // Row 1 of the bias's first [Tq, Tk] matrix hides every key: a query that sees nothing
    // through the bias alone.
    if (c.Tq > 1) std::fill(p.bias.begin() + c.Tk, p.bias.begin() + 2 * c.Tk, -std::numeric_limits<double>::infinity());
  }
  if (c.features.mask_batch > 0)
    p.attention_mask = random_mask(c.features.mask_batch * c.Tq, c.Tk, gen, 0.8).to_vector<std::uint8_t>();
  p.keep.assign(static_cast<std::size_t>(c.B * c.Tk), 1);
  if (c.masking == Masking::bytes) {
    const Tensor mask = random_mask(c.B, c.Tk, gen, 0.7);
    p.keep = mask.to_vector<std::uint8_t>();
    if (c.B > 1)  // the queries of batch element 1 see no key
      std::fill(p.keep.begin() + c.Tk, p.keep.begin() + 2 * c.Tk, std::uint8_t{0});
  } else if (c.masking == Masking::sparse) {
    for (std::int64_t b = 0; b < c.B; ++b)
      for (std::int64_t j = c.Tk / 2; j < std::min(c.Tk, c.Tk / 2 + 5); ++j) p.keep[static_cast<std::size_t>(b * c.Tk + j)] = 0;
  } else if (c.varlen()) {
    // As a padded batch: the keys past a sequence's hidden, and its padding queries given no
    // gradient (dout 0), so that they add nothing to dk and dv.
    for (std::int64_t b = 0; b < c.B; ++b) {
      for (std::int64_t j = 0; j < c.Tk; ++j) p.keep[static_cast<std::size_t>(b * c.Tk + j)] = j < c.varlen_keys[b];
      for (std::int64_t i = c.varlen_queries[b]; i < c.Tq; ++i)
        std::fill_n(p.dout.begin() + (b * c.Tq + i) * c.H * c.dv, c.H * c.dv, 0.0);
    }
  } else if (c.masking == Masking::lengths) {
    for (std::int64_t b = 0; b < c.B; ++b) {
      const std::int64_t length = b == 1 ? 0 : c.Tk - (b * 17) % c.Tk;  // 1: sees none; others: a part or all
      p.lengths.push_back(static_cast<std::int32_t>(length));
      for (std::int64_t j = 0; j < c.Tk; ++j) p.keep[static_cast<std::size_t>(b * c.Tk + j)] = j < length;
    }
  }
  return p;
}

struct Outputs {
  std::vector<double> out, lse, dq, dk, dv, dbias;  // dbias [B, H, Tq, Tk]
};

// Plain attention in double; with `rounded`, an unfused attention in the case's 16-bit dtype:
// scores and their softmax in float, the probabilities, dP, dS and every output rounded to it.
Outputs reference(const Problem& p, bool rounded) {
  const Case& c = p.c;
  const Features& f = c.features;
  const auto r = [&](double x) { return rounded ? round_to(c.dtype, x) : x; };
  const double scale = c.softmax_scale(), hidden = -std::numeric_limits<double>::infinity();
  const std::int64_t Hkv = c.kv_heads(), group = c.H / Hkv;
  const std::int64_t qw = c.H * c.dk, kw = Hkv * c.dk, vw = Hkv * c.dv, ow = c.H * c.dv;
  Outputs o;
  o.out.assign(static_cast<std::size_t>(c.B * c.Tq * ow), 0.0);
  o.lse.assign(static_cast<std::size_t>(c.B * c.H * c.Tq), hidden);
  o.dq.assign(p.q.size(), 0.0);
  o.dk.assign(p.k.size(), 0.0);
  o.dv.assign(p.v.size(), 0.0);
  o.dbias.assign(static_cast<std::size_t>(c.B * c.H * c.Tq * c.Tk), 0.0);
  const auto at = [](std::int64_t x) { return static_cast<std::size_t>(x); };
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t h = 0; h < c.H; ++h) {
      const std::int64_t g = h / group;  // the key head
      const auto q_at = [&](std::int64_t i, std::int64_t e) { return at((b * c.Tq + i) * qw + h * c.dk + e); };
      const auto k_at = [&](std::int64_t j, std::int64_t e) { return at((b * c.Tk + j) * kw + g * c.dk + e); };
      const auto v_at = [&](std::int64_t j, std::int64_t e) { return at((b * c.Tk + j) * vw + g * c.dv + e); };
      const auto o_at = [&](std::int64_t i, std::int64_t e) { return at((b * c.Tq + i) * ow + h * c.dv + e); };
      // P [Tq, Tk], the derivative of each final score with respect to scale q_i . k_j, then the
      // forward and the gradient products.
      std::vector<double> P(at(c.Tq * c.Tk), 0.0), dS(P.size(), 0.0), cap_slope(P.size(), 1.0);
      for (std::int64_t i = 0; i < c.Tq; ++i) {
        std::vector<double> s(at(c.Tk), hidden);
        double max = hidden;
        for (std::int64_t j = 0; j < c.Tk; ++j) {
          if (!p.keep[at(b * c.Tk + j)] || (c.causal && j > i)) continue;
          if ((f.left >= 0 && j < i - f.left) || (f.right >= 0 && j > i + f.right)) continue;
          if (f.mask_batch > 0 && !p.attention_mask[at(((f.mask_batch == 1 ? 0 : b) * c.Tq + i) * c.Tk + j)]) continue;
          double dot = 0;
          for (std::int64_t e = 0; e < c.dk; ++e) dot += p.q[q_at(i, e)] * p.k[k_at(j, e)];
          double score = scale * dot;
          if (f.softcap > 0) {
            const double t = std::tanh(score / f.softcap);
            score = f.softcap * t;
            cap_slope[at(i * c.Tk + j)] = 1 - t * t;
          }
          if (f.bias != BiasShape::none) score += p.bias[at(b * c.bias_batch_step() + h * c.bias_head_step() + i * c.Tk + j)];
          score -= c.alibi_slope(h) * double(std::abs(i - j));
          s[at(j)] = score;
          max = std::max(max, score);
        }
        if (max == hidden) continue;
        double sum = 0;
        for (const double x : s) sum += std::exp(x - max);
        o.lse[at((b * c.H + h) * c.Tq + i)] = max + std::log(sum);
        for (std::int64_t j = 0; j < c.Tk; ++j) P[at(i * c.Tk + j)] = r(std::exp(s[at(j)] - max) / sum);
      }
      // Dropout's factor of each probability (1 without dropout); PZ, the probabilities after it.
      std::vector<double> Z(P.size(), 1.0), PZ(P.size());
      for (std::int64_t i = 0; i < c.Tq; ++i)
        for (std::int64_t j = 0; j < c.Tk; ++j) {
          if (f.dropout > 0)
            Z[at(i * c.Tk + j)] = reference_dropout_keeps(kDropoutSeed, kDropoutOffset, f.dropout, (b * c.H + h) * c.Tq + i,
                                                          c.Tk, j)
                                      ? reference_dropout_scale(f.dropout)
                                      : 0.0;
          PZ[at(i * c.Tk + j)] = P[at(i * c.Tk + j)] * Z[at(i * c.Tk + j)];
        }
      for (std::int64_t i = 0; i < c.Tq; ++i)
        for (std::int64_t e = 0; e < c.dv; ++e) {
          double acc = 0;
          for (std::int64_t j = 0; j < c.Tk; ++j) acc += PZ[at(i * c.Tk + j)] * p.v[v_at(j, e)];
          o.out[o_at(i, e)] = r(acc);
        }
      for (std::int64_t i = 0; i < c.Tq; ++i) {
        double delta = 0;
        for (std::int64_t e = 0; e < c.dv; ++e) delta += p.dout[o_at(i, e)] * o.out[o_at(i, e)];
        for (std::int64_t j = 0; j < c.Tk; ++j) {
          double dp = 0;
          for (std::int64_t e = 0; e < c.dv; ++e) dp += p.dout[o_at(i, e)] * p.v[v_at(j, e)];
          const double ds = r(P[at(i * c.Tk + j)] * (r(dp) * Z[at(i * c.Tk + j)] - delta));
          o.dbias[at(((b * c.H + h) * c.Tq + i) * c.Tk + j)] = ds;
          dS[at(i * c.Tk + j)] = ds * cap_slope[at(i * c.Tk + j)];
        }
      }
      for (std::int64_t i = 0; i < c.Tq; ++i)
        for (std::int64_t e = 0; e < c.dk; ++e) {
          double acc = 0;
          for (std::int64_t j = 0; j < c.Tk; ++j) acc += dS[at(i * c.Tk + j)] * p.k[k_at(j, e)];
          o.dq[q_at(i, e)] = r(scale * acc);
        }
      // dk and dv of key head g sum over the query heads of its group (rounded once, at the last).
      for (std::int64_t j = 0; j < c.Tk; ++j) {
        for (std::int64_t e = 0; e < c.dk; ++e) {
          double acc = 0;
          for (std::int64_t i = 0; i < c.Tq; ++i) acc += dS[at(i * c.Tk + j)] * p.q[q_at(i, e)];
          o.dk[k_at(j, e)] += scale * acc;
        }
        for (std::int64_t e = 0; e < c.dv; ++e) {
          double acc = 0;
          for (std::int64_t i = 0; i < c.Tq; ++i) acc += PZ[at(i * c.Tk + j)] * p.dout[o_at(i, e)];
          o.dv[v_at(j, e)] += acc;
        }
      }
    }
  for (double& x : o.dk) x = r(x);
  for (double& x : o.dv) x = r(x);
  return o;
}

template <typename T>
T element_of(double x) {
  return T(static_cast<float>(x));
}
template <>
float element_of<float>(double x) {
  return static_cast<float>(x);
}

// One operand in sim memory: its own [B, T, H d] array, or its columns of the packed array.
template <typename T>
struct Placed {
  T* data;
  std::int64_t row;
};

// The case's dropout into the kernels' parameters.
void set_dropout(kern::FlashAttentionParams& params, const Features& f) {
  if (f.dropout == 0) return;
  params.dropout_threshold = static_cast<std::uint32_t>(std::lround(f.dropout * 65536));
  params.dropout_seed = kDropoutSeed, params.dropout_offset = kDropoutOffset;
  params.dropout_scale = static_cast<float>(reference_dropout_scale(f.dropout));
}

// Runs the kernels on the problem, in element type T; results in the logical layouts.
template <typename T>
Outputs run_kernels(const Problem& p) {
  const Case& c = p.c;
  const std::int64_t qk = c.H * c.dk, kw = c.kv_heads() * c.dk, vw = c.kv_heads() * c.dv, ow = c.H * c.dv;
  // q, k, v: three arrays, or one [B, T, qk + qk + vw] array.
  const std::int64_t packed_row = 2 * qk + vw;
  Buffer<T> q_buffer(static_cast<std::size_t>(c.packed ? c.B * c.Tq * packed_row : c.B * c.Tq * qk));
  Buffer<T> k_buffer(c.packed ? 1 : static_cast<std::size_t>(c.B * c.Tk * kw));
  Buffer<T> v_buffer(c.packed ? 1 : static_cast<std::size_t>(c.B * c.Tk * vw));
  Buffer<T> dq_buffer(q_buffer.size()), dk_buffer(k_buffer.size()), dv_buffer(v_buffer.size());
  const auto place = [&](Buffer<T>& own, Buffer<T>& packed, std::int64_t column, std::int64_t width) {
    return c.packed ? Placed<T>{packed.data() + column, packed_row} : Placed<T>{own.data(), width};
  };
  const Placed<T> q = place(q_buffer, q_buffer, 0, qk), k = place(k_buffer, q_buffer, qk, kw),
                  v = place(v_buffer, q_buffer, 2 * qk, vw);
  const Placed<T> dq = place(dq_buffer, dq_buffer, 0, qk), dk = place(dk_buffer, dq_buffer, qk, kw),
                  dv = place(dv_buffer, dq_buffer, 2 * qk, vw);
  const auto fill = [&](const Placed<T>& to, const std::vector<double>& from, std::int64_t steps, std::int64_t width) {
    for (std::int64_t r = 0; r < c.B * steps; ++r)
      for (std::int64_t e = 0; e < width; ++e)
        to.data[r * to.row + e] = element_of<T>(from[static_cast<std::size_t>(r * width + e)]);
  };
  const auto read = [&](const Placed<T>& from, std::int64_t steps, std::int64_t width) {
    std::vector<double> out(static_cast<std::size_t>(c.B * steps * width));
    for (std::int64_t r = 0; r < c.B * steps; ++r)
      for (std::int64_t e = 0; e < width; ++e)
        out[static_cast<std::size_t>(r * width + e)] = static_cast<float>(from.data[r * from.row + e]);
    return out;
  };
  fill(q, p.q, c.Tq, qk);
  fill(k, p.k, c.Tk, kw);
  fill(v, p.v, c.Tk, vw);
  Buffer<T> out_buffer(static_cast<std::size_t>(c.B * c.Tq * ow)), dout_buffer(out_buffer.size());
  const Placed<T> out{out_buffer.data(), ow}, dout{dout_buffer.data(), ow};
  fill(dout, p.dout, c.Tq, ow);
  // The bias (float32), the slopes; dbias zero-filled, as the launcher asks.
  const Features& f = c.features;
  const std::vector<float> bias(p.bias.begin(), p.bias.end());
  Buffer<float> bias_buffer(bias.empty() ? std::vector<float>{0} : bias);
  std::vector<float> slopes;
  for (std::int64_t h = 0; h < c.H; ++h) slopes.push_back(static_cast<float>(c.alibi_slope(h)));
  Buffer<float> slopes_buffer(slopes);
  Buffer<float> dbias(std::vector<float>(static_cast<std::size_t>(c.B * c.H * c.Tq * c.Tk), 0.0f));
  Buffer<std::uint8_t> attention_mask(p.attention_mask.empty() ? std::vector<std::uint8_t>{0} : p.attention_mask);
  Buffer<float> lse(static_cast<std::size_t>(c.B * c.H * c.Tq)), delta(lse.size());
  Buffer<std::uint8_t> keep(p.keep);
  Buffer<std::int32_t> lengths(p.lengths.empty() ? std::vector<std::int32_t>{0} : p.lengths);

  kern::FlashAttentionParams params;
  params.dtype = c.dtype;
  params.batch = c.B, params.heads = c.H, params.queries = c.Tq, params.keys = c.Tk;
  params.qk_dim = c.dk, params.v_dim = c.dv;
  params.q = q.data, params.k = k.data, params.v = v.data;
  params.q_row = q.row, params.k_row = k.row, params.v_row = v.row;
  params.out = out.data, params.out_row = out.row, params.lse = lse.data();
  params.key_mask = c.masking == Masking::bytes || c.masking == Masking::sparse ? keep.data() : nullptr;
  params.key_lengths = c.masking == Masking::lengths ? lengths.data() : nullptr;
  params.causal = c.causal;
  params.scale = static_cast<float>(c.softmax_scale());
  params.kv_heads = f.kv_heads;
  if (f.bias != BiasShape::none) {
    params.bias = bias_buffer.data();
    params.bias_batch_step = c.bias_batch_step(), params.bias_head_step = c.bias_head_step();
  }
  params.alibi_slopes = f.alibi ? slopes_buffer.data() : nullptr;
  params.softcap = static_cast<float>(f.softcap);
  params.window_left = f.left, params.window_right = f.right;
  if (f.mask_batch > 0) {
    params.attention_mask = attention_mask.data();
    params.attention_mask_batch_step = f.mask_batch == 1 ? 0 : c.Tq * c.Tk;
  }
  set_dropout(params, f);
  kern::flash_attention_forward(params, nullptr);
  kern::FlashAttentionGradParams grads;
  grads.forward = params;
  grads.dout = dout.data, grads.delta = delta.data();
  grads.dq = dq.data, grads.dk = dk.data, grads.dv = dv.data;
  grads.dbias = f.dbias ? dbias.data() : nullptr;
  kern::flash_attention_backward(grads, nullptr);

  Outputs o;
  o.out = read(out, c.Tq, ow);
  const std::vector<float> lse_values = lse.values();
  o.lse.assign(lse_values.begin(), lse_values.end());
  o.dq = read(dq, c.Tq, qk);
  o.dk = read(dk, c.Tk, kw);
  o.dv = read(dv, c.Tk, vw);
  const std::vector<float> dbias_values = dbias.values();
  o.dbias.assign(dbias_values.begin(), dbias_values.end());
  return o;
}

// Runs the kernels on a variable-length problem: each sequence's rows packed one after another,
// results read back into the padded layouts (zeros at the padding).
template <typename T>
Outputs run_varlen_kernels(const Problem& p) {
  const Case& c = p.c;
  const std::int64_t qk = c.H * c.dk, kw = c.kv_heads() * c.dk, vw = c.kv_heads() * c.dv, ow = c.H * c.dv;
  std::vector<std::int32_t> cu_q{0}, cu_k{0};
  for (std::int64_t b = 0; b < c.B; ++b) {
    cu_q.push_back(cu_q.back() + c.varlen_queries[b]);
    cu_k.push_back(cu_k.back() + c.varlen_keys[b]);
  }
  const std::int64_t total_q = cu_q.back(), total_k = cu_k.back();
  const auto at = [](std::int64_t x) { return static_cast<std::size_t>(x); };
  // Rows of a padded [B, steps, width] operand into a packed [total, width] buffer, and back.
  const auto pack = [&](const std::vector<double>& from, const std::vector<std::int32_t>& cu, std::int64_t steps,
                        std::int64_t width) {
    std::vector<T> packed(at(cu.back() * width));
    for (std::int64_t b = 0; b < c.B; ++b)
      for (std::int64_t t = 0; t < cu[b + 1] - cu[b]; ++t)
        for (std::int64_t e = 0; e < width; ++e)
          packed[at((cu[b] + t) * width + e)] = element_of<T>(from[at((b * steps + t) * width + e)]);
    return packed;
  };
  const auto unpack = [&](const Buffer<T>& from, const std::vector<std::int32_t>& cu, std::int64_t steps,
                          std::int64_t width) {
    std::vector<double> padded(at(c.B * steps * width), 0.0);
    for (std::int64_t b = 0; b < c.B; ++b)
      for (std::int64_t t = 0; t < cu[b + 1] - cu[b]; ++t)
        for (std::int64_t e = 0; e < width; ++e)
          padded[at((b * steps + t) * width + e)] = static_cast<float>(from.data()[(cu[b] + t) * width + e]);
    return padded;
  };
  Buffer<T> q(pack(p.q, cu_q, c.Tq, qk)), k(pack(p.k, cu_k, c.Tk, kw)), v(pack(p.v, cu_k, c.Tk, vw));
  Buffer<T> dout(pack(p.dout, cu_q, c.Tq, ow));
  Buffer<T> out(at(total_q * ow)), dq(at(total_q * qk)), dk(at(total_k * kw)), dv(at(total_k * vw));
  Buffer<float> lse(at(c.H * total_q)), delta(lse.size());
  Buffer<std::int32_t> cu_q_buffer(cu_q), cu_k_buffer(cu_k);
  std::vector<float> slopes;
  for (std::int64_t h = 0; h < c.H; ++h) slopes.push_back(static_cast<float>(c.alibi_slope(h)));
  Buffer<float> slopes_buffer(slopes);

  const Features& f = c.features;
  kern::FlashAttentionParams params;
  params.dtype = c.dtype;
  params.batch = c.B, params.heads = c.H, params.queries = c.Tq, params.keys = c.Tk;
  params.qk_dim = c.dk, params.v_dim = c.dv;
  params.q = q.data(), params.k = k.data(), params.v = v.data();
  params.q_row = qk, params.k_row = kw, params.v_row = vw;
  params.out = out.data(), params.out_row = ow, params.lse = lse.data();
  params.causal = c.causal;
  params.scale = static_cast<float>(c.softmax_scale());
  params.kv_heads = f.kv_heads;
  params.alibi_slopes = f.alibi ? slopes_buffer.data() : nullptr;
  params.softcap = static_cast<float>(f.softcap);
  params.window_left = f.left, params.window_right = f.right;
  params.cu_seqlens_q = cu_q_buffer.data(), params.cu_seqlens_k = cu_k_buffer.data();
  params.total_queries = total_q;
  set_dropout(params, f);
  kern::flash_attention_forward(params, nullptr);
  kern::FlashAttentionGradParams grads;
  grads.forward = params;
  grads.dout = dout.data(), grads.delta = delta.data();
  grads.dq = dq.data(), grads.dk = dk.data(), grads.dv = dv.data();
  kern::flash_attention_backward(grads, nullptr);

  Outputs o;
  o.out = unpack(out, cu_q, c.Tq, ow);
  o.dq = unpack(dq, cu_q, c.Tq, qk);
  o.dk = unpack(dk, cu_k, c.Tk, kw);
  o.dv = unpack(dv, cu_k, c.Tk, vw);
  o.lse.assign(at(c.B * c.H * c.Tq), 0.0);
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t h = 0; h < c.H; ++h)
      for (std::int64_t i = 0; i < c.varlen_queries[b]; ++i)
        o.lse[at((b * c.H + h) * c.Tq + i)] = lse.data()[h * total_q + cu_q[b] + i];
  return o;
}

// The padding queries of a variable-length case have no place in the kernels' results: their
// outputs and lse become 0 (their dq already is: dout 0).
void clear_padding(const Case& c, Outputs& o) {
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t i = c.varlen_queries[b]; i < c.Tq; ++i) {
      std::fill_n(o.out.begin() + (b * c.Tq + i) * c.H * c.dv, c.H * c.dv, 0.0);
      for (std::int64_t h = 0; h < c.H; ++h) o.lse[static_cast<std::size_t>((b * c.H + h) * c.Tq + i)] = 0.0;
    }
}

Outputs run_kernels(const Problem& p) {
  if (p.c.varlen()) {
    switch (p.c.dtype) {
      case AttentionDType::f16: return run_varlen_kernels<Half>(p);
      case AttentionDType::bf16: return run_varlen_kernels<BFloat16>(p);
      default: return run_varlen_kernels<float>(p);
    }
  }
  switch (p.c.dtype) {
    case AttentionDType::f16: return run_kernels<Half>(p);
    case AttentionDType::bf16: return run_kernels<BFloat16>(p);
    default: return run_kernels<float>(p);
  }
}

double max_error(const std::vector<double>& actual, const std::vector<double>& expected) {
  double worst = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(actual[i] - expected[i]);
    if (!(error <= worst)) worst = error;  // NaN makes it NaN
  }
  return worst;
}
double max_abs(const std::vector<double>& x) {
  double m = 0;
  for (const double e : x) m = std::max(m, std::abs(e));
  return m;
}

void check(const Case& c, std::uint64_t seed) {
  Generator gen(seed);
  const Problem p = make_problem(c, gen);
  Outputs exact = reference(p, false);
  const Outputs fused = run_kernels(p);
  if (c.varlen()) clear_padding(c, exact);
  const std::string label = c.name();
  EXPECT_TRUE(all_close(fused.lse, exact.lse, 1e-4, 1e-4)) << label << ": lse";
  std::vector<std::pair<const char*, std::pair<const std::vector<double>*, const std::vector<double>*>>> pairs{
      {"out", {&fused.out, &exact.out}}, {"dq", {&fused.dq, &exact.dq}},
      {"dk", {&fused.dk, &exact.dk}},    {"dv", {&fused.dv, &exact.dv}}};
  if (c.features.dbias) pairs.push_back({"dbias", {&fused.dbias, &exact.dbias}});
  if (c.dtype == AttentionDType::f32) {
    for (const auto& [name, values] : pairs)
      EXPECT_TRUE(all_close(*values.first, *values.second, 2e-5, 2e-4)) << label << ": " << name;
    return;
  }
  Outputs plain = reference(p, true);
  if (c.varlen()) clear_padding(c, plain);
  const std::vector<const std::vector<double>*> plain_values{&plain.out, &plain.dq, &plain.dk, &plain.dv,
                                                             &plain.dbias};
  // Half a unit in the last place of the largest value: the rounding of the output itself.
  const double unit = c.dtype == AttentionDType::f16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
  for (std::size_t n = 0; n < pairs.size(); ++n) {
    const auto& [name, values] = pairs[n];
    const double fused_error = max_error(*values.first, *values.second);
    const double plain_error = max_error(*plain_values[n], *values.second);
    EXPECT_LE(fused_error, 2 * plain_error + unit * max_abs(*values.second))
        << label << ": " << name << " (plain attention in the same precision errs by " << plain_error << ")";
  }
}

TEST(SimFlashAttention, Float32MatchesPlainAttention) {
  const AttentionDType f32 = AttentionDType::f32;
  std::uint64_t seed = 900;
  for (const Case& c : std::vector<Case>{
           {f32, 2, 3, 37, 53, 8, 8},                                     // cross, below a warp's width
           {f32, 3, 2, 20, 20, 24, 40, false, Masking::bytes},           // dk != dv, a row that sees nothing
           {f32, 1, 1, 70, 70, 32, 32, true},                             // causal over three tiles
           {f32, 3, 2, 45, 33, 64, 64, true, Masking::lengths},          // cross and causal, lengths
           {f32, 2, 2, 29, 29, 16, 16, false, Masking::bytes, true},     // packed projections
           {f32, 1, 2, 5, 1, 96, 72},                                     // one key
           {f32, 2, 1, 9, 40, 128, 128, false, Masking::lengths, false, 1.0},  // Luong's scale 1
           {f32, 1, 1, 33, 17, 256, 200, true},                           // the widest heads
       })
    check(c, seed++);
}

TEST(SimFlashAttention, TensorCoresMatchPlainAttentionInFloat16) {
  const AttentionDType f16 = AttentionDType::f16;
  std::uint64_t seed = 920;
  for (const Case& c : std::vector<Case>{
           {f16, 2, 1, 70, 70, 32, 32, true, Masking::none, true},       // packed causal self-attention
           {f16, 3, 2, 37, 90, 64, 64, false, Masking::bytes},           // cross, a row that sees nothing
           {f16, 3, 1, 81, 41, 128, 128, true, Masking::lengths},        // Tq > 64 and Tk not a tile
       })
    check(c, seed++);
}

TEST(SimFlashAttention, TensorCoresMatchPlainAttentionInBfloat16) {
  const AttentionDType bf16 = AttentionDType::bf16;
  std::uint64_t seed = 940;
  for (const Case& c : std::vector<Case>{
           {bf16, 3, 2, 65, 20, 32, 32, false, Masking::lengths},
           {bf16, 1, 2, 50, 50, 64, 64, true, Masking::bytes, true},
           {bf16, 2, 1, 17, 129, 128, 128, false, Masking::none, false, 1.0},
       })
    check(c, seed++);
}

// Several whole tiles of keys, so that the tensor-core kernels take their path without masks on
// some and the masked one on others (the tile with hidden keys, the diagonal, the ragged end).
TEST(SimFlashAttention, TensorCoresMatchPlainAttentionOverManyTiles) {
  const AttentionDType f16 = AttentionDType::f16, bf16 = AttentionDType::bf16;
  std::uint64_t seed = 960;
  for (const Case& c : std::vector<Case>{
           {bf16, 1, 1, 130, 192, 128, 128, false, Masking::sparse},  // tile 1 masked, 0 and 2 whole
           {f16, 1, 1, 200, 200, 64, 64, true, Masking::sparse},      // causal, four blocks of keys
           {f16, 1, 2, 40, 257, 32, 32, false, Masking::none},        // four whole tiles and a ragged one
       })
    check(c, seed++);
}

// Grouped key heads, biases of every shape (with -inf entries: float masks), ALiBi, soft-capping
// and windows, alone and together, and the bias gradient: the kernels' instances with modifiers.
Features with(std::int64_t kv_heads, BiasShape bias, bool alibi, double softcap, std::int64_t left, std::int64_t right,
              bool dbias, std::int64_t mask_batch = 0, double dropout = 0) {
  return {kv_heads, bias, alibi, softcap, left, right, dbias, mask_batch, dropout};
}
Features dropout(double rate) { return with(0, BiasShape::none, false, 0, -1, -1, false, 0, rate); }

TEST(SimFlashAttention, Float32TakesGroupedHeadsBiasesAlibiSoftcapAndWindows) {
  const AttentionDType f32 = AttentionDType::f32;
  const Masking none = Masking::none;
  std::uint64_t seed = 980;
  for (const Case& c : std::vector<Case>{
           {f32, 2, 4, 37, 53, 16, 8, false, none, false, 0, with(2, BiasShape::full_f32, false, 0, -1, -1, true)},
           {f32, 3, 2, 45, 33, 24, 24, true, Masking::lengths, false, 0,
            with(0, BiasShape::per_head, true, 0, -1, -1, true)},
           {f32, 2, 3, 70, 70, 32, 32, false, Masking::bytes, false, 0, with(1, BiasShape::none, false, 5.0, 10, 5, false)},
           {f32, 1, 2, 40, 90, 64, 40, false, none, false, 0, with(0, BiasShape::per_batch, false, 3.0, -1, 0, true)},
           {f32, 2, 2, 29, 29, 16, 16, true, none, true, 0, with(0, BiasShape::none, true, 0, 7, -1, false)},
           {f32, 3, 2, 33, 41, 16, 24, false, none, false, 0, with(0, BiasShape::none, false, 0, -1, -1, false, 3)},
           {f32, 2, 3, 45, 70, 24, 40, true, Masking::bytes, false, 0, dropout(0.3)},
           {f32, 2, 4, 37, 53, 16, 8, false, none, false, 0, with(2, BiasShape::full_f32, true, 2.0, 20, -1, true, 0, 0.15)},
       })
    check(c, seed++);
}

TEST(SimFlashAttention, TensorCoresTakeGroupedHeadsBiasesAlibiSoftcapAndWindows) {
  const AttentionDType f16 = AttentionDType::f16, bf16 = AttentionDType::bf16;
  std::uint64_t seed = 1000;
  for (const Case& c : std::vector<Case>{
           {f16, 2, 4, 70, 90, 64, 64, true, Masking::none, false, 0, with(2, BiasShape::per_head, false, 0, -1, -1, true)},
           {bf16, 2, 2, 81, 41, 32, 32, false, Masking::lengths, false, 0,
            with(0, BiasShape::full_f32, true, 4.0, 20, 3, true)},
           {f16, 1, 4, 130, 200, 128, 128, false, Masking::sparse, false, 0,
            with(1, BiasShape::none, false, 0, 40, 40, false)},
           {bf16, 3, 2, 65, 64, 64, 64, false, Masking::bytes, false, 0,
            with(0, BiasShape::per_batch, false, 2.5, -1, -1, true, 1)},
           {f16, 2, 2, 70, 75, 32, 32, true, Masking::none, false, 0,
            with(0, BiasShape::none, false, 0, -1, -1, false, 2)},
           {bf16, 2, 2, 81, 130, 64, 64, true, Masking::lengths, false, 0, dropout(0.3)},
           {f16, 1, 4, 70, 90, 128, 128, false, Masking::bytes, false, 0,
            with(2, BiasShape::per_head, true, 3.0, -1, -1, true, 0, 0.2)},
           {f16, 2, 2, 45, 100, 32, 32, false, Masking::none, false, 0, dropout(0.5)},
       })
    check(c, seed++);
}

// Variable-length batches: sequences of different lengths packed without padding, among them one
// without queries and one without keys, in every kernel, with causal masking, grouped heads and
// the score modifiers that go with them.
TEST(SimFlashAttention, VariableLengthBatchesInEveryKernel) {
  const AttentionDType f32 = AttentionDType::f32, f16 = AttentionDType::f16, bf16 = AttentionDType::bf16;
  const Masking none = Masking::none;
  const std::vector<std::int32_t> queries{37, 0, 70, 5}, keys{53, 20, 0, 66};
  std::uint64_t seed = 1020;
  for (const Case& c : std::vector<Case>{
           {f32, 4, 2, 70, 66, 24, 16, false, none, false, 0, {}, queries, keys},
           {f32, 4, 4, 70, 66, 32, 32, true, none, false, 0, with(2, BiasShape::none, true, 0, 9, -1, false), queries,
            keys},
           {f16, 4, 2, 70, 66, 64, 64, true, none, false, 0, {}, queries, keys},
           {bf16, 4, 3, 70, 66, 32, 32, false, none, false, 0, with(1, BiasShape::none, false, 3.0, -1, -1, false),
            queries, keys},
           {bf16, 3, 2, 130, 100, 128, 128, true, none, false, 0, {}, {130, 17, 64}, {100, 9, 64}},
           {f32, 4, 2, 70, 66, 24, 16, true, none, false, 0, dropout(0.25), queries, keys},
           {f16, 4, 4, 70, 66, 64, 64, false, none, false, 0, with(2, BiasShape::none, false, 0, -1, -1, false, 0, 0.3),
            queries, keys},
       })
    check(c, seed++);
}

// Dropout drops the same entries in every kernel as the cpu op: with V the identity, out_ij =
// P_ij Z_ij / (1 - rate') shows the forward's mask, and with dout_i the i-th unit row, dV_ji =
// P_ij Z_ij / (1 - rate') shows the dk/dv pass's; both against attention_dropout_mask, bit for
// bit, in f32, f16 and bf16, over keys that span several blocks of 32 and a ragged tile.
TEST(SimFlashAttention, DropoutDropsTheEntriesTheCpuDrops) {
  std::uint64_t seed = 1040;
  for (const AttentionDType dtype : {AttentionDType::f32, AttentionDType::f16, AttentionDType::bf16}) {
    const Case c{dtype, 2, 2, 37, 100, 128, 128, false, Masking::none, false, 0, dropout(0.3)};
    Generator gen(seed++);
    Problem p = make_problem(c, gen);
    const std::int64_t w = c.H * c.dv;
    std::fill(p.v.begin(), p.v.end(), 0.0);
    std::fill(p.dout.begin(), p.dout.end(), 0.0);
    for (std::int64_t b = 0; b < c.B; ++b)
      for (std::int64_t h = 0; h < c.H; ++h) {
        for (std::int64_t j = 0; j < c.Tk; ++j) p.v[static_cast<std::size_t>((b * c.Tk + j) * w + h * c.dv + j)] = 1.0;
        for (std::int64_t i = 0; i < c.Tq; ++i) p.dout[static_cast<std::size_t>((b * c.Tq + i) * w + h * c.dv + i)] = 1.0;
      }
    const Outputs o = run_kernels(p);
    ops::AttentionOptions options;
    options.dropout = c.features.dropout, options.dropout_seed = kDropoutSeed, options.dropout_offset = kDropoutOffset;
    const std::vector<std::uint8_t> mask = ops::attention_dropout_mask(c.B, c.H, c.Tq, c.Tk, options).to_vector<std::uint8_t>();
    std::int64_t forward_differ = 0, backward_differ = 0, dropped = 0;
    for (std::int64_t b = 0; b < c.B; ++b)
      for (std::int64_t h = 0; h < c.H; ++h)
        for (std::int64_t i = 0; i < c.Tq; ++i)
          for (std::int64_t j = 0; j < c.Tk; ++j) {
            const bool kept = mask[static_cast<std::size_t>(((b * c.H + h) * c.Tq + i) * c.Tk + j)] != 0;
            forward_differ += (o.out[static_cast<std::size_t>((b * c.Tq + i) * w + h * c.dv + j)] != 0) != kept;
            backward_differ += (o.dv[static_cast<std::size_t>((b * c.Tk + j) * w + h * c.dv + i)] != 0) != kept;
            dropped += !kept;
          }
    EXPECT_EQ(forward_differ, 0) << c.name();
    EXPECT_EQ(backward_differ, 0) << c.name();
    EXPECT_GT(dropped, c.B * c.H * c.Tq * c.Tk / 5) << c.name();
  }
}

TEST(SimFlashAttention, RefusesWhatTheKernelsCannotTake) {
  kern::FlashAttentionParams p;
  p.batch = 1, p.heads = 1, p.queries = 4, p.keys = 4, p.qk_dim = 300, p.v_dim = 16;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(p), "float32 takes head dims 1 to 256");
  p.dtype = AttentionDType::f16, p.qk_dim = 48, p.v_dim = 48;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(p), "head dims 32, 64 or 128");
  p.qk_dim = p.v_dim = 64, p.scale = -0.125f;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(p), "take a positive finite scale, got -0.125");
  p.scale = 0.125f, p.q_row = p.k_row = p.v_row = p.out_row = 68;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(p), "16-byte aligned");
  p.q_row = p.k_row = p.v_row = p.out_row = 64, p.queries = std::int64_t{1} << 31;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(p), "the kernels take at most");
  p.queries = 4;
  alignas(16) static std::uint16_t storage[16];
  p.q = p.k = p.v = p.out = storage;
  kern::FlashAttentionGradParams g;
  g.forward = p;
  g.dout = storage + 4, g.dq = g.dk = g.dv = storage;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(g), "need dout 16-byte aligned");
  g.dout = storage, g.dk = storage + 1;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(g), "need dq, dk and dv 4-byte aligned");
  g.dk = storage;
  kern::flash_attention_check(g);  // and now it takes them
  static std::int32_t offsets[2] = {0, 4};
  g.forward.cu_seqlens_q = offsets;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(g), "needs the offsets of both queries and keys");
  g.forward.cu_seqlens_k = offsets, g.forward.total_queries = 4;
  static std::int32_t lengths[1] = {4};
  g.forward.key_lengths = lengths;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(g), "takes no key mask, key lengths, bias or attention mask");
  g.forward.key_lengths = nullptr;
  g.forward.dropout_threshold = 65536;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(g), "dropout's threshold 65536 and scale 1 are not a rate's");
  g.forward.dropout_threshold = 0;
  static float dbias[16];
  g.dbias = dbias;
  EXPECT_ATTNKIT_ERROR(kern::flash_attention_check(g), "has no bias to take a gradient");
}

}  // namespace
}  // namespace attnkit
