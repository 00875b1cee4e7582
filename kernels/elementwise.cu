// Elementwise kernels: one thread per element, grid-stride loops, float32.
#include "kernels/elementwise.h"

#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;


AK_DEVICE float apply(float x, int kind) {
  switch (kind) {
    case 1: return x < 0.0f ? 0.0f : x;  // NaN passes through, as on the cpu
    case 2: return tanhf(x);
    case 3: return 1.0f / (1.0f + expf(-x));
    default: return x;
  }
}

AK_DEVICE float derivative_from_output(float y, int kind) {
  switch (kind) {
    case 1: return y > 0.0f ? 1.0f : 0.0f;
    case 2: return 1.0f - y * y;
    case 3: return y * (1.0f - y);
    default: return 1.0f;
  }
}

__global__ void activation_forward_kernel(const float* x, float* y, std::int64_t n, int kind) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    y[i] = apply(x[i], kind);
}

__global__ void activation_backward_kernel(const float* y, const float* dy, float* dx, std::int64_t n, int kind) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    dx[i] = dy[i] * derivative_from_output(y[i], kind);
}

__global__ void multiply_forward_kernel(const float* a, const float* b, float* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    y[i] = a[i] * b[i];
}

__global__ void add_forward_kernel(const float* a, const float* b, float* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    y[i] = a[i] + b[i];
}

__global__ void multiply_backward_kernel(const float* a, const float* b, const float* dy, float* da, float* db,
                                         std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    da[i] = dy[i] * b[i];
    db[i] = dy[i] * a[i];
  }
}

}  // namespace

void activation_forward(const float* x, float* y, std::int64_t n, PointwiseActivation kind, void* stream) {
  if (n == 0) return;
  AK_LAUNCH(activation_forward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), x, y, n, static_cast<int>(kind));
}

void activation_backward(const float* y, const float* dy, float* dx, std::int64_t n, PointwiseActivation kind,
                         void* stream) {
  if (n == 0) return;
  AK_LAUNCH(activation_backward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), y, dy, dx, n,
            static_cast<int>(kind));
}

void multiply_forward(const float* a, const float* b, float* y, std::int64_t n, void* stream) {
  if (n == 0) return;
  AK_LAUNCH(multiply_forward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), a, b, y, n);
}

void add_forward(const float* a, const float* b, float* y, std::int64_t n, void* stream) {
  if (n == 0) return;
  AK_LAUNCH(add_forward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), a, b, y, n);
}

void multiply_backward(const float* a, const float* b, const float* dy, float* da, float* db, std::int64_t n,
                       void* stream) {
  if (n == 0) return;
  AK_LAUNCH(multiply_backward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), a, b, dy, da, db, n);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
