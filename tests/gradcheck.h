// The gradient checker: an op's backward against central finite differences of its forward.
//
// The loss is a fixed random projection of every output, L = sum_k <r_k, y_k>, so that each
// output element contributes with its own weight (a plain sum would hide errors that cancel).
// In float64 each element of each differentiable input is moved by +-h and
//   |analytic - (L(x + h) - L(x - h)) / 2h| <= tolerance * max(1, |analytic|, |numeric|)
// must hold. Then the same op runs in float32, and its outputs and gradients must agree with
// the float64 ones to `f32_tolerance` (relative to the largest magnitude of each tensor), which
// checks the float32 instantiation and its accumulation.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "attnkit/tensor.h"

namespace attnkit::testing {

using Tensors = std::vector<Tensor>;

struct GradCheck {
  // Floating inputs in f64; integer inputs (ids, masks) in their own dtype.
  Tensors inputs;
  // Runs the op: inputs -> outputs (all floating).
  std::function<Tensors(const Tensors& inputs)> forward;
  // Runs the op's backward: one gradient per input, undefined for integer inputs and for the
  // inputs listed in `no_grad`.
  std::function<Tensors(const Tensors& inputs, const Tensors& outputs,
                        const Tensors& output_grads)>
      backward;
  std::set<std::size_t> no_grad;
  double tolerance = 1e-6;
  double step = 1e-6;
  double f32_tolerance = 1e-4;
};

// Runs the checks; failures are reported through GoogleTest with the input and element.
void check_gradients(const GradCheck& check);

}  // namespace attnkit::testing

namespace attnkit {
class Model;
}

namespace attnkit::testing {

// The same check for a whole model: its parameters are converted to float64, the loss is a
// random projection of its outputs, and Model::backward's parameter gradients are compared with
// central differences on up to `elements_per_parameter` elements of every trainable parameter.
// This checks the layers' glue (activations, wrappers, caches, accumulation of branches).
// `training` runs the forward in training mode with a generator reseeded for every pass.
void check_model_gradients(Model& model, const Tensors& inputs, bool training = false,
                           int elements_per_parameter = 24, double tolerance = 1e-6);

}  // namespace attnkit::testing
