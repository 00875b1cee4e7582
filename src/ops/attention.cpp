// Multi-head scaled dot-product attention (attnkit/ops/attention.h). On the CPU, the reference
// that the kernels are tested against: small matrix products per (batch, head) in vectorized
// loops that accumulate in the operands' dtype (f32, or f64 for f64). On a device, the fused
// kernels (device_ops/ops_attention.cpp) unless the options ask for the unfused path, the
// device's products around a masked softmax kernel.
#include "attnkit/ops/attention.h"

#include "attnkit/ops/linear.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "cpu/fast_math.h"
#include "cpu/parallel.h"
#include "cpu/philox.h"
#include "device_ops/dispatch.h"
#include "ops/attention_common.h"
#include "ops/attention_operands.h"
#include "ops/op_common.h"

namespace attnkit::ops {

using detail::combine_lanes;
using detail::dot;
using detail::kLanes;

namespace {

using detail::AttentionOperands;
using detail::DecodeSteps;
using detail::Heads;

bool is_16_bit(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16; }

// q is a float tensor (the other operands must match it: check_like).
void check_attention_dtype(const char* op, const Tensor& q) {
  ATTNKIT_CHECK(q.defined(), op, ": q is undefined");
  ATTNKIT_CHECK(is_floating(q.dtype()), op, ": q must be f32, f64, f16 or bf16, got ", q.describe());
}

// The options' dropout into `a`, whose sizes are set: its rows laid out by a's queries and keys.
void set_dropout(const char* op, AttentionOperands& a, const AttentionOptions& options) {
  ATTNKIT_CHECK(options.dropout >= 0 && options.dropout < 1, op, ": dropout must be in [0, 1), got ", options.dropout);
  const std::uint32_t threshold = attention_dropout_threshold(options.dropout);
  ATTNKIT_CHECK(threshold < 65536, op, ": dropout ", options.dropout,
                " would drop every probability (the rate is taken to a multiple of 2^-16); it must be below 1 - 2^-17");
  a.dropout_threshold = threshold;
  a.dropout_seed = options.dropout_seed, a.dropout_first_block = options.dropout_offset;
  a.dropout_queries = a.queries, a.dropout_keys = a.keys;
}

// The options' heads, scale, causal flag and score modifiers, and key_mask (u8 [B, Tk], or i32 key
// lengths [B] each in [0, Tk]) into `a`, whose tensors and sizes are set; checks where it all lives.
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
  const DType dtype = a.q.tensor.dtype();
  if (options.bias.defined()) {
    const Tensor& bias = options.bias;
    const bool shape_ok = bias.dim() == 4 && (bias.size(0) == 1 || bias.size(0) == a.batch) &&
                          (bias.size(1) == 1 || bias.size(1) == a.heads) && bias.size(2) == a.queries &&
                          bias.size(3) == a.keys;
    ATTNKIT_CHECK(shape_ok, op, ": bias must be [B or 1, H or 1, Tq, Tk] = [", a.batch, " or 1, ", a.heads, " or 1, ",
                  a.queries, ", ", a.keys, "], got ", bias.describe());
    ATTNKIT_CHECK(bias.dtype() == DType::f32 || bias.dtype() == dtype, op, ": bias must be f32 or q's dtype ", dtype,
                  ", got ", bias.describe());
    a.bias = bias;
  }
  ATTNKIT_CHECK(!options.bias_grad || a.bias.defined(), op, ": bias_grad asks for the gradient of a bias, and there is none");
  if (options.alibi_slopes.defined()) {
    ATTNKIT_CHECK(options.alibi_slopes.dtype() == DType::f32 && options.alibi_slopes.shape() == Shape({a.heads}), op,
                  ": alibi_slopes must be f32 [H] = ", shape_str({a.heads}), ", got ", options.alibi_slopes.describe());
    for (const float slope : options.alibi_slopes.to_vector<float>())
      ATTNKIT_CHECK(std::isfinite(slope), op, ": an ALiBi slope is ", slope, "; slopes must be finite");
    a.alibi_slopes = options.alibi_slopes;
  }
  ATTNKIT_CHECK(options.softcap >= 0 && std::isfinite(options.softcap), op,
                ": softcap must be 0 (none) or positive and finite, got ", options.softcap);
  a.softcap = options.softcap;
  a.window_left = options.window_left < 0 ? -1 : options.window_left;
  a.window_right = options.window_right < 0 ? -1 : options.window_right;
  if (options.attention_mask.defined()) {
    const Tensor& mask = options.attention_mask;
    const bool shape_ok = mask.dim() == 3 && (mask.size(0) == 1 || mask.size(0) == a.batch) &&
                          mask.size(1) == a.queries && mask.size(2) == a.keys;
    ATTNKIT_CHECK(mask.dtype() == DType::u8 && shape_ok, op, ": attention_mask must be u8 [B or 1, Tq, Tk] = [",
                  a.batch, " or 1, ", a.queries, ", ", a.keys, "], got ", mask.describe());
    a.attention_mask = mask;
  }
  set_dropout(op, a, options);
  const Device device = detail::common_device(op, {{"q", &a.q.tensor},
                                                   {"k", &a.k.tensor},
                                                   {"v", &a.v.tensor},
                                                   {"key_mask", &key_mask},
                                                   {"bias", &options.bias},
                                                   {"alibi_slopes", &options.alibi_slopes},
                                                   {"attention_mask", &options.attention_mask}});
  ATTNKIT_CHECK(device.is_cpu() || dtype != DType::f64, op, ": f64 runs on the cpu only, got ", a.q.tensor.describe());
}

// The key heads of the options (num_kv_heads, or num_heads when 0), which must divide num_heads.
std::int64_t kv_heads_of(const char* op, const AttentionOptions& options) {
  const std::int64_t H = options.num_heads;
  ATTNKIT_CHECK(H >= 1, op, ": num_heads must be at least 1, got ", H);
  const std::int64_t Hkv = options.num_kv_heads == 0 ? H : options.num_kv_heads;
  ATTNKIT_CHECK(Hkv >= 1 && H % Hkv == 0, op, ": num_kv_heads ", options.num_kv_heads, " must divide num_heads ", H);
  return Hkv;
}

AttentionOperands separate_operands(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_mask, const AttentionOptions& options) {
  check_attention_dtype(op, q);
  detail::check_rank(op, "q", q, 3, "[B, Tq, H*dk]");
  detail::check_rank(op, "k", k, 3, "[B, Tk, H*dk]");
  detail::check_rank(op, "v", v, 3, "[B, Tk, H*dv]");
  const std::int64_t H = options.num_heads, Hkv = kv_heads_of(op, options);
  ATTNKIT_CHECK(q.size(2) % H == 0, op, ": the width ", q.size(2), " of q is not divisible by ", H, " heads");
  ATTNKIT_CHECK(v.size(2) % Hkv == 0, op, ": the width ", v.size(2), " of v is not divisible by ", Hkv, " key heads");
  detail::check_like(op, "k", k, {q.size(0), k.size(1), q.size(2) / H * Hkv}, q);
  detail::check_like(op, "v", v, {q.size(0), k.size(1), v.size(2)}, q);
  AttentionOperands a;
  a.q = {q, 0, q.size(2)};
  a.k = {k, 0, k.size(2)};
  a.v = {v, 0, v.size(2)};
  a.batch = q.size(0), a.heads = H, a.kv_heads = Hkv, a.queries = q.size(1), a.keys = k.size(1);
  a.qk_dim = q.size(2) / H, a.v_dim = v.size(2) / Hkv;
  finish_operands(op, a, key_mask, options);
  return a;
}

AttentionOperands packed_operands(const char* op, const Tensor& qkv, const Tensor& key_mask,
                                  const AttentionOptions& options) {
  check_attention_dtype(op, qkv);
  detail::check_rank(op, "qkv", qkv, 3, "[B, T, (H + 2 Hkv) dk]");
  const std::int64_t H = options.num_heads, Hkv = kv_heads_of(op, options), slots = H + 2 * Hkv;
  ATTNKIT_CHECK(qkv.size(2) % slots == 0, op, ": the width ", qkv.size(2), " of qkv is not a multiple of ", slots,
                " heads (", H, " for q, ", Hkv, " each for k and v)");
  const std::int64_t d = qkv.size(2) / slots;
  AttentionOperands a;
  a.q = {qkv, 0, qkv.size(2)};
  a.k = {qkv, H * d, qkv.size(2)};
  a.v = {qkv, (H + Hkv) * d, qkv.size(2)};
  a.batch = qkv.size(0), a.heads = H, a.kv_heads = Hkv, a.queries = a.keys = qkv.size(1);
  a.qk_dim = a.v_dim = d;
  finish_operands(op, a, key_mask, options);
  return a;
}

// The offsets cu_seqlens (i32 [B + 1]) of a variable-length batch's sequences among `total` steps,
// on the host, checked: from 0, nondecreasing, to total.
std::vector<std::int64_t> sequence_starts(const char* op, const char* name, const Tensor& cu_seqlens,
                                          std::int64_t total) {
  ATTNKIT_CHECK(cu_seqlens.defined() && cu_seqlens.dtype() == DType::i32 && cu_seqlens.dim() == 1 &&
                    cu_seqlens.size(0) >= 1,
                op, ": ", name, " must be i32 [B + 1], got ", cu_seqlens.defined() ? cu_seqlens.describe() : "undefined");
  const std::vector<std::int32_t> values = cu_seqlens.to_vector<std::int32_t>();
  const std::vector<std::int64_t> starts(values.begin(), values.end());
  ATTNKIT_CHECK(starts.front() == 0, op, ": ", name, "[0] must be 0, got ", starts.front());
  for (std::size_t b = 1; b < starts.size(); ++b)
    ATTNKIT_CHECK(starts[b] >= starts[b - 1], op, ": ", name, " must not decrease, but ", name, "[", b, "] = ",
                  starts[b], " < ", name, "[", b - 1, "] = ", starts[b - 1]);
  ATTNKIT_CHECK(starts.back() == total, op, ": ", name, "[", starts.size() - 1, "] = ", starts.back(),
                " must be the number of steps, ", total);
  return starts;
}

std::int64_t longest(const std::vector<std::int64_t>& starts) {
  std::int64_t n = 0;
  for (std::size_t b = 1; b < starts.size(); ++b) n = std::max(n, starts[b] - starts[b - 1]);
  return n;
}

AttentionOperands varlen_operands(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                                  const AttentionOptions& options) {
  check_attention_dtype(op, q);
  detail::check_rank(op, "q", q, 3, "[total_q, H, dk]");
  detail::check_rank(op, "k", k, 3, "[total_k, Hkv, dk]");
  detail::check_rank(op, "v", v, 3, "[total_k, Hkv, dv]");
  const std::int64_t H = q.size(1), Hkv = k.size(1);
  ATTNKIT_CHECK(H >= 1 && Hkv >= 1 && H % Hkv == 0, op, ": the key heads ", Hkv, " of k must divide the heads ", H,
                " of q");
  ATTNKIT_CHECK((options.num_heads == 1 || options.num_heads == H) &&
                    (options.num_kv_heads == 0 || options.num_kv_heads == Hkv),
                op, ": num_heads ", options.num_heads, " and num_kv_heads ", options.num_kv_heads,
                " disagree with the heads of q ", q.describe(), " and k ", k.describe(),
                " (leave them unset: the shapes give them)");
  detail::check_like(op, "k", k, {k.size(0), Hkv, q.size(2)}, q);
  detail::check_like(op, "v", v, {k.size(0), Hkv, v.size(2)}, q);
  ATTNKIT_CHECK(!options.bias.defined() && !options.attention_mask.defined() && !options.bias_grad &&
                    !options.return_weights,
                op, ": a variable-length batch takes no bias, attention mask or returned weights (its sequences "
                "differ in length)");
  detail::common_device(op, {{"q", &q}, {"cu_seqlens_q", &cu_seqlens_q}, {"cu_seqlens_k", &cu_seqlens_k}});
  AttentionOperands a;
  a.query_starts = sequence_starts(op, "cu_seqlens_q", cu_seqlens_q, q.size(0));
  a.key_starts = sequence_starts(op, "cu_seqlens_k", cu_seqlens_k, k.size(0));
  ATTNKIT_CHECK(a.query_starts.size() == a.key_starts.size(), op, ": cu_seqlens_q ", cu_seqlens_q.describe(),
                " and cu_seqlens_k ", cu_seqlens_k.describe(), " must count the same sequences");
  a.cu_seqlens_q = cu_seqlens_q, a.cu_seqlens_k = cu_seqlens_k;
  a.total_queries = q.size(0);
  a.q = {q, 0, H * q.size(2)};
  a.k = {k, 0, Hkv * k.size(2)};
  a.v = {v, 0, Hkv * v.size(2)};
  a.batch = static_cast<std::int64_t>(a.query_starts.size()) - 1, a.heads = H, a.kv_heads = Hkv;
  a.queries = longest(a.query_starts), a.keys = longest(a.key_starts);
  a.qk_dim = q.size(2), a.v_dim = v.size(2);
  finish_operands(op, a, Tensor(), options);
  return a;
}

// Sequence b of a variable-length batch as a batch of one (heads that start at its first step).
AttentionOperands sequence_operands(const AttentionOperands& a, std::int64_t b) {
  AttentionOperands s = a;
  const auto at = static_cast<std::size_t>(b);
  s.cu_seqlens_q = s.cu_seqlens_k = Tensor();
  s.query_starts.clear(), s.key_starts.clear();
  s.batch = 1;
  s.dropout_first_block = a.dropout_row_block(b, 0, 0);
  s.queries = a.query_starts[at + 1] - a.query_starts[at];
  s.keys = a.key_starts[at + 1] - a.key_starts[at];
  s.q.offset += a.query_starts[at] * a.q.row;
  s.k.offset += a.key_starts[at] * a.k.row;
  s.v.offset += a.key_starts[at] * a.v.row;
  return s;
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

// The cpu's loops for one (batch, head), on f32 or f64 operands, accumulating in the operands'
// dtype T: float with cpu::fast_exp, double with std::exp (the gradient checks run in double).
// They are small matrix products whose inner loops run over kLanes contiguous elements (keys, or
// a head's columns), each lane its own sum, held in vector registers (`omp simd` on the loops
// over lanes, without which GCC 12 takes the lanes apart into scalars):
//   scores    s_i = scale q_i K^T: sum over c of q_i[c] times row c of K^T, a block of keys at a
//             time (K^T: the head's keys transposed into a buffer, padded with zeros to a
//             multiple of kLanes keys)
//   forward   p_i = softmax(s_i), out_i = sum_j p_ij v_j
//   backward  dp_i = dout_i V^T (as the scores), ds_ij = p_ij (dp_ij - dout_i . out_i) scale,
//             dq_i = sum_j ds_ij k_j, dk_j = sum_i ds_ij q_i, dv_j = sum_i p_ij dout_i
// Terms whose probability is 0 (hidden keys, queries that see no key) are skipped, as in the
// definition, so that what a hidden key holds never reaches a result. The buffers are each
// thread's, allocated once (thread_buffer), not per (batch, head).

constexpr std::int64_t kQueryTile = 64;  // queries whose p and ds rows the backward keeps at once
constexpr double kHidden = -std::numeric_limits<double>::infinity();

std::int64_t padded(std::int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// The keys [0, n) that query i may see before the key mask and the window's left bound: all of
// them, or those up to i (causal) or up to i + window_right.
std::int64_t key_span(const AttentionOperands& a, std::int64_t i) {
  std::int64_t n = a.causal ? std::min(a.keys, i + 1) : a.keys;
  if (a.window_right >= 0) n = std::min(n, i + a.window_right + 1);
  return n;
}

// xt[c * ld + j] = x[j * row + c] for j < rows, and 0 for j in [rows, ld): the [rows, cols]
// block of a head, transposed and padded.
template <typename T>
void transpose_head(const T* __restrict x, std::int64_t row, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                    T* __restrict xt) {
  for (std::int64_t c = 0; c < cols; ++c) {
    for (std::int64_t j = 0; j < rows; ++j) xt[c * ld + j] = x[j * row + c];
    std::fill(xt + c * ld + rows, xt + (c + 1) * ld, T(0));
  }
}

// y[j] = sum_c x[c] mt[c * ld + j] for j < np (a multiple of kLanes): a row times the columns of
// a transposed block. Two blocks of keys at a time where there are two, and even and odd c in
// separate sums, so that four chains of additions run side by side. This and add_weighted_rows
// stay out of line: inlined into the loops of a (batch, head), GCC 12 keeps their sums in memory.
template <typename T>
[[gnu::noinline]] void row_times(const T* __restrict x, std::int64_t k, const T* __restrict mt, std::int64_t ld,
                                 std::int64_t np, T* __restrict y) {
  const auto block = [&](std::int64_t jb, auto lanes) {
    constexpr std::int64_t width = decltype(lanes)::value;
    T even[width] = {}, odd[width] = {};
    std::int64_t c = 0;
    for (; c + 1 < k; c += 2) {
      const T x_0 = x[c], x_1 = x[c + 1];
      const T* __restrict m_0 = mt + c * ld + jb;
      const T* __restrict m_1 = m_0 + ld;
#pragma omp simd
      for (std::int64_t l = 0; l < width; ++l) {
        even[l] += x_0 * m_0[l];
        odd[l] += x_1 * m_1[l];
      }
    }
    if (c < k) {
      const T x_0 = x[c];
      const T* __restrict m_0 = mt + c * ld + jb;
#pragma omp simd
      for (std::int64_t l = 0; l < width; ++l) even[l] += x_0 * m_0[l];
    }
#pragma omp simd
    for (std::int64_t l = 0; l < width; ++l) y[jb + l] = even[l] + odd[l];
  };
  std::int64_t jb = 0;
  for (; jb + 2 * kLanes <= np; jb += 2 * kLanes) block(jb, std::integral_constant<std::int64_t, 2 * kLanes>());
  if (jb < np) block(jb, std::integral_constant<std::int64_t, kLanes>());
}

// y[c] += sum_m w[m * step] x[m * row + c] for c < dim, over the m < count whose gate[m * step]
// is not 0; even and odd m in separate sums.
template <typename T>
[[gnu::noinline]] void add_weighted_rows(std::int64_t count, const T* w, const T* gate, std::int64_t step,
                                         const T* __restrict x, std::int64_t row, std::int64_t dim, T* __restrict y) {
  // width: a constant (kLanes, 8 or 4) for blocks held in vector registers, or the last 1 to 3.
  const auto block = [&](std::int64_t cb, auto width) {
    T even[kLanes] = {}, odd[kLanes] = {};
    std::int64_t m = 0;
    for (; m + 1 < count; m += 2) {
      const T* __restrict x_0 = x + m * row + cb;
      const T* __restrict x_1 = x_0 + row;
      if (gate[m * step] != 0) {
        const T w_0 = w[m * step];
#pragma omp simd
        for (std::int64_t l = 0; l < width; ++l) even[l] += w_0 * x_0[l];
      }
      if (gate[(m + 1) * step] != 0) {
        const T w_1 = w[(m + 1) * step];
#pragma omp simd
        for (std::int64_t l = 0; l < width; ++l) odd[l] += w_1 * x_1[l];
      }
    }
    if (m < count && gate[m * step] != 0) {
      const T w_0 = w[m * step];
      const T* __restrict x_0 = x + m * row + cb;
#pragma omp simd
      for (std::int64_t l = 0; l < width; ++l) even[l] += w_0 * x_0[l];
    }
#pragma omp simd
    for (std::int64_t l = 0; l < width; ++l) y[cb + l] += even[l] + odd[l];
  };
  std::int64_t cb = 0;
  for (; cb + kLanes <= dim; cb += kLanes) block(cb, std::integral_constant<std::int64_t, kLanes>());
  if (cb + 8 <= dim) block(cb, std::integral_constant<std::int64_t, 8>()), cb += 8;
  if (cb + 4 <= dim) block(cb, std::integral_constant<std::int64_t, 4>()), cb += 4;
  if (cb < dim) block(cb, dim - cb);
}

// A buffer of n elements for the calling thread, 64-byte aligned and kept from call to call: it
// is allocated once per thread (again only when a larger problem comes), not per (batch, head).
// The ops ask for the calling thread's before their parallel loop, so that a loop that stays on
// one thread allocates nothing inside it.
template <typename T>
T* thread_buffer(std::size_t n) {
  constexpr std::size_t align = 64 / sizeof(T);
  thread_local std::vector<T> buffer;
  if (buffer.size() < n + align) buffer.resize(n + align);
  const auto address = reinterpret_cast<std::uintptr_t>(buffer.data());
  return buffer.data() + (64 - address % 64) % 64 / sizeof(T);
}

// The score modifiers of the operands in the cpu's dtype T: the bias converted to it (or
// undefined), the ALiBi slopes on the host.
template <typename T>
struct Modifiers {
  Tensor bias;
  std::vector<float> slopes;
  explicit Modifiers(const AttentionOperands& a)
      : bias(a.bias.defined() ? a.bias.to(dtype_of<T>()) : Tensor()),
        slopes(a.alibi_slopes.defined() ? a.alibi_slopes.to_vector<float>() : std::vector<float>()) {}
};

namespace attention {
// factor[j] for the keys j < n of the dropout's row that starts at block `row` (attnkit/random.h):
// 0 where the dropout drops the probability, 1 / (1 - rate') where it keeps it; a chunk of the
// row's blocks drawn at a time.
template <typename T>
void dropout_factors(const AttentionOperands& a, std::uint64_t row, std::int64_t n, T* __restrict factor) {
  constexpr std::int64_t kChunk = 1024;  // keys: 128 blocks
  std::uint32_t words[kChunk / 8 * 4];
  const T kept = static_cast<T>(a.dropout_scale());
  for (std::int64_t j0 = 0; j0 < n; j0 += kChunk) {
    const std::int64_t count = std::min(kChunk, n - j0);
    const std::uint64_t first = attention_dropout_block(row, j0);
    cpu::philox_blocks(a.dropout_seed, first, static_cast<std::int64_t>(attention_dropout_row_blocks(count)), words);
    for (std::int64_t j = j0; j < j0 + count; ++j) {
      const std::uint32_t* w = words + 4 * (attention_dropout_block(row, j) - first);
      factor[j] = attention_dropout_keeps({{w[0], w[1], w[2], w[3]}}, j, a.dropout_threshold) ? kept : T(0);
    }
  }
}
}  // namespace attention

// One (batch, head): where it starts in each operand, and its keys in the buffers.
template <typename T>
struct HeadTask {
  const AttentionOperands& a;
  const T *q, *k, *v;  // row 0 of the head in each operand (k and v: its key head's)
  const T* bias;       // the head's [Tq, Tk] bias, or null
  const std::uint8_t* attention_mask;  // the batch element's [Tq, Tk] attention mask, or null
  T slope;             // its ALiBi slope, or 0
  bool modified;       // whether any score modifier is on
  std::uint64_t dropout_row0;  // the dropout's first block of the head's query 0
  std::int64_t ld;     // the keys padded to a multiple of kLanes
  T* visible;          // [ld]: 1 where the batch element shows the key, 0 where not and past Tk
  T* kt;               // [qk_dim, ld]: the head's keys transposed

  // Builds the visible row and kt in work (ld * (1 + qk_dim) elements); the rest of it follows.
  HeadTask(const AttentionOperands& operands, const Modifiers<T>& modifiers, const std::vector<std::uint8_t>& keep,
           std::int64_t b, std::int64_t h, T* work)
      : a(operands),
        q(heads_data<T>(a.q) + b * a.queries * a.q.row + h * a.qk_dim),
        k(heads_data<T>(a.k) + b * a.keys * a.k.row + h / (a.heads / a.kv_heads) * a.qk_dim),
        v(heads_data<T>(a.v) + b * a.keys * a.v.row + h / (a.heads / a.kv_heads) * a.v_dim),
        bias(modifiers.bias.defined()
                 ? modifiers.bias.template data<T>() + b * a.bias_batch_step() + h * a.bias_head_step()
                 : nullptr),
        attention_mask(a.attention_mask.defined()
                           ? a.attention_mask.data<std::uint8_t>() + b * a.attention_mask_batch_step()
                           : nullptr),
        slope(modifiers.slopes.empty() ? T(0) : static_cast<T>(modifiers.slopes[static_cast<std::size_t>(h)])),
        modified(a.has_score_modifiers()),
        dropout_row0(a.dropout_row_block(b, h, 0)),
        ld(padded(a.keys)),
        visible(work),
        kt(work + ld) {
    for (std::int64_t j = 0; j < ld; ++j)
      visible[j] = j < a.keys && (keep.empty() || keep[static_cast<std::size_t>(b * a.keys + j)] != 0) ? T(1) : T(0);
    transpose_head(k, a.k.row, a.keys, a.qk_dim, ld, kt);
  }
  T* rest() const { return kt + a.qk_dim * ld; }

  // The scores of query i for the keys j < padded(n), n = key_span(i): scale q_i . k_j and the
  // modifiers, -inf where the key is hidden or j >= n. With cap_slope, d s_ij / d (scale q_i . k_j)
  // there (where the score is not hidden). Returns the largest.
  T scores(std::int64_t i, T* __restrict s, T* __restrict cap_slope = nullptr) const {
    const std::int64_t n = key_span(a, i), np = padded(n);
    const T scale = static_cast<T>(a.scale), hidden = static_cast<T>(kHidden);
    row_times(q + i * a.q.row, a.qk_dim, kt, ld, np, s);
    const T* __restrict shown = visible;
    for (std::int64_t j = 0; j < np; ++j) s[j] = (shown[j] != 0) & (j < n) ? scale * s[j] : hidden;
    if (modified) modify(i, s, np, cap_slope);
    T lanes[kLanes];
    std::fill(lanes, lanes + kLanes, hidden);
    for (std::int64_t jb = 0; jb < np; jb += kLanes)
#pragma omp simd
      for (std::int64_t l = 0; l < kLanes; ++l) lanes[l] = std::max(lanes[l], s[jb + l]);
    return combine_lanes(lanes, [](T x, T y) { return std::max(x, y); });
  }

  // The modifiers on query i's scores s[j], j < np (ops/attention.h, 4.): softcap, bias, ALiBi,
  // the window's left bound and the attention mask.
  void modify(std::int64_t i, T* __restrict s, std::int64_t np, T* __restrict cap_slope) const {
    const T hidden = static_cast<T>(kHidden), cap = static_cast<T>(a.softcap);
    const std::int64_t begin = a.window_left >= 0 ? std::min(np, std::max<std::int64_t>(0, i - a.window_left)) : 0;
    std::fill(s, s + begin, hidden);
    const T* bias_row = bias != nullptr ? bias + i * a.keys : nullptr;
    const std::uint8_t* mask_row = attention_mask != nullptr ? attention_mask + i * a.keys : nullptr;
    for (std::int64_t j = begin; j < np; ++j) {
      if (s[j] == hidden) continue;
      if (mask_row != nullptr && mask_row[j] == 0) {  // j < n <= keys: s[j] is not hidden
        s[j] = hidden;
        continue;
      }
      T x = s[j];
      if (cap > 0) {
        const T t = std::tanh(x / cap);
        x = cap * t;
        if (cap_slope != nullptr) cap_slope[j] = 1 - t * t;
      }
      if (bias_row != nullptr) x += bias_row[j];
      s[j] = x - slope * static_cast<T>(std::abs(i - j));
    }
  }

  // The dropout's factors of query i's keys j < n (dropout_factors).
  void dropout_factors(std::int64_t i, std::int64_t n, T* __restrict factor) const {
    const std::uint64_t row = dropout_row0 + static_cast<std::uint64_t>(i) * attention_dropout_row_blocks(a.dropout_keys);
    attention::dropout_factors(a, row, n, factor);
  }

  // p[j] = exp(s[j] - shift) for the j < np of query i's scores s (in place), exactly 0 where
  // hidden (fast_exp would give its floor for -inf), and 0 for j in [np, ld).
  void exponentials(std::int64_t i, T* __restrict p, T shift) const {
    const std::int64_t np = padded(key_span(a, i));
    const T hidden = static_cast<T>(kHidden);
    for (std::int64_t j = 0; j < np; ++j) {
      const T e = cpu::fast_exp(p[j] - shift);
      p[j] = p[j] == hidden ? T(0) : e;
    }
    std::fill(p + np, p + ld, T(0));
  }
};

// The forward of one (batch, head): out (its first row; rows heads * v_dim apart), weights
// ([Tq, Tk], or null) and lse ([Tq]).
template <typename T>
void forward_head(const HeadTask<T>& t, T* out, T* weights, T* lse) {
  const AttentionOperands& a = t.a;
  const T hidden = static_cast<T>(kHidden);
  T* p = t.rest();
  T* kept_p = p + t.ld;  // [ld]: the probabilities after dropout
  for (std::int64_t i = 0; i < a.queries; ++i) {
    const T max = t.scores(i, p);
    T* o_i = out + i * a.heads * a.v_dim;
    T* w_i = weights ? weights + i * a.keys : nullptr;
    std::fill(o_i, o_i + a.v_dim, T(0));
    if (w_i) std::fill(w_i, w_i + a.keys, T(0));
    if (max == hidden) {  // this query sees no key
      lse[i] = hidden;
      continue;
    }
    t.exponentials(i, p, max);
    const std::int64_t n = key_span(a, i);
    T lanes[kLanes] = {};
    for (std::int64_t jb = 0; jb < padded(n); jb += kLanes)
#pragma omp simd
      for (std::int64_t l = 0; l < kLanes; ++l) lanes[l] += p[jb + l];
    const T sum = combine_lanes(lanes, std::plus<T>());
    const T inverse = T(1) / sum;
    for (std::int64_t j = 0; j < n; ++j) p[j] *= inverse;
    if (w_i) std::copy(p, p + n, w_i);
    if (a.has_dropout()) {
      t.dropout_factors(i, n, kept_p);
      for (std::int64_t j = 0; j < n; ++j) kept_p[j] *= p[j];
      add_weighted_rows(n, kept_p, p, 1, t.v, a.v.row, a.v_dim, o_i);
    } else {
      add_weighted_rows(n, p, p, 1, t.v, a.v.row, a.v_dim, o_i);
    }
    lse[i] = max + std::log(sum);
  }
}

// The backward of one (batch, head), adding into dq, dk and dv (their first rows; rows dq_row,
// ... apart); out and dout: first rows, heads * v_dim apart; lse: [Tq]; dbias: the head's
// [Tq, Tk] (zeros beforehand), or null. By tiles of queries: p and ds = p (dout_i . v_j - D_i)
// (dbias) times the cap's slope and scale, of the tile's queries, dq_i = sum_j ds_ij k_j for
// each of them, then dk_j += sum_i ds_ij q_i and dv_j += sum_i p_ij dout_i over the tile. Under
// dropout, dout_i . v_j and the p of dv are those times the dropout's factors.
template <typename T>
void backward_head(const HeadTask<T>& t, const T* out, const T* dout, const T* lse, T* dq, std::int64_t dq_row,
                   T* dk, std::int64_t dk_row, T* dv, std::int64_t dv_row, T* dbias) {
  const AttentionOperands& a = t.a;
  const T scale = static_cast<T>(a.scale), hidden = static_cast<T>(kHidden);
  const std::int64_t out_row = a.heads * a.v_dim, ld = t.ld;
  T* vt = t.rest();
  T* p = vt + a.v_dim * ld;
  T* ds = p + kQueryTile * ld;
  T* cap_slope = a.softcap > 0 ? ds + kQueryTile * ld : nullptr;  // [ld]: one query's
  T* kept_p = a.has_dropout() ? ds + (kQueryTile + 1) * ld : p;    // p after dropout, as p
  transpose_head(t.v, a.v.row, a.keys, a.v_dim, ld, vt);
  for (std::int64_t i0 = 0; i0 < a.queries; i0 += kQueryTile) {
    const std::int64_t rows = std::min(kQueryTile, a.queries - i0);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = i0 + r;
      T* __restrict p_i = p + r * ld;
      T* __restrict ds_i = ds + r * ld;
      if (lse[i] == hidden) {  // saw no key: no gradient
        std::fill(p_i, p_i + ld, T(0));
        continue;
      }
      const std::int64_t n = key_span(a, i), np = padded(n);
      const T* do_i = dout + i * out_row;
      if (cap_slope != nullptr) std::fill(cap_slope, cap_slope + np, T(1));
      t.scores(i, p_i, cap_slope);
      t.exponentials(i, p_i, lse[i]);
      const T D_i = dot(do_i, out + i * out_row, a.v_dim);
      row_times(do_i, a.v_dim, vt, ld, np, ds_i);
      if (a.has_dropout()) {
        T* __restrict kept_p_i = kept_p + r * ld;
        t.dropout_factors(i, n, kept_p_i);
        for (std::int64_t j = 0; j < n; ++j) ds_i[j] *= kept_p_i[j];
        for (std::int64_t j = 0; j < n; ++j) kept_p_i[j] *= p_i[j];
      }
      if (t.modified) {
        for (std::int64_t j = 0; j < np; ++j) ds_i[j] = p_i[j] * (ds_i[j] - D_i);
        if (dbias != nullptr) std::copy(ds_i, ds_i + n, dbias + i * a.keys);
        if (cap_slope != nullptr)
          for (std::int64_t j = 0; j < np; ++j) ds_i[j] *= cap_slope[j];
        for (std::int64_t j = 0; j < np; ++j) ds_i[j] *= scale;
      } else {
        for (std::int64_t j = 0; j < np; ++j) ds_i[j] = p_i[j] * (ds_i[j] - D_i) * scale;
      }
      add_weighted_rows(n, ds_i, p_i, 1, t.k, a.k.row, a.qk_dim, dq + i * dq_row);
    }
    // Keys past the last query's span have p = 0 in every row of the tile.
    for (std::int64_t j = 0; j < key_span(a, i0 + rows - 1); ++j) {
      add_weighted_rows(rows, ds + j, p + j, ld, t.q + i0 * a.q.row, a.q.row, a.qk_dim, dk + j * dk_row);
      add_weighted_rows(rows, kept_p + j, p + j, ld, dout + i0 * out_row, out_row, a.v_dim, dv + j * dv_row);
    }
  }
}

// The forward on the cpu, on f32 or f64 operands; lse in the operands' dtype.
AttentionResult cpu_attention(const AttentionOperands& a, bool return_weights) {
  const DType dtype = a.q.tensor.dtype();
  AttentionResult r;
  r.out = Tensor::empty({a.batch, a.queries, a.heads * a.v_dim}, dtype);
  r.lse = Tensor::empty({a.batch, a.heads, a.queries}, dtype);
  if (return_weights) r.weights = Tensor::empty({a.batch, a.heads, a.queries, a.keys}, dtype);
  const std::vector<std::uint8_t> keep = visible_keys(a);
  const auto work_size = static_cast<std::size_t>(padded(a.keys) * (a.qk_dim + 3));
  detail::dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const Modifiers<T> modifiers(a);
    T *po = r.out.data<T>(), *pl = r.lse.data<T>();
    T* pw = return_weights ? r.weights.data<T>() : nullptr;
    thread_buffer<T>(work_size);  // this thread's, before the loop
    cpu::parallel_for(a.batch * a.heads, a.queries * a.keys * (a.qk_dim + a.v_dim), [&](std::int64_t bh) {
      const std::int64_t b = bh / a.heads, h = bh % a.heads;
      const HeadTask<T> task(a, modifiers, keep, b, h, thread_buffer<T>(work_size));
      forward_head(task, po + b * a.queries * a.heads * a.v_dim + h * a.v_dim,
                   pw ? pw + bh * a.queries * a.keys : nullptr, pl + bh * a.queries);
    });
  });
  return r;
}

