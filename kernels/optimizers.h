// Launchers of kernels/optimizers.cu: one fused Adam or SGD step on n float32 weights in device
// memory, each the update of optimizers.h, and the steps before it: gradient norms, clipping and
// weight decay.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// out[0] = sum of x[i]^2 over the n floats of x (n = 0 gives 0); out: one float.
void squared_norm(const float* x, std::int64_t n, float* out, void* stream);

// clipped = grad * scale, then clamped to [-clipvalue, clipvalue] when clipvalue > 0 (the clip
// options of optimizers.h: a norm clip sets the scale, clipvalue the clamp). May be in place.
void clip_gradient(const float* grad, float* clipped, std::int64_t n, double scale, double clipvalue, void* stream);

// Decoupled weight decay: param -= param * decay (decay = weight_decay * learning rate).
void decay_weights(float* param, std::int64_t n, double decay, void* stream);

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
