// attnkit/ops/recurrent.h: SimpleRNN, LSTM and GRU over a whole sequence, with Keras's weights.
//
// Shapes: x [B, T, I] -> y [B, T, U] (return_sequences) or [B, U], plus the final states.
// Weights are Keras's, gates side by side along the last axis:
//   cell         kernel      recurrent_kernel   bias              gates, in order
//   simple_rnn   [I, U]      [U, U]             [U]               h
//   lstm         [I, 4U]     [U, 4U]            [4U]              i, f, c, o
//   gru          [I, 3U]     [U, 3U]            [2, 3U] (reset_after: input and recurrent
//                                               biases) or [3U]   z, r, h
// The bias may be undefined (use_bias=False). Step equations (xW and hR with the cell's
// columns; sigma the logistic function):
//   simple_rnn:  h = tanh(x W + h' R + b)
//   lstm:        i, f, g, o = sigma, sigma, tanh, sigma of (x W + h' R + b)
//                c = f c' + i g;  h = o tanh(c)
//   gru:         z = sigma(x W_z + b_z + h' R_z + b'_z),  r = sigma(x W_r + b_r + h' R_r + b'_r)
//                reset_after:  hh = tanh(x W_h + b_h + r (h' R_h + b'_h))
//                otherwise:    hh = tanh(x W_h + b_h + (r h') R_h)
//                h = z h' + (1 - z) hh
// h' and c' are the previous states: h0 and c0 at the first step (zeros when undefined).
// go_backwards processes x from the last step to the first and, as Keras, returns the sequence
// in processing order (y[:, s] is the state after s + 1 steps).
//
// Gradients (see linear.h for the rule): backpropagation through time from dy (shape of y) plus,
// optionally, gradients of the final states (dh_last, dc_last; for return_state use). Returns
// dx, dkernel, drecurrent_kernel, dbias (undefined without bias) and dh0, dc0 (the gradients of
// the initial states; dc0 undefined except for LSTM).
#pragma once

#include "attnkit/tensor.h"

namespace attnkit::ops {

enum class RecurrentCell { simple_rnn, lstm, gru };
const char* recurrent_cell_name(RecurrentCell cell);
// The number of gates G: the kernel has G * U columns.
std::int64_t recurrent_gate_count(RecurrentCell cell);

struct RecurrentOptions {
  bool return_sequences = false;
  bool go_backwards = false;
  bool reset_after = true;  // GRU only: Keras's default since TensorFlow 2
  // On cuda: cuDNN's RNN (true), or attnkit's step kernels around cuBLAS, as on the sim (false).
  // A build without cuDNN (attnkit/config.h: ATTNKIT_WITH_CUDNN 0) always runs the step kernels.
  bool use_cudnn = true;
  // Through cuDNN: false runs its inference mode, which keeps no reserve space for a backward
  // (recurrent_backward then refuses the result). Layers set it from CallContext::training.
  bool keep_for_backward = true;
};

// What the forward saves for the backward, in processing order s = 0 .. T-1. Through cuDNN
// only the last two are defined, and the others stay undefined.
struct RecurrentCache {
  Tensor h_seq;      // [T, B, U] hidden state after each step
  Tensor c_seq;      // [T, B, U] LSTM cell state after each step
  Tensor gates;      // [T, B, G * U] gate activations
  Tensor recurrent;  // GRU: [T, B, U], reset_after: h' R_h + b'_h; otherwise r h'
  Tensor cudnn_y;        // cuDNN: the hidden states [B, T, U] in processing order
  Tensor cudnn_reserve;  // cuDNN: its reserve space (u8)
};

struct RecurrentResult {
  Tensor y;
  Tensor h_last;  // [B, U]
  Tensor c_last;  // [B, U], LSTM only
  RecurrentCache cache;
};

RecurrentResult recurrent(RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                          const Tensor& recurrent_kernel, const Tensor& bias,
                          const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
                          const RecurrentOptions& options = {});

struct RecurrentGrads {
  Tensor dx, dkernel, drecurrent_kernel, dbias, dh0, dc0;
};

// `forward` is the result of recurrent() with the same arguments. dy may be undefined when only
// the final states receive gradients; dh_last and dc_last may be undefined. needs_dx false
// skips the input gradient (dx undefined).
RecurrentGrads recurrent_backward(RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                                  const Tensor& recurrent_kernel, const Tensor& bias,
                                  const Tensor& h0, const Tensor& c0,
                                  const RecurrentResult& forward, const Tensor& dy,
                                  const Tensor& dh_last = Tensor(), const Tensor& dc_last = Tensor(),
                                  const RecurrentOptions& options = {}, bool needs_dx = true);

}  // namespace attnkit::ops
