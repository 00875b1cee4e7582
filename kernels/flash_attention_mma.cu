// Fused scaled dot-product attention in f16 and bf16 on the tensor cores (see
// flash_attention.h): every product through mma.sync m16n8k16 with float32 accumulation, the
// operands staged in shared memory by cp.async and read into fragments by ldmatrix.
//
// A block of 4 warps owns rows of one (batch, head): queries in the forward and the dq pass,
// keys in the dk/dv pass. A warp owns one or two m16 tiles of them (kWarpTiles): with two, each
// K or V fragment that ldmatrix reads feeds two HMMA. The other side is visited in tiles, the
// next tile's copies in flight while the current one is used (two buffers, one barrier a tile):
//
//   forward (tiles of keys)      S = Q K^T; online softmax on S's accumulators (a row's values in
//                                a tile lie with the 4 lanes of a quad: two shuffles); O += P V
//                                with P's accumulators reused as the A fragments of the product
//   dq pass (tiles of keys)      S = Q K^T, dP = dO V^T, dS = P (dP - delta), dQ += dS K
//   dk/dv (tiles of queries)     S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q
//
// What keeps the main loops short (bench/NOTES.md has the instruction counts):
// - masks cost only where a tile needs them: the tile across the diagonal under causal masking,
//   the last tile of a ragged length, and, with a byte mask, tiles where the warp's vote finds a
//   hidden key. The dk/dv pass never masks a key: a hidden key's rows of dK and dV are 0, written
//   as such at the end; only its causal tiles are masked;
// - each thread's cp.async sources are computed once per block and stepped a tile at a time;
// - softmax in base 2: p = 2^(s * scale log2(e) - m), one FFMA and one ex2.approx. That
//   instruction is within 2 ulp of the correctly rounded 2^x (2.5 ulp of the exact power: a
//   relative 2^-21.6 at most) and flushes results below 2^-126 to 0; the probabilities then go
//   to 16 bits (a relative 2^-8 in bf16, 2^-11 in f16), so the fused kernels' error is that of a
//   plain 16-bit attention plus at most 2^-21.6 relative in each probability and in the row sums.
//   The sim runs the instruction's worst case, and tests/sim/test_flash_attention.cpp holds the
//   results to the plain 16-bit attention's error with it.
//
// Each kernel's traits (ForwardTraits, DqTraits, DkdvTraits in flash_attention_traits.h) own
// its tiles and shared-memory layout, which the kernel and its launch both read.
#include "attnkit/error.h"
#include "kernels/flash_attention.cuh"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace flash {
namespace {

template <class Traits>
AK_DEVICE typename Traits::Element* shared_tile(Region region) {
  return reinterpret_cast<typename Traits::Element*>(ak::dynamic_shared<unsigned char>() + region.offset);
}
AK_DEVICE float* shared_floats(Region region) {
  return reinterpret_cast<float*>(ak::dynamic_shared<unsigned char>() + region.offset);
}

// What a block works on: its (batch, head), its first row, the operands' heads and which keys
// its queries see. The grid covers `heads` heads of each batch element: the query heads, or the
// key heads in the dk/dv pass, each of which stands for a group of `group` query heads (head then
// views the group's first). Row and key indices are 32-bit (flash_attention_check keeps them below 2^31),
// which leaves the accumulators more registers.
template <typename T, bool kVarlen>
struct BlockSetup {
  int bh, b, h;       // a launch covers at most 65535 (batch, head) pairs
  int first_row;      // of the rows the block owns (queries, or keys in the dk/dv pass)
  int warp;
  Sequence seq;
  int queries, keys;  // the batch element's (seq's)
  HeadView<T> head;
  KeyVisibility visible;
  int limit;                  // keys at or past it are hidden (visible.limit)
  const std::uint8_t* mask;   // this batch element's byte mask, or null (visible.mask)

  AK_DEVICE BlockSetup(const FlashAttentionParams& p, const void* dout, int rows, int heads, int group)
      : bh(static_cast<int>(blockIdx.y)),
        b(bh / heads),
        h(bh % heads),
        first_row(static_cast<int>(blockIdx.x) * rows),
        warp(static_cast<int>(threadIdx.x) / ak::kWarpSize),
        seq(sequence_of<kVarlen>(p, b)),
        queries(static_cast<int>(seq.queries)),
        keys(static_cast<int>(seq.keys)),
        head(head_view<T>(p, dout, seq, h * group)),
        visible(key_visibility(p, seq, b)),
        limit(static_cast<int>(visible.limit)),
        mask(visible.mask) {}
};

// One thread's share of the cp.async copies of tiles of kRows rows of kOperands heads that are
// visited in step (K and V, or Q and dO): 16 bytes a copy, kThreads / (kDim / 8) rows a pass.
// The sources of its first copies are computed once and stepped a tile at a time; rows at or
// past the operands' end are zero-filled (only the last tile checks): their copies read 0 bytes,
// so their source addresses are never dereferenced.
template <class Traits, int kRows, int kOperands>
class TileCopy {
  using T = typename Traits::Element;
  static constexpr int kChunks = Traits::kHeadDim / 8;
  static constexpr int kRowsPerPass = kThreads / kChunks;
  static constexpr int kPasses = kRows / kRowsPerPass;
  static_assert(kThreads % kChunks == 0 && kRows % kRowsPerPass == 0, "a tile is whole passes");

 public:
  AK_DEVICE TileCopy(const T* const (&heads)[kOperands], const std::int64_t (&row_steps)[kOperands], int first_row,
                     int steps)
      : offset_(static_cast<int>(threadIdx.x) / kChunks * Traits::kStride + static_cast<int>(threadIdx.x) % kChunks * 8),
        rows_left_(steps - first_row - static_cast<int>(threadIdx.x) / kChunks) {
    AK_UNROLL
    for (int i = 0; i < kOperands; ++i)
      sources_[i] = heads[i] + (first_row + static_cast<int>(threadIdx.x) / kChunks) * row_steps[i] +
                    static_cast<int>(threadIdx.x) % kChunks * 8;
  }

