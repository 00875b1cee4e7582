// Fused scaled dot-product attention in f16 and bf16 on the tensor cores (see
// flash_attention.h): every product through mma.sync m16n8k16 with float32 accumulation, the
// operands staged in shared memory by cp.async and read into fragments by ldmatrix.
//
// A block of 4 warps owns 64 rows of one (batch, head), 16 per warp: queries in the forward and
// the dq pass, keys in the dk/dv pass. Each visits the other side in tiles, the next tile's
// copies in flight while the current one is used (two buffers):
//
//   forward (tiles of 64 keys)   S = Q K^T (Q's fragments held in registers for the whole loop);
//                                online softmax on S's accumulators (a row's 8 values in a tile
//                                lie with the 4 lanes of a quad: two shuffles); O += P V with P's
//                                accumulators reused as the A fragments of the product
//   dq pass (tiles of keys)      S = Q K^T, dP = dO V^T, dS = P (dP - delta), dQ += dS K
//   dk/dv (tiles of queries)     S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q
//
// The backward tiles are 32 wide at head dim 128 (64 below) to leave the accumulators their
// registers. Shared rows are padded by 16 bytes, so the 8 rows an ldmatrix reads fall in
// distinct banks. Softmax in base 2: scores are scaled by scale * log2(e), and exp2 is one
// instruction.
#include "attnkit/error.h"
#include "kernels/flash_attention.cuh"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace flash {
namespace {

constexpr int kThreads = 128;
constexpr int kWarpRows = 16;                                        // an mma's M
constexpr int kBlockRows = kThreads / ak::kWarpSize * kWarpRows;     // 64

// Tile sizes of one element type and head dim (the instances: f16 and bf16 at 32, 64, 128).
template <typename T, int kDim>
struct MmaTraits {
  static_assert(kDim == 32 || kDim == 64 || kDim == 128, "head dims 32, 64, 128");
  using Element = T;
  static constexpr int kHeadDim = kDim;
  static constexpr int kStride = kDim + 8;                  // elements a shared row takes
  static constexpr int kForwardTile = 64;                   // keys a forward step visits
  static constexpr int kBackwardTile = kDim == 128 ? 32 : 64;
};

template <typename T>
AK_DEVICE std::uint32_t pack(float low, float high) {
  return ak::pack2(ak::from_float<T>(low), ak::from_float<T>(high));
}

// Rows [first, first + rows) of one head (kHeadDim elements from `head`, rows `row_step` apart)
// into a shared tile, 16 bytes per cp.async; rows at or past `steps` are zero-filled.
template <class Traits>
AK_DEVICE void load_tile_async(typename Traits::Element* tile, const typename Traits::Element* head,
                               std::int64_t row_step, std::int64_t first, int rows, std::int64_t steps) {
  constexpr int kChunks = Traits::kHeadDim / 8;
  for (int e = static_cast<int>(threadIdx.x); e < rows * kChunks; e += kThreads) {
    const int r = e / kChunks, c = e % kChunks * 8;
    const bool inside = first + r < steps;
    ak::cp_async_16(tile + r * Traits::kStride + c, inside ? head + (first + r) * row_step + c : head, inside ? 16 : 0);
  }
}

// The A fragment of rows [row0, row0 + 16) and columns [col0, col0 + 16) of a row-major tile.
template <int kStride, typename T>
AK_DEVICE void load_a(std::uint32_t (&a)[4], const T* tile, int row0, int col0) {
  const int lane = static_cast<int>(ak::lane_id()), m = lane / 8;
  ak::ldmatrix_x4(a, tile + (row0 + m % 2 * 8 + lane % 8) * kStride + col0 + m / 2 * 8);
}

// The B fragments (k16 x n8) of the n tiles n0 and n0 + 8 (b[0..1] and b[2..3]) over rows
// [k0, k0 + 16) of B, from a tile that holds B^T row-major (tile[n][k]: K in S = Q K^T) or,
// with kTransposed, B itself (tile[k][n]: V in O = P V), through ldmatrix's transposition.
template <int kStride, bool kTransposed, typename T>
AK_DEVICE void load_b(std::uint32_t (&b)[4], const T* tile, int k0, int n0) {
  const int lane = static_cast<int>(ak::lane_id()), m = lane / 8;
  if constexpr (kTransposed)
    ak::ldmatrix_x4_trans(b, tile + (k0 + m % 2 * 8 + lane % 8) * kStride + n0 + m / 2 * 8);
  else
    ak::ldmatrix_x4(b, tile + (n0 + m / 2 * 8 + lane % 8) * kStride + k0 + m % 2 * 8);
}

// acc (16 x kN) += A (16 x kK, fragments a) B (kK x kN, from a shared tile as load_b reads it).
template <typename T, int kK, int kN, bool kTransposed, int kStride>
AK_DEVICE void warp_mma(float (&acc)[kN / 8][4], const std::uint32_t (&a)[kK / 16][4], const T* tile) {
  for (int kc = 0; kc < kK / 16; ++kc)
    for (int np = 0; np < kN / 16; ++np) {
      std::uint32_t b[4];
      load_b<kStride, kTransposed>(b, tile, kc * 16, np * 16);
      const std::uint32_t low[2] = {b[0], b[1]}, high[2] = {b[2], b[3]};
      ak::mma_m16n8k16<T>(acc[2 * np], a[kc], low, acc[2 * np]);
      ak::mma_m16n8k16<T>(acc[2 * np + 1], a[kc], high, acc[2 * np + 1]);
    }
}

// The A fragments of rows [row0, row0 + 16) of a shared tile, all kDim columns.
template <int kDim, int kStride, typename T>
AK_DEVICE void load_rows_a(std::uint32_t (&a)[kDim / 16][4], const T* tile, int row0) {
  for (int kc = 0; kc < kDim / 16; ++kc) load_a<kStride>(a[kc], tile, row0, kc * 16);
}

// Accumulators of a 16 x kN product as the A fragments of the next product: by the PTX layouts,
// the C fragments of n tiles 2t and 2t + 1 hold what the A fragment of k chunk t needs.
template <typename T, int kN>
AK_DEVICE void to_a_fragments(std::uint32_t (&a)[kN / 16][4], const float (&c)[kN / 8][4]) {
  for (int t = 0; t < kN / 16; ++t) {
    a[t][0] = pack<T>(c[2 * t][0], c[2 * t][1]);
    a[t][1] = pack<T>(c[2 * t][2], c[2 * t][3]);
    a[t][2] = pack<T>(c[2 * t + 1][0], c[2 * t + 1][1]);
    a[t][3] = pack<T>(c[2 * t + 1][2], c[2 * t + 1][3]);
  }
}

// Where accumulator element e of n tile nt lies in a lane's 16 x N product: row (0 to 15) and
// column (0 to N - 1).
AK_DEVICE int fragment_row(int e) { return static_cast<int>(ak::lane_id()) / 4 + (e >= 2 ? 8 : 0); }
AK_DEVICE int fragment_col(int nt, int e) { return nt * 8 + static_cast<int>(ak::lane_id()) % 4 * 2 + (e & 1); }

// A 16 x kDim accumulator times `factor`, into rows [row0, row0 + 16) of a head (rows `row_step`
// apart) where they lie below `steps`.
template <typename T, int kDim>
AK_DEVICE void store_rows(T* head, std::int64_t row_step, std::int64_t row0, std::int64_t steps,
                          const float (&acc)[kDim / 8][4], float factor) {
  for (int nt = 0; nt < kDim / 8; ++nt)
    for (int e = 0; e < 4; ++e) {
      const std::int64_t row = row0 + fragment_row(e);
      if (row < steps) head[row * row_step + fragment_col(nt, e)] = ak::from_float<T>(acc[nt][e] * factor);
    }
}

template <class Traits>
__global__ void forward_kernel(FlashAttentionParams p) {
  using T = typename Traits::Element;
  constexpr int D = Traits::kHeadDim, S = Traits::kStride, N = Traits::kForwardTile;
  const std::int64_t bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.x) * kBlockRows;
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize;
  T* qs = ak::dynamic_shared<T>();  // [kBlockRows][S]
  T* ks = qs + kBlockRows * S;      // [2][N][S]
  T* vs = ks + 2 * N * S;           // [2][N][S]
  const HeadView<T> head = head_view<T>(p, nullptr, b, h);
  const T *q = head.q, *k = head.k, *v = head.v;
  const KeyVisibility visible = key_visibility(p, b);
  const int tiles = static_cast<int>((visible.key_end(i0, kBlockRows) + N - 1) / N);

