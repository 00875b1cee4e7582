// Internal: calling generic code with the element type of a runtime DType.
//
//   visit_dtype(t.dtype(), [&](auto tag) { using T = decltype(tag); ... t.data<T>() ... });
#pragma once

#include <cstdint>

#include "attnkit/dtype.h"
#include "attnkit/error.h"

namespace attnkit {

template <typename F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::f16: return f(Half{});
    case DType::bf16: return f(BFloat16{});
    case DType::i32: return f(std::int32_t{});
    case DType::u8: return f(std::uint8_t{});
  }
  ATTNKIT_FAIL("unknown dtype ", static_cast<int>(dtype));
}

template <typename T>
double to_double(T value) {
  return static_cast<double>(value);
}
template <>
inline double to_double<Half>(Half value) {
  return static_cast<double>(static_cast<float>(value));
}
template <>
inline double to_double<BFloat16>(BFloat16 value) {
  return static_cast<double>(static_cast<float>(value));
}

template <typename T>
T from_double(double value) {
  return static_cast<T>(value);
}
template <>
inline Half from_double<Half>(double value) {
  return Half(static_cast<float>(value));
}
template <>
inline BFloat16 from_double<BFloat16>(double value) {
  return BFloat16(static_cast<float>(value));
}

}  // namespace attnkit
