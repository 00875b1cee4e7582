// Decoding attention against a key/value cache, split over the steps (see decode_attention.h).
//
// A block of 4 warps holds its rows' queries in shared memory and walks its range of steps in
// tiles of 32: it reads a tile of k and v (in the order of memory, converted to float32), a
// warp per row takes the tile's 32 scores, a lane per step, with the running max and sum of the
// online softmax kept in shared memory by the row's warp, and then every thread weights v by
// the probabilities into its own elements of the rows' accumulators. The cache is read once per
// key head, which is the floor of a memory-bound step.
#include <cmath>

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/decode_attention.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / ak::kWarpSize;
constexpr int kSteps = ak::kWarpSize;  // steps a tile: a lane each in the scores
constexpr int kRows = static_cast<int>(kDecodeRows);

// Floats of shared memory for `rows` rows: q [rows][dk], a tile of k [kSteps][dk + 1] (padded,
// so that the lanes of a warp, a step each, read distinct banks), of v [kSteps][dv], the
// probabilities [rows][kSteps], the factors that rescale the accumulators [rows], the rows' max
// and sum [rows] each, and the accumulators [rows][dv].
std::int64_t shared_floats(std::int64_t rows, std::int64_t dk, std::int64_t dv) {
  return rows * dk + kSteps * (dk + 1) + kSteps * dv + rows * kSteps + 3 * rows + rows * dv;
}

// The steps [first, end) that any of the block's queries may see, for batch element b.
struct StepRange {
  std::int64_t first, end;
};
AK_DEVICE StepRange split_range(const DecodeAttentionParams& p, std::int64_t length, std::int64_t split) {
  // The earliest query sits at length - queries; the window's left edge starts there.
  std::int64_t first = 0;
  if (p.window_left >= 0) first = length - p.queries - p.window_left;
  if (first < 0) first = 0;
  const std::int64_t steps = length > first ? length - first : 0;
  // Whole tiles a split, so that only a range's last tile is partial.
  const std::int64_t tiles = (steps + kSteps - 1) / kSteps;
  const std::int64_t per_split = (tiles + p.splits - 1) / p.splits * kSteps;
  std::int64_t begin = first + split * per_split, end = begin + per_split;
  if (end > length) end = length;
  if (begin > end) begin = end;
  return {begin, end};
}