// The backward on the cpu, adding dq, dk and dv into the heads given (zeros beforehand), and
// writing dbias [B, H, Tq, Tk] (zeros beforehand; the operands' dtype) when defined.
void cpu_attention_backward(const AttentionOperands& a, const AttentionResult& forward, const Tensor& dout, Heads dq,
                            Heads dk, Heads dv, const Tensor& dbias) {
  const std::vector<std::uint8_t> keep = visible_keys(a);
  const auto work_size = static_cast<std::size_t>(padded(a.keys) * (2 + a.qk_dim + a.v_dim + 3 * kQueryTile));
  detail::dispatch_float(a.q.tensor.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Modifiers<T> modifiers(a);
    const T *po = forward.out.data<T>(), *pl = forward.lse.data<T>(), *pdo = dout.data<T>();
    T* pdq = dq.tensor.data<T>() + dq.offset;
    T* pdk = dk.tensor.data<T>() + dk.offset;
    T* pdv = dv.tensor.data<T>() + dv.offset;
    T* pdbias = dbias.defined() ? Tensor(dbias).data<T>() : nullptr;
    const std::int64_t out_row = a.heads * a.v_dim, group = a.heads / a.kv_heads;
    thread_buffer<T>(work_size);  // this thread's, before the loop
    // Each (batch, key head) owns its columns of dk and dv and its query heads' columns of dq: no
    // two tasks write the same element.
    cpu::parallel_for(a.batch * a.kv_heads, 2 * group * a.queries * a.keys * (a.qk_dim + a.v_dim), [&](std::int64_t bg) {
      const std::int64_t b = bg / a.kv_heads, g = bg % a.kv_heads;
      for (std::int64_t h = g * group; h < (g + 1) * group; ++h) {
        const std::int64_t bh = b * a.heads + h, out_at = b * a.queries * out_row + h * a.v_dim;
        const HeadTask<T> task(a, modifiers, keep, b, h, thread_buffer<T>(work_size));
        backward_head(task, po + out_at, pdo + out_at, pl + bh * a.queries,
                      pdq + b * a.queries * dq.row + h * a.qk_dim, dq.row, pdk + b * a.keys * dk.row + g * a.qk_dim,
                      dk.row, pdv + b * a.keys * dv.row + g * a.v_dim, dv.row,
                      pdbias != nullptr ? pdbias + bh * a.queries * a.keys : nullptr);
      }
    });
  });
}

