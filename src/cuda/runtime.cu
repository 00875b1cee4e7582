// The CUDA runtime as the host side of attnkit uses it: device queries, memory and copies.
// Every runtime call is checked; the queries report "no GPU" instead of throwing.
#include "attnkit/device.h"
#include "cuda/check.h"
#include "cuda/runtime.h"

namespace attnkit {
namespace {

// Makes `device` current for the scope, and restores the previous one after.
class CurrentDevice {
 public:
  explicit CurrentDevice(int device) {
    ATTNKIT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (device != previous_) ATTNKIT_CUDA_CHECK(cudaSetDevice(device));
  }
  ~CurrentDevice() { cudaSetDevice(previous_); }
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace

bool built_with_cuda() { return true; }

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return count;
}

std::string cuda_status() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
  }
  return std::to_string(count) + (count == 1 ? " device" : " devices");
}

CudaDeviceInfo cuda_device_info(int index) {
  const int count = cuda_device_count();
  ATTNKIT_CHECK(index >= 0 && index < count, "cuda:", index, " does not exist (", cuda_status(),
                ")");
  cudaDeviceProp properties{};
  ATTNKIT_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  CudaDeviceInfo info;
  info.name = properties.name;
  info.compute_major = properties.major;
  info.compute_minor = properties.minor;
  info.multiprocessors = properties.multiProcessorCount;
  info.global_memory_bytes = properties.totalGlobalMem;
  info.shared_memory_per_block_optin = properties.sharedMemPerBlockOptin;
  return info;
}

namespace cuda {

void* allocate(std::size_t bytes, int device) {
  const int count = cuda_device_count();
  ATTNKIT_CHECK(device >= 0 && device < count, "cannot allocate on cuda:", device, " (",
                cuda_status(), ")");
  CurrentDevice current(device);
  void* pointer = nullptr;
  const cudaError_t status = cudaMalloc(&pointer, bytes == 0 ? 1 : bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    ATTNKIT_FAIL("CUDA out of memory: ", bytes, " bytes requested on cuda:", device, ", ",
                 free_bytes, " of ", total_bytes, " bytes free");
  }
  ATTNKIT_CUDA_CHECK(status);
  return pointer;
}

void release(void* pointer, int device) noexcept {
  if (pointer == nullptr) return;
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return;
  cudaSetDevice(device);
  cudaFree(pointer);
  cudaSetDevice(previous);
}

void copy(void* destination, const void* source, std::size_t bytes) {
  ATTNKIT_CUDA_CHECK(cudaMemcpy(destination, source, bytes, cudaMemcpyDefault));
}

}  // namespace cuda
}  // namespace attnkit
