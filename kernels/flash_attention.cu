// Fused scaled dot-product attention in float32, on the CUDA cores (see flash_attention.h), and
// the launchers that pick the engine by dtype.
//
// A block of 4 warps owns 32 rows of one (batch, head): 32 queries in the forward and the dq
// pass, 32 keys in the dk/dv pass; each warp owns 8 of them. The other side is visited in tiles
// of 32, one per lane: lane j computes the scores of key (or query) j of the tile against the
// warp's 8 rows, warp shuffles give the rows' maxima and sums, and the probabilities go through
// shared memory to the products, where the lanes share out the head's columns.
//
//   forward  (per tile of keys)     s = scale q k^T; m' = max(m, rowmax s); p = exp(s - m');
//                                   l = l e^(m - m') + rowsum p; o = o e^(m - m') + p v
//            at the end             out = o / l, lse = m + log l
//   dq pass  (per tile of keys)     p = exp(s - lse); ds = p (dout v^T - delta); dq += scale ds k
//   dk/dv    (per tile of queries)  dv += p^T dout; dk += scale ds^T q
//
// F32Traits (flash_attention_traits.h) hold the shapes and the shared-memory layouts; tiles need
// up to about 136 KB of shared memory at head dim 256 (the launch asks for it).
#include <string>

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/flash_attention.cuh"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace flash {
namespace {

// Rows [first, first + rows) of one head of a [.., steps, ..] operand into shared memory,
// `stride` floats apart; rows past `steps` are zeros.
AK_DEVICE void load_rows(float* tile, int stride, const float* head, std::int64_t row_step, std::int64_t first,
                         int rows, std::int64_t steps, int dim) {
  for (int e = threadIdx.x; e < rows * dim; e += blockDim.x) {
    const int r = e / dim, c = e % dim;
    tile[r * stride + c] = first + r < steps ? head[(first + r) * row_step + c] : 0.0f;
  }
}

// Bit r set where dropout keeps the probability of query i + r di for key j + r dj (r < kRows;
// every bit set without dropout): a warp's rows of queries against a lane's key (di 1), or of
// keys against a lane's query (dj 1). A rolled loop: one block's rounds at a time, beside the
// accumulators.
template <int kRows>
AK_DEVICE std::uint32_t dropout_kept(const DropoutMask& dropout, std::int64_t i, std::int64_t j, int di, int dj) {
  if (!dropout.on()) return ~0u;
  std::uint32_t kept = 0;
  AK_NO_UNROLL
  for (int r = 0; r < kRows; ++r)
    kept |= (dropout.keeps(static_cast<int>(i) + r * di, static_cast<int>(j) + r * dj) ? 1u : 0u) << r;
  return kept;
}

// kModifiers: the instance with the score modifiers of flash_attention.h.
template <class Traits, bool kModifiers>  // F32Traits<columns of a head each lane owns: ceil(dim / 32)>
__global__ void forward_kernel(FlashAttentionParams p) {
  constexpr int kRows = Traits::kRows, kTile = Traits::kTile, kRowsPerWarp = Traits::kRowsPerWarp, kCols = Traits::kCols;
  const std::int64_t bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.x) * kRows;
  const int dk = static_cast<int>(p.qk_dim), dv = static_cast<int>(p.v_dim);
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize, lane = static_cast<int>(ak::lane_id());
  const typename Traits::Forward layout(dk, dv);
  float* qs = ak::dynamic_shared<float>() + layout.q;
  float* ks = ak::dynamic_shared<float>() + layout.k;
  float* vs = ak::dynamic_shared<float>() + layout.v;
  float* ps = ak::dynamic_shared<float>() + layout.p;
  const Sequence seq = sequence_of<kModifiers>(p, b);
  if (i0 >= seq.queries) return;  // past a short sequence of a variable-length batch
  const HeadView<float> head = head_view<float>(p, nullptr, seq, h);
  const float *q = head.q, *k = head.k, *v = head.v;
  const KeyVisibility visible = key_visibility(p, seq, b);
  const ScoreModifiers modifiers = score_modifiers(p, b, h);
  const DropoutMask dropout = dropout_mask(p, b, h);
  load_rows(qs, dk, q, p.q_row, i0, kRows, seq.queries, dk);

  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][kCols];
  AK_UNROLL
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    AK_UNROLL
    for (int c = 0; c < kCols; ++c) o[r][c] = 0.0f;
  }
  const std::int64_t key_end = visible.key_end(i0, kRows);
  for (std::int64_t j0 = visible.key_begin(i0) / kTile * kTile; j0 < key_end; j0 += kTile) {
    __syncthreads();  // the previous tile's k and v are no longer read (first time: q is written)
    load_rows(ks, Traits::padded(dk), k, p.k_row, j0, kTile, seq.keys, dk);
    load_rows(vs, dv, v, p.v_row, j0, kTile, seq.keys, dv);
    __syncthreads();
    const std::int64_t j = j0 + lane;
    const std::uint32_t kept = kModifiers ? dropout_kept<kRowsPerWarp>(dropout, i0 + warp * kRowsPerWarp, j, 1, 0) : 0;
    AK_UNROLL
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const std::int64_t i = i0 + r;
      float s = -INFINITY;
      if (i < seq.queries && visible(i, j) &&
          !(kModifiers && modifiers.hides(static_cast<int>(i), static_cast<int>(j)))) {
        float dot = 0.0f;
        for (int c = 0; c < dk; ++c) dot += qs[r * dk + c] * ks[lane * Traits::padded(dk) + c];
        s = kModifiers ? modifiers.score(dot, static_cast<int>(i), static_cast<int>(j)) : dot * p.scale;
      }
      const float m_new = ak::MaxOf()(m[rr], ak::warp_reduce(s, ak::MaxOf()));
      const float e = s == -INFINITY ? 0.0f : expf(s - m_new);
      const float rescale = m_new == -INFINITY ? 1.0f : expf(m[rr] - m_new);
      l[rr] = l[rr] * rescale + ak::warp_reduce(e, ak::SumOf());
      m[rr] = m_new;
      AK_UNROLL
      for (int c = 0; c < kCols; ++c) o[rr][c] *= rescale;
      // Dropped probabilities count in the sum l, not in the product with V.
      ps[r * kTile + lane] = kModifiers && (kept >> rr & 1u) == 0 ? 0.0f : e;
    }
    __syncwarp();  // the warp's probabilities are written before its lanes read them
    AK_UNROLL
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const float* p_row = ps + (warp * kRowsPerWarp + rr) * kTile;
      for (int jj = 0; jj < kTile; ++jj) {
        const float weight = p_row[jj];
        AK_UNROLL
        for (int c = 0; c < kCols; ++c)
          if (lane + c * ak::kWarpSize < dv) o[rr][c] += weight * vs[jj * dv + lane + c * ak::kWarpSize];
      }
    }
  }
  AK_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const std::int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= seq.queries) continue;
    const float inverse = l[rr] > 0.0f ? (kModifiers ? p.dropout_scale : 1.0f) / l[rr] : 0.0f;
    float* out = static_cast<float*>(p.out) + (seq.first_query + i) * p.out_row + h * dv;
    AK_UNROLL
    for (int c = 0; c < kCols; ++c)
      if (lane + c * ak::kWarpSize < dv) out[lane + c * ak::kWarpSize] = o[rr][c] * inverse;
    if (lane == 0) p.lse[lse_offset<kModifiers>(p, seq, b, h) + i] = l[rr] > 0.0f ? m[rr] + logf(l[rr]) : -INFINITY;
  }
}