// The same operands with the bias in f32, as the fused kernels read it.
AttentionOperands with_f32_bias(AttentionOperands a) {
  if (a.bias.defined()) a.bias = a.bias.to(DType::f32);
  return a;
}

// The operands' tensors in f32 (the cpu computes 16-bit floats in f32).
AttentionOperands in_f32(AttentionOperands a) {
  for (Heads* x : {&a.q, &a.k, &a.v}) x->tensor = x->tensor.to(DType::f32);
  return with_f32_bias(a);
}

// The path of attention.h's rule for checked operands. The unfused path computes in f32, one key
// head per query head, without modifiers; the weights that the fused kernels do not keep come
// from its steps.
AttentionSupport attention_support(const AttentionOperands& a, const AttentionOptions& options) {
  const Device device = a.q.tensor.device();
  if (device.is_cpu()) return {AttentionPath::cpu, ""};
  const bool plain = a.kv_heads == a.heads && !a.has_score_modifiers();
  std::string unfused_lacks;
  if (a.q.tensor.dtype() != DType::f32)
    unfused_lacks = ::attnkit::detail::concat("it computes in f32 only, got ", a.q.tensor.describe());
  else if (!plain)
    unfused_lacks = "it takes neither key head groups nor score modifiers (bias, ALiBi, softcap, window, "
                    "attention mask)";
  else if (a.has_dropout())
    unfused_lacks = "it takes no dropout";
  else if (a.varlen())
    unfused_lacks = "it takes no variable-length batches";
  std::string fused_lacks;
  if (options.kernel == AttentionKernel::fused) {
    fused_lacks = ATTNKIT_DEVICE_OP(device, flash_attention_unfit(with_f32_bias(a)));
    if (fused_lacks.empty() && options.return_weights && !plain)
      fused_lacks = "the weights it returns come from the unfused steps, which take neither key head groups nor "
                    "score modifiers (the cpu returns them)";
  }
  return detail::choose_path(device, options.kernel, fused_lacks, unfused_lacks);
}