template <typename T>
__global__ void split_kernel(DecodeAttentionParams p) {
  const int dk = static_cast<int>(p.qk_dim), dv = static_cast<int>(p.v_dim);
  const std::int64_t b = blockIdx.z, split = blockIdx.x;
  const std::int64_t g = blockIdx.y % p.kv_heads, chunk = blockIdx.y / p.kv_heads;
  const std::int64_t group = p.heads / p.kv_heads, group_rows = group * p.queries;
  const std::int64_t first_row = chunk * kRows;
  const int rows = static_cast<int>(group_rows - first_row < kRows ? group_rows - first_row : kRows);
  const std::int64_t length = p.cache_lengths[b] + p.appended;
  const StepRange range = split_range(p, length, split);

  float* qs = ak::dynamic_shared<float>();
  float* ks = qs + rows * dk;
  float* vs = ks + kSteps * (dk + 1);
  float* ps = vs + kSteps * dv;
  float* rescale = ps + rows * kSteps;
  float* row_max = rescale + rows;
  float* row_sum = row_max + rows;
  float* acc = row_sum + rows;

  // Row r of the block: query head g * group + (first_row + r) / queries, query (first_row + r) % queries.
  const auto head_of = [&](int r) { return g * group + (first_row + r) / p.queries; };
  const auto query_of = [&](int r) { return (first_row + r) % p.queries; };
  const T* q = static_cast<const T*>(p.q);
  const T* k = static_cast<const T*>(p.k_cache);
  const T* v = static_cast<const T*>(p.v_cache);
  for (int e = static_cast<int>(threadIdx.x); e < rows * dk; e += kThreads) {
    const int r = e / dk, c = e % dk;
    qs[e] = ak::to_float(q[(b * p.queries + query_of(r)) * p.q_row + head_of(r) * dk + c]);
  }
  for (int e = static_cast<int>(threadIdx.x); e < rows * dv; e += kThreads) acc[e] = 0.0f;
  // The rows' running max and sum, each row's kept by its warp.
  for (int r = static_cast<int>(threadIdx.x); r < rows; r += kThreads) row_max[r] = -INFINITY, row_sum[r] = 0.0f;
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize, lane = static_cast<int>(ak::lane_id());

  for (std::int64_t j0 = range.first; j0 < range.end; j0 += kSteps) {
    const int n = static_cast<int>(range.end - j0 < kSteps ? range.end - j0 : kSteps);
    __syncthreads();  // q is in place; the previous tile's k, v and probabilities are no longer read
    for (int e = static_cast<int>(threadIdx.x); e < n * dk; e += kThreads) {
      const int s = e / dk, c = e % dk;
      ks[s * (dk + 1) + c] = ak::to_float(k[(b * p.capacity + j0 + s) * p.k_row + g * dk + c]);
    }
    for (int e = static_cast<int>(threadIdx.x); e < n * dv; e += kThreads) {
      const int s = e / dv, c = e % dv;
      vs[e] = ak::to_float(v[(b * p.capacity + j0 + s) * p.v_row + g * dv + c]);
    }
    __syncthreads();
    AK_NO_UNROLL
    for (int r = warp; r < rows; r += kWarps) {
      const std::int64_t j = j0 + lane, position = length - p.queries + query_of(r);
      const bool visible = lane < n && !(p.causal && j > position) &&
                           !(p.window_left >= 0 && j < position - p.window_left) &&
                           !(p.window_right >= 0 && j > position + p.window_right);
      float score = -INFINITY;
      if (visible) {
        float dot = 0.0f;
        for (int c = 0; c < dk; ++c) dot += qs[r * dk + c] * ks[lane * (dk + 1) + c];
        score = p.scale * dot;
        if (p.softcap > 0.0f) score = p.softcap * tanhf(score / p.softcap);
        if (p.alibi_slopes != nullptr)
          score -= p.alibi_slopes[head_of(r)] * static_cast<float>(position > j ? position - j : j - position);
      }
      // Every lane reads the row's max and sum before the reductions, lane 0 writes them after.
      const float old_max = row_max[r], old_sum = row_sum[r];
      const float new_max = ak::MaxOf()(old_max, ak::warp_reduce(score, ak::MaxOf()));
      // A row that has seen nothing yet keeps max -inf: its probabilities and factor are 0.
      const float prob = visible ? expf(score - new_max) : 0.0f;
      const float factor = old_max == -INFINITY ? 0.0f : expf(old_max - new_max);
      const float new_sum = old_sum * factor + ak::warp_reduce(prob, ak::SumOf());
      ps[r * kSteps + lane] = prob;
      if (lane == 0) rescale[r] = factor, row_max[r] = new_max, row_sum[r] = new_sum;
    }
    __syncthreads();
    for (int e = static_cast<int>(threadIdx.x); e < rows * dv; e += kThreads) {
      const int r = e / dv, c = e % dv;
      float sum = acc[e] * rescale[r];
      for (int s = 0; s < n; ++s) sum += ps[r * kSteps + s] * vs[s * dv + c];
      acc[e] = sum;
    }
  }
  __syncthreads();  // the rows' sums are in place, also where the range was empty
  // A row that saw no step has sum 0 (exactly: one that saw any has at least 1), out 0, lse -inf.
  // Row r's place in lse [batch, heads, queries] (and in the partial results, after split's).
  const auto lse_index = [&](int r) { return (b * p.heads + head_of(r)) * p.queries + query_of(r); };
  const std::int64_t split_rows = p.batch * p.heads * p.queries;
  T* out = static_cast<T*>(p.out);
  for (int e = static_cast<int>(threadIdx.x); e < rows * dv; e += kThreads) {
    const int r = e / dv, c = e % dv;
    const float value = row_sum[r] != 0.0f ? acc[e] / row_sum[r] : 0.0f;
    if (p.splits == 1)
      out[(b * p.queries + query_of(r)) * p.out_row + head_of(r) * dv + c] = ak::from_float<T>(value);
    else
      p.partial_out[(split * split_rows + lse_index(r)) * dv + c] = value;
  }
  for (int r = static_cast<int>(threadIdx.x); r < rows; r += kThreads) {
    const float lse = row_sum[r] != 0.0f ? row_max[r] + logf(row_sum[r]) : -INFINITY;
    if (p.splits == 1)
      p.lse[lse_index(r)] = lse;
    else
      p.partial_lse[split * split_rows + lse_index(r)] = lse;
  }
}

