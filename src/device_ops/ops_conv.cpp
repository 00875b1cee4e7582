// Convolution (im2col rows times the kernel) and max pooling over time on a device, through
// kernels/conv.cu; the product is the device's gemm, called by ops/conv.cpp.
#include "device_ops/common.h"
#include "kernels/conv.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

namespace {

kern::WindowDims window_dims(const Shape& x_shape, std::int64_t window, std::int64_t stride, std::int64_t left,
                             std::int64_t out_steps) {
  return {x_shape[0], x_shape[1], x_shape[2], window, stride, left, out_steps};
}

}  // namespace

Tensor im2col(const Tensor& x, std::int64_t window, std::int64_t stride, std::int64_t left, std::int64_t out_steps) {
  const kern::WindowDims d = window_dims(x.shape(), window, stride, left, out_steps);
  Tensor cols = empty_on({d.batch * out_steps, window * d.channels}, x.device());
  kern::im2col(floats(x), floats(cols), d, stream(x.device()));
  return cols;
}

Tensor col2im(const Tensor& dcols, const Shape& x_shape, std::int64_t window, std::int64_t stride, std::int64_t left,
              std::int64_t out_steps) {
  Tensor dx = empty_on(x_shape, dcols.device());
  kern::col2im(floats(dcols), floats(dx), window_dims(x_shape, window, stride, left, out_steps),
               stream(dcols.device()));
  return dx;
}

void max_pool1d(const Tensor& x, std::int64_t window, std::int64_t stride, std::int64_t left, std::int64_t out_steps,
                Tensor& y, Tensor& argmax) {
  const Shape shape{x.size(0), out_steps, x.size(2)};
  y = empty_on(shape, x.device());
  argmax = empty_on(shape, x.device(), DType::i32);
  kern::max_pool1d_forward(floats(x), floats(y), int32s(argmax), window_dims(x.shape(), window, stride, left, out_steps),
                           stream(x.device()));
}

Tensor max_pool1d_backward(const Tensor& dy, const Tensor& argmax, std::int64_t input_steps) {
  Tensor dx = empty_on({dy.size(0), input_steps, dy.size(2)}, dy.device());
  kern::max_pool1d_backward(floats(dy), int32s(argmax), floats(dx), dy.size(0), input_steps, dy.size(1), dy.size(2),
                            stream(dy.device()));
  return dx;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