// Forward on any device: the cpu loops (16-bit in f32), or a device's fused kernels or unfused path.
AttentionResult attention_forward(const char* op, const AttentionOperands& a, const AttentionOptions& options) {
  const DType dtype = a.q.tensor.dtype();
  const AttentionPath path = detail::path_or_throw(op, attention_support(a, options));
  if (path == AttentionPath::cpu) {
    if (!is_16_bit(dtype)) return cpu_attention(a, options.return_weights);
    AttentionResult r = cpu_attention(in_f32(a), options.return_weights);
    r.out = r.out.to(dtype);
    if (r.weights.defined()) r.weights = r.weights.to(dtype);
    return r;
  }
  if (path == AttentionPath::unfused)
    return ATTNKIT_DEVICE_OP(a.q.tensor.device(),
                             scaled_dot_product_attention(with_mask_for_lengths(a), options.return_weights));
  AttentionResult r = ATTNKIT_DEVICE_OP(a.q.tensor.device(), flash_attention(with_f32_bias(a)));
  // The fused kernels keep no probabilities; for inspection they come from the unfused steps.
  if (options.return_weights)
    r.weights = ATTNKIT_DEVICE_OP(a.q.tensor.device(),
                                  attention_weights(with_mask_for_lengths(is_16_bit(dtype) ? in_f32(a) : a)))
                    .to(dtype);
  return r;
}