  load_tile_async<Traits>(qs, q, p.q_row, i0, kBlockRows, p.queries);
  if (tiles > 0) {
    load_tile_async<Traits>(ks, k, p.k_row, 0, N, p.keys);
    load_tile_async<Traits>(vs, v, p.v_row, 0, N, p.keys);
  }
  ak::cp_async_commit();
  ak::cp_async_wait<0>();
  __syncthreads();
  std::uint32_t qf[D / 16][4];
  load_rows_a<D, S>(qf, qs, warp * kWarpRows);

  const float scale_log2 = p.scale * kLog2e;
  const std::int64_t row0 = i0 + warp * kWarpRows;
  float o[D / 8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8
  for (int t = 0; t < tiles; ++t) {
    const T* kt = ks + t % 2 * N * S;
    const T* vt = vs + t % 2 * N * S;
    if (t + 1 < tiles) {
      load_tile_async<Traits>(ks + (t + 1) % 2 * N * S, k, p.k_row, (t + 1) * std::int64_t{N}, N, p.keys);
      load_tile_async<Traits>(vs + (t + 1) % 2 * N * S, v, p.v_row, (t + 1) * std::int64_t{N}, N, p.keys);
    }
    ak::cp_async_commit();
    float s[N / 8][4] = {};
    warp_mma<T, D, N, false, S>(s, qf, kt);
    float tile_max[2] = {-INFINITY, -INFINITY};
    for (int nt = 0; nt < N / 8; ++nt)
      for (int e = 0; e < 4; ++e) {
        const std::int64_t j = t * std::int64_t{N} + fragment_col(nt, e);
        s[nt][e] = visible(row0 + fragment_row(e), j) ? s[nt][e] * scale_log2 : -INFINITY;
        tile_max[e / 2] = fmaxf(tile_max[e / 2], s[nt][e]);
      }
    float rescale[2];
    for (int r = 0; r < 2; ++r) {
      tile_max[r] = fmaxf(tile_max[r], ak::shfl_xor(tile_max[r], 1));
      tile_max[r] = fmaxf(tile_max[r], ak::shfl_xor(tile_max[r], 2));
      const float m_new = fmaxf(m[r], tile_max[r]);
      rescale[r] = m_new == -INFINITY ? 1.0f : exp2f(m[r] - m_new);
      m[r] = m_new;
      l[r] *= rescale[r];
    }
    for (int nt = 0; nt < N / 8; ++nt)
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = s[nt][e] == -INFINITY ? 0.0f : exp2f(s[nt][e] - m[e / 2]);
        l[e / 2] += s[nt][e];  // this lane's part of the row sum; the quad adds them at the end
      }
    for (int nt = 0; nt < D / 8; ++nt)
      for (int e = 0; e < 4; ++e) o[nt][e] *= rescale[e / 2];
    std::uint32_t pf[N / 16][4];
    to_a_fragments<T, N>(pf, s);
    warp_mma<T, N, D, true, S>(o, pf, vt);
    ak::cp_async_wait<0>();
    __syncthreads();  // the next tile has landed, and nobody reads this one any more
  }
  float inverse[2];
  for (int r = 0; r < 2; ++r) {
    l[r] += ak::shfl_xor(l[r], 1);
    l[r] += ak::shfl_xor(l[r], 2);
    inverse[r] = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
  }
  T* out = static_cast<T*>(p.out) + b * p.queries * p.out_row + h * D;
  for (int nt = 0; nt < D / 8; ++nt)
    for (int e = 0; e < 4; ++e) o[nt][e] *= inverse[e / 2];
  store_rows<T, D>(out, p.out_row, row0, p.queries, o, 1.0f);
  if (ak::lane_id() % 4 == 0)
    for (int r = 0; r < 2; ++r) {
      const std::int64_t i = row0 + fragment_row(2 * r);
      if (i < p.queries) p.lse[bh * p.queries + i] = l[r] > 0.0f ? (m[r] + log2f(l[r])) * kLn2 : -INFINITY;
    }
}

