// The optimizers' update steps on a device, and the gradient norms, clipping and weight decay
// before them, through kernels/optimizers.cu.
#include "device_ops/common.h"
#include "kernels/optimizers.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

Tensor squared_norm(const Tensor& x) {
  Tensor out = empty_on({1}, x.device());
  kern::squared_norm(floats(x), x.numel(), floats(out), stream(x.device()));
  return out;
}

Tensor clip_gradient(const Tensor& grad, double scale, double clipvalue) {
  Tensor clipped = Tensor::empty_like(grad);
  kern::clip_gradient(floats(grad), floats(clipped), grad.numel(), scale, clipvalue, stream(grad.device()));
  return clipped;
}

void decay_weights(Tensor& param, double decay) {
  kern::decay_weights(floats(param), param.numel(), decay, stream(param.device()));
}

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