// The gradient of every score, dS [B, H, Tq, Tk], summed over the axes that the bias broadcasts
// (products with rows of ones: ops that run on every device), in the bias's dtype.
Tensor bias_gradient(const AttentionOperands& a, const Tensor& ds) {
  const Tensor& bias = a.bias;
  const std::int64_t B = a.batch, H = a.heads, n = a.queries * a.keys;
  const auto ones = [&](const Shape& shape) { return Tensor::full(shape, 1.0, ds.dtype(), ds.device()); };
  Tensor sum = ds;
  if (bias.size(0) == 1 && bias.size(1) == 1)
    sum = matmul(ones({1, B * H}), ds.reshape({B * H, n}));
  else if (bias.size(0) == 1)
    sum = matmul(ones({1, B}), ds.reshape({B, H * n}));
  else if (bias.size(1) == 1)
    sum = matmul(ones({B, 1, H}), ds.reshape({B, H, n}));
  return sum.reshape(bias.shape()).to(bias.dtype());
}

// Backward on any device into dq, dk and dv (tensors of q, k and v's dtype on their device);
// returns the bias's gradient when options.bias_grad.
Tensor attention_backward(const char* op, const AttentionOperands& a, const AttentionResult& forward,
                          const Tensor& dout, const AttentionOptions& options, const Heads& dq, const Heads& dk,
                          const Heads& dv) {
  const Device device = a.q.tensor.device();
  const DType dtype = a.q.tensor.dtype();
  AttentionOptions without_weights = options;  // the backward returns none
  without_weights.return_weights = false;
  const AttentionPath path = detail::path_or_throw(op, attention_support(a, without_weights));
  const DType compute = is_16_bit(dtype) || !device.is_cpu() ? DType::f32 : dtype;
  // dS of every score, in the dtype the backward computes in; zeros where no pass writes.
  const Tensor ds = options.bias_grad ? Tensor::zeros({a.batch, a.heads, a.queries, a.keys}, compute, device) : Tensor();
  if (path == AttentionPath::unfused) {
    ATTNKIT_DEVICE_OP(device, scaled_dot_product_attention_backward(with_mask_for_lengths(a), dout, dq, dk, dv));
  } else if (path == AttentionPath::fused) {
    ATTNKIT_DEVICE_OP(device, flash_attention_backward(with_f32_bias(a), forward, dout, dq, dk, dv, ds));
  } else if (!is_16_bit(dtype)) {
    cpu_attention_backward(a, forward, dout, dq, dk, dv, ds);
  } else {
    // In f32, into f32 copies of the gradients' tensors (one copy when they share a tensor).
    AttentionResult forward_f32 = forward;
    forward_f32.out = forward.out.to(DType::f32);
    Heads dq32{Tensor::zeros(dq.tensor.shape()), dq.offset, dq.row}, dk32{dq32.tensor, dk.offset, dk.row},
        dv32{dq32.tensor, dv.offset, dv.row};
    if (!dk.tensor.shares_storage_with(dq.tensor)) dk32.tensor = Tensor::zeros(dk.tensor.shape());
    if (!dv.tensor.shares_storage_with(dq.tensor)) dv32.tensor = Tensor::zeros(dv.tensor.shape());
    cpu_attention_backward(in_f32(a), forward_f32, dout.to(DType::f32), dq32, dk32, dv32, ds);
    Tensor(dq.tensor).copy_from(dq32.tensor.to(dtype));
    if (!dk.tensor.shares_storage_with(dq.tensor)) Tensor(dk.tensor).copy_from(dk32.tensor.to(dtype));
    if (!dv.tensor.shares_storage_with(dq.tensor)) Tensor(dv.tensor).copy_from(dv32.tensor.to(dtype));
  }
  return ds.defined() ? bias_gradient(a, ds) : Tensor();
}

