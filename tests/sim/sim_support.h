// Moving tensors in and out of sim memory, for the kernel tests under tests/sim.
#pragma once

#include <cmath>
#include <vector>

#include "attnkit/tensor.h"
#include "sim/sim.h"

namespace attnkit::testing {

// A float32 copy of `t` in sim memory.
inline std::vector<float> floats_of(const Tensor& t) {
  const Tensor f = t.to(DType::f32);
  return std::vector<float>(f.data<float>(), f.data<float>() + f.numel());
}
// A sim buffer of n floats filled with NaN, for a kernel's output: an unwritten element fails.
inline std::vector<float> poison(std::size_t n) { return std::vector<float>(n, NAN); }
// A float32 tensor of `shape` holding the buffer's values.
inline Tensor tensor_of(const sim::Buffer<float>& buffer, const Shape& shape) {
  return Tensor::from_vector<float>(buffer.values(), shape);
}

}  // namespace attnkit::testing
