// Layer and batch normalisation, float32. Layer norm gives each row to one warp (its sums are
// warp shuffles). Batch norm's sums over rows, and both norms' parameter gradients, are column
// sums by reduce.cu's axis sum (fixed order); the rest is elementwise, one thread per element.
// The backward first writes dy xhat into dx, sums its columns into dgamma, then overwrites dx.
#include "kernels/norm.h"

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"
#include "kernels/reduce.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;

// Where element i of [rows, channels] finds its statistics: its row's (layer norm) or its
// channel's (batch norm).
AK_DEVICE std::int64_t statistic_index(std::int64_t i, std::int64_t channels, bool per_row) {
  return per_row ? i / channels : i % channels;
}

// Each row's mean and rstd = 1 / sqrt(var + eps), the variance from the deviations (two passes).
__global__ void row_statistics_kernel(const float* x, float* mean, float* rstd, std::int64_t rows,
                                      std::int64_t channels, float eps) {
  const std::int64_t row = ak::warp_row();
  if (row >= rows) return;  // the whole warp leaves together
  const float* xr = x + row * channels;
  float sum = 0.0f;
  for (std::int64_t c = ak::lane_id(); c < channels; c += ak::kWarpSize) sum += xr[c];
  const float m = ak::warp_reduce(sum, ak::SumOf()) / static_cast<float>(channels);
  float squares = 0.0f;
  for (std::int64_t c = ak::lane_id(); c < channels; c += ak::kWarpSize) squares += (xr[c] - m) * (xr[c] - m);
  const float var = ak::warp_reduce(squares, ak::SumOf()) / static_cast<float>(channels);
  if (ak::lane_id() == 0) {
    mean[row] = m;
    rstd[row] = 1.0f / sqrtf(var + eps);
  }
}

__global__ void normalize_kernel(const float* x, const float* gamma, const float* beta, const float* mean,
                                 const float* rstd, float* y, std::int64_t n, std::int64_t channels, bool per_row) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t s = statistic_index(i, channels, per_row), c = i % channels;
    y[i] = gamma[c] * (x[i] - mean[s]) * rstd[s] + beta[c];
  }
}

// out = dy xhat, the terms of dgamma.
__global__ void dy_xhat_kernel(const float* x, const float* mean, const float* rstd, const float* dy, float* out,
                               std::int64_t n, std::int64_t channels, bool per_row) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t s = statistic_index(i, channels, per_row);
    out[i] = dy[i] * (x[i] - mean[s]) * rstd[s];
  }
}

// Layer norm: dx = rstd (g - mean_row(g) - xhat mean_row(g xhat)), g = dy gamma; a warp per row.
__global__ void layer_norm_dx_kernel(const float* x, const float* gamma, const float* mean, const float* rstd,
                                     const float* dy, float* dx, std::int64_t rows, std::int64_t channels) {
  const std::int64_t row = ak::warp_row();
  if (row >= rows) return;
  const std::int64_t offset = row * channels;
  const float m = mean[row], s = rstd[row];
  float sum_g = 0.0f, sum_g_xhat = 0.0f;
  for (std::int64_t c = ak::lane_id(); c < channels; c += ak::kWarpSize) {
    const float g = dy[offset + c] * gamma[c];
    sum_g += g;
    sum_g_xhat += g * (x[offset + c] - m) * s;
  }
  const float mean_g = ak::warp_reduce(sum_g, ak::SumOf()) / static_cast<float>(channels);
  const float mean_g_xhat = ak::warp_reduce(sum_g_xhat, ak::SumOf()) / static_cast<float>(channels);
  for (std::int64_t c = ak::lane_id(); c < channels; c += ak::kWarpSize) {
    const float xhat = (x[offset + c] - m) * s;
    dx[offset + c] = s * (dy[offset + c] * gamma[c] - mean_g - xhat * mean_g_xhat);
  }
}

// out = (x - mean[c])^2, whose column means are the batch's variances.
__global__ void squared_deviation_kernel(const float* x, const float* mean, float* out, std::int64_t n,
                                         std::int64_t channels) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const float d = x[i] - mean[i % channels];
    out[i] = d * d;
  }
}

// Per channel. Training: `var` holds the batch variance; the running statistics move toward the
// batch's. Inference: mean takes the running mean, and the variance is the running one.
__global__ void channel_statistics_kernel(float* running_mean, float* running_var, float* mean, float* var_then_rstd,
                                          std::int64_t channels, bool training, float momentum, float eps) {
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < channels;
       c += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    float var = var_then_rstd[c];
    if (training) {
      running_mean[c] = momentum * running_mean[c] + (1.0f - momentum) * mean[c];
      running_var[c] = momentum * running_var[c] + (1.0f - momentum) * var;
    } else {
      mean[c] = running_mean[c];
      var = running_var[c];
    }
    var_then_rstd[c] = 1.0f / sqrtf(var + eps);
  }
}