// out and dout [B, Tq, H dv] and lse [B, H, Tq]; for a variable-length batch [total_q, H, dv] and
// [H, total_q].
void check_backward_inputs(const char* op, const AttentionOperands& a, const AttentionResult& forward,
                           const Tensor& dout) {
  const Tensor& q = a.q.tensor;
  const Shape out_shape = a.varlen() ? Shape{a.total_queries, a.heads, a.v_dim} : Shape{a.batch, a.queries, a.heads * a.v_dim};
  detail::check_like(op, "out", forward.out, out_shape, q);
  detail::check_like(op, "dout", dout, out_shape, q);
  detail::check_shape(op, "lse", forward.lse, a.varlen() ? Shape{a.heads, a.total_queries} : Shape{a.batch, a.heads, a.queries});
  const DType lse_dtype = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  ATTNKIT_CHECK(forward.lse.dtype() == lse_dtype, op, ": lse must be ", lse_dtype, ", got ", forward.lse.describe());
  detail::common_device(op, {{"q", &q}, {"out", &forward.out}, {"lse", &forward.lse}, {"dout", &dout}});
}

// ---- variable-length batches: the fused kernels, or on the cpu each sequence as a batch of one

// lse [1, H, n] of one sequence into (copy_in false: from) its columns [first, first + n) of the
// batch's lse [H, total]; both in the cpu's dtype.
void move_sequence_lse(const Tensor& sequence_lse, const Tensor& lse, std::int64_t first, bool copy_in) {
  const std::int64_t H = lse.size(0), total = lse.size(1), n = sequence_lse.size(2);
  detail::dispatch_float(lse.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* one = Tensor(sequence_lse).data<T>();
    T* all = Tensor(lse).data<T>() + first;
    for (std::int64_t h = 0; h < H; ++h)
      if (copy_in)
        std::copy(one + h * n, one + (h + 1) * n, all + h * total);
      else
        std::copy(all + h * total, all + h * total + n, one + h * n);
  });
}

