// Means over an axis, flips, axis swaps and concatenation on a device, through kernels/reduce.cu and
// kernels/concat.cu.
#include "device_ops/common.h"
#include "kernels/concat.h"
#include "kernels/reduce.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

Tensor mean(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner, const Shape& shape) {
  Tensor y = empty_on(shape, x.device());
  kern::mean_forward(floats(x), floats(y), outer, n, inner, stream(x.device()));
  return y;
}

Tensor mean_backward(const Tensor& dy, std::int64_t outer, std::int64_t n, std::int64_t inner, const Shape& shape) {
  Tensor dx = empty_on(shape, dy.device());
  kern::mean_backward(floats(dy), floats(dx), outer, n, inner, stream(dy.device()));
  return dx;
}

Tensor flip(const Tensor& x, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  Tensor y = Tensor::empty_like(x);
  kern::flip(floats(x), floats(y), outer, n, inner, stream(x.device()));
  return y;
}

Tensor swap_axes(const Tensor& x, const Shape& shape, std::int64_t outer, std::int64_t a, std::int64_t mid,
                 std::int64_t b, std::int64_t inner) {
  Tensor y = empty_on(shape, x.device());
  kern::swap_axes(floats(x), floats(y), outer, a, mid, b, inner, stream(x.device()));
  return y;
}

Tensor concat(const std::vector<Tensor>& xs, const Shape& shape, std::int64_t outer,
              const std::vector<std::int64_t>& columns) {
  Tensor y = empty_on(shape, xs.front().device());
  std::vector<const float*> parts;
  for (const Tensor& x : xs) parts.push_back(floats(x));
  kern::concat_forward(parts, columns, floats(y), outer, stream(y.device()));
  return y;
}

std::vector<Tensor> concat_backward(const Tensor& dy, const std::vector<Shape>& shapes, std::int64_t outer,
                                    const std::vector<std::int64_t>& columns) {
  std::vector<Tensor> grads;
  std::vector<float*> pointers;
  for (const Shape& shape : shapes) {
    grads.push_back(empty_on(shape, dy.device()));
    pointers.push_back(floats(grads.back()));
  }
  kern::concat_backward(floats(dy), pointers, columns, outer, stream(dy.device()));
  return grads;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