  // Starts the copies of the current tiles into `tiles` and moves on to the next ones.
  // `row_steps` are the ones the copy was made with (kernel parameters: kept out of registers).
  // Tiles inside the operands take a path without tests; copy_checked, for copies made once
  // outside the main loop, has only the path that tests each row (shorter code).
  AK_DEVICE void copy(T* const (&tiles)[kOperands], const std::int64_t (&row_steps)[kOperands]) {
    start(tiles, row_steps, rows_left_ > (kPasses - 1) * kRowsPerPass);
  }
  AK_DEVICE void copy_checked(T* const (&tiles)[kOperands], const std::int64_t (&row_steps)[kOperands]) {
    start(tiles, row_steps, false);
  }

 private:
  AK_DEVICE void start(T* const (&tiles)[kOperands], const std::int64_t (&row_steps)[kOperands], bool whole) {
    AK_UNROLL
    for (int i = 0; i < kOperands; ++i) {
      T* destination = tiles[i] + offset_;
      const std::int64_t pass_step = kRowsPerPass * row_steps[i];
      if (whole) {
        AK_UNROLL
        for (int pass = 0; pass < kPasses; ++pass)
          ak::cp_async_16(destination + pass * kRowsPerPass * Traits::kStride, sources_[i] + pass * pass_step);
      } else {
        AK_UNROLL
        for (int pass = 0; pass < kPasses; ++pass)
          ak::cp_async_16(destination + pass * kRowsPerPass * Traits::kStride, sources_[i] + pass * pass_step,
                          pass * kRowsPerPass < rows_left_ ? 16 : 0);
      }
      sources_[i] += kPasses * pass_step;
    }
    rows_left_ -= kRows;
  }