// The probability of a visible score s of a query with log-sum-exp lse (0 when hidden).
AK_DEVICE float probability(float s, float lse) { return s == -INFINITY || lse == -INFINITY ? 0.0f : expf(s - lse); }

template <class Traits, bool kModifiers>  // F32Traits<ceil(qk_dim / 32)>
__global__ void dq_kernel(FlashAttentionGradParams g) {
  constexpr int kRows = Traits::kRows, kTile = Traits::kTile, kRowsPerWarp = Traits::kRowsPerWarp, kCols = Traits::kCols;
  const FlashAttentionParams& p = g.forward;
  const std::int64_t bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.x) * kRows;
  const int dk = static_cast<int>(p.qk_dim), dv = static_cast<int>(p.v_dim);
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize, lane = static_cast<int>(ak::lane_id());
  const typename Traits::Dq layout(dk, dv);
  float* qs = ak::dynamic_shared<float>() + layout.q;
  float* dos = ak::dynamic_shared<float>() + layout.dout;
  float* ks = ak::dynamic_shared<float>() + layout.k;
  float* vs = ak::dynamic_shared<float>() + layout.v;
  float* dss = ak::dynamic_shared<float>() + layout.ds;
  const Sequence seq = sequence_of<kModifiers>(p, b);
  if (i0 >= seq.queries) return;  // past a short sequence of a variable-length batch
  const HeadView<float> head = head_view<float>(p, g.dout, seq, h);
  const float *q = head.q, *k = head.k, *v = head.v, *out = head.out, *dout = head.dout;
  const KeyVisibility visible = key_visibility(p, seq, b);
  const ScoreModifiers modifiers = score_modifiers(p, b, h);
  const DropoutMask dropout = dropout_mask(p, b, h);
  const std::int64_t lse_at = lse_offset<kModifiers>(p, seq, b, h);
  float* dbias = g.dbias != nullptr ? g.dbias + bh * p.queries * p.keys : nullptr;
  load_rows(qs, dk, q, p.q_row, i0, kRows, seq.queries, dk);
  load_rows(dos, dv, dout, p.out_row, i0, kRows, seq.queries, dv);
  __syncthreads();

  // delta_i = dout_i . out_i, kept by the warp and written for the dk/dv pass; and lse_i.
  float delta[kRowsPerWarp], lse[kRowsPerWarp], dq[kRowsPerWarp][kCols];
  AK_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp * kRowsPerWarp + rr;
    const std::int64_t i = i0 + r;
    float dot = 0.0f;
    if (i < seq.queries)
      for (int c = lane; c < dv; c += ak::kWarpSize) dot += dos[r * dv + c] * out[i * p.out_row + c];
    delta[rr] = ak::warp_reduce(dot, ak::SumOf());
    lse[rr] = i < seq.queries ? p.lse[lse_at + i] : -INFINITY;
    if (i < seq.queries && lane == 0) g.delta[lse_at + i] = delta[rr];
    AK_UNROLL
    for (int c = 0; c < kCols; ++c) dq[rr][c] = 0.0f;
  }
  const std::int64_t key_end = visible.key_end(i0, kRows);
  for (std::int64_t j0 = visible.key_begin(i0) / kTile * kTile; j0 < key_end; j0 += kTile) {
    __syncthreads();
    load_rows(ks, Traits::padded(dk), k, p.k_row, j0, kTile, seq.keys, dk);
    load_rows(vs, Traits::padded(dv), v, p.v_row, j0, kTile, seq.keys, dv);
    __syncthreads();
    const std::int64_t j = j0 + lane;
    const std::uint32_t kept = kModifiers ? dropout_kept<kRowsPerWarp>(dropout, i0 + warp * kRowsPerWarp, j, 1, 0) : 0;
    AK_UNROLL
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const std::int64_t i = i0 + r;
      float ds = 0.0f;
      if (i < seq.queries && visible(i, j) &&
          !(kModifiers && modifiers.hides(static_cast<int>(i), static_cast<int>(j)))) {
        float s = 0.0f, dp = 0.0f;
        for (int c = 0; c < dk; ++c) s += qs[r * dk + c] * ks[lane * Traits::padded(dk) + c];
        for (int c = 0; c < dv; ++c) dp += dos[r * dv + c] * vs[lane * Traits::padded(dv) + c];
        const float prob = probability(kModifiers ? modifiers.score(s, static_cast<int>(i), static_cast<int>(j)) : s * p.scale, lse[rr]);
        if (kModifiers) dp = kept >> rr & 1u ? dp * p.dropout_scale : 0.0f;  // dP of the probabilities after dropout
        ds = prob == 0.0f ? 0.0f : prob * (dp - delta[rr]);
        if (kModifiers && dbias != nullptr) dbias[i * p.keys + j] = ds;
        if (kModifiers) ds *= modifiers.slope_of_cap(s);
      }
      dss[r * kTile + lane] = ds;
    }
    __syncwarp();
    AK_UNROLL
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const float* ds_row = dss + (warp * kRowsPerWarp + rr) * kTile;
      for (int jj = 0; jj < kTile; ++jj) {
        const float ds = ds_row[jj];
        AK_UNROLL
        for (int c = 0; c < kCols; ++c)
          if (lane + c * ak::kWarpSize < dk) dq[rr][c] += ds * ks[jj * Traits::padded(dk) + lane + c * ak::kWarpSize];
      }
    }
  }
  AK_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const std::int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= seq.queries) continue;
    float* dq_row = static_cast<float*>(g.dq) + (seq.first_query + i) * p.q_row + h * dk;
    AK_UNROLL
    for (int c = 0; c < kCols; ++c)
      if (lane + c * ak::kWarpSize < dk) dq_row[lane + c * ak::kWarpSize] = dq[rr][c] * p.scale;
  }
}

