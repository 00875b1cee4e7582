// attnkit/dtype.h: element types of tensors, and the 16-bit float formats on the host.
//
// f32 is the working type of training; f64 exists for exact gradient checks and references;
// f16 and bf16 are storage types for the tensor-core kernels (the CPU converts them to f32 to
// compute); i32 holds token ids and indices; u8 holds masks.
//
// Half and BFloat16 are plain 16-bit patterns with conversions that round to nearest, ties to
// even, as the hardware's cvt instructions do, so the CPU and the GPU agree bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace attnkit {

enum class DType : std::uint8_t { f32, f64, f16, bf16, i32, u8 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// The dtype that dtype_name() calls `name` ("f32", ...), or none.
std::optional<DType> dtype_from_name(const std::string& name);
bool is_floating(DType dtype);
std::ostream& operator<<(std::ostream& out, DType dtype);

// IEEE 754 binary16 -> float and back.
float half_bits_to_float(std::uint16_t bits);
std::uint16_t float_to_half_bits(float value);
// bfloat16 (the upper half of a binary32) -> float and back.
float bfloat16_bits_to_float(std::uint16_t bits);
std::uint16_t float_to_bfloat16_bits(float value);

struct Half {
  std::uint16_t bits = 0;
  Half() = default;
  explicit Half(float value) : bits(float_to_half_bits(value)) {}
  explicit operator float() const { return half_bits_to_float(bits); }
  static Half from_bits(std::uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }
};

struct BFloat16 {
  std::uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float value) : bits(float_to_bfloat16_bits(value)) {}
  explicit operator float() const { return bfloat16_bits_to_float(bits); }
  static BFloat16 from_bits(std::uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

// The DType of a C++ element type: dtype_of<float>() == DType::f32.
template <typename T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<Half>() { return DType::f16; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::bf16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::u8; }

}  // namespace attnkit
