// Conversion between float formats on a device, through kernels/cast.cu.
#include "device_ops/common.h"
#include "kernels/cast.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

namespace {

kern::FloatFormat format_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return kern::FloatFormat::f32;
    case DType::f16: return kern::FloatFormat::f16;
    case DType::bf16: return kern::FloatFormat::bf16;
    default: break;
  }
  ATTNKIT_FAIL("cast: a device converts between f32, f16 and bf16, not ", dtype_name(dtype));
}

}  // namespace

Tensor cast(const Tensor& x, DType dtype) {
  const kern::FloatFormat from = format_of(x.dtype()), to = format_of(dtype);
  Tensor y = empty_on(x.shape(), x.device(), dtype);
  kern::cast(x.raw_data(), from, y.raw_data(), to, x.numel(), stream(x.device()));
  return y;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
