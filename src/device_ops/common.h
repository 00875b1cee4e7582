// Internal: what every device op file needs: the kernels' launchers of this compilation's
// namespace, and typed addresses of a tensor's elements in device memory.
#pragma once

#include "attnkit/tensor.h"
#include "device_ops/device_ops.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {

inline float* floats(const Tensor& tensor) { return static_cast<float*>(tensor.raw_data()); }
inline std::int32_t* int32s(const Tensor& tensor) { return static_cast<std::int32_t*>(tensor.raw_data()); }
inline std::uint8_t* bytes(const Tensor& tensor) { return static_cast<std::uint8_t*>(tensor.raw_data()); }

// The rows of x viewed as [rows, cols] (0 when cols is 0).
inline std::int64_t rows_of(const Tensor& x, std::int64_t cols) { return cols == 0 ? 0 : x.numel() / cols; }

inline Tensor empty_on(const Shape& shape, Device device, DType dtype = DType::f32) {
  return Tensor::empty(shape, dtype, device);
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