// Batch norm in training: dx = rstd (g - gamma sum(dy) / N - xhat gamma sum(dy xhat) / N); in
// inference dx = gamma rstd dy. dbeta = sum(dy) and dgamma = sum(dy xhat) per channel.
__global__ void batch_norm_dx_kernel(const float* x, const float* gamma, const float* mean, const float* rstd,
                                     const float* dy, const float* dgamma, const float* dbeta, float* dx,
                                     std::int64_t n, std::int64_t channels, float rows, bool training) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t c = i % channels;
    const float g = dy[i] * gamma[c];
    if (training) {
      const float xhat = (x[i] - mean[c]) * rstd[c];
      dx[i] = rstd[c] * (g - gamma[c] * dbeta[c] / rows - xhat * gamma[c] * dgamma[c] / rows);
    } else {
      dx[i] = g * rstd[c];
    }
  }
}

void check_sizes(const char* op, std::int64_t rows, std::int64_t channels) {
  ATTNKIT_CHECK(rows >= 0 && channels > 0, op, ": x must be [rows, C] with rows >= 0 and C > 0, got rows ", rows,
                ", C ", channels);
}

void check_eps(const char* op, double eps) { ATTNKIT_CHECK(eps > 0, op, ": eps must be positive, got ", eps); }

unsigned elementwise_blocks(std::int64_t rows, std::int64_t channels) {
  return ak::grid_stride_blocks(rows * channels, kThreads);
}


// dy xhat into dx, its column sums into dgamma, dy's into dbeta.
void parameter_gradients(const float* x, const float* mean, const float* rstd, const float* dy, float* dx,
                         float* dgamma, float* dbeta, std::int64_t rows, std::int64_t channels, bool per_row,
                         void* stream) {
  AK_LAUNCH(dy_xhat_kernel, elementwise_blocks(rows, channels), kThreads, 0, ak::as_stream(stream), x, mean, rstd, dy,
            dx, rows * channels, channels, per_row);
  sum_forward(dx, dgamma, 1, rows, channels, stream);
  sum_forward(dy, dbeta, 1, rows, channels, stream);
}

}  // namespace

void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                        std::int64_t rows, std::int64_t channels, double eps, void* stream) {
  check_sizes("layer_norm_forward", rows, channels);
  check_eps("layer_norm_forward", eps);
  if (rows == 0) return;
  AK_LAUNCH(row_statistics_kernel, ak::warp_row_blocks(rows, kThreads), kThreads, 0, ak::as_stream(stream), x, mean, rstd, rows,
            channels, static_cast<float>(eps));
  AK_LAUNCH(normalize_kernel, elementwise_blocks(rows, channels), kThreads, 0, ak::as_stream(stream), x, gamma, beta,
            mean, rstd, y, rows * channels, channels, true);
}

void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dgamma, float* dbeta, std::int64_t rows, std::int64_t channels,
                         void* stream) {
  check_sizes("layer_norm_backward", rows, channels);
  parameter_gradients(x, mean, rstd, dy, dx, dgamma, dbeta, rows, channels, true, stream);
  if (rows == 0) return;
  AK_LAUNCH(layer_norm_dx_kernel, ak::warp_row_blocks(rows, kThreads), kThreads, 0, ak::as_stream(stream), x, gamma, mean, rstd, dy,
            dx, rows, channels);
}

void batch_norm_forward(const float* x, const float* gamma, const float* beta, float* running_mean,
                        float* running_var, float* y, float* mean, float* rstd, std::int64_t rows,
                        std::int64_t channels, bool training, double momentum, double eps, void* stream) {
  check_sizes("batch_norm_forward", rows, channels);
  check_eps("batch_norm_forward", eps);
  ATTNKIT_CHECK(momentum >= 0 && momentum <= 1, "batch_norm_forward: momentum must be in [0, 1], got ", momentum);
  ATTNKIT_CHECK(!training || rows > 0, "batch_norm_forward: training needs at least one row");
  if (training) {
    mean_forward(x, mean, 1, rows, channels, stream);
    // y holds the squared deviations until it is overwritten with the output.
    AK_LAUNCH(squared_deviation_kernel, elementwise_blocks(rows, channels), kThreads, 0, ak::as_stream(stream), x,
              mean, y, rows * channels, channels);
    mean_forward(y, rstd, 1, rows, channels, stream);
  }
  AK_LAUNCH(channel_statistics_kernel, ak::grid_stride_blocks(channels, kThreads), kThreads, 0, ak::as_stream(stream),
            running_mean, running_var, mean, rstd, channels, training, static_cast<float>(momentum),
            static_cast<float>(eps));
  if (rows == 0) return;
  AK_LAUNCH(normalize_kernel, elementwise_blocks(rows, channels), kThreads, 0, ak::as_stream(stream), x, gamma, beta,
            mean, rstd, y, rows * channels, channels, false);
}

void batch_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dgamma, float* dbeta, std::int64_t rows, std::int64_t channels,
                         bool training, void* stream) {
  check_sizes("batch_norm_backward", rows, channels);
  parameter_gradients(x, mean, rstd, dy, dx, dgamma, dbeta, rows, channels, false, stream);
  if (rows == 0) return;
  AK_LAUNCH(batch_norm_dx_kernel, elementwise_blocks(rows, channels), kThreads, 0, ak::as_stream(stream), x, gamma,
            mean, rstd, dy, dgamma, dbeta, dx, rows * channels, channels, static_cast<float>(rows), training);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
