// Moving tensors in and out of sim memory, for the kernel tests under tests/sim.
#pragma once

#include <cmath>
#include <vector>

#include "attnkit/tensor.h"
#include "sim/sim.h"

namespace attnkit::testing {

// The elements of `t` converted to float32, for a sim buffer.
inline std::vector<float> floats_of(const Tensor& t) {
  const Tensor f = t.to(DType::f32);
  return std::vector<float>(f.data<float>(), f.data<float>() + f.numel());
}
// The elements of `t` as they are (ids, mask bytes), for a sim buffer or a comparison.
template <typename T>
std::vector<T> values_of(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}
// A sim buffer of n floats filled with NaN, for a kernel's output: an unwritten element fails.
inline std::vector<float> poison(std::size_t n) { return std::vector<float>(n, NAN); }
// A float32 tensor of `shape` holding the buffer's values.
inline Tensor tensor_of(const sim::Buffer<float>& buffer, const Shape& shape) {
  return Tensor::from_vector<float>(buffer.values(), shape);
}

}  // namespace attnkit::testing