// A block owns kRows keys of one key head and sums over the query heads of its group.
template <class Traits, bool kModifiers>  // F32Traits<ceil(max(qk_dim, v_dim) / 32)>
__global__ void dkdv_kernel(FlashAttentionGradParams g) {
  constexpr int kRows = Traits::kRows, kTile = Traits::kTile, kRowsPerWarp = Traits::kRowsPerWarp, kCols = Traits::kCols;
  const FlashAttentionParams& p = g.forward;
  const std::int64_t kv_heads = kv_heads_of(p), group = p.heads / kv_heads;
  const std::int64_t b = blockIdx.y / kv_heads, kv_h = blockIdx.y % kv_heads;
  const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * kRows;
  const int dk = static_cast<int>(p.qk_dim), dv = static_cast<int>(p.v_dim);
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize, lane = static_cast<int>(ak::lane_id());
  const typename Traits::Dkdv layout(dk, dv);
  float* ks = ak::dynamic_shared<float>() + layout.k;
  float* vs = ak::dynamic_shared<float>() + layout.v;
  float* qs = ak::dynamic_shared<float>() + layout.q;
  float* dos = ak::dynamic_shared<float>() + layout.dout;
  float* pt = ak::dynamic_shared<float>() + layout.pt;    // p^T
  float* dst = ak::dynamic_shared<float>() + layout.dst;  // ds^T
  float* lse = ak::dynamic_shared<float>() + layout.lse;
  float* delta = ak::dynamic_shared<float>() + layout.delta;
  const Sequence seq = sequence_of<kModifiers>(p, b);
  if (j0 >= seq.keys) return;  // past a short sequence of a variable-length batch
  const KeyVisibility visible = key_visibility(p, seq, b);
  {
    const HeadView<float> head = head_view<float>(p, g.dout, seq, kv_h * group);
    load_rows(ks, dk, head.k, p.k_row, j0, kRows, seq.keys, dk);
    load_rows(vs, dv, head.v, p.v_row, j0, kRows, seq.keys, dv);
  }

  float dk_acc[kRowsPerWarp][kCols], dv_acc[kRowsPerWarp][kCols];
  AK_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr)
    AK_UNROLL
    for (int c = 0; c < kCols; ++c) dk_acc[rr][c] = dv_acc[rr][c] = 0.0f;
  // Keys at or past the visibility limit are seen by no query: their gradients stay 0.
  const std::int64_t query_begin = j0 < visible.limit ? visible.query_begin(j0) : seq.queries;
  const std::int64_t query_end = visible.query_end(j0, kRows, seq.queries);
  for (std::int64_t h = kv_h * group; h < (kv_h + 1) * group; ++h) {
    const std::int64_t lse_at = lse_offset<kModifiers>(p, seq, b, h);
    const HeadView<float> head = head_view<float>(p, g.dout, seq, h);
    const ScoreModifiers modifiers = score_modifiers(p, b, h);
    const DropoutMask dropout = dropout_mask(p, b, h);
    for (std::int64_t t0 = query_begin; t0 < query_end; t0 += kTile) {
      __syncthreads();
      load_rows(qs, Traits::padded(dk), head.q, p.q_row, t0, kTile, seq.queries, dk);
      load_rows(dos, Traits::padded(dv), head.dout, p.out_row, t0, kTile, seq.queries, dv);
      if (threadIdx.x < kTile) {
        const std::int64_t i = t0 + threadIdx.x;
        lse[threadIdx.x] = i < seq.queries ? p.lse[lse_at + i] : -INFINITY;
        delta[threadIdx.x] = i < seq.queries ? g.delta[lse_at + i] : 0.0f;
      }
      __syncthreads();
      const std::int64_t i = t0 + lane;
      const std::uint32_t kept = kModifiers ? dropout_kept<kRowsPerWarp>(dropout, i, j0 + warp * kRowsPerWarp, 0, 1) : 0;
      AK_UNROLL
      for (int rr = 0; rr < kRowsPerWarp; ++rr) {
        const int r = warp * kRowsPerWarp + rr;
        const std::int64_t j = j0 + r;
        float prob = 0.0f, ds = 0.0f;
        if (i < seq.queries && visible(i, j) &&
            !(kModifiers && modifiers.hides(static_cast<int>(i), static_cast<int>(j)))) {
          float s = 0.0f, dp = 0.0f;
          for (int c = 0; c < dk; ++c) s += qs[lane * Traits::padded(dk) + c] * ks[r * dk + c];
          for (int c = 0; c < dv; ++c) dp += dos[lane * Traits::padded(dv) + c] * vs[r * dv + c];
          prob = probability(kModifiers ? modifiers.score(s, static_cast<int>(i), static_cast<int>(j)) : s * p.scale, lse[lane]);
          const float factor = !kModifiers ? 1.0f : kept >> rr & 1u ? p.dropout_scale : 0.0f;
          ds = prob == 0.0f ? 0.0f : prob * (dp * factor - delta[lane]);
          if (kModifiers) ds *= modifiers.slope_of_cap(s);
          prob *= factor;  // P after dropout, for dV
        }
        pt[r * kTile + lane] = prob;
        dst[r * kTile + lane] = ds;
      }
      __syncwarp();
      AK_UNROLL
      for (int rr = 0; rr < kRowsPerWarp; ++rr) {
        const int r = warp * kRowsPerWarp + rr;
        for (int ii = 0; ii < kTile; ++ii) {
          const float prob = pt[r * kTile + ii], ds = dst[r * kTile + ii];
          AK_UNROLL
          for (int c = 0; c < kCols; ++c) {
            const int col = lane + c * ak::kWarpSize;
            if (col < dv) dv_acc[rr][c] += prob * dos[ii * Traits::padded(dv) + col];
            if (col < dk) dk_acc[rr][c] += ds * qs[ii * Traits::padded(dk) + col];
          }
        }
      }
    }
  }
  AK_UNROLL
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const std::int64_t j = j0 + warp * kRowsPerWarp + rr;
    if (j >= seq.keys) continue;
    float* dk_row = static_cast<float*>(g.dk) + (seq.first_key + j) * p.k_row + kv_h * dk;
    float* dv_row = static_cast<float*>(g.dv) + (seq.first_key + j) * p.v_row + kv_h * dv;
    AK_UNROLL
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + c * ak::kWarpSize;
      if (col < dk) dk_row[col] = dk_acc[rr][c] * p.scale;
      if (col < dv) dv_row[col] = dv_acc[rr][c];
    }
  }
}

}  // namespace

