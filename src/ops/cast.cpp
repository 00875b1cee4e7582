// Conversion between the floating dtypes: Tensor::to on the cpu, kernels/cast.cu on a device.
#include "attnkit/ops/cast.h"

#include "device_ops/dispatch.h"

namespace attnkit::ops {

Tensor cast(const Tensor& x, DType dtype) {
  ATTNKIT_CHECK(x.defined() && is_floating(x.dtype()), "cast: x must be a floating-point tensor, got ", x.describe());
  ATTNKIT_CHECK(is_floating(dtype), "cast: dtype must be f32, f64, f16 or bf16, got ", dtype_name(dtype));
  if (dtype == x.dtype() || x.is_cpu()) return x.to(dtype);
  ATTNKIT_CHECK(x.dtype() != DType::f64 && dtype != DType::f64, "cast: f64 is the cpu's; cannot convert ",
                x.describe(), " to ", dtype_name(dtype));
  return ATTNKIT_DEVICE_OP(x.device(), cast(x, dtype));
}

}  // namespace attnkit::ops
