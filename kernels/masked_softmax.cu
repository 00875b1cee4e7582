// Masked softmaxes, float32: one warp per row (its max and sum are warp shuffles); a row is read
// once per pass (max, sum, write), as in the unfused paths they serve.
#include "kernels/masked_softmax.h"

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;

__global__ void masked_softmax_kernel(float* scores, const std::uint8_t* key_mask, float* lse, std::int64_t rows,
                                      std::int64_t heads, std::int64_t queries, std::int64_t keys, bool causal) {
  const std::int64_t row = ak::warp_row();
  if (row >= rows) return;  // the whole warp leaves together
  const std::int64_t i = row % queries, b = row / (queries * heads);
  const std::uint8_t* mask = key_mask != nullptr ? key_mask + b * keys : nullptr;
  float* s = scores + row * keys;
  auto visible = [&](std::int64_t j) { return (mask == nullptr || mask[j] != 0) && !(causal && j > i); };
  float max = -INFINITY;
  for (std::int64_t j = ak::lane_id(); j < keys; j += ak::kWarpSize)
    if (visible(j)) max = ak::MaxOf()(max, s[j]);
  max = ak::warp_reduce(max, ak::MaxOf());
  if (max == -INFINITY) {  // this query sees no key
    for (std::int64_t j = ak::lane_id(); j < keys; j += ak::kWarpSize) s[j] = 0.0f;
    if (ak::lane_id() == 0) lse[row] = -INFINITY;
    return;
  }
  float sum = 0.0f;
  for (std::int64_t j = ak::lane_id(); j < keys; j += ak::kWarpSize)
    if (visible(j)) sum += expf(s[j] - max);
  sum = ak::warp_reduce(sum, ak::SumOf());
  for (std::int64_t j = ak::lane_id(); j < keys; j += ak::kWarpSize) s[j] = visible(j) ? expf(s[j] - max) / sum : 0.0f;
  if (ak::lane_id() == 0) lse[row] = max + logf(sum);
}

__global__ void epsilon_softmax_kernel(const float* scores, const std::uint8_t* mask, float* a, std::int64_t rows,
                                       std::int64_t steps, float epsilon) {
  const std::int64_t row = ak::warp_row();
  if (row >= rows) return;
  const std::int64_t offset = row * steps;
  auto weight = [&](std::int64_t t) { return mask == nullptr || mask[offset + t] != 0 ? expf(scores[offset + t]) : 0.0f; };
  float sum = 0.0f;
  for (std::int64_t t = ak::lane_id(); t < steps; t += ak::kWarpSize) sum += weight(t);
  const float denominator = ak::warp_reduce(sum, ak::SumOf()) + epsilon;
  for (std::int64_t t = ak::lane_id(); t < steps; t += ak::kWarpSize)
    a[offset + t] = denominator > 0.0f ? weight(t) / denominator : 0.0f;
}


}  // namespace

void masked_softmax(float* scores, const std::uint8_t* key_mask, float* lse, std::int64_t batch, std::int64_t heads,
                    std::int64_t queries, std::int64_t keys, bool causal, void* stream) {
  ATTNKIT_CHECK(batch >= 0 && heads >= 0 && queries >= 0 && keys >= 0,
                "masked_softmax: sizes must not be negative, got batch ", batch, ", heads ", heads, ", queries ",
                queries, ", keys ", keys);
  const std::int64_t rows = batch * heads * queries;
  if (rows == 0) return;
  AK_LAUNCH(masked_softmax_kernel, ak::warp_row_blocks(rows, kThreads), kThreads, 0, ak::as_stream(stream), scores, key_mask, lse,
            rows, heads, queries, keys, causal);
}

void epsilon_softmax(const float* scores, const std::uint8_t* mask, float* a, std::int64_t rows, std::int64_t steps,
                     double epsilon, void* stream) {
  ATTNKIT_CHECK(rows >= 0 && steps >= 0, "epsilon_softmax: sizes must not be negative, got rows ", rows, ", steps ",
                steps);
  ATTNKIT_CHECK(epsilon >= 0, "epsilon_softmax: epsilon must not be negative, got ", epsilon);
  if (rows == 0) return;
  AK_LAUNCH(epsilon_softmax_kernel, ak::warp_row_blocks(rows, kThreads), kThreads, 0, ak::as_stream(stream), scores, mask, a, rows,
            steps, static_cast<float>(epsilon));
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
