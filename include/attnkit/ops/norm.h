// attnkit/ops/norm.h: layer normalisation and batch normalisation over the last axis.
//
// Shapes: x [..., C], gamma [C], beta [C] -> y [..., C]. "Rows" are all positions of the leading
// axes (for batch norm: every sample and time step, as Keras's axis=-1).
//   layer_norm:  per row,     y = gamma (x - mean) rstd + beta,  rstd = 1 / sqrt(var + eps)
//   batch_norm:  per channel, the same with mean and var over the rows in training (var
//                biased, divided by the row count) and the running statistics in inference.
//                Training updates the running statistics in place as Keras does:
//                running = momentum * running + (1 - momentum) * batch, with the biased var.
// Defaults are Keras's: eps 1e-3, momentum 0.99.
//
// Gradients (see linear.h for the rule), with xhat = (x - mean) rstd and g = dy gamma:
//   layer_norm:  dx = rstd (g - mean_row(g) - xhat mean_row(g xhat))
//   batch_norm, training:  dx = rstd (g - mean_rows(g) - xhat mean_rows(g xhat))
//   batch_norm, inference: dx = rstd g (the statistics are constants)
//   both:  dgamma = sum(dy xhat), dbeta = sum(dy), over the rows
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

struct NormResult {
  Tensor y;
  Tensor mean;  // layer_norm: [rows]; batch_norm: [C]; the statistics used
  Tensor rstd;  // same shape as mean
};
struct NormGrads {
  Tensor dx, dgamma, dbeta;
};

NormResult layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-3);
NormGrads layer_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                              const Tensor& rstd, const Tensor& dy);

NormResult batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                      Tensor& running_mean, Tensor& running_var, bool training,
                      double momentum = 0.99, double eps = 1e-3);
NormGrads batch_norm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                              const Tensor& rstd, const Tensor& dy, bool training);

}  // namespace attnkit::ops
