// Internal: SimpleRNN, LSTM and GRU (reset_after) on a GPU through cuDNN 9's RNN API, with
// Keras's weights (ops/recurrent.h) copied into cuDNN's weight space for every call and the
// weight gradients copied back. src/ops/recurrent.cpp calls these for tensors on `cuda` unless
// RecurrentOptions::use_cudnn is false; the arguments are checked there.
#pragma once

#include "attnkit/ops/recurrent.h"

namespace attnkit::cuda {

ops::RecurrentResult cudnn_recurrent(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                                     const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                                     const Tensor& c0, const ops::RecurrentOptions& options);

// `forward` is cudnn_recurrent's result for the same arguments.
ops::RecurrentGrads cudnn_recurrent_backward(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                                             const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                                             const Tensor& c0, const ops::RecurrentResult& forward, const Tensor& dy,
                                             const Tensor& dh_last, const Tensor& dc_last,
                                             const ops::RecurrentOptions& options, bool needs_dx);

}  // namespace attnkit::cuda
