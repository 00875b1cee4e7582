// Dropout kernels, float32. The forward gives each thread one Philox block, that is four
// consecutive elements, as the CPU op does; the backward is one thread per element.
#include "kernels/dropout.h"

#include "attnkit/error.h"
#include "attnkit/random.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;


// The threshold and the scale in float, rounded from the double rate as the CPU op does, so
// that the masks and the values agree bit for bit.
float threshold_of(double rate) { return static_cast<float>(rate); }
float scale_of(double rate) { return static_cast<float>(1.0 / (1.0 - rate)); }

void check_rate(const char* launcher, double rate) {
  ATTNKIT_CHECK(rate >= 0.0 && rate < 1.0, launcher, ": rate must be in [0, 1), got ", rate);
}

__global__ void dropout_forward_kernel(const float* x, float* y, std::uint8_t* mask, std::int64_t n, float threshold,
                                       float scale, std::uint64_t seed, std::uint64_t offset) {
  const std::int64_t philox_blocks = (n + 3) / 4;
  for (std::int64_t block = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; block < philox_blocks;
       block += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const Philox4x32 words = philox_block(seed, offset + static_cast<std::uint64_t>(block));
    for (int j = 0; j < 4 && block * 4 + j < n; ++j) {
      const std::int64_t i = block * 4 + j;
      const bool keep = uniform_from_word(words.word[j]) >= threshold;
      mask[i] = keep ? 1 : 0;
      y[i] = keep ? x[i] * scale : 0.0f;
    }
  }
}

__global__ void dropout_backward_kernel(const float* dy, const std::uint8_t* mask, float* dx, std::int64_t n,
                                        float scale) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

}  // namespace

void dropout_forward(const float* x, float* y, std::uint8_t* mask, std::int64_t n, double rate, std::uint64_t seed,
                     std::uint64_t offset, void* stream) {
  check_rate("dropout_forward", rate);
  ATTNKIT_CHECK(n >= 0, "dropout_forward: negative size ", n);
  if (n == 0) return;
  AK_LAUNCH(dropout_forward_kernel, ak::grid_stride_blocks((n + 3) / 4, kThreads), kThreads, 0, ak::as_stream(stream), x, y, mask, n,
            threshold_of(rate), scale_of(rate), seed, offset);
}

void dropout_backward(const float* dy, const std::uint8_t* mask, float* dx, std::int64_t n, double rate,
                      void* stream) {
  check_rate("dropout_backward", rate);
  ATTNKIT_CHECK(n >= 0, "dropout_backward: negative size ", n);
  if (n == 0) return;
  AK_LAUNCH(dropout_backward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), dy, mask, dx, n, scale_of(rate));
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