template <class Traits>
__global__ void dq_kernel(FlashAttentionGradParams g) {
  using T = typename Traits::Element;
  constexpr int D = Traits::kHeadDim, S = Traits::kStride, N = Traits::kBackwardTile;
  const FlashAttentionParams& p = g.forward;
  const std::int64_t bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t i0 = static_cast<std::int64_t>(blockIdx.x) * kBlockRows;
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize;
  T* qs = ak::dynamic_shared<T>();                      // [kBlockRows][S]
  T* dos = qs + kBlockRows * S;                         // [kBlockRows][S]
  T* ks = dos + kBlockRows * S;                         // [2][N][S]
  T* vs = ks + 2 * N * S;                               // [2][N][S]
  float* lse_s = reinterpret_cast<float*>(vs + 2 * N * S);  // [kBlockRows], base 2
  float* delta_s = lse_s + kBlockRows;                  // [kBlockRows]
  const HeadView<T> head = head_view<T>(p, g.dout, b, h);
  const T *q = head.q, *k = head.k, *v = head.v, *out = head.out, *dout = head.dout;
  const KeyVisibility visible = key_visibility(p, b);
  const int tiles = static_cast<int>((visible.key_end(i0, kBlockRows) + N - 1) / N);

  load_tile_async<Traits>(qs, q, p.q_row, i0, kBlockRows, p.queries);
  load_tile_async<Traits>(dos, dout, p.out_row, i0, kBlockRows, p.queries);
  if (tiles > 0) {
    load_tile_async<Traits>(ks, k, p.k_row, 0, N, p.keys);
    load_tile_async<Traits>(vs, v, p.v_row, 0, N, p.keys);
  }
  ak::cp_async_commit();
  ak::cp_async_wait<0>();
  __syncthreads();
  if (threadIdx.x < kBlockRows) {  // delta_i = dout_i . out_i (written for the dk/dv pass), lse_i
    const int r = static_cast<int>(threadIdx.x);
    const std::int64_t i = i0 + r;
    float delta = 0.0f;
    if (i < p.queries) {
      for (int c = 0; c < D; ++c) delta += ak::to_float(dos[r * S + c]) * ak::to_float(out[i * p.out_row + c]);
      g.delta[bh * p.queries + i] = delta;
    }
    delta_s[r] = delta;
    lse_s[r] = i < p.queries ? p.lse[bh * p.queries + i] * kLog2e : -INFINITY;
  }
  __syncthreads();
  std::uint32_t qf[D / 16][4], dof[D / 16][4];
  load_rows_a<D, S>(qf, qs, warp * kWarpRows);
  load_rows_a<D, S>(dof, dos, warp * kWarpRows);
  const std::int64_t row0 = i0 + warp * kWarpRows;
  float lse[2], delta[2];
  for (int r = 0; r < 2; ++r) {
    lse[r] = lse_s[warp * kWarpRows + fragment_row(2 * r)];
    delta[r] = delta_s[warp * kWarpRows + fragment_row(2 * r)];
  }
  const float scale_log2 = p.scale * kLog2e;
  float dq[D / 8][4] = {};
  for (int t = 0; t < tiles; ++t) {
    const T* kt = ks + t % 2 * N * S;
    const T* vt = vs + t % 2 * N * S;
    if (t + 1 < tiles) {
      load_tile_async<Traits>(ks + (t + 1) % 2 * N * S, k, p.k_row, (t + 1) * std::int64_t{N}, N, p.keys);
      load_tile_async<Traits>(vs + (t + 1) % 2 * N * S, v, p.v_row, (t + 1) * std::int64_t{N}, N, p.keys);
    }
    ak::cp_async_commit();
    float s[N / 8][4] = {}, dp[N / 8][4] = {};
    warp_mma<T, D, N, false, S>(s, qf, kt);
    warp_mma<T, D, N, false, S>(dp, dof, vt);
    for (int nt = 0; nt < N / 8; ++nt)
      for (int e = 0; e < 4; ++e) {
        const int r = e / 2;
        const bool seen = lse[r] != -INFINITY && visible(row0 + fragment_row(e), t * std::int64_t{N} + fragment_col(nt, e));
        const float prob = seen ? exp2f(s[nt][e] * scale_log2 - lse[r]) : 0.0f;
        s[nt][e] = prob * (dp[nt][e] - delta[r]);  // dS
      }
    std::uint32_t dsf[N / 16][4];
    to_a_fragments<T, N>(dsf, s);
    warp_mma<T, N, D, true, S>(dq, dsf, kt);
    ak::cp_async_wait<0>();
    __syncthreads();
  }
  store_rows<T, D>(static_cast<T*>(g.dq) + b * p.queries * p.q_row + h * D, p.q_row, row0, p.queries, dq, p.scale);
}

