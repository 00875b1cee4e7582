// The check after every kernel launch of kernels/ (AK_LAUNCH): a launch that failed (a bad
// configuration, too much shared memory, no kernel image for this GPU) throws attnkit::Error
// naming the kernel and where it was launched; the opt-in to more than 48 KB of dynamic shared
// memory that such launches need; and the stream's device made current around the launch.
#include "cuda/check.h"
#include "kernels/dialect.h"

namespace ak {

void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    ::attnkit::detail::throw_error(file, line, kernel,
                                   ::attnkit::detail::concat("launch of kernel ", kernel, " failed: ",
                                                             cudaGetErrorName(status), ": ",
                                                             cudaGetErrorString(status)));
}

LaunchDevice::LaunchDevice(cudaStream_t stream, const char* kernel, const char* file, int line) {
  if (stream == nullptr) return;
  int device = 0, current = 0;
  cudaError_t status = cudaStreamGetDevice(stream, &device);
  if (status == cudaSuccess) status = cudaGetDevice(&current);
  if (status == cudaSuccess && device != current) {
    status = cudaSetDevice(device);
    if (status == cudaSuccess) previous_ = current;
  }
  if (status != cudaSuccess)
    ::attnkit::detail::throw_error(file, line, kernel,
                                   ::attnkit::detail::concat("kernel ", kernel, ": cannot make its stream's device ",
                                                             device, " current: ", cudaGetErrorName(status), ": ",
                                                             cudaGetErrorString(status)));
}

LaunchDevice::~LaunchDevice() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

void allow_dynamic_shared(const void* kernel, std::size_t bytes, const char* name, const char* file, int line) {
  const cudaError_t status =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status != cudaSuccess)
    ::attnkit::detail::throw_error(file, line, name,
                                   ::attnkit::detail::concat("kernel ", name, " cannot have ", bytes,
                                                             " bytes of dynamic shared memory: ",
                                                             cudaGetErrorName(status), ": ",
                                                             cudaGetErrorString(status)));
}

}  // namespace ak
