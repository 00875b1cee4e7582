// SimpleRNN, LSTM and GRU (reset_after) on a device through kernels/recurrent.cu: the input
// products of every step in one gemm (x W + b), then per step a gemm (h' R) and the cell's step
// kernel. The backward runs the steps in reverse, a step kernel and a gemm (dh' = drec R^T)
// each, keeping every step's drec so that dR, dW, dx and the biases are one product or column
// sum each after the loop. The states and gates are saved as the cpu saves them (RecurrentCache).
#include "device_ops/common.h"
#include "kernels/bias.h"
#include "kernels/recurrent.h"
#include "kernels/reduce.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;
namespace {

struct Dims {
  std::int64_t B, T, I, U, G;
  std::int64_t GU() const { return G * U; }
};

Dims dims_of(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel) {
  const std::int64_t G = ops::recurrent_gate_count(cell);
  return {x.size(0), x.size(1), x.size(2), kernel.size(1) / G, G};
}

// The input step that processing step s reads.
std::int64_t time_of(std::int64_t s, const Dims& d, const ops::RecurrentOptions& options) {
  return options.go_backwards ? d.T - 1 - s : s;
}

// The state [B, U] before processing step s: the saved state of step s - 1, else the initial
// state (null for zeros).
const float* state_before(std::int64_t s, const Tensor& saved, const Tensor& initial, const Dims& d) {
  if (s > 0) return floats(saved) + (s - 1) * d.B * d.U;
  return initial.defined() ? floats(initial) : nullptr;
}

// C = A B, one row-major product on the device.
void product(Device device, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
             const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
             std::int64_t ldc) {
  gemm(device, transpose_a, transpose_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, 1, 0, 0, 0);
}

}  // namespace

ops::RecurrentResult recurrent(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                               const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0, const Tensor& c0,
                               const ops::RecurrentOptions& options) {
  const Dims d = dims_of(cell, x, kernel);
  const std::int64_t GU = d.GU();
  const Device device = x.device();
  void* const s_ = stream(device);
  const bool lstm = cell == ops::RecurrentCell::lstm, gru = cell == ops::RecurrentCell::gru;

  ops::RecurrentResult out;
  out.cache.h_seq = empty_on({d.T, d.B, d.U}, device);
  out.cache.gates = empty_on({d.T, d.B, GU}, device);
  if (lstm) out.cache.c_seq = empty_on({d.T, d.B, d.U}, device);
  if (gru) out.cache.recurrent = empty_on({d.T, d.B, d.U}, device);

  // xw = x W + b (the GRU's first bias row).
  const Tensor xw = empty_on({d.B, d.T, GU}, device);
  product(device, false, false, d.B * d.T, GU, d.I, floats(x), d.I, floats(kernel), GU, 0.0f, floats(xw), GU);
  if (bias.defined()) kern::bias_add_forward(floats(xw), floats(bias), floats(xw), d.B * d.T, GU, s_);
  const float* rec_bias = gru && bias.defined() ? floats(bias) + GU : nullptr;

  const Tensor rec = empty_on({d.B, GU}, device);
  for (std::int64_t s = 0; s < d.T; ++s) {
    const float* h_prev = state_before(s, out.cache.h_seq, h0, d);
    const float* c_prev = lstm ? state_before(s, out.cache.c_seq, c0, d) : nullptr;
    // From zero states h' R is zero: the step kernel takes a null rec.
    if (h_prev != nullptr)
      product(device, false, false, d.B, GU, d.U, h_prev, d.U, floats(recurrent_kernel), GU, 0.0f, floats(rec), GU);
    kern::recurrent_step_forward(floats(xw), h_prev != nullptr ? floats(rec) : nullptr, rec_bias, c_prev, h_prev,
                                 floats(out.cache.gates) + s * d.B * GU, floats(out.cache.h_seq) + s * d.B * d.U,
                                 lstm ? floats(out.cache.c_seq) + s * d.B * d.U : nullptr,
                                 gru ? floats(out.cache.recurrent) + s * d.B * d.U : nullptr,
                                 {cell, d.B, d.T, d.U, time_of(s, d, options)}, s_);
  }

  out.h_last = out.cache.h_seq.slice(d.T - 1, d.T).reshape({d.B, d.U}).clone();
  if (lstm) out.c_last = out.cache.c_seq.slice(d.T - 1, d.T).reshape({d.B, d.U}).clone();
  if (options.return_sequences) {
    // y [B, T, U] from h_seq [T, B, U].
    out.y = empty_on({d.B, d.T, d.U}, device);
    kern::swap_axes(floats(out.cache.h_seq), floats(out.y), 1, d.T, 1, d.B, d.U, s_);
  } else {
    out.y = out.h_last.clone();
  }
  return out;
}

