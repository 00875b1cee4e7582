// attnkit/ops/conv.h: 1-D convolution and max pooling over time, channels last (Keras layout).
//
// Shapes:
//   conv1d      x [B, T, Cin], weight [K, Cin, Cout] (Keras's kernel), bias [Cout] (optional)
//               -> y [B, T', Cout], stride 1:
//               y[b, t, o] = bias[o] + sum_{k, c} x[b, t + k - left, c] weight[k, c, o]
//               (x outside [0, T) reads as 0). 'same': T' = T and left = (K - 1) / 2, so an even
//               K pads one more step on the right, as Keras and TensorFlow do; 'valid': T' =
//               T - K + 1, left = 0.
//   max_pool1d  x [B, T, C] -> y [B, T', C] and argmax [B, T', C] (i32, the input step chosen),
//               windows of `pool` steps every `stride` steps (stride 0 means stride = pool).
//               'valid': T' = (T - pool) / stride + 1; 'same': T' = ceil(T / stride), padded by
//               max(0, (T' - 1) stride + pool - T) steps, half (rounded down) on the left; padding
//               never wins. Ties go to the earliest step.
//
// Gradients (see linear.h for the rule):
//   conv1d: dweight = im2col(x)^T dy, dbias = sum of dy over [B, T'], dx = col2im(dy weight^T)
//   max_pool1d: dx[b, argmax, c] += dy[b, t, c]; every other element of dx is 0
#pragma once

#include <string>

#include "attnkit/tensor.h"

namespace attnkit::ops {

enum class Padding { valid, same };
// "valid" or "same".
Padding parse_padding(const std::string& name);
const char* padding_name(Padding padding);

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Padding padding = Padding::same);
struct Conv1dGrads {
  Tensor dx, dweight, dbias;  // dbias undefined when there was no bias
};
// needs_dx false skips the input gradient (dx undefined).
Conv1dGrads conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& dy,
                            bool has_bias = true, Padding padding = Padding::same, bool needs_dx = true);

struct MaxPool1dResult {
  Tensor y;
  Tensor argmax;  // i32 [B, T', C]
};
MaxPool1dResult max_pool1d(const Tensor& x, std::int64_t pool, std::int64_t stride = 0,
                           Padding padding = Padding::valid);
// `input_steps` is T, the time extent of the forward's x.
Tensor max_pool1d_backward(const Tensor& dy, const Tensor& argmax, std::int64_t input_steps);

}  // namespace attnkit::ops
