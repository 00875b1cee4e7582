// Layer and batch normalisation on a device, through kernels/norm.cu.
#include "device_ops/common.h"
#include "kernels/norm.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

ops::NormResult layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  const std::int64_t channels = x.size(-1), rows = rows_of(x, channels);
  const Shape rows_shape(x.shape().begin(), x.shape().end() - 1);
  ops::NormResult r{Tensor::empty_like(x), empty_on(rows_shape, x.device()), empty_on(rows_shape, x.device())};
  kern::layer_norm_forward(floats(x), floats(gamma), floats(beta), floats(r.y), floats(r.mean), floats(r.rstd), rows,
                           channels, eps, stream(x.device()));
  return r;
}

ops::NormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& dy) {
  const std::int64_t channels = x.size(-1);
  ops::NormGrads g{Tensor::empty_like(x), Tensor::empty_like(gamma), Tensor::empty_like(gamma)};
  kern::layer_norm_backward(floats(x), floats(gamma), floats(mean), floats(rstd), floats(dy), floats(g.dx),
                            floats(g.dgamma), floats(g.dbeta), rows_of(x, channels), channels, stream(x.device()));
  return g;
}

ops::NormResult batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                           Tensor& running_var, bool training, double momentum, double eps) {
  const std::int64_t channels = x.size(-1);
  ops::NormResult r{Tensor::empty_like(x), empty_on({channels}, x.device()), empty_on({channels}, x.device())};
  kern::batch_norm_forward(floats(x), floats(gamma), floats(beta), floats(running_mean), floats(running_var),
                           floats(r.y), floats(r.mean), floats(r.rstd), rows_of(x, channels), channels, training,
                           momentum, eps, stream(x.device()));
  return r;
}

ops::NormGrads batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                   const Tensor& dy, bool training) {
  const std::int64_t channels = x.size(-1);
  ops::NormGrads g{Tensor::empty_like(x), Tensor::empty_like(gamma), Tensor::empty_like(gamma)};
  kern::batch_norm_backward(floats(x), floats(gamma), floats(mean), floats(rstd), floats(dy), floats(g.dx),
                            floats(g.dgamma), floats(g.dbeta), rows_of(x, channels), channels, training,
                            stream(x.device()));
  return g;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
