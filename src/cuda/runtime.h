// Internal: the CUDA runtime calls that the host side of attnkit needs (memory and copies).
// Defined in runtime.cu when the library is built with CUDA, and in runtime_absent.cpp (where
// each call explains that CUDA is absent) when it is not.
#pragma once

#include <cstddef>

namespace attnkit::cuda {

// cudaMalloc on GPU `device`; throws attnkit::Error naming the size and the device when the
// memory is not there.
void* allocate(std::size_t bytes, int device);
// cudaFree; errors are ignored (it runs in destructors).
void release(void* pointer, int device) noexcept;
// cudaMemcpy between any two of host and device memory (unified addressing), synchronous.
void copy(void* destination, const void* source, std::size_t bytes);

}  // namespace attnkit::cuda