template <class Traits>
__global__ void dkdv_kernel(FlashAttentionGradParams g) {
  using T = typename Traits::Element;
  constexpr int D = Traits::kHeadDim, S = Traits::kStride, M = Traits::kBackwardTile;
  const FlashAttentionParams& p = g.forward;
  const std::int64_t bh = blockIdx.y, b = bh / p.heads, h = bh % p.heads;
  const std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * kBlockRows;
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize;
  T* ks = ak::dynamic_shared<T>();                         // [kBlockRows][S]
  T* vs = ks + kBlockRows * S;                             // [kBlockRows][S]
  T* qs = vs + kBlockRows * S;                             // [2][M][S]
  T* dos = qs + 2 * M * S;                                 // [2][M][S]
  float* lse_s = reinterpret_cast<float*>(dos + 2 * M * S);  // [2][M], base 2
  float* delta_s = lse_s + 2 * M;                          // [2][M]
  const HeadView<T> head = head_view<T>(p, g.dout, b, h);
  const T *q = head.q, *k = head.k, *v = head.v, *dout = head.dout;
  const KeyVisibility visible = key_visibility(p, b);
  // Keys at or past the visibility limit are seen by no query: their gradients stay 0.
  const std::int64_t query_begin = j0 < visible.limit ? visible.query_begin(j0) : p.queries;
  const int tiles = static_cast<int>((p.queries - query_begin + M - 1) / M);
  // The queries of tile t, their rows of q and dout (cp.async) and their lse and delta (plain
  // loads, seen by all after the barrier that ends the step before tile t is used).
  auto load_queries = [&](int t) {
    const std::int64_t first = query_begin + t * std::int64_t{M};
    load_tile_async<Traits>(qs + t % 2 * M * S, q, p.q_row, first, M, p.queries);
    load_tile_async<Traits>(dos + t % 2 * M * S, dout, p.out_row, first, M, p.queries);
    if (threadIdx.x < M) {
      const std::int64_t i = first + threadIdx.x;
      lse_s[t % 2 * M + threadIdx.x] = i < p.queries ? p.lse[bh * p.queries + i] * kLog2e : -INFINITY;
      delta_s[t % 2 * M + threadIdx.x] = i < p.queries ? g.delta[bh * p.queries + i] : 0.0f;
    }
  };

  load_tile_async<Traits>(ks, k, p.k_row, j0, kBlockRows, p.keys);
  load_tile_async<Traits>(vs, v, p.v_row, j0, kBlockRows, p.keys);
  if (tiles > 0) load_queries(0);
  ak::cp_async_commit();
  ak::cp_async_wait<0>();
  __syncthreads();
  const std::int64_t row0 = j0 + warp * kWarpRows;  // this warp's keys
  const float scale_log2 = p.scale * kLog2e;
  float dk[D / 8][4] = {}, dv[D / 8][4] = {};
  for (int t = 0; t < tiles; ++t) {
    const T* qt = qs + t % 2 * M * S;
    const T* dot = dos + t % 2 * M * S;
    const float* lse = lse_s + t % 2 * M;
    const float* delta = delta_s + t % 2 * M;
    if (t + 1 < tiles) load_queries(t + 1);
    ak::cp_async_commit();
    float st[M / 8][4] = {}, dpt[M / 8][4] = {};
    {
      std::uint32_t kf[D / 16][4];
      load_rows_a<D, S>(kf, ks, warp * kWarpRows);
      warp_mma<T, D, M, false, S>(st, kf, qt);
    }
    {
      std::uint32_t vf[D / 16][4];
      load_rows_a<D, S>(vf, vs, warp * kWarpRows);
      warp_mma<T, D, M, false, S>(dpt, vf, dot);
    }
    const std::int64_t first = query_begin + t * std::int64_t{M};
    for (int nt = 0; nt < M / 8; ++nt)
      for (int e = 0; e < 4; ++e) {
        const int c = fragment_col(nt, e);
        const bool seen = lse[c] != -INFINITY && visible(first + c, row0 + fragment_row(e));
        const float prob = seen ? exp2f(st[nt][e] * scale_log2 - lse[c]) : 0.0f;
        st[nt][e] = prob;                              // P^T
        dpt[nt][e] = prob * (dpt[nt][e] - delta[c]);  // dS^T
      }
    std::uint32_t pf[M / 16][4], dsf[M / 16][4];
    to_a_fragments<T, M>(pf, st);
    to_a_fragments<T, M>(dsf, dpt);
    warp_mma<T, M, D, true, S>(dv, pf, dot);
    warp_mma<T, M, D, true, S>(dk, dsf, qt);
    ak::cp_async_wait<0>();
    __syncthreads();
  }
  store_rows<T, D>(static_cast<T*>(g.dk) + b * p.keys * p.k_row + h * D, p.k_row, row0, p.keys, dk, p.scale);
  store_rows<T, D>(static_cast<T*>(g.dv) + b * p.keys * p.v_row + h * D, p.v_row, row0, p.keys, dv, 1.0f);
}

