// The GPU's ceilings for the attention benchmarks (see ceilings.h).
//
//   mma rate   every warp of 4 blocks per SM runs 8 independent chains of mma.sync m16n8k16
//              (4096 FLOPs each) on values in registers: no memory traffic, so the tensor cores'
//              rate for the instruction attnkit's kernels use bounds theirs
//   bandwidth  a grid-stride copy of 16-byte vectors between two 1 GiB buffers
//   launch     10,000 launches of an empty kernel, one after another, over their count
#include <cuda_runtime.h>

#include <cstdint>

#include "bench/ceilings.h"
#include "cuda/check.h"
#include "kernels/dialect.h"

namespace attnkit::bench {
namespace {

constexpr int kChains = 8;

template <typename T>
__global__ void mma_chains(float* sink, int iterations, std::uint32_t pair) {
  const std::uint32_t a[4] = {pair, pair, pair, pair}, b[2] = {pair, pair};
  float acc[kChains][4] = {};
  for (int i = 0; i < iterations; ++i)
#pragma unroll
    for (int c = 0; c < kChains; ++c) ak::mma_m16n8k16<T>(acc[c], a, b, acc[c]);
  float total = 0;
  for (int c = 0; c < kChains; ++c) total += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  if (total == -1.0f) *sink = total;  // never true: keeps the chains alive
}

__global__ void copy_vectors(const float4* from, float4* to, std::size_t count) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    to[i] = from[i];
}

__global__ void empty_kernel() {}

// Milliseconds of `body` (launches on the default stream), between two events.
template <typename F>
float milliseconds(F&& body) {
  cudaEvent_t start, stop;
  ATTNKIT_CUDA_CHECK(cudaEventCreate(&start));
  ATTNKIT_CUDA_CHECK(cudaEventCreate(&stop));
  ATTNKIT_CUDA_CHECK(cudaEventRecord(start));
  body();
  ATTNKIT_CUDA_CHECK(cudaEventRecord(stop));
  ATTNKIT_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  ATTNKIT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  ATTNKIT_CUDA_CHECK(cudaEventDestroy(start));
  ATTNKIT_CUDA_CHECK(cudaEventDestroy(stop));
  return ms;
}

template <typename T>
double mma_tflops(int multiprocessors, float* sink, std::uint32_t pair) {
  const int blocks = 4 * multiprocessors, threads = 128, iterations = 4096;
  AK_LAUNCH(mma_chains<T>, blocks, threads, 0, nullptr, sink, 64, pair);  // warm-up
  const float ms = milliseconds([&] { AK_LAUNCH(mma_chains<T>, blocks, threads, 0, nullptr, sink, iterations, pair); });
  const double mmas = double(blocks) * (threads / 32) * iterations * kChains;
  return mmas * 4096.0 / (ms * 1e-3) / 1e12;
}

}  // namespace

Ceilings measure_ceilings() {
  int device = 0, multiprocessors = 0;
  ATTNKIT_CUDA_CHECK(cudaGetDevice(&device));
  ATTNKIT_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  Ceilings c;
  float* sink = nullptr;
  ATTNKIT_CUDA_CHECK(cudaMalloc(&sink, sizeof(float)));
  c.mma_f16_tflops = mma_tflops<ak::half>(multiprocessors, sink, 0x3C003C00u);     // 1.0, 1.0 in f16
  c.mma_bf16_tflops = mma_tflops<ak::bfloat16>(multiprocessors, sink, 0x3F803F80u);  // 1.0, 1.0 in bf16
  ATTNKIT_CUDA_CHECK(cudaFree(sink));

  const std::size_t bytes = std::size_t(1) << 30, count = bytes / sizeof(float4);
  float4 *from = nullptr, *to = nullptr;
  ATTNKIT_CUDA_CHECK(cudaMalloc(&from, bytes));
  ATTNKIT_CUDA_CHECK(cudaMalloc(&to, bytes));
  ATTNKIT_CUDA_CHECK(cudaMemset(from, 0, bytes));
  const unsigned blocks = static_cast<unsigned>(8 * multiprocessors);
  AK_LAUNCH(copy_vectors, blocks, 512, 0, nullptr, from, to, count);  // warm-up
  const int copies = 10;
  const float copy_ms = milliseconds([&] {
    for (int i = 0; i < copies; ++i) AK_LAUNCH(copy_vectors, blocks, 512, 0, nullptr, from, to, count);
  });
  c.copy_gbytes_per_second = 2.0 * double(bytes) * copies / (copy_ms * 1e-3) / 1e9;
  ATTNKIT_CUDA_CHECK(cudaFree(from));
  ATTNKIT_CUDA_CHECK(cudaFree(to));

  const int launches = 10000;
  AK_LAUNCH(empty_kernel, 1, 32, 0, nullptr);
  const float launch_ms = milliseconds([&] {
    for (int i = 0; i < launches; ++i) AK_LAUNCH(empty_kernel, 1, 32, 0, nullptr);
  });
  c.launch_microseconds = launch_ms * 1e3 / launches;
  return c;
}

}  // namespace attnkit::bench