void forward_f32(const FlashAttentionParams& p, void* stream) {
  const int dk = static_cast<int>(p.qk_dim), dv = static_cast<int>(p.v_dim);
  with_f32_traits(dv, [&](auto traits) {
    using Traits = decltype(traits);
    with_modifiers(needs_modifier_instances(p), [&](auto modifiers) {
      AK_LAUNCH((forward_kernel<Traits, decltype(modifiers)::value>), grid_for<Traits>(p.queries, p), kThreads,
                sizeof(float) * typename Traits::Forward(dk, dv).floats, ak::as_stream(stream), p);
    });
  });
}

void backward_f32(const FlashAttentionGradParams& g, void* stream) {
  const FlashAttentionParams& p = g.forward;
  const int dk = static_cast<int>(p.qk_dim), dv = static_cast<int>(p.v_dim);
  const bool modifiers_on = needs_modifier_instances(p) || g.dbias != nullptr;
  if (p.queries > 0)  // writes delta, which the dk/dv pass reads
    with_f32_traits(dk, [&](auto traits) {
      using Traits = decltype(traits);
      with_modifiers(modifiers_on, [&](auto modifiers) {
        AK_LAUNCH((dq_kernel<Traits, decltype(modifiers)::value>), grid_for<Traits>(p.queries, p), kThreads,
                  sizeof(float) * typename Traits::Dq(dk, dv).floats, ak::as_stream(stream), g);
      });
    });
  if (p.keys > 0)
    with_f32_traits(dk > dv ? dk : dv, [&](auto traits) {
      using Traits = decltype(traits);
      with_modifiers(modifiers_on, [&](auto modifiers) {
        AK_LAUNCH((dkdv_kernel<Traits, decltype(modifiers)::value>), grid_for<Traits>(p.keys, p, true), kThreads,
                  sizeof(float) * typename Traits::Dkdv(dk, dv).floats, ak::as_stream(stream), g);
      });
    });
}

}  // namespace flash