// One new step (b, t) a block: its keys and values into the caches, after the cached steps.
template <typename T>
__global__ void append_kernel(DecodeAttentionParams p) {
  const std::int64_t b = blockIdx.x / p.appended, t = blockIdx.x % p.appended;
  const std::int64_t step = b * p.capacity + p.cache_lengths[b] + t;
  const std::int64_t k_width = p.kv_heads * p.qk_dim, v_width = p.kv_heads * p.v_dim;
  for (std::int64_t c = threadIdx.x; c < k_width; c += kThreads)
    static_cast<T*>(p.k_cache)[step * p.k_row + c] = static_cast<const T*>(p.k_new)[blockIdx.x * k_width + c];
  for (std::int64_t c = threadIdx.x; c < v_width; c += kThreads)
    static_cast<T*>(p.v_cache)[step * p.v_row + c] = static_cast<const T*>(p.v_new)[blockIdx.x * v_width + c];
}

// One row (b, h, t) a block: its splits' results weighted by exp(lse_s - lse).
template <typename T>
__global__ void combine_kernel(DecodeAttentionParams p) {
  const std::int64_t row = blockIdx.x, split_rows = p.batch * p.heads * p.queries;
  const std::int64_t t = row % p.queries, h = row / p.queries % p.heads, b = row / (p.queries * p.heads);
  float max = -INFINITY;
  for (std::int64_t s = 0; s < p.splits; ++s) max = ak::MaxOf()(max, p.partial_lse[s * split_rows + row]);
  float sum = 0.0f;
  if (max != -INFINITY)
    for (std::int64_t s = 0; s < p.splits; ++s) sum += expf(p.partial_lse[s * split_rows + row] - max);
  const float lse = max == -INFINITY ? -INFINITY : max + logf(sum);
  for (int c = static_cast<int>(threadIdx.x); c < p.v_dim; c += kThreads) {
    float value = 0.0f;
    if (lse != -INFINITY)
      for (std::int64_t s = 0; s < p.splits; ++s) {
        const float part = p.partial_lse[s * split_rows + row];
        if (part != -INFINITY) value += expf(part - lse) * p.partial_out[(s * split_rows + row) * p.v_dim + c];
      }
    static_cast<T*>(p.out)[(b * p.queries + t) * p.out_row + h * p.v_dim + c] = ak::from_float<T>(value);
  }
  if (threadIdx.x == 0) p.lse[row] = lse;
}

template <typename T>
void launch(const DecodeAttentionParams& p, void* stream) {
  const std::int64_t rows = p.heads / p.kv_heads * p.queries;
  const std::int64_t chunks = (rows + kRows - 1) / kRows;
  const std::int64_t block_rows = rows < kRows ? rows : kRows;
  const auto bytes = static_cast<std::size_t>(shared_floats(block_rows, p.qk_dim, p.v_dim)) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(p.kv_heads * chunks),
                  static_cast<unsigned>(p.batch));
  const auto s = static_cast<ak::stream_t>(stream);
  if (p.appended > 0) AK_LAUNCH(append_kernel<T>, static_cast<unsigned>(p.batch * p.appended), kThreads, 0, s, p);
  if (p.queries == 0) return;
  AK_LAUNCH(split_kernel<T>, grid, kThreads, bytes, s, p);
  if (p.splits > 1)
    AK_LAUNCH(combine_kernel<T>, static_cast<unsigned>(p.batch * p.heads * p.queries), kThreads, 0, s, p);
}

}  // namespace