ops::RecurrentGrads recurrent_backward(ops::RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                                       const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                                       const Tensor& c0, const ops::RecurrentResult& forward, const Tensor& dy,
                                       const Tensor& dh_last, const Tensor& dc_last,
                                       const ops::RecurrentOptions& options, bool needs_dx) {
  const Dims d = dims_of(cell, x, kernel);
  const std::int64_t GU = d.GU();
  const Device device = x.device();
  void* const s_ = stream(device);
  const bool lstm = cell == ops::RecurrentCell::lstm, gru = cell == ops::RecurrentCell::gru;
  const ops::RecurrentCache& cache = forward.cache;

  // The gradients of the state entering the step being processed: dh, and the LSTM's dc.
  Tensor dh = empty_on({d.B, d.U}, device), dh_next = empty_on({d.B, d.U}, device);
  const Tensor dc = lstm ? empty_on({d.B, d.U}, device) : Tensor();
  kern::recurrent_state_grads(
      dy.defined() && !options.return_sequences ? floats(dy) : nullptr, dh_last.defined() ? floats(dh_last) : nullptr,
      dc_last.defined() ? floats(dc_last) : nullptr, floats(dh), lstm ? floats(dc) : nullptr, d.B * d.U, s_);

  // dxw: the input pre-activations' gradients [B, T, GU]; drec: the recurrent ones, every step.
  const Tensor dxw = empty_on({d.B, d.T, GU}, device), drec = empty_on({d.T, d.B, GU}, device);
  for (std::int64_t s = d.T - 1; s >= 0; --s) {
    const float* h_prev = state_before(s, cache.h_seq, h0, d);
    const float* dy_step = dy.defined() && options.return_sequences ? floats(dy) + s * d.U : nullptr;
    float* drec_s = floats(drec) + s * d.B * GU;
    kern::recurrent_step_backward(
        floats(cache.gates) + s * d.B * GU, lstm ? floats(cache.c_seq) + s * d.B * d.U : nullptr,
        lstm ? state_before(s, cache.c_seq, c0, d) : nullptr, h_prev,
        gru ? floats(cache.recurrent) + s * d.B * d.U : nullptr, floats(dh), dy_step, lstm ? floats(dc) : nullptr,
        floats(dxw), drec_s, gru ? floats(dh_next) : nullptr, {cell, d.B, d.T, d.U, time_of(s, d, options)}, s_);
    // dh' = drec R^T, added to the GRU's direct path z dh.
    product(device, false, true, d.B, d.U, GU, drec_s, GU, floats(recurrent_kernel), GU, gru ? 1.0f : 0.0f,
            floats(dh_next), d.U);
    std::swap(dh, dh_next);
  }

  ops::RecurrentGrads grads;
  // dR = sum over steps of h'^T drec: the saved states of steps 0 .. T-2 meet drec of steps
  // 1 .. T-1 in one product; h0 meets drec of step 0.
  grads.drecurrent_kernel = empty_on({d.U, GU}, device);
  float beta = 0.0f;
  if (d.T > 1) {
    product(device, true, false, d.U, GU, (d.T - 1) * d.B, floats(cache.h_seq), d.U, floats(drec) + d.B * GU, GU, 0.0f,
            floats(grads.drecurrent_kernel), GU);
    beta = 1.0f;
  }
  if (h0.defined()) {
    product(device, true, false, d.U, GU, d.B, floats(h0), d.U, floats(drec), GU, beta, floats(grads.drecurrent_kernel),
            GU);
    beta = 1.0f;
  }
  if (beta == 0.0f) grads.drecurrent_kernel = Tensor::zeros({d.U, GU}, DType::f32, device);

  grads.dkernel = empty_on({d.I, GU}, device);
  product(device, true, false, d.I, GU, d.B * d.T, floats(x), d.I, floats(dxw), GU, 0.0f, floats(grads.dkernel), GU);
  if (needs_dx) {
    grads.dx = empty_on(x.shape(), device);
    product(device, false, true, d.B * d.T, d.I, GU, floats(dxw), GU, floats(kernel), GU, 0.0f, floats(grads.dx), d.I);
  }
  if (bias.defined()) {
    grads.dbias = Tensor::empty_like(bias);
    kern::sum_forward(floats(dxw), floats(grads.dbias), 1, d.B * d.T, GU, s_);
    if (gru) kern::sum_forward(floats(drec), floats(grads.dbias) + GU, 1, d.T * d.B, GU, s_);
  }
  grads.dh0 = dh;
  if (lstm) grads.dc0 = dc;
  return grads;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
