// Cross-entropy, float32. Categorical: one block per row, the row's sums through shuffles within
// each warp and then across the warps through shared memory. Binary: one thread per element.
// The forward's mean (over rows, or elements, each weighted or not) is a second launch of one
// block, so that it adds in a fixed order.
#include "kernels/loss.h"

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / ak::kWarpSize;
constexpr float kEpsilon = 1e-7f;  // Keras's epsilon (ops::kKerasEpsilon)

AK_DEVICE float clip(float q) { return q < kEpsilon ? kEpsilon : (q > 1.0f - kEpsilon ? 1.0f - kEpsilon : q); }
AK_DEVICE bool inside_clip(float q) { return q > kEpsilon && q < 1.0f - kEpsilon; }

// row_losses[row] = -sum_c target log p, with p = clip(pred / sum pred) or log_softmax(pred).
__global__ void row_losses_kernel(const float* pred, const float* target, float* row_losses, std::int64_t cols,
                                  bool from_logits) {
  AK_SHARED(float, first_partials, [kWarps]);
  AK_SHARED(float, second_partials, [kWarps]);
  AK_SHARED(float, loss_partials, [kWarps]);
  const std::int64_t offset = static_cast<std::int64_t>(blockIdx.x) * cols;
  const float* p = pred + offset;
  const float* y = target + offset;
  float target_dot_log_p = 0.0f;
  if (from_logits) {
    float max = -INFINITY;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) max = ak::MaxOf()(max, p[c]);
    max = ak::block_reduce<kWarps>(max, first_partials, ak::MaxOf());
    float sum = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(p[c] - max);
    const float log_sum = max + logf(ak::block_reduce<kWarps>(sum, second_partials, ak::SumOf()));
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) target_dot_log_p += y[c] * (p[c] - log_sum);
  } else {
    float sum = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += p[c];
    sum = ak::block_reduce<kWarps>(sum, first_partials, ak::SumOf());
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) target_dot_log_p += y[c] * logf(clip(p[c] / sum));
  }
  target_dot_log_p = ak::block_reduce<kWarps>(target_dot_log_p, loss_partials, ak::SumOf());
  if (threadIdx.x == 0) row_losses[blockIdx.x] = -target_dot_log_p;
}

// loss[0] = sum_r w_(r / per_weight) row_losses[r] / rows, by one block; no weights: each is 1.
__global__ void mean_loss_kernel(const float* row_losses, const float* weights, std::int64_t per_weight, float* loss,
                                 std::int64_t rows) {
  AK_SHARED(float, partials, [kWarps]);
  float sum = 0.0f;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    sum += weights == nullptr ? row_losses[r] : weights[r / per_weight] * row_losses[r];
  sum = ak::block_reduce<kWarps>(sum, partials, ak::SumOf());
  if (threadIdx.x == 0) *loss = sum / static_cast<float>(rows);
}

// From logits: dpred = scale (softmax(pred) sum_c target - target).
// From probabilities, with s = sum pred and q = pred / s: dq = -target / q inside the clip range
// (0 outside), and dpred = scale (dq - sum_c dq_c q_c) / s. A row's weight multiplies its scale.
__global__ void backward_kernel(const float* pred, const float* target, const float* row_weights, float* dpred,
                                std::int64_t cols, bool from_logits, float dloss_over_rows) {
  AK_SHARED(float, first_partials, [kWarps]);
  AK_SHARED(float, second_partials, [kWarps]);
  AK_SHARED(float, third_partials, [kWarps]);
  const float scale = row_weights == nullptr ? dloss_over_rows : dloss_over_rows * row_weights[blockIdx.x];
  const std::int64_t offset = static_cast<std::int64_t>(blockIdx.x) * cols;
  const float* p = pred + offset;
  const float* y = target + offset;
  float* dp = dpred + offset;
  if (from_logits) {
    float max = -INFINITY;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) max = ak::MaxOf()(max, p[c]);
    max = ak::block_reduce<kWarps>(max, first_partials, ak::MaxOf());
    float sum = 0.0f, target_sum = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      sum += expf(p[c] - max);
      target_sum += y[c];
    }
    sum = ak::block_reduce<kWarps>(sum, second_partials, ak::SumOf());
    target_sum = ak::block_reduce<kWarps>(target_sum, third_partials, ak::SumOf());
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x)
      dp[c] = scale * (expf(p[c] - max) / sum * target_sum - y[c]);
  } else {
    float s = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += p[c];
    s = ak::block_reduce<kWarps>(s, first_partials, ak::SumOf());
    float dq_dot_q = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      if (inside_clip(p[c] / s)) dq_dot_q -= y[c];  // dq q = -target inside the clip range
    }
    dq_dot_q = ak::block_reduce<kWarps>(dq_dot_q, second_partials, ak::SumOf());
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float q = p[c] / s;
      const float dq = inside_clip(q) ? -y[c] / q : 0.0f;
      dp[c] = scale * (dq - dq_dot_q) / s;
    }
  }
}