// f(MmaTraits<T, dim>{}) for the dtype and head dim of p: the one place where they become
// template arguments.
template <typename F>
void with_traits(const FlashAttentionParams& p, F&& f) {
  auto for_element = [&](auto element) {
    using T = decltype(element);
    switch (p.qk_dim) {
      case 32: f(MmaTraits<T, 32>{}); break;
      case 64: f(MmaTraits<T, 64>{}); break;
      default: f(MmaTraits<T, 128>{}); break;
    }
  };
  if (p.dtype == AttentionDType::f16)
    for_element(ak::half{});
  else
    for_element(ak::bfloat16{});
}

dim3 grid_for(std::int64_t rows, const FlashAttentionParams& p) {
  return dim3(static_cast<unsigned>((rows + kBlockRows - 1) / kBlockRows), static_cast<unsigned>(p.batch * p.heads));
}

}  // namespace

void forward_mma(const FlashAttentionParams& p, void* stream) {
  with_traits(p, [&](auto traits) {
    using Traits = decltype(traits);
    const std::size_t shared =
        sizeof(typename Traits::Element) * (kBlockRows + 4 * Traits::kForwardTile) * Traits::kStride;
    AK_LAUNCH(forward_kernel<Traits>, grid_for(p.queries, p), kThreads, shared, ak::as_stream(stream), p);
  });
}

void backward_mma(const FlashAttentionGradParams& g, void* stream) {
  const FlashAttentionParams& p = g.forward;
  with_traits(p, [&](auto traits) {
    using Traits = decltype(traits);
    constexpr int kTile = Traits::kBackwardTile;
    // Both passes: 2 tiles of kBlockRows rows, 4 of kTile, and two float arrays per row.
    const std::size_t dq_shared = sizeof(typename Traits::Element) * (2 * kBlockRows + 4 * kTile) * Traits::kStride +
                                  sizeof(float) * 2 * kBlockRows;
    const std::size_t dkdv_shared = sizeof(typename Traits::Element) * (2 * kBlockRows + 4 * kTile) * Traits::kStride +
                                    sizeof(float) * 4 * kTile;
    if (p.queries > 0)  // writes delta, which the dk/dv pass reads
      AK_LAUNCH(dq_kernel<Traits>, grid_for(p.queries, p), kThreads, dq_shared, ak::as_stream(stream), g);
    if (p.keys > 0)
      AK_LAUNCH(dkdv_kernel<Traits>, grid_for(p.keys, p), kThreads, dkdv_shared, ak::as_stream(stream), g);
  });
}

}  // namespace flash
}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
