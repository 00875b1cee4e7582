// Internal: the CUDA runtime calls that the host side of attnkit needs (memory, copies, the
// stream of each device). Defined in runtime.cu when the library is built with CUDA, and in
// runtime_absent.cpp (where each call explains that CUDA is absent) when it is not.
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace attnkit::cuda {

// A block of device memory on GPU `device` from its caching allocator (caching_allocator.h);
// throws attnkit::Error naming the size, the device and the free memory when it is not there.
void* allocate(std::size_t bytes, int device);
// Returns a block to the cache of its device; never throws (it runs in destructors).
void release(void* pointer, int device) noexcept;
// Copies between any two of host and device memory (unified addressing), after the work queued
// on the streams of the devices involved, and returns when the copy is done.
void copy(void* destination, const void* source, std::size_t bytes);
// The stream (a cudaStream_t) every op of GPU `device` runs on; made on first use. It
// synchronises with the legacy default stream, so plain runtime calls stay ordered with it.
void* stream(int device);

// Makes `device` current for the scope, and restores the previous one after.
class CurrentDevice {
 public:
  explicit CurrentDevice(int device);
  ~CurrentDevice();
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

 private:
  int previous_ = 0;
};

// A library's handle for GPU `device` (cuBLAS, cuDNN): made by make(stream of the device) with
// the device current on first use, and kept for the process. Each call site keeps its own.
template <typename Handle, typename Make>
Handle handle_per_device(int device, Make make) {
  static std::mutex mutex;
  static std::vector<Handle> handles;
  std::lock_guard<std::mutex> lock(mutex);
  const auto index = static_cast<std::size_t>(device);
  if (handles.size() <= index) handles.resize(index + 1, nullptr);
  if (handles[index] == nullptr) {
    CurrentDevice current(device);
    handles[index] = make(stream(device));
  }
  return handles[index];
}

}  // namespace attnkit::cuda
