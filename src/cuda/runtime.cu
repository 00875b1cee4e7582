// The CUDA runtime as the host side of attnkit uses it: device queries, memory and copies.
// Every runtime call is checked; the queries report "no GPU" instead of throwing.
#include "attnkit/device.h"
#include "cuda/check.h"
#include "caching_allocator.h"
#include "cuda/runtime.h"

#include <mutex>
#include <vector>

namespace attnkit {

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

CurrentDevice::CurrentDevice(int device) {
  ATTNKIT_CUDA_CHECK(cudaGetDevice(&previous_));
  if (device != previous_) ATTNKIT_CUDA_CHECK(cudaSetDevice(device));
}

CurrentDevice::~CurrentDevice() { cudaSetDevice(previous_); }

namespace {

// cudaMalloc, with nullptr for "out of memory" so that the cache can give memory back first.
void* raw_allocate(std::size_t bytes, int device) {
  CurrentDevice current(device);
  void* pointer = nullptr;
  const cudaError_t status = cudaMalloc(&pointer, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky; clear it
    return nullptr;
  }
  ATTNKIT_CUDA_CHECK(status);
  return pointer;
}

}  // namespace

// Per-device state, made on first use and kept for the process: its caching allocator and its
// stream. Leaked on purpose: releasing at exit would race the CUDA runtime's own teardown.
struct DeviceState {
  CachingAllocator* allocator = nullptr;
  cudaStream_t stream = nullptr;
};

std::mutex& state_mutex() {
  static std::mutex mutex;
  return mutex;
}

DeviceState& state_of(int device) {
  // Sized once, to the device count (asked once, not on every op); never resized, so the
  // references handed out stay valid.
  static std::vector<DeviceState>* states =
      new std::vector<DeviceState>(static_cast<std::size_t>(cuda_device_count()));
  ATTNKIT_CHECK(device >= 0 && static_cast<std::size_t>(device) < states->size(), "cuda:", device,
                " does not exist (", cuda_status(), ")");
  std::lock_guard<std::mutex> lock(state_mutex());
  DeviceState& state = (*states)[static_cast<std::size_t>(device)];
  if (state.allocator == nullptr) {
    CurrentDevice current(device);
    ATTNKIT_CUDA_CHECK(cudaStreamCreate(&state.stream));
    state.allocator = new CachingAllocator([device](std::size_t bytes) { return raw_allocate(bytes, device); },
                                           [device](void* pointer) {
                                             CurrentDevice current(device);
                                             cudaFree(pointer);
                                           });
  }
  return state;
}

void* allocate(std::size_t bytes, int device) {
  DeviceState& state = state_of(device);
  void* pointer = state.allocator->allocate(bytes);
  if (pointer == nullptr) {
    std::size_t free_bytes = 0, total_bytes = 0;
    CurrentDevice current(device);
    cudaMemGetInfo(&free_bytes, &total_bytes);
    ATTNKIT_FAIL("CUDA out of memory: ", bytes, " bytes requested on cuda:", device, ", ", free_bytes, " of ",
                 total_bytes, " bytes free");
  }
  return pointer;
}

void release(void* pointer, int device) noexcept {
  if (pointer == nullptr) return;
  try {
    state_of(device).allocator->release(pointer);
  } catch (...) {
    // A destructor cannot report; the block stays with the device.
  }
}

namespace {

// The GPU whose memory `address` is, or -1 for host memory.
int device_of(const void* address) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, address) == cudaSuccess && attributes.type == cudaMemoryTypeDevice)
    return attributes.device;
  cudaGetLastError();  // host memory the runtime does not know: not an error to keep
  return -1;
}

}  // namespace

void copy(void* destination, const void* source, std::size_t bytes) {
  // The copy joins the stream of the device that receives the data (the source's, for a copy to
  // the host), so it comes after the ops that wrote there; a source on another GPU is waited for
  // first, so the copy also comes after the ops that wrote the source.
  const int to = device_of(destination), from = device_of(source);
  ATTNKIT_CHECK(to >= 0 || from >= 0, "cuda::copy: neither address is device memory");
  if (to >= 0 && from >= 0 && to != from) {
    CurrentDevice current(from);
    ATTNKIT_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream(from))));
  }
  const int device = to >= 0 ? to : from;
  CurrentDevice current(device);
  const cudaStream_t on = static_cast<cudaStream_t>(stream(device));
  ATTNKIT_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, on));
  ATTNKIT_CUDA_CHECK(cudaStreamSynchronize(on));
}

void* stream(int device) { return state_of(device).stream; }

}  // namespace cuda

MemoryStats cuda_memory_stats(int index) { return cuda::state_of(index).allocator->stats(); }

void cuda_empty_cache(int index) {
  cuda::DeviceState& state = cuda::state_of(index);
  cuda::CurrentDevice current(index);
  ATTNKIT_CUDA_CHECK(cudaStreamSynchronize(state.stream));
  state.allocator->empty_cache();
}

void cuda_synchronize(int index) {
  cuda::CurrentDevice current(index);
  ATTNKIT_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(cuda::stream(index))));
}

}  // namespace attnkit