  int offset_;                    // of this thread's first copy in a tile, in elements
  int rows_left_;                 // rows of the operands from that copy's row on
  const T* sources_[kOperands];   // of this thread's first copies of the current tiles
};

template <typename T>
AK_DEVICE std::uint32_t pack(float low, float high) {
  return ak::pack2(ak::from_float<T>(low), ak::from_float<T>(high));
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

// A warp's accumulators: kM m16 tiles of 16 x kN floats.
template <int kM, int kN>
using Accumulators = float[kM][kN / 8][4];
// A warp's A fragments: kM m16 tiles of 16 x kK.
template <int kM, int kK>
using Fragments = std::uint32_t[kM][kK / 16][4];

// acc (kM tiles of 16 x kN) += A (kM tiles of 16 x kK) B (kK x kN, from a shared tile as load_b
// reads it): each B fragment feeds the HMMA of every m tile.
template <typename T, int kStride, bool kTransposed, int kM, int kK, int kN, typename AFragment>
AK_DEVICE void warp_mma(Accumulators<kM, kN>& acc, const AFragment& a_fragment, const T* tile) {
  AK_UNROLL
  for (int kc = 0; kc < kK / 16; ++kc) {
    std::uint32_t a[kM][4];
    AK_UNROLL
    for (int mt = 0; mt < kM; ++mt) a_fragment(mt, kc, a[mt]);
    AK_UNROLL
    for (int np = 0; np < kN / 16; ++np) {
      std::uint32_t b[4];
      load_b<kStride, kTransposed>(b, tile, kc * 16, np * 16);
      const std::uint32_t low[2] = {b[0], b[1]}, high[2] = {b[2], b[3]};
      AK_UNROLL
      for (int mt = 0; mt < kM; ++mt) {
        ak::mma_m16n8k16<T>(acc[mt][2 * np], a[mt], low, acc[mt][2 * np]);
        ak::mma_m16n8k16<T>(acc[mt][2 * np + 1], a[mt], high, acc[mt][2 * np + 1]);
      }
    }
  }
}

// A fragments read from a shared tile (the warp's rows from `row0`), or held in registers.
template <int kStride, typename T>
struct SharedA {
  const T* tile;
  int row0;
  AK_DEVICE void operator()(int mt, int kc, std::uint32_t (&a)[4]) const {
    load_a<kStride>(a, tile, row0 + mt * kMmaRows, kc * 16);
  }
};
template <int kM, int kK>
struct RegisterA {
  const Fragments<kM, kK>& fragments;
  AK_DEVICE void operator()(int mt, int kc, std::uint32_t (&a)[4]) const {
    AK_UNROLL
    for (int i = 0; i < 4; ++i) a[i] = fragments[mt][kc][i];
  }
};

// Accumulators of 16 x kN products as the A fragments of the next product: by the PTX layouts,
// the C fragments of n tiles 2t and 2t + 1 hold what the A fragment of k chunk t needs.
template <typename T, int kM, int kN>
AK_DEVICE void to_a_fragments(Fragments<kM, kN>& a, const Accumulators<kM, kN>& c) {
  AK_UNROLL
  for (int mt = 0; mt < kM; ++mt)
    AK_UNROLL
    for (int t = 0; t < kN / 16; ++t) {
      a[mt][t][0] = pack<T>(c[mt][2 * t][0], c[mt][2 * t][1]);
      a[mt][t][1] = pack<T>(c[mt][2 * t][2], c[mt][2 * t][3]);
      a[mt][t][2] = pack<T>(c[mt][2 * t + 1][0], c[mt][2 * t + 1][1]);
      a[mt][t][3] = pack<T>(c[mt][2 * t + 1][2], c[mt][2 * t + 1][3]);
    }
}

// Where accumulator element e of n tile nt of m tile mt lies in a warp's rows: row (from the
// warp's first) and column (0 to N - 1).
AK_DEVICE int fragment_row(int mt, int e) {
  return mt * kMmaRows + static_cast<int>(ak::lane_id()) / 4 + (e >= 2 ? 8 : 0);
}
AK_DEVICE int fragment_col(int nt, int e) { return nt * 8 + static_cast<int>(ak::lane_id()) % 4 * 2 + (e & 1); }

// f(element, row, column) for every accumulator element of a warp's tiles: rows from row0 (the
// warp's), columns from col0.
template <int kM, int kN, typename F>
AK_DEVICE void for_each_element(Accumulators<kM, kN>& s, int row0, int col0, F&& f) {
  AK_UNROLL
  for (int mt = 0; mt < kM; ++mt)
    AK_UNROLL
    for (int nt = 0; nt < kN / 8; ++nt)
      AK_UNROLL
      for (int e = 0; e < 4; ++e) f(s[mt][nt][e], row0 + fragment_row(mt, e), col0 + fragment_col(nt, e));
}

// Sets to -inf the elements whose column index exceeds the row index, columns counted from
// `column_offset` rows past the warp's first row: keys after their query under causal masking
// (rows are queries, columns keys), or, with kRowsAreKeys, queries before their key.
template <bool kRowsAreKeys, int kM, int kN>
AK_DEVICE void hide_causal(Accumulators<kM, kN>& s, int column_offset) {
  for_each_element<kM, kN>(s, 0, column_offset, [](float& x, int row, int column) {
    const int ahead = column - row;
    if (kRowsAreKeys ? ahead < 0 : ahead > 0) x = -INFINITY;
  });
}

// Sets to -inf the columns (keys j0 + column) hidden by the visibility limit or the byte mask.
template <int kM, int kN>
AK_DEVICE void hide_keys(Accumulators<kM, kN>& s, int limit, const std::uint8_t* mask, int j0) {
  const int shown_end = limit - j0;  // columns at or past it are hidden
  const std::uint8_t* tile_mask = mask != nullptr ? mask + j0 : nullptr;
  AK_UNROLL
  for (int nt = 0; nt < kN / 8; ++nt)
    AK_UNROLL
    for (int c = 0; c < 2; ++c) {
      const int column = fragment_col(nt, c);
      const bool shown = column < shown_end && (tile_mask == nullptr || tile_mask[column] != 0);
      AK_UNROLL
      for (int mt = 0; mt < kM; ++mt) {
        s[mt][nt][c] = shown ? s[mt][nt][c] : -INFINITY;
        s[mt][nt][c + 2] = shown ? s[mt][nt][c + 2] : -INFINITY;
      }
    }
}

// Whether the keys [j0, j0 + kN) need hide_keys: the tile crosses the visibility limit, or the
// byte mask hides one of them (a warp vote: the same answer in every lane).
template <int kN>
AK_DEVICE bool keys_need_mask(int limit, const std::uint8_t* mask, int j0) {
  if (j0 + kN > limit) return true;
  if (mask == nullptr) return false;
  bool shown = true;
  AK_UNROLL
  for (int c = static_cast<int>(ak::lane_id()); c < kN; c += ak::kWarpSize) shown = shown && mask[j0 + c] != 0;
  return !ak::all(shown);
}

// Sets to -inf the scores of a warp's queries (rows from row0) for the keys [j0, j0 + kN)
// (columns) that they do not see, on the tiles that hide any: past the visibility limit,
// masked, or, under causal masking, after the query.
template <int kM, int kN, typename T, bool kVarlen>
AK_DEVICE void hide_what_the_queries_do_not_see(Accumulators<kM, kN>& s, const BlockSetup<T, kVarlen>& block, bool causal,
                                                int row0, int j0) {
  if (keys_need_mask<kN>(block.limit, block.mask, j0)) hide_keys<kM, kN>(s, block.limit, block.mask, j0);
  if (causal && j0 + kN - 1 > row0) hide_causal<false, kM, kN>(s, j0 - row0);
}

// The final score (flash_attention.h) of a raw score q_i . k_j, or -inf where the plain masks hid
// it (-inf already), where the window or the attention mask hides key j from query i, and past
// the operands' ends: one score at a time, as the backward takes them (under the cap it needs the
// raw score again).
AK_DEVICE float final_score(float raw, const ScoreModifiers& modifiers, int i, int j, int queries, int keys) {
  if (raw == -INFINITY || i >= queries || j >= keys || modifiers.hides(i, j)) return -INFINITY;
  return modifiers.score(raw, i, j);
}

// The same for the forward's tile of a warp's raw scores (queries from row0, keys from j0), one
// modifier at a time, each behind a branch that the whole warp takes alike: a modifier that is off
// costs a test per tile. (The backward keeps to final_score: a second path beside it costs its
// kernels registers they do not have.) The scale must be positive (-inf stays -inf). Scores past
// the keys are left to the plain masks, and past the queries to the rows that are never stored;
// only the bias is not read there.
template <int kM, int kN>
AK_DEVICE void modify_scores(Accumulators<kM, kN>& s, const ScoreModifiers& modifiers, int row0, int j0, int queries,
                             int keys) {
  const auto for_each = [&](auto&& f) { for_each_element<kM, kN>(s, row0, j0, f); };
  if (modifiers.softcap > 0.0f) {
    const float cap = modifiers.softcap, inside = modifiers.scale / modifiers.softcap;
    for_each([&](float& x, int, int) { x = x == -INFINITY ? x : cap * ScoreModifiers::fast_tanh(x * inside); });
  } else {
    for_each([&](float& x, int, int) { x *= modifiers.scale; });
  }
  if (modifiers.bias != nullptr)
    for_each([&](float& x, int i, int j) {
      if (i < queries && j < keys) x += modifiers.bias[static_cast<std::int64_t>(i) * modifiers.keys + j];
    });
  if (modifiers.slope != 0.0f)
    for_each([&](float& x, int i, int j) { x -= modifiers.slope * static_cast<float>(i > j ? i - j : j - i); });
  if (modifiers.left >= 0 || modifiers.right >= 0 || modifiers.mask != nullptr)
    for_each([&](float& x, int i, int j) { x = i < queries && j < keys && modifiers.hides(i, j) ? -INFINITY : x; });
}

// The elements of a warp's tile of probabilities that dropout keeps: bit 4 nt + e of kept[mt] for
// element e of n tile nt of m tile mt. Rows are queries from row0 and columns keys from j0 (a
// multiple of 32): for each row and 32 keys, one block holds a lane's 8 elements
// (attnkit/random.h lays the stream out so).
template <int kM, int kN>
AK_DEVICE void dropout_kept(std::uint32_t (&kept)[kM], const DropoutMask& dropout, int row0, int j0) {
  static_assert(kN % 32 == 0 && kN / 2 <= 32, "whole blocks, and a bit per element of a row pair");
  AK_UNROLL
  for (int mt = 0; mt < kM; ++mt) {
    kept[mt] = 0;
    AK_UNROLL
    for (int r = 0; r < 2; ++r)
      AK_UNROLL
      for (int g = 0; g < kN / 32; ++g) {
        const Philox4x32 block = dropout.block(row0 + fragment_row(mt, 2 * r), j0 + g * 32 + fragment_col(0, 0));
        AK_UNROLL
        for (int w = 0; w < 4; ++w)
          AK_UNROLL
          for (int c = 0; c < 2; ++c)  // key g * 32 + w * 8 + lane % 4 * 2 + c: word w, half c
            if (attention_dropout_keeps(block, w * 8 + c, dropout.threshold))
              kept[mt] |= 1u << ((4 * g + w) * 4 + 2 * r + c);
      }
  }
}

// The same for the dk/dv pass's tiles of P^T: rows are keys from row0 (a multiple of 16), columns
// queries from i0. Keys j and j + 8 of a lane share a block.
template <int kM, int kN>
AK_DEVICE void dropout_kept_transposed(std::uint32_t (&kept)[kM], const DropoutMask& dropout, int row0, int i0) {
  static_assert(kN / 2 <= 32, "a bit per element of a row pair");
  AK_UNROLL
  for (int mt = 0; mt < kM; ++mt) {
    kept[mt] = 0;
    const int j = row0 + fragment_row(mt, 0);
    AK_UNROLL
    for (int nt = 0; nt < kN / 8; ++nt)
      AK_UNROLL
      for (int c = 0; c < 2; ++c) {
        const Philox4x32 block = dropout.block(i0 + fragment_col(nt, c), j);
        AK_UNROLL
        for (int half = 0; half < 2; ++half)
          if (attention_dropout_keeps(block, j + 8 * half, dropout.threshold)) kept[mt] |= 1u << (nt * 4 + 2 * half + c);
      }
  }
}

// acc times factor where dropout keeps the element, 0 where it drops it.
template <int kM, int kN>
AK_DEVICE void apply_dropout(Accumulators<kM, kN>& acc, const std::uint32_t (&kept)[kM], float factor) {
  AK_UNROLL
  for (int mt = 0; mt < kM; ++mt)
    AK_UNROLL
    for (int nt = 0; nt < kN / 8; ++nt)
      AK_UNROLL
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = kept[mt] >> (nt * 4 + e) & 1u ? acc[mt][nt][e] * factor : 0.0f;
}

// Max and sum of a row's values across the 4 lanes of a quad.
AK_DEVICE float quad_max(float x) {
  x = fmaxf(x, ak::shfl_xor(x, 1));
  return fmaxf(x, ak::shfl_xor(x, 2));
}
AK_DEVICE float quad_sum(float x) {
  x += ak::shfl_xor(x, 1);
  return x + ak::shfl_xor(x, 2);
}

// A warp's kM m16 tiles of 16 x kDim results, each row times its factor (factor[mt][0] for rows
// g, factor[mt][1] for rows g + 8), into rows [row0, row0 + 16 kM) of a head (rows `row_step`
// apart) where they lie below `steps`: a pair of columns a store.
template <typename T, int kM, int kDim>
AK_DEVICE void store_rows(T* head, std::int64_t row_step, int row0, std::int64_t steps,
                          const Accumulators<kM, kDim>& acc, const float (&factor)[kM][2]) {
  AK_UNROLL
  for (int mt = 0; mt < kM; ++mt)
    AK_UNROLL
    for (int half = 0; half < 2; ++half) {
      const int row = row0 + fragment_row(mt, 2 * half);
      if (row >= steps) continue;
      const float f = factor[mt][half];
      AK_UNROLL
      for (int nt = 0; nt < kDim / 8; ++nt)
        ak::store_pair(head + row * row_step + fragment_col(nt, 0),
                       pack<T>(acc[mt][nt][2 * half] * f, acc[mt][nt][2 * half + 1] * f));
    }
}

// The same factor for every row.
template <int kM>
struct RowFactors {
  float f[kM][2];
  AK_DEVICE explicit RowFactors(float factor) {
    AK_UNROLL
    for (int mt = 0; mt < kM; ++mt) f[mt][0] = f[mt][1] = factor;
  }
};

// Traits::kModifiers: the instance with the score modifiers of flash_attention.h.
template <class Traits>
__global__ void forward_kernel(FlashAttentionParams p) {
  constexpr bool kModifiers = Traits::kModifiers;
  using T = typename Traits::Element;
  constexpr int D = Traits::kHeadDim, S = Traits::kStride, N = Traits::kTile, M = Traits::kWarpTiles;
  const BlockSetup<T, kModifiers> block(p, nullptr, Traits::kRows, static_cast<int>(p.heads), 1);
  if (kModifiers && block.first_row >= block.queries) return;  // past a short sequence of a variable-length batch
  T* qs = shared_tile<Traits>(Traits::q);
  T* ks = shared_tile<Traits>(Traits::k);  // [2][N][S]
  T* vs = shared_tile<Traits>(Traits::v);  // [2][N][S]
  const int warp_row = block.warp * M * kMmaRows;
  const int row0 = block.first_row + warp_row;  // this warp's first query
  const int first_tile = static_cast<int>(block.visible.key_begin(block.first_row) / N);
  const int tiles = static_cast<int>((block.visible.key_end(block.first_row, Traits::kRows) + N - 1) / N);
  const ScoreModifiers modifiers = score_modifiers(p, block.b, block.h);
  const DropoutMask dropout = dropout_mask(p, block.b, block.h);

  TileCopy<Traits, Traits::kRows, 1>({block.head.q}, {p.q_row}, block.first_row, block.queries)
      .copy_checked({qs}, {p.q_row});
  TileCopy<Traits, N, 2> kv_copy({block.head.k, block.head.v}, {p.k_row, p.v_row}, first_tile * N, block.keys);
  if (first_tile < tiles)
    kv_copy.copy_checked({ks + first_tile % 2 * N * S, vs + first_tile % 2 * N * S}, {p.k_row, p.v_row});
  ak::cp_async_commit();

  // Scores to base 2: the raw scores times scale log2(e) in the plain instance; the final scores
  // (natural units) times log2(e) with the modifiers.
  const float scale_log2 = kModifiers ? kLog2e : p.scale * kLog2e;
  // Per row (m tile mt, rows g and g + 8 as r = 0, 1): m[2 mt + r], the running max of the
  // scores, and l[2 mt + r], this lane's part of the sum of 2^(s scale log2(e) - max scale log2(e)).
  float o[M][D / 8][4] = {};
  float* m = shared_floats(Traits::row_maxima) + threadIdx.x * M * 2;
  float* l = shared_floats(Traits::row_sums) + threadIdx.x * M * 2;
  AK_UNROLL
  for (int e = 0; e < 2 * M; ++e) m[e] = -INFINITY, l[e] = 0.0f;
  for (int t = first_tile; t < tiles; ++t) {
    ak::cp_async_wait<0>();
    __syncthreads();  // tile t has landed; nobody reads the other buffer any more
    if (t + 1 < tiles) kv_copy.copy({ks + (t + 1) % 2 * N * S, vs + (t + 1) % 2 * N * S}, {p.k_row, p.v_row});
    ak::cp_async_commit();
    const T* kt = ks + t % 2 * N * S;
    const T* vt = vs + t % 2 * N * S;
    const int j0 = t * N;
    float s[M][N / 8][4] = {};
    warp_mma<T, S, false, M, D, N>(s, SharedA<S, T>{qs, warp_row}, kt);
    hide_what_the_queries_do_not_see<M, N>(s, block, p.causal, row0, j0);
    if constexpr (kModifiers)
      modify_scores<M, N>(s, modifiers, row0, j0, static_cast<int>(p.queries), static_cast<int>(p.keys));
    AK_UNROLL
    for (int mt = 0; mt < M; ++mt)
      AK_UNROLL
      for (int r = 0; r < 2; ++r) {
        float tile_max = -INFINITY;
        AK_UNROLL
        for (int nt = 0; nt < N / 8; ++nt) tile_max = fmaxf(tile_max, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
        const float m_new = fmaxf(m[2 * mt + r], quad_max(tile_max));
        const float offset = m_new == -INFINITY ? 0.0f : m_new * scale_log2;  // a row that sees no key yet
        const float rescale = ak::exp2_approx(m[2 * mt + r] * scale_log2 - offset);
        m[2 * mt + r] = m_new;
        float sum = 0.0f;
        AK_UNROLL
        for (int nt = 0; nt < N / 8; ++nt)
          AK_UNROLL
          for (int e = 2 * r; e < 2 * r + 2; ++e) {
            s[mt][nt][e] = ak::exp2_approx(fmaf(s[mt][nt][e], scale_log2, -offset));
            sum += s[mt][nt][e];
          }
        l[2 * mt + r] = l[2 * mt + r] * rescale + sum;  // this lane's part; the quad adds them at the end
        AK_UNROLL
        for (int nt = 0; nt < D / 8; ++nt) o[mt][nt][2 * r] *= rescale, o[mt][nt][2 * r + 1] *= rescale;
      }
    if constexpr (kModifiers)
      if (dropout.on()) {  // dropped probabilities count in l, not in O (the scale comes at the end)
        std::uint32_t kept[M];
        dropout_kept<M, N>(kept, dropout, row0, j0);
        apply_dropout<M, N>(s, kept, 1.0f);
      }
    std::uint32_t pf[M][N / 16][4];
    to_a_fragments<T, M, N>(pf, s);
    warp_mma<T, S, true, M, N, D>(o, RegisterA<M, N>{pf}, vt);
  }
  ak::cp_async_wait<0>();

  const Sequence seq = sequence_of<kModifiers>(p, block.b);  // again, rather than held through the loop
  T* out = static_cast<T*>(p.out) + seq.first_query * p.out_row + block.h * D;
  float* lse = p.lse + lse_offset<kModifiers>(p, seq, block.b, block.h);
  float inverse[M][2];
  AK_UNROLL
  for (int mt = 0; mt < M; ++mt)
    AK_UNROLL
    for (int r = 0; r < 2; ++r) {
      const float sum = quad_sum(l[2 * mt + r]);
      inverse[mt][r] = sum > 0.0f ? (kModifiers ? p.dropout_scale : 1.0f) / sum : 0.0f;
      const int i = row0 + fragment_row(mt, 2 * r);
      if (ak::lane_id() % 4 == 0 && i < seq.queries)
        lse[i] = sum > 0.0f ? (m[2 * mt + r] * scale_log2 + log2f(sum)) * kLn2 : -INFINITY;
    }
  store_rows<T, M, D>(out, p.out_row, row0, static_cast<int>(seq.queries), o, inverse);
}

// lse in base 2 for the backward's p = 2^(s scale log2(e) - lse log2(e)): +inf for a query
// that sees no key, so that its p is 0 with no test.
AK_DEVICE float lse_base2(float lse) { return lse == -INFINITY ? INFINITY : lse * kLog2e; }

template <class Traits>
__global__ void dq_kernel(FlashAttentionGradParams g) {
  constexpr bool kModifiers = Traits::kModifiers;
  using T = typename Traits::Element;
  constexpr int D = Traits::kHeadDim, S = Traits::kStride, N = Traits::kTile, M = Traits::kWarpTiles;
  const FlashAttentionParams& p = g.forward;
  const BlockSetup<T, kModifiers> block(p, g.dout, Traits::kRows, static_cast<int>(p.heads), 1);
  if (kModifiers && block.first_row >= block.queries) return;  // past a short sequence of a variable-length batch
  T* qs = shared_tile<Traits>(Traits::q);
  T* dos = shared_tile<Traits>(Traits::dout);
  T* ks = shared_tile<Traits>(Traits::k);  // [2][N][S]
  T* vs = shared_tile<Traits>(Traits::v);  // [2][N][S]
  float* lse_s = shared_floats(Traits::lse);
  float* delta_s = shared_floats(Traits::delta);
  const int warp_row = block.warp * M * kMmaRows;
  const int row0 = block.first_row + warp_row;
  const int first_tile = static_cast<int>(block.visible.key_begin(block.first_row) / N);
  const int tiles = static_cast<int>((block.visible.key_end(block.first_row, Traits::kRows) + N - 1) / N);
  const int queries = block.queries, keys = block.keys;
  // Inside the loop, the padded batch's sizes (parameters, in no register): the rows past a short
  // sequence are never stored, and a variable-length batch has no bias or mask to read there.
  const int padded_queries = static_cast<int>(p.queries), padded_keys = static_cast<int>(p.keys);
  const ScoreModifiers modifiers = score_modifiers(p, block.b, block.h);
  const DropoutMask dropout = dropout_mask(p, block.b, block.h);
  const std::int64_t lse_at = lse_offset<kModifiers>(p, block.seq, block.b, block.h);
  float* dbias =
      g.dbias != nullptr ? g.dbias + static_cast<std::int64_t>(block.bh) * padded_queries * padded_keys : nullptr;

  TileCopy<Traits, Traits::kRows, 2>({block.head.q, block.head.dout}, {p.q_row, p.out_row}, block.first_row, queries)
      .copy_checked({qs, dos}, {p.q_row, p.out_row});
  TileCopy<Traits, N, 2> kv_copy({block.head.k, block.head.v}, {p.k_row, p.v_row}, first_tile * N, keys);
  if (first_tile < tiles)
    kv_copy.copy_checked({ks + first_tile % 2 * N * S, vs + first_tile % 2 * N * S}, {p.k_row, p.v_row});
  ak::cp_async_commit();
  if (threadIdx.x < Traits::kRows) {  // delta_i = dout_i . out_i (also written for the dk/dv pass), lse_i
    const int r = static_cast<int>(threadIdx.x);
    const int i = block.first_row + r;
    float delta = 0.0f;
    if (i < queries) {
      const T* out_row = block.head.out + i * p.out_row;
      const T* dout_row = block.head.dout + i * p.out_row;
      AK_NO_UNROLL  // once per block: kept short
      for (int c = 0; c < D; c += 8) {
        float x[8], y[8];
        ak::load_8_as_float(x, out_row + c);
        ak::load_8_as_float(y, dout_row + c);
        AK_UNROLL
        for (int e = 0; e < 8; ++e) delta = fmaf(x[e], y[e], delta);
      }
      g.delta[lse_at + i] = delta;
    }
    delta_s[r] = delta;
    lse_s[r] = i < queries ? lse_base2(p.lse[lse_at + i]) : INFINITY;
  }
  ak::cp_async_wait<0>();
  __syncthreads();
  float lse[M][2], delta[M][2];
  AK_UNROLL
  for (int mt = 0; mt < M; ++mt)
    AK_UNROLL
    for (int r = 0; r < 2; ++r) {
      lse[mt][r] = lse_s[warp_row + fragment_row(mt, 2 * r)];
      delta[mt][r] = delta_s[warp_row + fragment_row(mt, 2 * r)];
    }
  const float scale_log2 = kModifiers ? kLog2e : p.scale * kLog2e;  // as in the forward
  float dq[M][D / 8][4] = {};
  for (int t = first_tile; t < tiles; ++t) {
    if (t > first_tile) {
      ak::cp_async_wait<0>();
      __syncthreads();  // tile t has landed; nobody reads the other buffer any more
    }
    if (t + 1 < tiles) kv_copy.copy({ks + (t + 1) % 2 * N * S, vs + (t + 1) % 2 * N * S}, {p.k_row, p.v_row});
    ak::cp_async_commit();
    const T* kt = ks + t % 2 * N * S;
    const T* vt = vs + t % 2 * N * S;
    const int j0 = t * N;
    float s[M][N / 8][4] = {}, dp[M][N / 8][4] = {};
    warp_mma<T, S, false, M, D, N>(s, SharedA<S, T>{qs, warp_row}, kt);
    warp_mma<T, S, false, M, D, N>(dp, SharedA<S, T>{dos, warp_row}, vt);
    hide_what_the_queries_do_not_see<M, N>(s, block, p.causal, row0, j0);
    if constexpr (kModifiers)
      if (dropout.on()) {  // dP of the probabilities after dropout
        std::uint32_t kept[M];
        dropout_kept<M, N>(kept, dropout, row0, j0);
        apply_dropout<M, N>(dp, kept, p.dropout_scale);
      }
    AK_UNROLL
    for (int mt = 0; mt < M; ++mt)
      AK_UNROLL
      for (int nt = 0; nt < N / 8; ++nt)
        AK_UNROLL
        for (int e = 0; e < 4; ++e) {
          if constexpr (kModifiers) {
            const int i = row0 + fragment_row(mt, e), j = j0 + fragment_col(nt, e);
            const float raw = s[mt][nt][e];
            const float score = final_score(raw, modifiers, i, j, padded_queries, padded_keys);
            const float prob = ak::exp2_approx(fmaf(score, scale_log2, -lse[mt][e / 2]));
            const float ds = prob * (dp[mt][nt][e] - delta[mt][e / 2]);
            if (dbias != nullptr && i < padded_queries && j < padded_keys)
              dbias[static_cast<std::int64_t>(i) * padded_keys + j] = ds;
            s[mt][nt][e] = ds * modifiers.slope_of_cap(raw);  // dS with respect to scale q_i . k_j
          } else {
            const float prob = ak::exp2_approx(fmaf(s[mt][nt][e], scale_log2, -lse[mt][e / 2]));
            s[mt][nt][e] = prob * (dp[mt][nt][e] - delta[mt][e / 2]);  // dS
          }
        }
    std::uint32_t dsf[M][N / 16][4];
    to_a_fragments<T, M, N>(dsf, s);
    warp_mma<T, S, true, M, N, D>(dq, RegisterA<M, N>{dsf}, kt);
  }
  ak::cp_async_wait<0>();
  const Sequence seq = sequence_of<kModifiers>(p, block.b);  // again, rather than held through the loop
  store_rows<T, M, D>(static_cast<T*>(g.dq) + seq.first_query * p.q_row + block.h * D, p.q_row, row0,
                      static_cast<int>(seq.queries), dq, RowFactors<M>(p.scale).f);
}

// A block owns kRows keys of one key head and sums over the query heads of its group.
template <class Traits>
__global__ void dkdv_kernel(FlashAttentionGradParams g) {
  constexpr bool kModifiers = Traits::kModifiers;
  using T = typename Traits::Element;
  constexpr int D = Traits::kHeadDim, S = Traits::kStride, N = Traits::kTile, M = Traits::kWarpTiles;
  const FlashAttentionParams& p = g.forward;
  const int group = static_cast<int>(p.heads / kv_heads_of(p));
  const BlockSetup<T, kModifiers> block(p, g.dout, Traits::kRows, static_cast<int>(kv_heads_of(p)), group);
  if (kModifiers && block.first_row >= block.keys) return;  // past a short sequence of a variable-length batch
  T* ks = shared_tile<Traits>(Traits::k);
  T* vs = shared_tile<Traits>(Traits::v);
  T* qs = shared_tile<Traits>(Traits::q);      // [2][N][S]
  T* dos = shared_tile<Traits>(Traits::dout);  // [2][N][S]
  float* lse_s = shared_floats(Traits::lse);      // [2][N]
  float* delta_s = shared_floats(Traits::delta);  // [2][N]
  const int warp_row = block.warp * M * kMmaRows;
  const int row0 = block.first_row + warp_row;  // this warp's first key
  const int queries = block.queries, keys = block.keys;
  // The padded batch's number of keys, inside the loop (as in the dq pass).
  const int padded_keys = static_cast<int>(p.keys);
  // Keys at or past the visibility limit are seen by no query: their gradients stay 0.
  const int first_query =
      block.first_row < block.limit ? static_cast<int>(block.visible.query_begin(block.first_row)) : queries;
  const int query_end = static_cast<int>(block.visible.query_end(block.first_row, Traits::kRows, queries));
  const int tiles = first_query < query_end ? (query_end - first_query + N - 1) / N : 0;

  TileCopy<Traits, Traits::kRows, 2>({block.head.k, block.head.v}, {p.k_row, p.v_row}, block.first_row, keys)
      .copy_checked({ks, vs}, {p.k_row, p.v_row});
  ak::cp_async_commit();
  ak::cp_async_wait<0>();
  __syncthreads();
  Fragments<M, D> kf, vf;  // the warp's rows of K and V, when Traits::kHoldKeys
  if constexpr (Traits::kHoldKeys)
    AK_UNROLL
    for (int mt = 0; mt < M; ++mt)
      AK_UNROLL
      for (int kc = 0; kc < D / 16; ++kc) {
        load_a<S>(kf[mt][kc], ks, warp_row + mt * kMmaRows, kc * 16);
        load_a<S>(vf[mt][kc], vs, warp_row + mt * kMmaRows, kc * 16);
      }
  const float scale_log2 = kModifiers ? kLog2e : p.scale * kLog2e;  // as in the forward
  float dk[M][D / 8][4] = {}, dv[M][D / 8][4] = {};
  for (int h = block.h * group; h < (block.h + 1) * group; ++h) {
    const std::int64_t lse_at = lse_offset<kModifiers>(p, block.seq, block.b, h);
    const HeadView<T> head = head_view<T>(p, g.dout, block.seq, h);
    const ScoreModifiers modifiers = score_modifiers(p, block.b, h);
    TileCopy<Traits, N, 2> query_copy({head.q, head.dout}, {p.q_row, p.out_row}, first_query, queries);
    // The queries of tile t: their rows of q and dout (cp.async) and their lse and delta (plain
    // loads, seen by all after the barrier that starts the step of tile t).
    const auto load_queries = [&](int t) {
      query_copy.copy({qs + t % 2 * N * S, dos + t % 2 * N * S}, {p.q_row, p.out_row});
      if (threadIdx.x < N) {
        const int i = first_query + t * N + static_cast<int>(threadIdx.x);
        lse_s[t % 2 * N + threadIdx.x] = i < queries ? lse_base2(p.lse[lse_at + i]) : INFINITY;
        delta_s[t % 2 * N + threadIdx.x] = i < queries ? g.delta[lse_at + i] : 0.0f;
      }
    };
    if (h > block.h * group) __syncthreads();  // the previous head's tiles are no longer read
    if (tiles > 0) load_queries(0);
    ak::cp_async_commit();
    for (int t = 0; t < tiles; ++t) {
      ak::cp_async_wait<0>();
      __syncthreads();  // tile t has landed; nobody reads the other buffers any more
      if (t + 1 < tiles) load_queries(t + 1);
      ak::cp_async_commit();
      const T* qt = qs + t % 2 * N * S;
      const T* dot = dos + t % 2 * N * S;
      const float* lse = lse_s + t % 2 * N;
      const float* delta = delta_s + t % 2 * N;
      const int i0 = first_query + t * N;
      // What dropout keeps of the tile, before its products take the registers (its mask made
      // here, from the parameters, rather than held through the loop).
      std::uint32_t kept[M] = {};
      const bool dropout_on = kModifiers && p.dropout_threshold != 0;
      if constexpr (kModifiers)
        if (dropout_on) dropout_kept_transposed<M, N>(kept, dropout_mask(p, block.b, h), row0, i0);
      float st[M][N / 8][4] = {}, dpt[M][N / 8][4] = {};
      if constexpr (Traits::kHoldKeys) {
        warp_mma<T, S, false, M, D, N>(st, RegisterA<M, D>{kf}, qt);
        warp_mma<T, S, false, M, D, N>(dpt, RegisterA<M, D>{vf}, dot);
      } else {
        warp_mma<T, S, false, M, D, N>(st, SharedA<S, T>{ks, warp_row}, qt);
        warp_mma<T, S, false, M, D, N>(dpt, SharedA<S, T>{vs, warp_row}, dot);
      }
      if (p.causal && row0 + M * kMmaRows - 1 > i0) hide_causal<true, M, N>(st, i0 - row0);
      if constexpr (kModifiers)  // dP^T of the probabilities after dropout (P^T after they are formed)
        if (dropout_on) apply_dropout<M, N>(dpt, kept, p.dropout_scale);
      AK_UNROLL
      for (int nt = 0; nt < N / 8; ++nt)
        AK_UNROLL
        for (int c = 0; c < 2; ++c) {
          const int column = fragment_col(nt, c);
          const float lse_i = lse[column], delta_i = delta[column];
          AK_UNROLL
          for (int mt = 0; mt < M; ++mt)
            AK_UNROLL
            for (int e = c; e < 4; e += 2) {
              if constexpr (kModifiers) {
                const float raw = st[mt][nt][e];
                const float score =
                    final_score(raw, modifiers, i0 + column, row0 + fragment_row(mt, e), queries, padded_keys);
                const float prob = ak::exp2_approx(fmaf(score, scale_log2, -lse_i));
                st[mt][nt][e] = prob;                                                               // P^T
                dpt[mt][nt][e] = prob * (dpt[mt][nt][e] - delta_i) * modifiers.slope_of_cap(raw);  // dS^T
              } else {
                const float prob = ak::exp2_approx(fmaf(st[mt][nt][e], scale_log2, -lse_i));
                st[mt][nt][e] = prob;                                // P^T
                dpt[mt][nt][e] = prob * (dpt[mt][nt][e] - delta_i);  // dS^T
              }
            }
        }
      if constexpr (kModifiers)
        if (dropout_on) apply_dropout<M, N>(st, kept, p.dropout_scale);
      std::uint32_t pf[M][N / 16][4], dsf[M][N / 16][4];
      to_a_fragments<T, M, N>(pf, st);
      to_a_fragments<T, M, N>(dsf, dpt);
      warp_mma<T, S, true, M, N, D>(dv, RegisterA<M, N>{pf}, dot);
      warp_mma<T, S, true, M, N, D>(dk, RegisterA<M, N>{dsf}, qt);
    }
    ak::cp_async_wait<0>();
  }
  // A key that no query sees has gradients 0: its accumulators summed what its hidden scores
  // gave, possibly inf, so they are replaced rather than multiplied by 0.
  AK_UNROLL
  for (int mt = 0; mt < M; ++mt)
    AK_UNROLL
    for (int half = 0; half < 2; ++half) {
      const int j = row0 + fragment_row(mt, 2 * half);
      if (j < padded_keys && (j >= block.limit || (block.mask != nullptr && block.mask[j] == 0)))
        AK_UNROLL
        for (int nt = 0; nt < D / 8; ++nt)
          dk[mt][nt][2 * half] = dk[mt][nt][2 * half + 1] = dv[mt][nt][2 * half] = dv[mt][nt][2 * half + 1] = 0.0f;
    }
  const Sequence seq = sequence_of<kModifiers>(p, block.b);  // again, rather than held through the loop
  store_rows<T, M, D>(static_cast<T*>(g.dk) + seq.first_key * p.k_row + block.h * D, p.k_row, row0,
                      static_cast<int>(seq.keys), dk, RowFactors<M>(p.scale).f);
  store_rows<T, M, D>(static_cast<T*>(g.dv) + seq.first_key * p.v_row + block.h * D, p.v_row, row0,
                      static_cast<int>(seq.keys), dv, RowFactors<M>(1.0f).f);
}

}  // namespace

void forward_mma(const FlashAttentionParams& p, void* stream) {
  with_modifiers(needs_modifier_instances(p), [&](auto modifiers) {
    with_mma_traits<ForwardTraits, decltype(modifiers)::value>(p, [&](auto traits) {
      using Traits = decltype(traits);
      AK_LAUNCH(forward_kernel<Traits>, grid_for<Traits>(p.queries, p), kThreads, Traits::kSharedBytes,
                ak::as_stream(stream), p);
    });
  });
}

void backward_mma(const FlashAttentionGradParams& g, void* stream) {
  const FlashAttentionParams& p = g.forward;
  with_modifiers(needs_modifier_instances(p) || g.dbias != nullptr, [&](auto modifiers) {
    constexpr bool kModified = decltype(modifiers)::value;
    if (p.queries > 0)  // writes delta, which the dk/dv pass reads
      with_mma_traits<DqTraits, kModified>(p, [&](auto traits) {
        using Traits = decltype(traits);
        AK_LAUNCH(dq_kernel<Traits>, grid_for<Traits>(p.queries, p), kThreads, Traits::kSharedBytes,
                  ak::as_stream(stream), g);
      });
    if (p.keys > 0)
      with_mma_traits<DkdvTraits, kModified>(p, [&](auto traits) {
        using Traits = decltype(traits);
        AK_LAUNCH(dkdv_kernel<Traits>, grid_for<Traits>(p.keys, p, true), kThreads, Traits::kSharedBytes,
                  ak::as_stream(stream), g);
      });
  });
}

}  // namespace flash
}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
