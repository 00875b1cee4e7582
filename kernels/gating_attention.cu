// Dense-softmax gating, fused, float32 (see gating_attention.h). A block of 8 warps holds a tile
// of whole rows (at most 2048 elements) in shared memory: it reads the tile of x once, streams
// the gate's kernel through shared memory in chunks of rows (forward) or columns (backward), and
// keeps each thread's 8 products in registers; a warp per row does the softmax. Tiles are read
// and written in the order of memory (along a row over features, across rows over time), so
// that neighbouring threads touch neighbouring addresses.
#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"
#include "kernels/gating_attention.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / ak::kWarpSize;
constexpr int kTileElements = static_cast<int>(kGatingTileElements);
constexpr int kPerThread = kTileElements / kThreads;
constexpr int kMaxTileRows = 64;

int tile_rows(const GatingLayout& l, bool average) {
  if (average) return static_cast<int>(l.group_rows);
  const std::int64_t fit = kTileElements / l.width;
  return static_cast<int>(fit < 1 ? 1 : (fit > kMaxTileRows ? kMaxTileRows : fit));
}
// Rows (forward) or columns (backward) of the kernel per chunk.
int chunk_of(const GatingLayout& l) {
  const std::int64_t fit = kTileElements / l.width;
  return static_cast<int>(fit < 1 ? 1 : (fit > l.width ? l.width : fit));
}

AK_DEVICE std::int64_t at(const GatingLayout& l, std::int64_t r, std::int64_t c) {
  return r / l.group_rows * l.group_stride + r % l.group_rows * l.row_stride + c * l.column_stride;
}
// Element e of a tile of `rows` rows as (row, column), in the order of memory.
AK_DEVICE void tile_position(const GatingLayout& l, int e, int rows, int& r, int& c) {
  const int width = static_cast<int>(l.width);
  if (l.column_stride == 1) {
    r = e / width, c = e % width;
  } else {
    r = e % rows, c = e / rows;
  }
}
// Rows [r0, r0 + rows) of a tensor in the layout into a row-major shared tile.
AK_DEVICE void load_tile(float* tile, const GatingLayout& l, const float* source, std::int64_t r0, int rows) {
  for (int e = static_cast<int>(threadIdx.x); e < rows * static_cast<int>(l.width); e += kThreads) {
    int r, c;
    tile_position(l, e, rows, r, c);
    tile[r * l.width + c] = source[at(l, r0 + r, c)];
  }
}

// softmax over each of the tile's rows, in place, a warp per row.
AK_DEVICE void softmax_rows(float* tile, int rows, int width) {
  for (int r = static_cast<int>(threadIdx.x) / ak::kWarpSize; r < rows; r += kWarps) {
    float* row = tile + r * width;
    float max = -INFINITY;
    for (int n = static_cast<int>(ak::lane_id()); n < width; n += ak::kWarpSize) max = ak::MaxOf()(max, row[n]);
    max = ak::warp_reduce(max, ak::MaxOf());
    float sum = 0.0f;
    for (int n = static_cast<int>(ak::lane_id()); n < width; n += ak::kWarpSize) sum += expf(row[n] - max);
    const float inverse = 1.0f / ak::warp_reduce(sum, ak::SumOf());
    for (int n = static_cast<int>(ak::lane_id()); n < width; n += ak::kWarpSize) row[n] = expf(row[n] - max) * inverse;
  }
}

