// attnkit/device.h: where a tensor lives, and what the CUDA runtime can see.
//
// A Device is a kind and, for cuda, the GPU's ordinal:
//   cpu   the host, with the CPU implementation of every op (the reference);
//   cuda  an NVIDIA GPU: cuBLAS, cuDNN and the kernels of kernels/;
//   sim   the kernels of kernels/ compiled for the host and run by the sim executor (src/sim):
//         the code path of `cuda`, on a machine without a GPU. Its memory is host memory that
//         only the device code touches; it is slow and meant for tests and debugging.
// The CUDA queries below
// never throw: on a machine with no GPU (or a library built without CUDA) they report zero
// devices and say why in cuda_status().
#pragma once

#include <cstddef>
#include <ostream>
#include <string>

namespace attnkit {

enum class DeviceType : unsigned char { cpu, cuda, sim };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  static Device sim() { return {DeviceType::sim, 0}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool is_sim() const { return type == DeviceType::sim; }
  // "cpu", "cuda:0" or "sim".
  std::string str() const;
  // Parses "cpu", "cuda", "cuda:N" or "sim".
  static Device parse(const std::string& text);

  friend bool operator==(const Device& a, const Device& b) {
    return a.type == b.type && (a.type != DeviceType::cuda || a.index == b.index);
  }
  friend bool operator!=(const Device& a, const Device& b) { return !(a == b); }
};

std::ostream& operator<<(std::ostream& out, const Device& device);

// True when this build of the library contains the CUDA backend.
bool built_with_cuda();
// The number of CUDA devices the runtime can use: 0 without a GPU, a driver, or CUDA support.
int cuda_device_count();
// One line saying what the CUDA runtime reported, e.g. "2 devices" or
// "cudaGetDeviceCount: CUDA driver version is insufficient for CUDA runtime version".
std::string cuda_status();

struct CudaDeviceInfo {
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  std::size_t global_memory_bytes = 0;
  std::size_t shared_memory_per_block_optin = 0;
};
// Properties of a CUDA device; throws attnkit::Error when it does not exist.
CudaDeviceInfo cuda_device_info(int index);

// Tensors on a GPU, and tensors of kHostCacheMinimumBytes or more on the host, take their memory
// from a cache: freed blocks are kept for reuse by size.
struct MemoryStats {
  std::size_t in_use_bytes = 0;  // held by live tensors (rounded to the cache's sizes)
  std::size_t cached_bytes = 0;  // freed by tensors and kept for reuse
  std::size_t allocations = 0;   // blocks taken from cudaMalloc, or from the C library, so far
  std::size_t reuses = 0;        // allocations served from the cache
};
MemoryStats cuda_memory_stats(int index = 0);
// Gives the cached memory of GPU `index` back to the driver.
void cuda_empty_cache(int index = 0);
// The host's cache: the C library's smaller blocks are not kept in it.
constexpr std::size_t kHostCacheMinimumBytes = std::size_t(128) << 10;
MemoryStats host_memory_stats();
// Gives the host's cached memory back to the C library.
void host_empty_cache();
// Waits until every op issued on GPU `index` has finished (ops run asynchronously).
void cuda_synchronize(int index = 0);

}  // namespace attnkit
