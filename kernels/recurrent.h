// Launchers of kernels/recurrent.cu: one time step of SimpleRNN, LSTM and GRU (reset_after), as
// ops/recurrent.h defines them, on float32 arrays in device memory. The products around a step
// (x W for all steps, h' R for each) are the device's gemm; a step's kernel applies the cell's
// equations to them, one thread per (sample, unit). Layouts as in ops::RecurrentCache: the
// input pre-activations xw [B, T, G U], a step's recurrent ones [B, G U], states [B, U].
#pragma once

#include <cstdint>

#include "attnkit/ops/recurrent.h"

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// Sizes and the input step t (of T) that processing step s reads.
struct RecurrentStep {
  ops::RecurrentCell cell;
  std::int64_t batch, steps, units, t;
};

// Step forward. rec = h' R [B, G U], or null at a first step from zero states; rec_bias [G U]
// (the GRU's recurrent bias) or null; c_prev (LSTM) null for zeros. Writes gates [B, G U], h
// [B, U], the LSTM's c [B, U] and the GRU's rec_h = h' R_h + b'_h [B, U].
void recurrent_step_forward(const float* xw, const float* rec, const float* rec_bias, const float* c_prev,
                            const float* h_prev, float* gates, float* h, float* c, float* rec_h,
                            const RecurrentStep& step, void* stream);

// Step backward: from dh [B, U], the gradient of this step's h (plus dy_step[b, u] at row stride
// T U when dy_step is not null: return_sequences), and the LSTM's dc [B, U] (updated in place to
// the previous step's), writes the gate pre-activations' gradients into dxw (row t) and drec
// [B, G U]; the GRU also writes dh_direct = dh z [B, U], the part of dh' that skips R. h_prev and
// c_prev: null for zeros.
void recurrent_step_backward(const float* gates, const float* c, const float* c_prev, const float* h_prev,
                             const float* rec_h, const float* dh, const float* dy_step, float* dc, float* dxw,
                             float* drec, float* dh_direct, const RecurrentStep& step, void* stream);

// The gradients entering the last step: dh = dy + dh_last, dc = dc_last ([n] each; a null
// operand counts as zeros; dc null: no cell state).
void recurrent_state_grads(const float* dy, const float* dh_last, const float* dc_last, float* dh, float* dc,
                           std::int64_t n, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
