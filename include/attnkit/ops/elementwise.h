// attnkit/ops/elementwise.h: activations and elementwise products and sums.
//
// Shapes: every op here maps tensors of one shape to a tensor of that shape.
//   activation(x, kind)    y = f(x) elementwise; softmax is taken over the last axis
//   multiply(a, b)         y = a * b (Keras's Multiply; shapes must be equal)
//   add(a, b)              y = a + b (shapes must be equal)
//
// Gradients (see linear.h for the rule):
//   activation_backward takes the forward's OUTPUT y, from which each derivative follows:
//     relu: dx = dy * [y > 0]       tanh: dx = dy * (1 - y^2)      sigmoid: dx = dy * y (1 - y)
//     linear: dx = dy               softmax: dx = y * (dy - sum(dy * y)) over the last axis
//   multiply_backward: da = dy * b, db = dy * a
//   add has no backward function: the gradient of each addend is dy itself.
#pragma once

#include <string>

#include "attnkit/tensor.h"

namespace attnkit::ops {

enum class Activation { linear, relu, tanh, sigmoid, softmax };

// "linear" (also "" and "none"), "relu", "tanh", "sigmoid", "softmax"; anything else is an error.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation kind);

Tensor activation(const Tensor& x, Activation kind);
Tensor activation_backward(const Tensor& y, const Tensor& dy, Activation kind);

inline Tensor relu(const Tensor& x) { return activation(x, Activation::relu); }
inline Tensor tanh(const Tensor& x) { return activation(x, Activation::tanh); }
inline Tensor sigmoid(const Tensor& x) { return activation(x, Activation::sigmoid); }

Tensor multiply(const Tensor& a, const Tensor& b);
struct MultiplyGrads {
  Tensor da, db;
};
MultiplyGrads multiply_backward(const Tensor& a, const Tensor& b, const Tensor& dy);

Tensor add(const Tensor& a, const Tensor& b);

}  // namespace attnkit::ops
