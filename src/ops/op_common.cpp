// Argument checks shared by the ops.
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops::detail {

void check_float(const char* op, const char* name, const Tensor& tensor) {
  ATTNKIT_CHECK(tensor.defined(), op, ": ", name, " is undefined");
  ATTNKIT_CHECK(tensor.dtype() == DType::f32 || tensor.dtype() == DType::f64, op, ": ", name,
                " must be f32 or f64, got ", tensor.describe(),
                (is_floating(tensor.dtype()) ? " (convert 16-bit floats with .to(DType::f32))" : ""));
}

void check_rank(const char* op, const char* name, const Tensor& tensor, std::int64_t rank,
                const char* layout) {
  ATTNKIT_CHECK(tensor.defined(), op, ": ", name, " is undefined");
  ATTNKIT_CHECK(tensor.dim() == rank, op, ": ", name, " must be ", layout, ", got ",
                tensor.describe());
}

void check_shape(const char* op, const char* name, const Tensor& tensor, const Shape& shape) {
  ATTNKIT_CHECK(tensor.defined(), op, ": ", name, " is undefined");
  ATTNKIT_CHECK(tensor.shape() == shape, op, ": ", name, " must have shape ", shape_str(shape),
                ", got ", tensor.describe());
}

void check_like(const char* op, const char* name, const Tensor& tensor, const Shape& shape,
                const Tensor& like) {
  check_shape(op, name, tensor, shape);
  ATTNKIT_CHECK(tensor.dtype() == like.dtype(), op, ": ", name, " must be ", like.dtype(),
                " like the other operands, got ", tensor.describe());
}

Device common_device(const char* op, std::initializer_list<NamedTensor> tensors) {
  const NamedTensor* first = nullptr;
  for (const NamedTensor& named : tensors) {
    if (!named.second->defined()) continue;
    if (first == nullptr) {
      first = &named;
      continue;
    }
    ATTNKIT_CHECK(named.second->device() == first->second->device(), op, ": ", named.first,
                  " is on ", named.second->device(), " but ", first->first, " is on ",
                  first->second->device());
  }
  ATTNKIT_CHECK(first != nullptr, op, ": no defined tensor among the arguments");
  return first->second->device();
}

void require_cpu(const char* op, Device device) {
  ATTNKIT_CHECK(device.is_cpu(), op, ": tensors on ", device,
                " are not supported yet (this op runs on the cpu only)");
}

void require_device_f32(const char* op, const Tensor& tensor) {
  ATTNKIT_CHECK(tensor.is_cpu() || tensor.dtype() == DType::f32, op, ": on ", tensor.device(),
                " the ops compute in f32 only, got ", tensor.describe(), " (f64 runs on the cpu)");
}

std::int64_t normalize_axis(const char* op, std::int64_t axis, std::int64_t rank) {
  ATTNKIT_CHECK(axis >= -rank && axis < rank, op, ": axis ", axis, " is out of range for ", rank,
                " axes");
  return axis < 0 ? axis + rank : axis;
}

}  // namespace attnkit::ops::detail
