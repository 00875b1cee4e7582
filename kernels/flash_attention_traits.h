// The shapes of the fused attention kernels: threads, rows a block owns, tiles, and each kernel's
// shared-memory layout, owned here and read by the kernels (flash_attention.cu,
// flash_attention_mma.cu), by their launches, and by scripts/attention_launch_table.cpp (the
// occupancy column of scripts/sass_report.sh). Plain constants: no dialect, no CUDA header.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

// Functions of the shapes, for host and device code alike.
#if defined(__CUDACC__)
#define AK_SHAPE_FN __host__ __device__ constexpr
#else
#define AK_SHAPE_FN constexpr
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE::flash {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMmaRows = 16;              // an mma's M
constexpr int kSharedLimit = 227 * 1024;  // a block's shared memory on an H100

// One region of a block's dynamic shared memory: byte offset and size. Regions are laid one
// after another, each a multiple of 16 bytes, so every row stays 16-byte aligned.
struct Region {
  int offset, bytes;
  AK_SHAPE_FN int end() const { return offset + bytes; }
};
AK_SHAPE_FN Region first_region(int bytes) { return {0, bytes}; }
AK_SHAPE_FN Region after(Region previous, int bytes) { return {previous.end(), bytes}; }

// ---------------------------------------------------------------- tensor cores (f16, bf16)

// A shared row of a head: kDim elements and 16 bytes of padding, so that the 8 rows an ldmatrix
// reads fall in distinct banks.
template <typename T, int kDim>
AK_SHAPE_FN int shared_stride() {
  return kDim + 16 / static_cast<int>(sizeof(T));
}
template <typename T, int kDim>
AK_SHAPE_FN int tile_bytes(int rows) {
  return rows * shared_stride<T, kDim>() * static_cast<int>(sizeof(T));
}

// The shape of one element type and head dim (the instances: f16 and bf16 at 32, 64, 128), plain
// or with the score modifiers of flash_attention.h (kModified).
template <typename T, int kDim, bool kModified>
struct MmaShape {
  static_assert(kDim == 32 || kDim == 64 || kDim == 128, "head dims 32, 64, 128");
  static_assert(sizeof(T) == 2, "16-bit elements");
  using Element = T;
  static constexpr int kHeadDim = kDim;
  static constexpr int kStride = shared_stride<T, kDim>();
  static constexpr bool kModifiers = kModified;
};

// Forward: 128 queries a block (two m16 tiles a warp, so that each K and V fragment feeds two
// HMMA), tiles of 64 keys. With modifiers at head dim 128, one m16 tile a warp: their work on
// each score needs the registers of the second tile's accumulators.
template <typename T, int kDim, bool kModified = false>
struct ForwardTraits : MmaShape<T, kDim, kModified> {
  static constexpr int kWarpTiles = kModified && kDim == 128 ? 1 : 2;
  static constexpr int kRows = kWarps * kWarpTiles * kMmaRows;
  static constexpr int kTile = 64;
  static constexpr Region q = first_region(tile_bytes<T, kDim>(kRows));
  static constexpr Region k = after(q, 2 * tile_bytes<T, kDim>(kTile));  // two buffers
  static constexpr Region v = after(k, 2 * tile_bytes<T, kDim>(kTile));
  // Each lane's running max and part of the sum of its rows between tiles (its own slots: no
  // barrier), which leaves the registers to the accumulators (at head dim 128, 128 floats of O
  // and 64 of S a lane).
  static constexpr Region row_maxima = after(v, kThreads * kWarpTiles * 2 * 4);
  static constexpr Region row_sums = after(row_maxima, kThreads * kWarpTiles * 2 * 4);
  static constexpr int kSharedBytes = row_sums.end();
  static_assert(kSharedBytes <= kSharedLimit, "shared memory");
};

// dq pass: like the forward, with dO beside Q and each row's lse and delta; tiles of 32 keys at
// head dim 128, whose accumulators leave fewer registers.
template <typename T, int kDim, bool kModified = false>
struct DqTraits : MmaShape<T, kDim, kModified> {
  static constexpr int kWarpTiles = kModified && kDim >= 64 ? 1 : 2;  // as the forward's, from head dim 64
  static constexpr int kRows = kWarps * kWarpTiles * kMmaRows;
  static constexpr int kTile = kDim == 128 ? 32 : 64;
  static constexpr Region q = first_region(tile_bytes<T, kDim>(kRows));
  static constexpr Region dout = after(q, tile_bytes<T, kDim>(kRows));
  static constexpr Region k = after(dout, 2 * tile_bytes<T, kDim>(kTile));
  static constexpr Region v = after(k, 2 * tile_bytes<T, kDim>(kTile));
  static constexpr Region lse = after(v, kRows * 4);  // floats, base 2
  static constexpr Region delta = after(lse, kRows * 4);
  static constexpr int kSharedBytes = delta.end();
  static_assert(kSharedBytes <= kSharedLimit, "shared memory");
};

// dk/dv pass: 64 keys a block (one m16 tile a warp: dK and dV take the registers), tiles of
// queries; K's and V's fragments held in registers for the whole loop where they fit (head dims
// up to 64, in the plain instances: the modifiers' and dropout's registers leave them no room),
// else read from shared memory every tile.
template <typename T, int kDim, bool kModified = false>
struct DkdvTraits : MmaShape<T, kDim, kModified> {
  static constexpr int kWarpTiles = 1;
  static constexpr int kRows = kWarps * kWarpTiles * kMmaRows;
  static constexpr int kTile = kDim == 128 ? 32 : 64;
  static constexpr bool kHoldKeys = kDim <= 64 && !kModified;
  static constexpr Region k = first_region(tile_bytes<T, kDim>(kRows));
  static constexpr Region v = after(k, tile_bytes<T, kDim>(kRows));
  static constexpr Region q = after(v, 2 * tile_bytes<T, kDim>(kTile));
  static constexpr Region dout = after(q, 2 * tile_bytes<T, kDim>(kTile));
  static constexpr Region lse = after(dout, 2 * kTile * 4);  // floats, base 2, two buffers
  static constexpr Region delta = after(lse, 2 * kTile * 4);
  static constexpr int kSharedBytes = delta.end();
  static_assert(kSharedBytes <= kSharedLimit, "shared memory");
};

// ---------------------------------------------------------------- float32 (CUDA cores)

// 32 rows a block (8 a warp), the other side in tiles of 32 (one a lane); kCols columns of a head
// a lane (head dims up to 32 kCols). Shared rows that lanes read at a stride get one float of
// padding, so that the 32 lanes hit 32 banks. Sizes depend on the head dims, known at launch.
template <int kColumns>
struct F32Traits {
  static constexpr int kCols = kColumns;
  static constexpr int kRows = 32;
  static constexpr int kTile = 32;
  static constexpr int kRowsPerWarp = kRows / kWarps;
  static AK_SHAPE_FN int padded(int dim) { return dim + 1; }

  struct Forward {  // q [kRows][dk], k [kTile][dk + 1], v [kTile][dv], p [kRows][kTile]
    int q, k, v, p, floats;
    AK_SHAPE_FN Forward(int dk, int dv)
        : q(0), k(q + kRows * dk), v(k + kTile * padded(dk)), p(v + kTile * dv), floats(p + kRows * kTile) {}
  };
  struct Dq {  // q [kRows][dk], dout [kRows][dv], k [kTile][dk + 1], v [kTile][dv + 1], ds [kRows][kTile]
    int q, dout, k, v, ds, floats;
    AK_SHAPE_FN Dq(int dk, int dv)
        : q(0), dout(q + kRows * dk), k(dout + kRows * dv), v(k + kTile * padded(dk)), ds(v + kTile * padded(dv)),
          floats(ds + kRows * kTile) {}
  };
  struct Dkdv {  // k [kRows][dk], v [kRows][dv], q [kTile][dk + 1], dout [kTile][dv + 1], p^T and
                 // ds^T [kRows][kTile], lse and delta [kTile]
    int k, v, q, dout, pt, dst, lse, delta, floats;
    AK_SHAPE_FN Dkdv(int dk, int dv)
        : k(0), v(k + kRows * dk), q(v + kRows * dv), dout(q + kTile * padded(dk)), pt(dout + kTile * padded(dv)),
          dst(pt + kRows * kTile), lse(dst + kRows * kTile), delta(lse + kTile), floats(delta + kTile) {}
  };
};
constexpr int kF32MaxDim = 256;

// The kCols instance for `dim` columns: ceil(dim / 32) rounded up to a power of two.
AK_SHAPE_FN int f32_cols_for(std::int64_t dim) {
  int cols = 1;
  while (cols * 32 < dim) cols *= 2;
  return cols;
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE::flash
