// The CUDA entry points of a library built without CUDA: the queries answer "none", and
// anything that needs a GPU says why it cannot have one.
#include "attnkit/device.h"
#include "attnkit/error.h"
#include "cuda/runtime.h"

namespace attnkit {

bool built_with_cuda() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_status() { return "attnkit was built without CUDA"; }

CudaDeviceInfo cuda_device_info(int index) {
  ATTNKIT_FAIL("cuda:", index, " is not available: attnkit was built without CUDA");
}

MemoryStats cuda_memory_stats(int index) {
  ATTNKIT_FAIL("cuda:", index, " is not available: attnkit was built without CUDA");
}

void cuda_empty_cache(int index) {
  ATTNKIT_FAIL("cuda:", index, " is not available: attnkit was built without CUDA");
}

void cuda_synchronize(int index) {
  ATTNKIT_FAIL("cuda:", index, " is not available: attnkit was built without CUDA");
}

namespace cuda {

void* allocate(std::size_t bytes, int device) {
  ATTNKIT_FAIL("cannot allocate on cuda:", device, ": attnkit was built without CUDA");
}

void release(void*, int) noexcept {}

void copy(void*, const void*, std::size_t) {
  ATTNKIT_FAIL("cannot copy to or from a GPU: attnkit was built without CUDA");
}

void* stream(int device) {
  ATTNKIT_FAIL("cuda:", device, " has no stream: attnkit was built without CUDA");
}

CurrentDevice::CurrentDevice(int device) {
  ATTNKIT_FAIL("cuda:", device, " cannot be made current: attnkit was built without CUDA");
}
CurrentDevice::~CurrentDevice() = default;

}  // namespace cuda
}  // namespace attnkit
