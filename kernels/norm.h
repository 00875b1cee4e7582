// Launchers of kernels/norm.cu: layer and batch normalisation over the last axis of a float32
// [rows, C] array in device memory, forward and backward, as ops/norm.h defines them (layer norm:
// statistics per row, mean and rstd [rows]; batch norm: per channel over the rows, [C]).
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// y = gamma (x - mean) rstd + beta, with each row's mean and rstd written to mean and rstd.
void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                        std::int64_t rows, std::int64_t channels, double eps, void* stream);
// dx, dgamma [C] and dbeta [C] from the forward's mean and rstd.
void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dgamma, float* dbeta, std::int64_t rows, std::int64_t channels,
                         void* stream);

// Training: the batch's statistics (biased variance) into mean and rstd [C], and the running
// statistics updated in place (running = momentum running + (1 - momentum) batch); inference:
// mean and rstd from the running statistics. Then y = gamma (x - mean) rstd + beta.
void batch_norm_forward(const float* x, const float* gamma, const float* beta, float* running_mean,
                        float* running_var, float* y, float* mean, float* rstd, std::int64_t rows,
                        std::int64_t channels, bool training, double momentum, double eps, void* stream);
// dx, dgamma [C] and dbeta [C]; in inference the statistics are constants (dx = gamma rstd dy).
void batch_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                         float* dx, float* dgamma, float* dbeta, std::int64_t rows, std::int64_t channels,
                         bool training, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
