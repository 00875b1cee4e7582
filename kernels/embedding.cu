// Embedding kernels: one thread per element of the output (forward) or of dy (backward),
// grid-stride loops, float32. The backward adds with atomics, since ids repeat.
#include "kernels/embedding.h"

#include "attnkit/error.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;


__global__ void embedding_forward_kernel(const std::int32_t* ids, const float* table, float* y, std::int64_t total,
                                         std::int64_t features) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t row = i / features, feature = i % features;
    y[i] = table[static_cast<std::int64_t>(ids[row]) * features + feature];
  }
}

__global__ void zero_kernel(float* x, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    x[i] = 0.0f;
}

__global__ void embedding_backward_kernel(const std::int32_t* ids, const float* dy, float* dtable, std::int64_t total,
                                          std::int64_t features) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t row = i / features, feature = i % features;
    ak::atomic_add(&dtable[static_cast<std::int64_t>(ids[row]) * features + feature], dy[i]);
  }
}

}  // namespace

void embedding_forward(const std::int32_t* ids, const float* table, float* y, std::int64_t count,
                       std::int64_t features, void* stream) {
  ATTNKIT_CHECK(count >= 0 && features >= 0, "embedding_forward: negative size (count ", count, ", features ",
                features, ")");
  const std::int64_t total = count * features;
  if (total == 0) return;
  AK_LAUNCH(embedding_forward_kernel, ak::grid_stride_blocks(total, kThreads), kThreads, 0, ak::as_stream(stream), ids, table, y, total,
            features);
}

void embedding_backward(const std::int32_t* ids, const float* dy, float* dtable, std::int64_t count,
                        std::int64_t vocabulary_size, std::int64_t features, void* stream) {
  ATTNKIT_CHECK(count >= 0 && vocabulary_size > 0 && features >= 0, "embedding_backward: bad sizes (count ", count,
                ", vocabulary_size ", vocabulary_size, ", features ", features, ")");
  const std::int64_t table_size = vocabulary_size * features;
  if (table_size == 0) return;
  AK_LAUNCH(zero_kernel, ak::grid_stride_blocks(table_size, kThreads), kThreads, 0, ak::as_stream(stream), dtable, table_size);
  const std::int64_t total = count * features;
  if (total == 0) return;
  // Repeated ids add into one row with atomics, in an order that varies.
  const ak::UnorderedSums unordered(1e-5);
  AK_LAUNCH(embedding_backward_kernel, ak::grid_stride_blocks(total, kThreads), kThreads, 0, ak::as_stream(stream), ids, dy, dtable, total,
            features);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