// Binary, element i: from logits z, max(z, 0) - z y + log1p(exp(-|z|)) (stable for any z); from
// probabilities, -y log(q + eps) - (1 - y) log(1 - q + eps) with q clipped to [eps, 1 - eps].
// Unweighted: mean_loss_kernel weighs them.
__global__ void binary_losses_kernel(const float* pred, const float* target, float* losses, std::int64_t n,
                                     bool from_logits) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const float p = pred[i], y = target[i];
    if (from_logits) {
      losses[i] = fmaxf(p, 0.0f) - p * y + log1pf(expf(-fabsf(p)));
    } else {
      // 1 - q clipped as its own value: float's 1 - (1 - eps) is not eps.
      losses[i] = -(y * logf(clip(p) + kEpsilon) + (1.0f - y) * logf(clip(1.0f - p) + kEpsilon));
    }
  }
}

// From logits: scale (sigmoid(z) - y); from probabilities: scale (-y / (q + eps) + (1 - y) /
// (1 - q + eps)) inside the clip range, 0 outside. The element's weight multiplies its scale.
__global__ void binary_backward_kernel(const float* pred, const float* target, const float* weights,
                                       std::int64_t per_weight, float* dpred, std::int64_t n, bool from_logits,
                                       float dloss_over_n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const float p = pred[i], y = target[i];
    const float scale = weights == nullptr ? dloss_over_n : dloss_over_n * weights[i / per_weight];
    if (from_logits) {
      const float sigma = p >= 0.0f ? 1.0f / (1.0f + expf(-p)) : expf(p) / (1.0f + expf(p));
      dpred[i] = scale * (sigma - y);
    } else {
      dpred[i] = inside_clip(p) ? scale * (-y / (p + kEpsilon) + (1.0f - y) / (1.0f - p + kEpsilon)) : 0.0f;
    }
  }
}

void check_sizes(const char* op, std::int64_t rows, std::int64_t cols) {
  ATTNKIT_CHECK(rows > 0 && cols > 0, op, ": pred must not be empty, got rows ", rows, ", cols ", cols);
}

void check_elements_per_weight(const char* op, std::int64_t n, std::int64_t elements_per_weight) {
  ATTNKIT_CHECK(elements_per_weight > 0 && n % elements_per_weight == 0, op, ": elements_per_weight must divide n = ",
                n, ", got ", elements_per_weight);
}

}  // namespace

void categorical_crossentropy_forward(const float* pred, const float* target, const float* row_weights,
                                      float* row_losses, float* loss, std::int64_t rows, std::int64_t cols,
                                      bool from_logits, void* stream) {
  check_sizes("categorical_crossentropy_forward", rows, cols);
  AK_LAUNCH(row_losses_kernel, static_cast<unsigned>(rows), kThreads, 0, ak::as_stream(stream), pred, target, row_losses,
            cols, from_logits);
  AK_LAUNCH(mean_loss_kernel, 1, kThreads, 0, ak::as_stream(stream), row_losses, row_weights, std::int64_t{1}, loss,
            rows);
}

void categorical_crossentropy_backward(const float* pred, const float* target, const float* row_weights,
                                       float* dpred, std::int64_t rows, std::int64_t cols, bool from_logits,
                                       float dloss, void* stream) {
  check_sizes("categorical_crossentropy_backward", rows, cols);
  const float dloss_over_rows = dloss / static_cast<float>(rows);
  AK_LAUNCH(backward_kernel, static_cast<unsigned>(rows), kThreads, 0, ak::as_stream(stream), pred, target,
            row_weights, dpred, cols, from_logits, dloss_over_rows);
}

void binary_crossentropy_forward(const float* pred, const float* target, const float* weights,
                                 std::int64_t elements_per_weight, float* element_losses, float* loss, std::int64_t n,
                                 bool from_logits, void* stream) {
  check_sizes("binary_crossentropy_forward", n, 1);
  check_elements_per_weight("binary_crossentropy_forward", n, elements_per_weight);
  AK_LAUNCH(binary_losses_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), pred, target,
            element_losses, n, from_logits);
  AK_LAUNCH(mean_loss_kernel, 1, kThreads, 0, ak::as_stream(stream), element_losses, weights, elements_per_weight, loss,
            n);
}

void binary_crossentropy_backward(const float* pred, const float* target, const float* weights,
                                  std::int64_t elements_per_weight, float* dpred, std::int64_t n, bool from_logits,
                                  float dloss, void* stream) {
  check_sizes("binary_crossentropy_backward", n, 1);
  check_elements_per_weight("binary_crossentropy_backward", n, elements_per_weight);
  const float dloss_over_n = dloss / static_cast<float>(n);
  AK_LAUNCH(binary_backward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), pred,
            target, weights, elements_per_weight, dpred, n, from_logits, dloss_over_n);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
