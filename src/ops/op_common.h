// Internal: argument checks shared by the ops, and calling the CPU code with the element type.
//
// Every op validates its arguments here, before any work, so that a mistake is reported with the
// op's name, the argument's name and its shape: "linear: weight must be [in, out] with in = 32
// (the last extent of x), got f32[16, 8] on cpu".
#pragma once

#include <initializer_list>
#include <utility>

#include "attnkit/tensor.h"

namespace attnkit::ops::detail {

using NamedTensor = std::pair<const char*, const Tensor*>;

// `tensor` is defined and has a dtype the CPU computes in (f32 or f64).
void check_float(const char* op, const char* name, const Tensor& tensor);
// `tensor` is defined and has `rank` axes; `layout` names them, e.g. "[B, T, D]".
void check_rank(const char* op, const char* name, const Tensor& tensor, std::int64_t rank,
                const char* layout);
// `tensor` has exactly `shape`.
void check_shape(const char* op, const char* name, const Tensor& tensor, const Shape& shape);
// `tensor` has exactly `shape` and the dtype of `like`.
void check_like(const char* op, const char* name, const Tensor& tensor, const Shape& shape,
                const Tensor& like);
// All defined tensors are on the device of the first; returns that device.
Device common_device(const char* op, std::initializer_list<NamedTensor> tensors);
// Throws when the op has no implementation on `device` in this build.
void require_cpu(const char* op, Device device);
// A non-negative axis for a tensor of `rank` axes (negative ones count from the end).
std::int64_t normalize_axis(const char* op, std::int64_t axis, std::int64_t rank);

// Calls f(float{}) or f(double{}) for the dtype.
template <typename F>
decltype(auto) dispatch_float(DType dtype, F&& f) {
  if (dtype == DType::f64) return f(double{});
  return f(float{});
}

}  // namespace attnkit::ops::detail