__global__ void forward_kernel(GatingLayout l, const float* x, const float* weight, const float* bias, bool average,
                               int max_rows, int chunk, float* probs, float* y) {
  const int W = static_cast<int>(l.width);
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * max_rows;
  const int rows = static_cast<int>(l.rows - r0 < max_rows ? l.rows - r0 : max_rows);
  float* xs = ak::dynamic_shared<float>();  // [max_rows][W]
  float* zs = xs + max_rows * W;            // [max_rows][W]: x weight + bias, then its softmax
  float* ws = zs + max_rows * W;            // [chunk][W]: rows of the kernel
  float* means = ws + chunk * W;            // [W]: the group's mean softmax
  load_tile(xs, l, x, r0, rows);
  float acc[kPerThread] = {};
  for (int k0 = 0; k0 < W; k0 += chunk) {
    const int kn = W - k0 < chunk ? W - k0 : chunk;
    __syncthreads();  // the tile is in place; the previous chunk is no longer read
    for (int e = static_cast<int>(threadIdx.x); e < kn * W; e += kThreads) ws[e] = weight[k0 * W + e];
    __syncthreads();
    AK_UNROLL
    for (int i = 0; i < kPerThread; ++i) {
      const int e = static_cast<int>(threadIdx.x) + i * kThreads;
      if (e >= rows * W) continue;
      const int r = e / W, n = e % W;
      float a = acc[i];
      for (int kk = 0; kk < kn; ++kk) a += xs[r * W + k0 + kk] * ws[kk * W + n];
      acc[i] = a;
    }
  }
  AK_UNROLL
  for (int i = 0; i < kPerThread; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * kThreads;
    if (e < rows * W) zs[e] = acc[i] + (bias != nullptr ? bias[e % W] : 0.0f);
  }
  __syncthreads();
  softmax_rows(zs, rows, W);
  __syncthreads();
  if (average) {
    for (int n = static_cast<int>(threadIdx.x); n < W; n += kThreads) {
      float sum = 0.0f;
      for (int r = 0; r < rows; ++r) sum += zs[r * W + n];
      means[n] = sum / static_cast<float>(rows);
    }
    __syncthreads();
  }
  for (int e = static_cast<int>(threadIdx.x); e < rows * W; e += kThreads) {
    int r, c;
    tile_position(l, e, rows, r, c);
    const float p = average ? means[c] : zs[r * W + c];
    const std::int64_t g = at(l, r0 + r, c);
    probs[g] = p;
    if (y != nullptr) y[g] = xs[r * W + c] * p;
  }
}

__global__ void backward_kernel(GatingLayout l, const float* x, const float* weight, const float* q, const float* dy,
                                bool average, int max_rows, int chunk, float* dx, float* dz) {
  const int W = static_cast<int>(l.width);
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.x) * max_rows;
  const int rows = static_cast<int>(l.rows - r0 < max_rows ? l.rows - r0 : max_rows);
  float* xs = ak::dynamic_shared<float>();  // [max_rows][W]
  float* qs = xs + max_rows * W;            // [max_rows][W]
  float* dys = qs + max_rows * W;           // [max_rows][W]
  float* dzs = dys + max_rows * W;          // [max_rows][W]: dz, then dz weight^T
  float* ws = dzs + max_rows * W;           // [W][chunk + 1]: columns of the kernel
  float* means = ws + W * (chunk + 1);      // [W]: the group's mean softmax
  float* dmeans = means + W;                // [W]: the group's mean of dprobs
  load_tile(xs, l, x, r0, rows);
  load_tile(qs, l, q, r0, rows);
  load_tile(dys, l, dy, r0, rows);
  __syncthreads();
  if (average) {
    for (int n = static_cast<int>(threadIdx.x); n < W; n += kThreads) {
      float sum = 0.0f, dsum = 0.0f;
      for (int r = 0; r < rows; ++r) sum += qs[r * W + n], dsum += dys[r * W + n] * xs[r * W + n];
      means[n] = sum / static_cast<float>(rows);
      dmeans[n] = dsum / static_cast<float>(rows);
    }
    __syncthreads();
  }
  // The gradient reaching q_r: dprobs, or with average the group's mean of it.
  auto dq_at = [&](int r, int n) { return average ? dmeans[n] : dys[r * W + n] * xs[r * W + n]; };
  for (int r = static_cast<int>(threadIdx.x) / ak::kWarpSize; r < rows; r += kWarps) {
    float dot = 0.0f;
    for (int n = static_cast<int>(ak::lane_id()); n < W; n += ak::kWarpSize) dot += qs[r * W + n] * dq_at(r, n);
    dot = ak::warp_reduce(dot, ak::SumOf());
    for (int n = static_cast<int>(ak::lane_id()); n < W; n += ak::kWarpSize) {
      const float g = qs[r * W + n] * (dq_at(r, n) - dot);
      dzs[r * W + n] = g;
      dz[(r0 + r) * W + n] = g;
    }
  }
  float acc[kPerThread] = {};
  for (int n0 = 0; n0 < W; n0 += chunk) {
    const int nn = W - n0 < chunk ? W - n0 : chunk;
    __syncthreads();  // dz is in place; the previous chunk is no longer read
    for (int e = static_cast<int>(threadIdx.x); e < W * nn; e += kThreads)
      ws[e / nn * (chunk + 1) + e % nn] = weight[e / nn * W + n0 + e % nn];
    __syncthreads();
    AK_UNROLL
    for (int i = 0; i < kPerThread; ++i) {
      const int e = static_cast<int>(threadIdx.x) + i * kThreads;
      if (e >= rows * W) continue;
      const int r = e / W, k = e % W;
      float a = acc[i];
      for (int j = 0; j < nn; ++j) a += dzs[r * W + n0 + j] * ws[k * (chunk + 1) + j];
      acc[i] = a;
    }
  }
  __syncthreads();  // dz is no longer read: it takes dz weight^T
  AK_UNROLL
  for (int i = 0; i < kPerThread; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * kThreads;
    if (e < rows * W) dzs[e] = acc[i];
  }
  __syncthreads();
  for (int e = static_cast<int>(threadIdx.x); e < rows * W; e += kThreads) {
    int r, c;
    tile_position(l, e, rows, r, c);
    const float p = average ? means[c] : qs[r * W + c];
    dx[at(l, r0 + r, c)] = dys[r * W + c] * p + dzs[r * W + c];
  }
}