namespace {
bool aligned(const void* pointer, std::uintptr_t bytes) { return reinterpret_cast<std::uintptr_t>(pointer) % bytes == 0; }
}  // namespace

std::string flash_attention_unsupported(const FlashAttentionParams& p) {
  using detail::concat;
  if (!(p.batch >= 0 && p.heads >= 1 && p.queries >= 0 && p.keys >= 0))
    return concat("sizes batch ", p.batch, ", heads ", p.heads, ", queries ", p.queries, ", keys ", p.keys,
                  " are not valid");
  if (p.batch * p.heads > 65535)
    return concat("batch * heads = ", p.batch * p.heads, " is more than the 65535 (batch, head) pairs a launch covers");
  // The kernels count rows in 32 bits; a block's last tile may reach a few hundred rows past the end.
  constexpr std::int64_t kMaxSteps = (std::int64_t{1} << 31) - 1024;
  if (p.queries > kMaxSteps || p.keys > kMaxSteps)
    return concat(p.queries, " queries and ", p.keys, " keys: the kernels take at most ", kMaxSteps, " of each");
  if (p.kv_heads < 0 || (p.kv_heads != 0 && p.heads % p.kv_heads != 0))
    return concat(p.kv_heads, " key heads do not divide ", p.heads, " query heads");
  if (p.bias_batch_step < 0 || p.bias_head_step < 0) return "negative bias steps";
  if ((p.cu_seqlens_q == nullptr) != (p.cu_seqlens_k == nullptr))
    return "a variable-length batch needs the offsets of both queries and keys";
  if (p.cu_seqlens_q != nullptr && (p.key_mask != nullptr || p.key_lengths != nullptr || p.bias != nullptr ||
                                    p.attention_mask != nullptr))
    return "a variable-length batch takes no key mask, key lengths, bias or attention mask";
  if (p.cu_seqlens_q != nullptr && !(p.total_queries >= 0 && p.total_queries <= kMaxSteps))
    return concat("a variable-length batch of ", p.total_queries, " queries: the kernels take 0 to ", kMaxSteps);
  if (!(p.softcap >= 0.0f && p.softcap <= 3.4e38f))
    return concat("softcap must be 0 (none) or positive and finite, got ", p.softcap);
  if (!(p.dropout_threshold < 65536 && p.dropout_scale >= 1.0f && p.dropout_scale <= 65536.0f))
    return concat("dropout's threshold ", p.dropout_threshold, " and scale ", p.dropout_scale,
                  " are not a rate's (below 65536, and 1 to 65536)");
  if (p.dtype == AttentionDType::f32) {
    if (p.qk_dim < 1 || p.qk_dim > flash::kF32MaxDim || p.v_dim < 1 || p.v_dim > flash::kF32MaxDim)
      return concat("float32 takes head dims 1 to ", flash::kF32MaxDim, ", got ", p.qk_dim, " for q and k and ",
                    p.v_dim, " for v");
    return "";
  }
  if (!(p.qk_dim == p.v_dim && (p.qk_dim == 32 || p.qk_dim == 64 || p.qk_dim == 128)))
    return concat("f16 and bf16 take head dims 32, 64 or 128, the same for q, k and v; got ", p.qk_dim,
                  " for q and k and ", p.v_dim, " for v");
  // The tensor-core kernels take the running max of the raw scores and fold the scale into
  // exp2's argument, which holds for a positive scale only.
  if (!(p.scale > 0.0f && p.scale <= 3.4e38f))
    return concat("f16 and bf16 take a positive finite scale, got ", p.scale);
  // cp.async moves 16 bytes, 8 elements: every row of every head must start on a 16-byte boundary.
  if (!(aligned(p.q, 16) && aligned(p.k, 16) && aligned(p.v, 16) && aligned(p.out, 16) && p.q_row % 8 == 0 &&
        p.k_row % 8 == 0 && p.v_row % 8 == 0 && p.out_row % 8 == 0))
    return "f16 and bf16 need q, k, v and out 16-byte aligned with rows a multiple of 8 elements apart";
  return "";
}

