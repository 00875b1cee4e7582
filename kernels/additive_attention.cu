// Additive tanh-softmax pooling, fused, float32 (see additive_attention.h). One block of 8 warps
// per batch element walks its steps in chunks that fit shared memory (at most 8192 floats of x):
// the chunk is copied in once, each warp takes steps of it for the dot products (warp
// shuffles), and each thread owns features for the sums over the chunk's steps. Only thread 0
// adds the per-step scalars, in step order, so results do not depend on the schedule.
#include "attnkit/error.h"
#include "kernels/additive_attention.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / ak::kWarpSize;
constexpr std::int64_t kChunkFloats = 8192;

// Steps of x per chunk: as many as fit, at least 1.
int chunk_steps(const AdditiveAttentionShape& s) {
  const std::int64_t fit = kChunkFloats / s.features;
  return static_cast<int>(fit < 1 ? 1 : (fit < s.steps ? fit : s.steps));
}

// Steps [t0, t0 + n) of x[b] into the chunk (contiguous in memory).
AK_DEVICE void load_chunk(float* xs, const float* xb, std::int64_t t0, int n, std::int64_t features) {
  for (std::int64_t e = threadIdx.x; e < n * features; e += kThreads) xs[e] = xb[t0 * features + e];
}

// x_t . v over a chunk row, by one warp; every lane gets it.
AK_DEVICE float warp_dot(const float* row, const float* v, std::int64_t features) {
  float dot = 0.0f;
  for (std::int64_t k = ak::lane_id(); k < features; k += ak::kWarpSize) dot += row[k] * v[k];
  return ak::warp_reduce(dot, ak::SumOf());
}

__global__ void forward_kernel(AdditiveAttentionShape s, const float* x, const float* w, const float* b,
                               const std::uint8_t* mask, float epsilon, int chunk, float* y, float* weights) {
  const std::int64_t bi = blockIdx.x, T = s.steps, D = s.features;
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize;
  float* xs = ak::dynamic_shared<float>();  // [chunk][D]
  float* ws = xs + chunk * D;               // [D]
  float* sums = ws + D;                     // [D]: sum_t s_t x_t
  float* exps = sums + D;                   // [chunk]: the chunk's s_t
  float* total = exps + chunk;              // [1]: sum_t s_t
  const float* xb = x + bi * T * D;
  for (std::int64_t k = threadIdx.x; k < D; k += kThreads) ws[k] = w[k], sums[k] = 0.0f;
  if (threadIdx.x == 0) total[0] = 0.0f;
  for (std::int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int n = static_cast<int>(T - t0 < chunk ? T - t0 : chunk);
    __syncthreads();  // w is in place, and the previous chunk is no longer read
    load_chunk(xs, xb, t0, n, D);
    __syncthreads();
    for (int r = warp; r < n; r += kWarps) {
      const float dot = warp_dot(xs + r * D, ws, D);
      const std::int64_t t = t0 + r;
      if (ak::lane_id() == 0) {
        const bool visible = mask == nullptr || mask[bi * T + t] != 0;
        const float e = visible ? expf(tanhf(dot + (b != nullptr ? b[t] : 0.0f))) : 0.0f;
        exps[r] = e;
        weights[bi * T + t] = e;  // normalised below
      }
    }
    __syncthreads();
    if (!s.return_sequences)
      for (std::int64_t k = threadIdx.x; k < D; k += kThreads) {
        float acc = sums[k];
        for (int r = 0; r < n; ++r) acc += exps[r] * xs[r * D + k];
        sums[k] = acc;
      }
    if (threadIdx.x == 0)
      for (int r = 0; r < n; ++r) total[0] += exps[r];
  }
  __syncthreads();
  const float denominator = total[0] + epsilon;
  const float inverse = denominator > 0.0f ? 1.0f / denominator : 0.0f;
  for (std::int64_t t = threadIdx.x; t < T; t += kThreads) weights[bi * T + t] *= inverse;
  if (!s.return_sequences) {
    for (std::int64_t k = threadIdx.x; k < D; k += kThreads) y[bi * D + k] = sums[k] * inverse;
    return;
  }
  __syncthreads();  // every weight is normalised
  for (std::int64_t e = threadIdx.x; e < T * D; e += kThreads) y[bi * T * D + e] = weights[bi * T + e / D] * xb[e];
}