AttentionResult varlen_forward(const char* op, const AttentionOperands& a, const AttentionOptions& options) {
  const DType dtype = a.q.tensor.dtype();
  const AttentionPath path = detail::path_or_throw(op, attention_support(a, options));
  if (path == AttentionPath::fused) return ATTNKIT_DEVICE_OP(a.q.tensor.device(), flash_attention(a));
  const AttentionOperands c = is_16_bit(dtype) ? in_f32(a) : a;
  AttentionResult r;
  r.out = Tensor::empty({a.total_queries, a.heads, a.v_dim}, c.q.tensor.dtype());
  r.lse = Tensor::empty({a.heads, a.total_queries}, c.q.tensor.dtype());
  for (std::int64_t b = 0; b < a.batch; ++b) {
    const AttentionOperands sequence = sequence_operands(c, b);
    if (sequence.queries == 0) continue;
    const AttentionResult one = cpu_attention(sequence, false);
    const std::int64_t first = a.query_starts[static_cast<std::size_t>(b)];
    r.out.slice(first, first + sequence.queries).copy_from(one.out.reshape({sequence.queries, a.heads, a.v_dim}));
    move_sequence_lse(one.lse, r.lse, first, true);
  }
  r.out = r.out.to(dtype);
  return r;
}

AttentionGrads varlen_backward(const char* op, const AttentionOperands& a, const AttentionResult& forward,
                               const Tensor& dout, const AttentionOptions& options) {
  const Tensor& q = a.q.tensor;
  check_backward_inputs(op, a, forward, dout);
  const AttentionPath path = detail::path_or_throw(op, attention_support(a, options));
  AttentionGrads g;
  if (path == AttentionPath::fused) {
    g.dq = Tensor::empty_like(q), g.dk = Tensor::empty_like(a.k.tensor), g.dv = Tensor::empty_like(a.v.tensor);
    ATTNKIT_DEVICE_OP(q.device(), flash_attention_backward(a, forward, dout, {g.dq, 0, a.q.row}, {g.dk, 0, a.k.row},
                                                           {g.dv, 0, a.v.row}, Tensor()));
    return g;
  }
  const AttentionOperands c = is_16_bit(q.dtype()) ? in_f32(a) : a;
  const DType compute = c.q.tensor.dtype();
  const Tensor out = forward.out.to(compute), dout_c = dout.to(compute);
  const Tensor dq = Tensor::zeros(q.shape(), compute), dk = Tensor::zeros(a.k.tensor.shape(), compute),
               dv = Tensor::zeros(a.v.tensor.shape(), compute);
  for (std::int64_t b = 0; b < a.batch; ++b) {
    const AttentionOperands sequence = sequence_operands(c, b);
    if (sequence.queries == 0) continue;  // its keys' gradients stay 0
    const std::int64_t first = a.query_starts[static_cast<std::size_t>(b)], n = sequence.queries;
    const Shape rows{1, n, a.heads * a.v_dim};
    AttentionResult one;
    one.out = out.slice(first, first + n).reshape(rows);
    one.lse = Tensor::empty({1, a.heads, n}, compute);
    move_sequence_lse(one.lse, forward.lse, first, false);
    cpu_attention_backward(sequence, one, dout_c.slice(first, first + n).reshape(rows), {dq, sequence.q.offset, a.q.row},
                           {dk, sequence.k.offset, a.k.row}, {dv, sequence.v.offset, a.v.row}, Tensor());
  }
  g.dq = dq.to(q.dtype()), g.dk = dk.to(q.dtype()), g.dv = dv.to(q.dtype());
  return g;
}

// ---- decoding against a key/value cache

// Steps [first, first + n) of batch element b of a [B, capacity, W] cache (or of new steps [B, Tn, W]), as [n, W].
Tensor cache_steps(const Tensor& cache, std::int64_t b, std::int64_t first, std::int64_t n) {
  const std::int64_t capacity = cache.size(1), width = cache.size(2);
  return cache.reshape({cache.size(0) * capacity, width}).slice(b * capacity + first, b * capacity + first + n);
}

// The options of batch element b's attention over its L steps with the queries last: the
// bottom-right causal bound and the window as an attention mask [1, Tq, L], ALiBi as a bias
// [1, H, Tq, L] from each query's position L - Tq + t.
AttentionOptions decode_step_options(const AttentionOptions& options, std::int64_t heads, std::int64_t Tq,
                                     std::int64_t L) {
  AttentionOptions o = options;
  o.causal = false, o.window_left = o.window_right = -1, o.alibi_slopes = Tensor();
  const std::int64_t shift = L - Tq;
  const bool masked = options.causal || options.window_left >= 0 || options.window_right >= 0;
  if (masked) {
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(Tq * L));
    for (std::int64_t t = 0; t < Tq; ++t)
      for (std::int64_t j = 0; j < L; ++j) {
        const std::int64_t at = t + shift;  // the query's position among the steps
        mask[static_cast<std::size_t>(t * L + j)] = !(options.causal && j > at) &&
                                                    !(options.window_left >= 0 && j < at - options.window_left) &&
                                                    !(options.window_right >= 0 && j > at + options.window_right);
      }
    o.attention_mask = Tensor::from_vector(mask, {1, Tq, L});
  }
  if (options.alibi_slopes.defined()) {
    const std::vector<float> slopes = options.alibi_slopes.to_vector<float>();
    std::vector<float> bias(static_cast<std::size_t>(heads * Tq * L));
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t t = 0; t < Tq; ++t)
        for (std::int64_t j = 0; j < L; ++j)
          bias[static_cast<std::size_t>((h * Tq + t) * L + j)] =
              -slopes[static_cast<std::size_t>(h)] * static_cast<float>(std::abs(t + shift - j));
    o.bias = Tensor::from_vector(bias, {1, heads, Tq, L});
  }
  return o;
}

// The checked operands of a decoding step, the caches as keys and values of `capacity` steps (no
// causal bound or window: those count from the queries' positions, in `steps`); and each batch
// element's cached steps on the host.
AttentionOperands decode_operands(const char* op, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                  const Tensor& cache_lengths, const Tensor& k_new, const Tensor& v_new,
                                  const AttentionOptions& options, std::int64_t num_splits, DecodeSteps& steps,
                                  std::vector<std::int32_t>& lengths) {
  ATTNKIT_CHECK(!options.bias.defined() && !options.attention_mask.defined() && !options.bias_grad &&
                    options.dropout == 0 && !options.return_weights,
                op, ": takes no bias, attention mask, dropout or returned weights");
  ATTNKIT_CHECK(num_splits >= 0, op, ": num_splits must not be negative, got ", num_splits);
  AttentionOptions unbounded = options;
  unbounded.causal = false, unbounded.window_left = unbounded.window_right = -1;
  AttentionOperands a = separate_operands(op, q, k_cache, v_cache, Tensor(), unbounded);
  const std::int64_t B = a.batch, capacity = a.keys;
  ATTNKIT_CHECK(cache_lengths.defined() && cache_lengths.dtype() == DType::i32 && cache_lengths.shape() == Shape({B}), op,
                ": cache_lengths must be i32 [B] = ", shape_str({B}), ", got ",
                cache_lengths.defined() ? cache_lengths.describe() : "undefined");
  ATTNKIT_CHECK(k_new.defined() == v_new.defined(), op, ": k_new and v_new come together");
  if (k_new.defined()) {
    detail::check_like(op, "k_new", k_new, {B, k_new.dim() == 3 ? k_new.size(1) : -1, k_cache.size(2)}, k_cache);
    steps.appended = k_new.size(1);
    detail::check_like(op, "v_new", v_new, {B, steps.appended, v_cache.size(2)}, v_cache);
    steps.k_new = k_new, steps.v_new = v_new;
  }
  lengths = cache_lengths.to_vector<std::int32_t>();
  for (std::int64_t b = 0; b < B; ++b) {
    ATTNKIT_CHECK(lengths[b] >= 0 && lengths[b] + steps.appended <= capacity, op, ": batch element ", b, " holds ",
                  lengths[b], " steps; with ", steps.appended, " new ones they must fit the capacity ", capacity);
    steps.longest = std::max(steps.longest, lengths[b] + steps.appended);
  }
  steps.cache_lengths = cache_lengths.to(q.device());
  steps.splits = num_splits;
  steps.causal = options.causal, steps.window_left = options.window_left, steps.window_right = options.window_right;
  return a;
}

