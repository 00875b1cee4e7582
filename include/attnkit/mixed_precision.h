// attnkit/mixed_precision.h: dtype policies, as Keras's keras.mixed_precision.
//
// A policy names the dtype a layer keeps its weights in (variable_dtype) and the dtype it
// computes in (compute_dtype):
//
//   "float32"          f32 weights, f32 computation: the default
//   "mixed_bfloat16"   f32 weights, bf16 computation where attnkit has bf16 kernels
//
// A layer takes the global policy when it is made (so set it before building the model), keeps
// it (Layer::dtype_policy()), records it in its config() as "dtype_policy", and a model loaded
// from a config gets it back whatever the global policy is then (a config without the key, as
// written before policies existed, is float32). Any other name is an error; mixed_float16 too,
// since float16 training needs loss scaling, which attnkit's training loop does not do.
//
// What mixed_bfloat16 changes, on every device:
//
//   - MultiHeadSelfAttention and DotAttention run the scaled dot-product attention at their
//     core in bf16: q, k and v are cast to bf16 (ops::cast), the attention runs on them (the
//     tensor-core kernels on cuda and sim, with f32 accumulation), and its output is cast back
//     to f32 for the next op; the backward casts the output's gradient to bf16 and the gradients
//     of q, k and v back to f32. Weights returned with return_attention are those bf16 ones, in
//     f32. Their projections (MultiHeadSelfAttention's products) stay f32.
//   - every other layer computes in f32, as under float32: attnkit's other ops compute in f32 on
//     every device. This keeps the model's last Dense softmax and the loss in f32, as Keras's
//     mixed-precision guide asks.
//
// Weights, their gradients, the optimizer's state and the layers' outputs stay f32 under both.
// The bf16 attention kernels take head dims 32, 64 and 128: an attention with other heads (the
// zoo's transformer has two of 16) computes in f32 under the policy, on every device alike.
// The cpu works under the policy too, so that a model behaves alike wherever it runs: it rounds q, k and v to bf16, computes in f32 and rounds the output to bf16
// (the kernels also round the probabilities to bf16 for their second product), so its results
// agree with a device's to bf16's precision. On the cpu the policy saves no time.
#pragma once

#include <string>

#include "attnkit/dtype.h"

namespace attnkit::mixed_precision {

class Policy {
 public:
  // "float32" or "mixed_bfloat16"; another name is an error that lists these.
  explicit Policy(const std::string& name = "float32");

  const std::string& name() const { return name_; }
  // The dtype of the computations that have kernels in it: f32 or bf16.
  DType compute_dtype() const { return compute_dtype_; }
  // The dtype of the weights: f32 under both policies.
  DType variable_dtype() const { return DType::f32; }

  bool operator==(const Policy& other) const { return name_ == other.name_; }
  bool operator!=(const Policy& other) const { return !(*this == other); }

 private:
  std::string name_;
  DType compute_dtype_;
};

// The policy layers take when they are made; float32 until it is set.
void set_global_policy(const Policy& policy);
void set_global_policy(const std::string& name);
Policy global_policy();

// Sets the global policy for its lifetime and restores the one before when it ends.
class PolicyScope {
 public:
  explicit PolicyScope(const Policy& policy);
  explicit PolicyScope(const std::string& name) : PolicyScope(Policy(name)) {}
  ~PolicyScope();
  PolicyScope(const PolicyScope&) = delete;
  PolicyScope& operator=(const PolicyScope&) = delete;

 private:
  Policy previous_;
};

}  // namespace attnkit::mixed_precision
