// The optimizers' update steps on a device, through kernels/optimizers.cu.
#include "device_ops/common.h"
#include "kernels/optimizers.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

void adam_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double learning_rate, double beta_1,
               double beta_2, double epsilon, std::int64_t step) {
  kern::adam_step(floats(param), floats(grad), floats(m), floats(v), param.numel(), learning_rate, beta_1, beta_2,
                  epsilon, step, stream(param.device()));
}

void sgd_step(Tensor& param, const Tensor& grad, Tensor* velocity, double learning_rate, double momentum) {
  kern::sgd_step(floats(param), floats(grad), velocity != nullptr ? floats(*velocity) : nullptr, param.numel(),
                 learning_rate, momentum, stream(param.device()));
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
