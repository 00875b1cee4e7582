// One time step of SimpleRNN, LSTM and GRU (reset_after), float32, one thread per (sample,
// unit): the cell's equations over the products the device's gemm made (see recurrent.h). The
// arithmetic follows src/ops/recurrent.cpp term for term, so the sim agrees with the cpu closely.
#include "attnkit/error.h"
#include "kernels/dialect.h"
#include "kernels/recurrent.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

using Cell = ops::RecurrentCell;
constexpr int kThreads = 256;

AK_DEVICE float sigmoid(float v) {
  if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
  const float e = expf(v);
  return e / (1.0f + e);
}

// The gate count G (ops::recurrent_gate_count, here for device code).
AK_DEVICE std::int64_t gate_count(Cell cell) { return cell == Cell::lstm ? 4 : cell == Cell::gru ? 3 : 1; }

// The element of a [B, U] state, or 0 when the state is null (zeros).
AK_DEVICE float state_at(const float* state, std::int64_t i) { return state != nullptr ? state[i] : 0.0f; }

__global__ void step_forward_kernel(const float* xw, const float* rec, const float* rec_bias, const float* c_prev,
                                    const float* h_prev, float* gates, float* h, float* c, float* rec_h,
                                    RecurrentStep step) {
  const std::int64_t U = step.units, GU = gate_count(step.cell) * U, n = step.batch * U;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t b = i / U, u = i % U;
    const float* pre_x = xw + (b * step.steps + step.t) * GU;
    float* g = gates + b * GU;
    // h' R + b' for the gate column j.
    auto pre_h = [&](std::int64_t j) {
      const float product = rec != nullptr ? rec[b * GU + j] : 0.0f;
      return rec_bias != nullptr ? product + rec_bias[j] : product;
    };
    switch (step.cell) {
      case Cell::simple_rnn:
        h[i] = g[u] = tanhf(pre_x[u] + pre_h(u));
        break;
      case Cell::lstm: {
        const float in = sigmoid(pre_x[u] + pre_h(u));
        const float forget = sigmoid(pre_x[U + u] + pre_h(U + u));
        const float c_hat = tanhf(pre_x[2 * U + u] + pre_h(2 * U + u));
        const float out = sigmoid(pre_x[3 * U + u] + pre_h(3 * U + u));
        const float cell = forget * state_at(c_prev, i) + in * c_hat;
        g[u] = in, g[U + u] = forget, g[2 * U + u] = c_hat, g[3 * U + u] = out;
        c[i] = cell;
        h[i] = out * tanhf(cell);
        break;
      }
      case Cell::gru: {
        const float z = sigmoid(pre_x[u] + pre_h(u));
        const float r = sigmoid(pre_x[U + u] + pre_h(U + u));
        const float recurrent = pre_h(2 * U + u);
        const float hh = tanhf(pre_x[2 * U + u] + r * recurrent);
        g[u] = z, g[U + u] = r, g[2 * U + u] = hh;
        rec_h[i] = recurrent;
        h[i] = z * state_at(h_prev, i) + (1.0f - z) * hh;
        break;
      }
    }
  }
}

__global__ void step_backward_kernel(const float* gates, const float* c, const float* c_prev, const float* h_prev,
                                     const float* rec_h, const float* dh, const float* dy_step, float* dc, float* dxw,
                                     float* drec, float* dh_direct, RecurrentStep step) {
  const std::int64_t U = step.units, GU = gate_count(step.cell) * U, n = step.batch * U;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t b = i / U, u = i % U;
    const float* g = gates + b * GU;
    float* dpre_x = dxw + (b * step.steps + step.t) * GU;
    float* dpre_h = drec + b * GU;
    const float dh_u = dy_step != nullptr ? dh[i] + dy_step[b * step.steps * U + u] : dh[i];
    switch (step.cell) {
      case Cell::simple_rnn:
        dpre_x[u] = dpre_h[u] = dh_u * (1.0f - g[u] * g[u]);
        break;
      case Cell::lstm: {
        const float in = g[u], forget = g[U + u], c_hat = g[2 * U + u], out = g[3 * U + u];
        const float tanh_c = tanhf(c[i]);
        const float dc_total = dc[i] + dh_u * out * (1.0f - tanh_c * tanh_c);
        dpre_x[u] = dpre_h[u] = dc_total * c_hat * in * (1.0f - in);
        dpre_x[U + u] = dpre_h[U + u] = dc_total * state_at(c_prev, i) * forget * (1.0f - forget);
        dpre_x[2 * U + u] = dpre_h[2 * U + u] = dc_total * in * (1.0f - c_hat * c_hat);
        dpre_x[3 * U + u] = dpre_h[3 * U + u] = dh_u * tanh_c * out * (1.0f - out);
        dc[i] = dc_total * forget;
        break;
      }
      case Cell::gru: {
        const float z = g[u], r = g[U + u], hh = g[2 * U + u];
        const float dhh_pre = dh_u * (1.0f - z) * (1.0f - hh * hh);
        dpre_x[u] = dpre_h[u] = dh_u * (state_at(h_prev, i) - hh) * z * (1.0f - z);
        dpre_x[U + u] = dpre_h[U + u] = dhh_pre * rec_h[i] * r * (1.0f - r);
        dpre_x[2 * U + u] = dhh_pre;
        dpre_h[2 * U + u] = dhh_pre * r;
        dh_direct[i] = dh_u * z;
        break;
      }
    }
  }
}

__global__ void state_grads_kernel(const float* dy, const float* dh_last, const float* dc_last, float* dh, float* dc,
                                   std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    dh[i] = state_at(dy, i) + state_at(dh_last, i);
    if (dc != nullptr) dc[i] = state_at(dc_last, i);
  }
}

void check_step(const char* launcher, const RecurrentStep& step) {
  ATTNKIT_CHECK(step.batch >= 0 && step.steps > 0 && step.units > 0 && step.t >= 0 && step.t < step.steps, launcher,
                ": needs batch >= 0, units > 0 and 0 <= t < steps, got batch ", step.batch, ", steps ", step.steps,
                ", units ", step.units, ", t ", step.t);
}

}  // namespace

void recurrent_step_forward(const float* xw, const float* rec, const float* rec_bias, const float* c_prev,
                            const float* h_prev, float* gates, float* h, float* c, float* rec_h,
                            const RecurrentStep& step, void* stream) {
  check_step("recurrent_step_forward", step);
  const std::int64_t n = step.batch * step.units;
  if (n == 0) return;
  AK_LAUNCH(step_forward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), xw, rec,
            rec_bias, c_prev, h_prev, gates, h, c, rec_h, step);
}

void recurrent_step_backward(const float* gates, const float* c, const float* c_prev, const float* h_prev,
                             const float* rec_h, const float* dh, const float* dy_step, float* dc, float* dxw,
                             float* drec, float* dh_direct, const RecurrentStep& step, void* stream) {
  check_step("recurrent_step_backward", step);
  const std::int64_t n = step.batch * step.units;
  if (n == 0) return;
  AK_LAUNCH(step_backward_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), gates, c,
            c_prev, h_prev, rec_h, dh, dy_step, dc, dxw, drec, dh_direct, step);
}

void recurrent_state_grads(const float* dy, const float* dh_last, const float* dc_last, float* dh, float* dc,
                           std::int64_t n, void* stream) {
  ATTNKIT_CHECK(n >= 0, "recurrent_state_grads: the size must not be negative, got ", n);
  if (n == 0) return;
  AK_LAUNCH(state_grads_kernel, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream), dy, dh_last,
            dc_last, dh, dc, n);
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
