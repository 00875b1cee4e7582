// Reductions of one float across a warp and across a block, for the kernels of kernels/ (the
// dialect's warp shuffles, then shared memory). Included by .cu files only.
#pragma once

#include "kernels/dialect.h"

namespace ak {

struct MaxOf {
  AK_DEVICE float operator()(float a, float b) const { return a > b ? a : b; }
};
struct SumOf {
  AK_DEVICE float operator()(float a, float b) const { return a + b; }
};

// `value` combined over the 32 lanes of the warp; every lane receives the result.
template <typename Combine>
AK_DEVICE float warp_reduce(float value, Combine combine) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) value = combine(value, shfl_xor(value, offset));
  return value;
}

// `value` combined over a block of `warps` full warps; every thread receives the result.
// `partials` (`warps` floats of shared memory) holds one value per warp, and must not be reused
// by a later reduction of the same block: there is no barrier after the reads.
template <int warps, typename Combine>
AK_DEVICE float block_reduce(float value, float* partials, Combine combine) {
  value = warp_reduce(value, combine);
  if (lane_id() == 0) partials[threadIdx.x / kWarpSize] = value;
  __syncthreads();  // every warp's partial is written before any thread reads them
  float result = partials[0];
  for (int warp = 1; warp < warps; ++warp) result = combine(result, partials[warp]);
  return result;
}

// Kernels that give each row a warp: the row of this thread's warp (blocks of blockDim.x
// threads, a multiple of 32), and the blocks of `threads` threads that cover `rows` rows.
AK_DEVICE std::int64_t warp_row() {
  return static_cast<std::int64_t>(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize;
}
inline unsigned warp_row_blocks(std::int64_t rows, int threads) {
  const std::int64_t rows_per_block = threads / kWarpSize;
  return static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
}

}  // namespace ak