// attention.h's rule for decoding: the cpu on the cpu; on a device the split-KV kernels, which
// have no unfused path beside them.
AttentionSupport decode_support(const AttentionOperands& a, const DecodeSteps& steps, const AttentionOptions& options) {
  const Device device = a.q.tensor.device();
  if (device.is_cpu()) return {AttentionPath::cpu, ""};
  const std::string fused_lacks =
      options.kernel == AttentionKernel::fused ? ATTNKIT_DEVICE_OP(device, decode_attention_unfit(a, steps)) : "";
  return detail::choose_path(device, options.kernel, fused_lacks, "decoding has none");
}

}  // namespace

AttentionResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& key_mask, const AttentionOptions& options) {
  const char* op = "scaled_dot_product_attention";
  return attention_forward(op, separate_operands(op, q, k, v, key_mask, options), options);
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
  g.dbias = attention_backward(op, a, forward, dout, options, {g.dq, 0, a.q.row}, {g.dk, 0, a.k.row}, {g.dv, 0, a.v.row});
  return g;
}

AttentionResult packed_self_attention(const Tensor& qkv, const Tensor& key_mask, const AttentionOptions& options) {
  const char* op = "packed_self_attention";
  return attention_forward(op, packed_operands(op, qkv, key_mask, options), options);
}

Tensor packed_self_attention_backward(const Tensor& qkv, const Tensor& key_mask, const AttentionResult& forward,
                                      const Tensor& dout, const AttentionOptions& options) {
  const char* op = "packed_self_attention_backward";
  const AttentionOperands a = packed_operands(op, qkv, key_mask, options);
  check_backward_inputs(op, a, forward, dout);
  ATTNKIT_CHECK(!options.bias_grad, op, ": returns dqkv only; the bias's gradient comes from "
                "scaled_dot_product_attention_backward");
  Tensor dqkv = qkv.is_cpu() ? Tensor::zeros_like(qkv) : Tensor::empty_like(qkv);
  attention_backward(op, a, forward, dout, options, {dqkv, a.q.offset, a.q.row}, {dqkv, a.k.offset, a.k.row},
                     {dqkv, a.v.offset, a.v.row});
  return dqkv;
}

AttentionSupport scaled_dot_product_attention_supports(const Tensor& q, const Tensor& k, const Tensor& v,
                                                      const Tensor& key_mask, const AttentionOptions& options) {
  return attention_support(separate_operands("scaled_dot_product_attention", q, k, v, key_mask, options), options);
}

AttentionSupport packed_self_attention_supports(const Tensor& qkv, const Tensor& key_mask,
                                                const AttentionOptions& options) {
  return attention_support(packed_operands("packed_self_attention", qkv, key_mask, options), options);
}

AttentionResult varlen_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q,
                                 const Tensor& cu_seqlens_k, const AttentionOptions& options) {
  const char* op = "varlen_attention";
  return varlen_forward(op, varlen_operands(op, q, k, v, cu_seqlens_q, cu_seqlens_k, options), options);
}

AttentionGrads varlen_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& cu_seqlens_q,
                                         const Tensor& cu_seqlens_k, const AttentionResult& forward,
                                         const Tensor& dout, const AttentionOptions& options) {
  const char* op = "varlen_attention_backward";
  return varlen_backward(op, varlen_operands(op, q, k, v, cu_seqlens_q, cu_seqlens_k, options), forward, dout,
                         options);
}

AttentionSupport varlen_attention_supports(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& cu_seqlens_q, const Tensor& cu_seqlens_k,
                                           const AttentionOptions& options) {
  return attention_support(varlen_operands("varlen_attention", q, k, v, cu_seqlens_q, cu_seqlens_k, options),
                           options);
}

AttentionResult decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& cache_lengths,
                                 const Tensor& k_new, const Tensor& v_new, const AttentionOptions& options,
                                 std::int64_t num_splits) {
  const char* op = "decode_attention";
  DecodeSteps steps;
  std::vector<std::int32_t> lengths;
  const AttentionOperands a =
      decode_operands(op, q, k_cache, v_cache, cache_lengths, k_new, v_new, options, num_splits, steps, lengths);
  if (detail::path_or_throw(op, decode_support(a, steps, options)) == AttentionPath::fused)
    return ATTNKIT_DEVICE_OP(q.device(), decode_attention(a, steps));
  // The cpu: the new steps copied in, then each batch element's steps as the keys of an attention
  // with the queries last.
  const std::int64_t B = a.batch, Tn = steps.appended;
  for (std::int64_t b = 0; b < B && Tn > 0; ++b) {
    cache_steps(k_cache, b, lengths[b], Tn).copy_from(cache_steps(k_new, b, 0, Tn));
    cache_steps(v_cache, b, lengths[b], Tn).copy_from(cache_steps(v_new, b, 0, Tn));
  }
  AttentionResult r;
  r.out = Tensor::empty({B, a.queries, a.heads * a.v_dim}, q.dtype());
  r.lse = Tensor::empty({B, a.heads, a.queries}, q.dtype() == DType::f64 ? DType::f64 : DType::f32);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t L = lengths[b] + Tn;
    const AttentionResult one = scaled_dot_product_attention(
        q.slice(b, b + 1), cache_steps(k_cache, b, 0, L).reshape({1, L, k_cache.size(2)}),
        cache_steps(v_cache, b, 0, L).reshape({1, L, v_cache.size(2)}), Tensor(),
        decode_step_options(options, a.heads, a.queries, L));
    r.out.slice(b, b + 1).copy_from(one.out);
    r.lse.slice(b, b + 1).copy_from(one.lse);
  }
  return r;
}

AttentionSupport decode_attention_supports(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                           const Tensor& cache_lengths, const Tensor& k_new, const Tensor& v_new,
                                           const AttentionOptions& options, std::int64_t num_splits) {
  DecodeSteps steps;
  std::vector<std::int32_t> lengths;
  return decode_support(decode_operands("decode_attention", q, k_cache, v_cache, cache_lengths, k_new, v_new, options,
                                        num_splits, steps, lengths),
                        steps, options);
}

std::uint64_t attention_dropout_numbers(std::int64_t batch, std::int64_t heads, std::int64_t queries,
                                        std::int64_t keys) {
  ATTNKIT_CHECK(batch >= 0 && heads >= 0 && queries >= 0 && keys >= 0, "attention_dropout_numbers: sizes ", batch, ", ",
                heads, ", ", queries, ", ", keys, " must not be negative");
  return static_cast<std::uint64_t>(batch * heads * queries) * attention_dropout_row_blocks(keys) * 4;
}

Tensor attention_dropout_mask(std::int64_t batch, std::int64_t heads, std::int64_t queries, std::int64_t keys,
                              const AttentionOptions& options) {
  const char* op = "attention_dropout_mask";
  ATTNKIT_CHECK(batch >= 0 && heads >= 1 && queries >= 0 && keys >= 0, op, ": sizes ", batch, ", ", heads, ", ",
                queries, ", ", keys, " are not valid");
  // The sizes of such an attention, and its dropout as the op reads it.
  AttentionOperands a;
  a.batch = batch, a.heads = heads, a.queries = queries, a.keys = keys;
  set_dropout(op, a, options);
  Tensor mask = Tensor::full({batch, heads, queries, keys}, 1.0, DType::u8);
  if (!a.has_dropout()) return mask;
  std::uint8_t* m = mask.data<std::uint8_t>();
  cpu::parallel_for(batch * heads, queries * keys * 4, [&](std::int64_t bh) {
    std::vector<float> factor(static_cast<std::size_t>(keys));
    for (std::int64_t i = 0; i < queries; ++i) {
      attention::dropout_factors(a, a.dropout_row_block(bh / heads, bh % heads, i), keys, factor.data());
      std::uint8_t* row = m + (bh * queries + i) * keys;
      for (std::int64_t j = 0; j < keys; ++j) row[j] = factor[static_cast<std::size_t>(j)] != 0;
    }
  });
  return mask;
}

const char* attention_path_name(AttentionPath path) {
  switch (path) {
    case AttentionPath::cpu: return "cpu";
    case AttentionPath::fused: return "fused";
    case AttentionPath::unfused: return "unfused";
    default: return "none";
  }
}

}  // namespace attnkit::ops
