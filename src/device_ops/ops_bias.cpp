// Bias addition and its gradient on a device, through kernels/bias.cu.
#include "device_ops/common.h"
#include "kernels/bias.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

void bias_add(const Tensor& x, const Tensor& bias, Tensor& y) {
  const std::int64_t cols = bias.numel(), rows = rows_of(x, cols);
  kern::bias_add_forward(floats(x), floats(bias), floats(y), rows, cols, stream(x.device()));
}

Tensor bias_add_backward(const Tensor& dy) {
  const std::int64_t cols = dy.size(-1), rows = rows_of(dy, cols);
  Tensor dbias = empty_on({cols}, dy.device());
  kern::bias_add_backward(floats(dy), floats(dbias), rows, cols, stream(dy.device()));
  return dbias;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