unsigned blocks_for(const GatingLayout& l, int max_rows) {
  return static_cast<unsigned>((l.rows + max_rows - 1) / max_rows);
}

void check_fits(const char* launcher, const GatingLayout& l, bool average) {
  ATTNKIT_CHECK(gating_fused_fits(l, average), launcher, ": ", l.rows, " rows of ", l.width, " entries",
                average ? " in groups of " : "", average ? std::to_string(l.group_rows) : std::string(),
                " do not fit the fused kernel's tile of ", kTileElements, " elements");
}

}  // namespace

GatingLayout gating_over_features(std::int64_t rows, std::int64_t features) {
  return {rows, features, 1, features, 0, 1};
}

GatingLayout gating_over_time(std::int64_t batch, std::int64_t steps, std::int64_t features) {
  return {batch * features, steps, features, steps * features, 1, features};
}

bool gating_fused_fits(const GatingLayout& l, bool average) {
  if (l.rows < 0 || l.width < 1 || l.width > kTileElements) return false;
  return !average || (l.group_rows >= 1 && l.group_rows * l.width <= kTileElements && l.rows % l.group_rows == 0);
}

void gating_forward(const GatingLayout& l, const float* x, const float* weight, const float* bias, bool average,
                    float* probs, float* y, void* stream) {
  check_fits("gating_forward", l, average);
  if (l.rows == 0) return;
  const int max_rows = tile_rows(l, average), chunk = chunk_of(l);
  const std::size_t shared = sizeof(float) * (2 * max_rows * l.width + chunk * l.width + l.width);
  AK_LAUNCH(forward_kernel, blocks_for(l, max_rows), kThreads, shared, ak::as_stream(stream), l, x, weight, bias,
            average, max_rows, chunk, probs, y);
}

void gating_backward(const GatingLayout& l, const float* x, const float* weight, const float* q, const float* dy,
                     bool average, float* dx, float* dz, void* stream) {
  check_fits("gating_backward", l, average);
  if (l.rows == 0) return;
  const int max_rows = tile_rows(l, average), chunk = chunk_of(l);
  const std::size_t shared = sizeof(float) * (4 * max_rows * l.width + l.width * (chunk + 1) + 2 * l.width);
  AK_LAUNCH(backward_kernel, blocks_for(l, max_rows), kThreads, shared, ak::as_stream(stream), l, x, weight, q, dy,
            average, max_rows, chunk, dx, dz);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
