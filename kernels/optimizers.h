// Launchers of kernels/optimizers.cu: one fused Adam or SGD step on n float32 weights in device
// memory, each the update of optimizers.h.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// Step number `step` (1 for the first) of Adam with TensorFlow's update, as the Adam of
// optimizers.h computes it:
//   lr_t = learning_rate sqrt(1 - beta_2^step) / (1 - beta_1^step)   (in double, then float)
//   m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2;  param -= lr_t m / (sqrt(v) + epsilon)
// m and v start at zero before the first step.
void adam_step(float* param, const float* grad, float* m, float* v, std::int64_t n, double learning_rate,
               double beta_1, double beta_2, double epsilon, std::int64_t step, void* stream);

// SGD: velocity = momentum velocity - learning_rate g; param += velocity. With momentum 0 there
// is no velocity (it may be null): param -= learning_rate g.
void sgd_step(float* param, const float* grad, float* velocity, std::int64_t n, double learning_rate,
              double momentum, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