std::string flash_attention_unsupported(const FlashAttentionGradParams& g) {
  std::string why = flash_attention_unsupported(g.forward);
  if (why.empty() && g.dbias != nullptr && g.forward.cu_seqlens_q != nullptr)
    why = "a variable-length batch has no bias to take a gradient";
  if (!why.empty() || g.forward.dtype == AttentionDType::f32) return why;
  // dout is read by cp.async like q, k and v; dq, dk and dv are written two elements a store.
  if (!aligned(g.dout, 16)) return "f16 and bf16 need dout 16-byte aligned";
  if (!(aligned(g.dq, 4) && aligned(g.dk, 4) && aligned(g.dv, 4))) return "f16 and bf16 need dq, dk and dv 4-byte aligned";
  return "";
}

void flash_attention_check(const FlashAttentionParams& p) {
  const std::string why = flash_attention_unsupported(p);
  ATTNKIT_CHECK(why.empty(), "flash attention: ", why);
}

void flash_attention_check(const FlashAttentionGradParams& g) {
  const std::string why = flash_attention_unsupported(g);
  ATTNKIT_CHECK(why.empty(), "flash attention: ", why);
}

void flash_attention_forward(const FlashAttentionParams& p, void* stream) {
  flash_attention_check(p);
  if (p.batch == 0 || p.queries == 0) return;
  if (p.dtype == AttentionDType::f32)
    flash::forward_f32(p, stream);
  else
    flash::forward_mma(p, stream);
}

void flash_attention_backward(const FlashAttentionGradParams& g, void* stream) {
  const FlashAttentionParams& p = g.forward;
  flash_attention_check(g);
  if (p.batch == 0 || (p.queries == 0 && p.keys == 0)) return;
  if (p.dtype == AttentionDType::f32)
    flash::backward_f32(g, stream);
  else
    flash::backward_mma(g, stream);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