__global__ void backward_kernel(AdditiveAttentionShape s, const float* x, const float* w, const float* b,
                                const float* weights, const float* dy, int chunk, float* dx, float* dw_partial,
                                float* dpre, float* slope) {
  const std::int64_t bi = blockIdx.x, T = s.steps, D = s.features;
  const int warp = static_cast<int>(threadIdx.x) / ak::kWarpSize;
  float* xs = ak::dynamic_shared<float>();  // [chunk][D]
  float* ws = xs + chunk * D;               // [D]
  float* dys = ws + D;                      // [D]: dy[b] when pooled
  float* u = dys + D;                       // [D]: sum_t c_t da_t x_t
  float* v = u + D;                         // [D]: sum_t c_t x_t
  float* cs = v + D;                        // [chunk]: c_t = a_t (1 - e_t^2)
  float* das = cs + chunk;                  // [chunk]: da_t
  float* weighted = das + chunk;            // [1]: W = sum_t a_t da_t
  const float* xb = x + bi * T * D;
  const float* ab = weights + bi * T;
  // The upstream gradient at step t, feature k: dy[b] pooled, dy[b, t] with sequences.
  auto dy_at = [&](std::int64_t t, std::int64_t k) {
    return s.return_sequences ? dy[(bi * T + t) * D + k] : dys[k];
  };
  for (std::int64_t k = threadIdx.x; k < D; k += kThreads) {
    ws[k] = w[k], u[k] = v[k] = 0.0f;
    if (!s.return_sequences) dys[k] = dy[bi * D + k];
  }
  if (threadIdx.x == 0) weighted[0] = 0.0f;
  for (std::int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int n = static_cast<int>(T - t0 < chunk ? T - t0 : chunk);
    __syncthreads();
    load_chunk(xs, xb, t0, n, D);
    __syncthreads();
    for (int r = warp; r < n; r += kWarps) {
      const std::int64_t t = t0 + r;
      const float* row = xs + r * D;
      const float score = warp_dot(row, ws, D);
      float partial = 0.0f;
      for (std::int64_t k = ak::lane_id(); k < D; k += ak::kWarpSize) partial += row[k] * dy_at(t, k);
      const float da = ak::warp_reduce(partial, ak::SumOf());
      if (ak::lane_id() == 0) {
        const float e = tanhf(score + (b != nullptr ? b[t] : 0.0f));
        const float c = ab[t] * (1.0f - e * e);
        cs[r] = c, das[r] = da;
        slope[bi * T + t] = c, dpre[bi * T + t] = da;  // dpre finished below
      }
    }
    __syncthreads();
    for (std::int64_t k = threadIdx.x; k < D; k += kThreads) {
      float uk = u[k], vk = v[k];
      for (int r = 0; r < n; ++r) {
        uk += cs[r] * das[r] * xs[r * D + k];
        vk += cs[r] * xs[r * D + k];
      }
      u[k] = uk, v[k] = vk;
    }
    if (threadIdx.x == 0)
      for (int r = 0; r < n; ++r) weighted[0] += ab[t0 + r] * das[r];
  }
  __syncthreads();
  const float W = weighted[0];
  for (std::int64_t k = threadIdx.x; k < D; k += kThreads) dw_partial[bi * D + k] = u[k] - W * v[k];
  for (std::int64_t t = threadIdx.x; t < T; t += kThreads)
    dpre[bi * T + t] = slope[bi * T + t] * (dpre[bi * T + t] - W);
  __syncthreads();  // every dpre is final
  for (std::int64_t e = threadIdx.x; e < T * D; e += kThreads) {
    const std::int64_t t = e / D, k = e % D;
    dx[bi * T * D + e] = ab[t] * dy_at(t, k) + dpre[bi * T + t] * ws[k];
  }
}

void check_shape(const char* launcher, const AdditiveAttentionShape& s) {
  ATTNKIT_CHECK(s.batch >= 0 && s.steps >= 0 && s.features >= 0 && s.features <= kAdditiveAttentionMaxFeatures,
                launcher, ": sizes batch ", s.batch, ", steps ", s.steps, ", features ", s.features,
                " are not valid (features at most ", kAdditiveAttentionMaxFeatures, ")");
}

}  // namespace

void additive_attention_forward(const AdditiveAttentionShape& s, const float* x, const float* w, const float* b,
                                const std::uint8_t* mask, float epsilon, float* y, float* weights, void* stream) {
  check_shape("additive_attention_forward", s);
  if (s.batch == 0 || s.steps == 0 || s.features == 0) return;  // the op fills such results itself
  const int chunk = chunk_steps(s);
  const std::size_t shared = sizeof(float) * (chunk * s.features + 2 * s.features + chunk + 1);
  AK_LAUNCH(forward_kernel, static_cast<unsigned>(s.batch), kThreads, shared, ak::as_stream(stream), s, x, w, b, mask,
            epsilon, chunk, y, weights);
}

void additive_attention_backward(const AdditiveAttentionShape& s, const float* x, const float* w, const float* b,
                                 const float* weights, const float* dy, float* dx, float* dw_partial, float* dpre,
                                 float* slope, void* stream) {
  check_shape("additive_attention_backward", s);
  if (s.batch == 0 || s.steps == 0 || s.features == 0) return;
  const int chunk = chunk_steps(s);
  const std::size_t shared = sizeof(float) * (chunk * s.features + 4 * s.features + 2 * chunk + 1);
  AK_LAUNCH(backward_kernel, static_cast<unsigned>(s.batch), kThreads, shared, ak::as_stream(stream), s, x, w, b,
            weights, dy, chunk, dx, dw_partial, dpre, slope);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
