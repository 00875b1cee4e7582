// Activations, products, sums, softmax and dropout on a device, through kernels/elementwise.cu,
// kernels/softmax.cu and kernels/dropout.cu.
#include "device_ops/common.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/softmax.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

namespace {

kern::PointwiseActivation pointwise(ops::Activation kind) {
  switch (kind) {
    case ops::Activation::linear: return kern::PointwiseActivation::linear;
    case ops::Activation::relu: return kern::PointwiseActivation::relu;
    case ops::Activation::tanh: return kern::PointwiseActivation::tanh;
    case ops::Activation::sigmoid: return kern::PointwiseActivation::sigmoid;
    case ops::Activation::softmax: break;
  }
  ATTNKIT_FAIL("activation: softmax is not elementwise (it goes to softmax())");
}

std::int64_t last_extent(const Tensor& x) { return x.dim() == 0 ? 1 : x.size(-1); }

}  // namespace

Tensor activation(const Tensor& x, ops::Activation kind) {
  Tensor y = Tensor::empty_like(x);
  kern::activation_forward(floats(x), floats(y), x.numel(), pointwise(kind), stream(x.device()));
  return y;
}

Tensor activation_backward(const Tensor& y, const Tensor& dy, ops::Activation kind) {
  Tensor dx = Tensor::empty_like(y);
  kern::activation_backward(floats(y), floats(dy), floats(dx), y.numel(), pointwise(kind), stream(y.device()));
  return dx;
}

Tensor multiply(const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty_like(a);
  kern::multiply_forward(floats(a), floats(b), floats(y), a.numel(), stream(a.device()));
  return y;
}

void multiply_backward(const Tensor& a, const Tensor& b, const Tensor& dy, Tensor& da, Tensor& db) {
  da = Tensor::empty_like(a);
  db = Tensor::empty_like(b);
  kern::multiply_backward(floats(a), floats(b), floats(dy), floats(da), floats(db), a.numel(), stream(a.device()));
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty_like(a);
  kern::add_forward(floats(a), floats(b), floats(y), a.numel(), stream(a.device()));
  return y;
}

Tensor softmax(const Tensor& x, bool log) {
  Tensor y = Tensor::empty_like(x);
  const std::int64_t cols = last_extent(x), rows = rows_of(x, cols);
  if (log)
    kern::log_softmax_forward(floats(x), floats(y), rows, cols, stream(x.device()));
  else
    kern::softmax_forward(floats(x), floats(y), rows, cols, stream(x.device()));
  return y;
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, bool log) {
  Tensor dx = Tensor::empty_like(y);
  const std::int64_t cols = last_extent(y), rows = rows_of(y, cols);
  if (log)
    kern::log_softmax_backward(floats(y), floats(dy), floats(dx), rows, cols, stream(y.device()));
  else
    kern::softmax_backward(floats(y), floats(dy), floats(dx), rows, cols, stream(y.device()));
  return dx;
}

void dropout(const Tensor& x, double rate, std::uint64_t seed, std::uint64_t offset, Tensor& y, Tensor& mask) {
  y = Tensor::empty_like(x);
  mask = empty_on(x.shape(), x.device(), DType::u8);
  kern::dropout_forward(floats(x), floats(y), bytes(mask), x.numel(), rate, seed, offset, stream(x.device()));
}

Tensor dropout_backward(const Tensor& dy, const Tensor& mask, double rate) {
  Tensor dx = Tensor::empty_like(dy);
  kern::dropout_backward(floats(dy), bytes(mask), floats(dx), dy.numel(), rate, stream(dy.device()));
  return dx;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
