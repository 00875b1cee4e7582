// The fused optimizer steps, and what comes before them (gradient norms, clipping, weight decay):
// one thread per weight (grid-stride loops), float32, with the operations in the order of
// src/optimizers.cpp so that the results agree with the CPU optimizers. A squared norm is summed
// by one block, so that it adds in a fixed order.
#include "kernels/optimizers.h"

#include <cmath>

#include "attnkit/error.h"
#include "kernels/block_reduce.cuh"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / ak::kWarpSize;

// out[0] = sum of x[i]^2, by one block.
__global__ void squared_norm_kernel(const float* x, std::int64_t n, float* out) {
  AK_SHARED(float, partials, [kWarps]);
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += x[i] * x[i];
  sum = ak::block_reduce<kWarps>(sum, partials, ak::SumOf());
  if (threadIdx.x == 0) *out = sum;
}

__global__ void clip_gradient_kernel(const float* grad, float* clipped, std::int64_t n, float scale,
                                     float clipvalue) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    float g = grad[i] * scale;
    if (clipvalue > 0) g = g < -clipvalue ? -clipvalue : (g > clipvalue ? clipvalue : g);  // NaN stays NaN
    clipped[i] = g;
  }
}

__global__ void decay_weights_kernel(float* param, std::int64_t n, float decay) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    param[i] -= param[i] * decay;
}

__global__ void adam_step_kernel(float* param, const float* grad, float* m, float* v, std::int64_t n, float step_size,
                                 float beta_1, float beta_2, float epsilon) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const float g = grad[i];
    const float m_i = beta_1 * m[i] + (1.0f - beta_1) * g;
    const float v_i = beta_2 * v[i] + (1.0f - beta_2) * g * g;
    m[i] = m_i;
    v[i] = v_i;
    param[i] -= step_size * m_i / (sqrtf(v_i) + epsilon);
  }
}

__global__ void sgd_step_kernel(float* param, const float* grad, float* velocity, std::int64_t n, float learning_rate,
                                float momentum) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    if (velocity == nullptr) {
      param[i] -= learning_rate * grad[i];
    } else {
      const float v_i = momentum * velocity[i] - learning_rate * grad[i];
      velocity[i] = v_i;
      param[i] += v_i;
    }
  }
}

}  // namespace

void squared_norm(const float* x, std::int64_t n, float* out, void* stream) {
  ATTNKIT_CHECK(n >= 0, "squared_norm: negative size ", n);
  AK_LAUNCH(squared_norm_kernel, 1, kThreads, 0, ak::as_stream(stream), x, n, out);
}

void clip_gradient(const float* grad, float* clipped, std::int64_t n, double scale, double clipvalue, void* stream) {
  ATTNKIT_CHECK(n >= 0, "clip_gradient: negative size ", n);
  ATTNKIT_CHECK(clipvalue >= 0, "clip_gradient: clipvalue must not be negative, got ", clipvalue);
  if (n == 0) return;
  AK_LAUNCH(clip_gradient_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), grad,
            clipped, n, static_cast<float>(scale), static_cast<float>(clipvalue));
}

void decay_weights(float* param, std::int64_t n, double decay, void* stream) {
  ATTNKIT_CHECK(n >= 0, "decay_weights: negative size ", n);
  if (n == 0) return;
  AK_LAUNCH(decay_weights_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), param, n,
            static_cast<float>(decay));
}

void adam_step(float* param, const float* grad, float* m, float* v, std::int64_t n, double learning_rate,
               double beta_1, double beta_2, double epsilon, std::int64_t step, void* stream) {
  ATTNKIT_CHECK(n >= 0, "adam_step: negative size ", n);
  ATTNKIT_CHECK(step >= 1, "adam_step: the step number starts at 1, got ", step);
  ATTNKIT_CHECK(learning_rate >= 0 && beta_1 >= 0 && beta_1 < 1 && beta_2 >= 0 && beta_2 < 1 && epsilon > 0,
                "adam_step: bad hyperparameters (learning_rate ", learning_rate, ", beta_1 ", beta_1, ", beta_2 ",
                beta_2, ", epsilon ", epsilon, ")");
  if (n == 0) return;
  // The bias correction in double and rounded once, as the CPU optimizer does.
  const double t = static_cast<double>(step);
  const float step_size =
      static_cast<float>(learning_rate * std::sqrt(1 - std::pow(beta_2, t)) / (1 - std::pow(beta_1, t)));
  AK_LAUNCH(adam_step_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), param, grad, m, v, n, step_size,
            static_cast<float>(beta_1), static_cast<float>(beta_2), static_cast<float>(epsilon));
}

void sgd_step(float* param, const float* grad, float* velocity, std::int64_t n, double learning_rate,
              double momentum, void* stream) {
  ATTNKIT_CHECK(n >= 0, "sgd_step: negative size ", n);
  ATTNKIT_CHECK(learning_rate >= 0 && momentum >= 0 && momentum < 1, "sgd_step: bad hyperparameters (learning_rate ",
                learning_rate, ", momentum ", momentum, ")");
  ATTNKIT_CHECK(momentum == 0 || velocity != nullptr, "sgd_step: momentum ", momentum, " needs a velocity buffer");
  if (n == 0) return;
  AK_LAUNCH(sgd_step_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), param, grad,
            momentum == 0 ? nullptr : velocity, n, static_cast<float>(learning_rate), static_cast<float>(momentum));
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