std::int64_t decode_attention_splits(const DecodeAttentionParams& p, std::int64_t longest) {
  constexpr std::int64_t kTargetBlocks = 2 * 132, kMinStepsPerSplit = 256;
  const std::int64_t rows = p.kv_heads > 0 ? p.heads / p.kv_heads * p.queries : 0;
  const std::int64_t blocks = p.batch * p.kv_heads * ((rows + kRows - 1) / kRows);
  if (blocks <= 0) return 1;
  std::int64_t splits = (kTargetBlocks + blocks - 1) / blocks;
  const std::int64_t most = (longest + kMinStepsPerSplit - 1) / kMinStepsPerSplit;
  if (splits > most) splits = most;
  if (splits > kDecodeMaxSplits) splits = kDecodeMaxSplits;
  return splits < 1 ? 1 : splits;
}

std::string decode_attention_unsupported(const DecodeAttentionParams& p) {
  using detail::concat;
  if (!(p.batch >= 0 && p.heads >= 1 && p.queries >= 0 && p.capacity >= 0 && p.appended >= 0))
    return concat("sizes batch ", p.batch, ", heads ", p.heads, ", queries ", p.queries, ", capacity ", p.capacity,
                  ", appended ", p.appended, " are not valid");
  if (!(p.kv_heads >= 1 && p.heads % p.kv_heads == 0))
    return concat(p.kv_heads, " key heads do not divide ", p.heads, " query heads");
  if (p.qk_dim < 1 || p.qk_dim > kDecodeMaxDim || p.v_dim < 1 || p.v_dim > kDecodeMaxDim)
    return concat("the kernels take head dims 1 to ", kDecodeMaxDim, ", got ", p.qk_dim, " for q and k and ", p.v_dim,
                  " for v");
  if (!(p.splits >= 1 && p.splits <= kDecodeMaxSplits))
    return concat("the kernels take 1 to ", kDecodeMaxSplits, " splits, got ", p.splits);
  const std::int64_t chunks = (p.heads / p.kv_heads * p.queries + kRows - 1) / kRows;
  if (p.batch > 65535 || p.kv_heads * chunks > 65535)
    return concat("batch ", p.batch, " and key heads times row blocks ", p.kv_heads * chunks,
                  ": a launch covers at most 65535 of each");
  if (p.batch * p.appended > (std::int64_t{1} << 31) - 1)
    return concat(p.batch * p.appended, " new steps: the kernels take fewer than 2^31");
  if (p.batch * p.heads * p.queries > (std::int64_t{1} << 31) - 1)
    return concat(p.batch * p.heads * p.queries, " query rows: the kernels take fewer than 2^31");
  if (!(p.softcap >= 0.0f && p.softcap <= 3.4e38f))
    return concat("softcap must be 0 (none) or positive and finite, got ", p.softcap);
  return "";
}

void decode_attention_check(const DecodeAttentionParams& p) {
  const std::string why = decode_attention_unsupported(p);
  ATTNKIT_CHECK(why.empty(), "decode attention: ", why);
}

void decode_attention_forward(const DecodeAttentionParams& p, void* stream) {
  decode_attention_check(p);
  ATTNKIT_CHECK(p.splits == 1 || (p.partial_out != nullptr && p.partial_lse != nullptr), "decode attention: ",
                p.splits, " splits need the partial results' scratch");
  ATTNKIT_CHECK(p.appended == 0 || (p.k_new != nullptr && p.v_new != nullptr), "decode attention: ", p.appended,
                " new steps need k_new and v_new");
  if (p.batch == 0 || (p.queries == 0 && p.appended == 0)) return;
  switch (p.dtype) {
    case AttentionDType::f32: launch<float>(p, stream); break;
    case AttentionDType::f16: launch<ak::half>(p, stream); break;
    case AttentionDType::bf16: launch<ak::bfloat16>(p, stream); break;
  }
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
