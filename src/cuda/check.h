// Internal: checking every CUDA runtime call. A failed call throws attnkit::Error whose message
// names the call and the runtime's description of the error.
#pragma once

#include <cuda_runtime.h>

#include "attnkit/error.h"

#define ATTNKIT_CUDA_CHECK(call)                                                              \
  do {                                                                                        \
    const cudaError_t attnkit_cuda_status = (call);                                           \
    if (attnkit_cuda_status != cudaSuccess)                                                   \
      ::attnkit::detail::throw_error(__FILE__, __LINE__, #call,                               \
                                     ::attnkit::detail::concat(                               \
                                         "CUDA error: ", cudaGetErrorName(attnkit_cuda_status), \
                                         ": ", cudaGetErrorString(attnkit_cuda_status)));      \
  } while (0)
