// SimpleRNN, LSTM and GRU on the CPU: one time loop serves the three cells.
//
// Forward: the input projection of all steps is one matrix product, xw = x W + b, kept as
// [B, T, G*U]; each step then adds h' R (one product of [B, U] by [U, G*U]) and applies the
// cell's gate equations. Backward runs the steps in reverse: the cell's equations give the
// gradients of the gate pre-activations, which feed dR (h'^T dgates), the previous state's
// gradient (dgates R^T) and, after the loop, dW, dx and the bias in three products.
#include "attnkit/ops/recurrent.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/fast_math.h"
#include "cpu/reduce.h"
#include "device_ops/dispatch.h"
#if ATTNKIT_WITH_CUDNN
#include "cuda/cudnn_recurrent.h"
#endif
#include "ops/op_common.h"

namespace attnkit::ops {

const char* recurrent_cell_name(RecurrentCell cell) {
  switch (cell) {
    case RecurrentCell::simple_rnn: return "simple_rnn";
    case RecurrentCell::lstm: return "lstm";
    case RecurrentCell::gru: return "gru";
  }
  return "unknown";
}

std::int64_t recurrent_gate_count(RecurrentCell cell) {
  switch (cell) {
    case RecurrentCell::simple_rnn: return 1;
    case RecurrentCell::lstm: return 4;
    case RecurrentCell::gru: return 3;
  }
  return 0;
}

namespace {

struct Dims {
  std::int64_t B, T, I, U, G;
  Device device = Device::cpu();  // where the operands are
  std::int64_t GU() const { return G * U; }
};

// GRU with reset_after keeps a second (recurrent) bias row.
bool has_recurrent_bias(RecurrentCell cell, const RecurrentOptions& options, const Tensor& bias) {
  return cell == RecurrentCell::gru && options.reset_after && bias.defined();
}

Dims check_recurrent(const char* op, RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                     const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                     const Tensor& c0, const RecurrentOptions& options) {
  detail::check_float(op, "x", x);
  detail::check_rank(op, "x", x, 3, "[B, T, I]");
  ATTNKIT_CHECK(x.size(1) >= 1, op, ": x needs at least one time step, got ", x.describe());
  Dims d{x.size(0), x.size(1), x.size(2), 0, recurrent_gate_count(cell)};
  ATTNKIT_CHECK(kernel.defined() && kernel.dim() == 2 && kernel.size(0) == d.I &&
                    kernel.size(1) % d.G == 0 && kernel.size(1) > 0,
                op, ": kernel must be [I, ", d.G, " * units] with I = ", d.I,
                " (the features of x) for a ", recurrent_cell_name(cell), ", got ", kernel.describe());
  d.U = kernel.size(1) / d.G;
  detail::check_like(op, "kernel", kernel, {d.I, d.GU()}, x);
  detail::check_like(op, "recurrent_kernel", recurrent_kernel, {d.U, d.GU()}, x);
  if (bias.defined()) {
    const Shape expected = has_recurrent_bias(cell, options, bias) ? Shape{2, d.GU()} : Shape{d.GU()};
    detail::check_like(op, "bias", bias, expected, x);
  }
  if (h0.defined()) detail::check_like(op, "h0", h0, {d.B, d.U}, x);
  if (c0.defined()) {
    ATTNKIT_CHECK(cell == RecurrentCell::lstm, op, ": only an LSTM has a cell state c0");
    detail::check_like(op, "c0", c0, {d.B, d.U}, x);
  }
  d.device = detail::common_device(op, {{"x", &x}, {"kernel", &kernel}, {"recurrent_kernel", &recurrent_kernel},
                                        {"bias", &bias}, {"h0", &h0}, {"c0", &c0}});
  if (!d.device.is_cpu()) {
    detail::require_device_f32(op, x);
    // cuDNN's GRU, and the step kernels, apply r after the recurrent product.
    ATTNKIT_CHECK(cell != RecurrentCell::gru || options.reset_after, op, ": a GRU on ", d.device,
                  " needs reset_after=true (Keras's default); reset_after=false runs on the cpu only");
  }
  return d;
}

// The input time step that processing step s reads.
std::int64_t time_of(std::int64_t s, const Dims& d, const RecurrentOptions& options) {
  return options.go_backwards ? d.T - 1 - s : s;
}

template <typename T>
void forward_impl(RecurrentCell cell, const Dims& d, const RecurrentOptions& options, const Tensor& x,
                  const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
                  const Tensor& h0, const Tensor& c0, RecurrentResult& out) {
  const std::int64_t B = d.B, T_ = d.T, U = d.U, GU = d.GU();
  const bool gru = cell == RecurrentCell::gru, lstm = cell == RecurrentCell::lstm;
  const bool recurrent_bias = has_recurrent_bias(cell, options, bias);
  const T* R = recurrent_kernel.data<T>();

  // xw[b, t, :] = x[b, t] W + input bias. Scratch space as a tensor: large ones come from the
  // host's cache of blocks (caching_allocator.h), not from fresh pages every batch.
  Tensor xw_scratch = Tensor::empty({B * T_ * GU}, x.dtype());
  T* xw = xw_scratch.data<T>();
  if (bias.defined()) {
    const T* b_in = bias.data<T>();
    for (std::int64_t row = 0; row < B * T_; ++row)
      for (std::int64_t j = 0; j < GU; ++j) xw[static_cast<std::size_t>(row * GU + j)] = b_in[j];
  }
  cpu::gemm<T>(false, false, int(B * T_), int(GU), int(d.I), T(1), x.data<T>(), int(d.I),
               kernel.data<T>(), int(GU), bias.defined() ? T(1) : T(0), xw, int(GU));

  T* h_seq = out.cache.h_seq.data<T>();
  T* gates = out.cache.gates.data<T>();
  T* c_seq = lstm ? out.cache.c_seq.data<T>() : nullptr;
  T* rec_cache = gru ? out.cache.recurrent.data<T>() : nullptr;
  const std::vector<T> zeros(static_cast<std::size_t>(B * U), T(0));
  std::vector<T> rec(static_cast<std::size_t>(B * GU));
  // A GRU without reset_after multiplies r into h' before R_h: that product waits for r.
  const std::int64_t rec_columns = (gru && !options.reset_after) ? 2 * U : GU;

  for (std::int64_t s = 0; s < T_; ++s) {
    const std::int64_t t = time_of(s, d, options);
    const T* h_prev = s > 0 ? h_seq + (s - 1) * B * U : (h0.defined() ? h0.data<T>() : zeros.data());
    const T* c_prev = !lstm ? nullptr : s > 0 ? c_seq + (s - 1) * B * U : (c0.defined() ? c0.data<T>() : zeros.data());
    cpu::gemm<T>(false, false, int(B), int(rec_columns), int(U), T(1), h_prev, int(U), R, int(GU),
                 T(0), rec.data(), int(GU));
    if (recurrent_bias) {
      const T* b_rec = bias.data<T>() + GU;
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t j = 0; j < GU; ++j) rec[static_cast<std::size_t>(b * GU + j)] += b_rec[j];
    }
    // The cell's equations, each a loop over the units without branches (they vectorize).
    for (std::int64_t b = 0; b < B; ++b) {
      const T* pre_x = xw + (b * T_ + t) * GU;
      const T* pre_h = rec.data() + b * GU;
      T* g = gates + (s * B + b) * GU;
      T* h = h_seq + (s * B + b) * U;
      const T* hp = h_prev + b * U;
      switch (cell) {
        case RecurrentCell::simple_rnn:
          for (std::int64_t u = 0; u < U; ++u) h[u] = g[u] = cpu::fast_tanh(pre_x[u] + pre_h[u]);
          break;
        case RecurrentCell::lstm: {
          // Gates i, f, c_hat, o side by side in g; then c = f c' + i c_hat and h = o tanh(c).
          for (std::int64_t j = 0; j < 2 * U; ++j) g[j] = cpu::fast_sigmoid(pre_x[j] + pre_h[j]);
          for (std::int64_t j = 2 * U; j < 3 * U; ++j) g[j] = cpu::fast_tanh(pre_x[j] + pre_h[j]);
          for (std::int64_t j = 3 * U; j < 4 * U; ++j) g[j] = cpu::fast_sigmoid(pre_x[j] + pre_h[j]);
          T* c = c_seq + (s * B + b) * U;
          const T* cp = c_prev + b * U;
          for (std::int64_t u = 0; u < U; ++u) c[u] = g[U + u] * cp[u] + g[u] * g[2 * U + u];
          for (std::int64_t u = 0; u < U; ++u) h[u] = g[3 * U + u] * cpu::fast_tanh(c[u]);
          break;
        }
        case RecurrentCell::gru: {
          T* kept = rec_cache + (s * B + b) * U;
          for (std::int64_t u = 0; u < U; ++u) {
            g[u] = cpu::fast_sigmoid(pre_x[u] + pre_h[u]);
            g[U + u] = cpu::fast_sigmoid(pre_x[U + u] + pre_h[U + u]);
          }
          if (options.reset_after) {
            for (std::int64_t u = 0; u < U; ++u) {
              const T z = g[u], r = g[U + u];
              const T hh = cpu::fast_tanh(pre_x[2 * U + u] + r * pre_h[2 * U + u]);
              g[2 * U + u] = hh;
              kept[u] = pre_h[2 * U + u];
              h[u] = z * hp[u] + (T(1) - z) * hh;
            }
          } else {
            for (std::int64_t u = 0; u < U; ++u) kept[u] = g[U + u] * hp[u];  // finished below
          }
          break;
        }
      }
    }
    if (gru && !options.reset_after) {
      // (r h') R_h for every sample, then the candidate and the new state.
      const T* r_h = rec_cache + s * B * U;
      cpu::gemm<T>(false, false, int(B), int(U), int(U), T(1), r_h, int(U), R + 2 * U, int(GU), T(0),
                   rec.data(), int(U));
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t u = 0; u < U; ++u) {
          T* g = gates + (s * B + b) * GU;
          const T hh = cpu::fast_tanh(xw[static_cast<std::size_t>((b * T_ + t) * GU + 2 * U + u)] +
                                      rec[static_cast<std::size_t>(b * U + u)]);
          g[2 * U + u] = hh;
          h_seq[(s * B + b) * U + u] = g[u] * h_prev[b * U + u] + (T(1) - g[u]) * hh;
        }
    }
  }

  const T* last = h_seq + (T_ - 1) * B * U;
  std::copy(last, last + B * U, out.h_last.data<T>());
  if (lstm) std::copy(c_seq + (T_ - 1) * B * U, c_seq + T_ * B * U, out.c_last.data<T>());
  T* y = out.y.data<T>();
  if (options.return_sequences) {
    for (std::int64_t s = 0; s < T_; ++s)
      for (std::int64_t b = 0; b < B; ++b)
        std::copy(h_seq + (s * B + b) * U, h_seq + (s * B + b + 1) * U, y + (b * T_ + s) * U);
  } else {
    std::copy(last, last + B * U, y);
  }
}

// One sample's LSTM step backward: from the gates g [4U] (i, f, c_hat, o), the cell state c and
// the previous one, and the gradients dh and dc of the step's outputs, the gradients of the four
// pre-activations (dpre [4U]); dc becomes the previous cell state's. The pointers do not overlap,
// which lets the loop vectorize.
template <typename T>
void lstm_step_backward(std::int64_t U, const T* __restrict__ g, const T* __restrict__ c,
                        const T* __restrict__ c_prev, const T* __restrict__ dh, T* __restrict__ dc,
                        T* __restrict__ dpre) {
  for (std::int64_t u = 0; u < U; ++u) {
    const T i = g[u], f = g[U + u], c_hat = g[2 * U + u], o = g[3 * U + u];
    const T tanh_c = cpu::fast_tanh(c[u]);
    const T dc_total = dc[u] + dh[u] * o * (T(1) - tanh_c * tanh_c);
    dpre[u] = dc_total * c_hat * i * (T(1) - i);
    dpre[U + u] = dc_total * c_prev[u] * f * (T(1) - f);
    dpre[2 * U + u] = dc_total * i * (T(1) - c_hat * c_hat);
    dpre[3 * U + u] = dh[u] * tanh_c * o * (T(1) - o);
    dc[u] = dc_total * f;
  }
}

template <typename T>
void backward_impl(RecurrentCell cell, const Dims& d, const RecurrentOptions& options,
                   const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel,
                   const Tensor& bias, const Tensor& h0, const Tensor& c0,
                   const RecurrentCache& cache, const Tensor& dy, const Tensor& dh_last,
                   const Tensor& dc_last, RecurrentGrads& grads) {
  const std::int64_t B = d.B, T_ = d.T, U = d.U, GU = d.GU();
  const bool gru = cell == RecurrentCell::gru, lstm = cell == RecurrentCell::lstm;
  const bool reset_after = options.reset_after;
  const T* R = recurrent_kernel.data<T>();
  const T* h_seq = cache.h_seq.data<T>();
  const T* gates = cache.gates.data<T>();
  const T* c_seq = lstm ? cache.c_seq.data<T>() : nullptr;
  const T* rec_cache = gru ? cache.recurrent.data<T>() : nullptr;
  const T* pdy = dy.defined() ? dy.data<T>() : nullptr;

  // The running gradients of the state entering the step being processed.
  std::vector<T> dh(static_cast<std::size_t>(B * U), T(0)), dc(dh), dh_next(dh), direct(dh);
  if (pdy != nullptr && !options.return_sequences)
    for (std::int64_t i = 0; i < B * U; ++i) dh[static_cast<std::size_t>(i)] += pdy[i];
  if (dh_last.defined())
    for (std::int64_t i = 0; i < B * U; ++i) dh[static_cast<std::size_t>(i)] += dh_last.data<T>()[i];
  if (dc_last.defined())
    for (std::int64_t i = 0; i < B * U; ++i) dc[static_cast<std::size_t>(i)] = dc_last.data<T>()[i];

  // dxw: gradients of the input pre-activations, [B, T, GU] like xw; drec_steps: of the
  // recurrent ones, [T, B, GU] in processing order (dR takes them all in one product at the end).
  Tensor dxw_scratch = Tensor::empty({B * T_ * GU}, x.dtype()), drec_scratch = Tensor::empty({T_ * B * GU}, x.dtype());
  T* dxw = dxw_scratch.data<T>();
  T* drec_steps = drec_scratch.data<T>();
  T* dR = grads.drecurrent_kernel.data<T>();
  std::fill(dR, dR + U * GU, T(0));
  std::vector<T> drec_bias(static_cast<std::size_t>(GU), T(0));
  const std::vector<T> zeros(static_cast<std::size_t>(B * U), T(0));
  const std::int64_t rec_columns = (gru && !reset_after) ? 2 * U : GU;
  // R^T [GU, U], made once: each step's dh' = drec R^T reads it where it lies (cpu::gemm copies a
  // transposed operand into panels first, at every step).
  std::vector<T> R_transposed(static_cast<std::size_t>(GU * U));
  for (std::int64_t u = 0; u < U; ++u)
    for (std::int64_t j = 0; j < GU; ++j) R_transposed[static_cast<std::size_t>(j * U + u)] = R[u * GU + j];

  for (std::int64_t s = T_ - 1; s >= 0; --s) {
    const std::int64_t t = time_of(s, d, options);
    if (pdy != nullptr && options.return_sequences)
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t u = 0; u < U; ++u) dh[static_cast<std::size_t>(b * U + u)] += pdy[(b * T_ + s) * U + u];
    const T* h_prev = s > 0 ? h_seq + (s - 1) * B * U : (h0.defined() ? h0.data<T>() : zeros.data());
    const T* c_prev = !lstm ? nullptr : s > 0 ? c_seq + (s - 1) * B * U : (c0.defined() ? c0.data<T>() : zeros.data());
    T* drec = drec_steps + s * B * GU;
    for (std::int64_t b = 0; b < B; ++b) {
      const T* g = gates + (s * B + b) * GU;
      T* dpre_x = dxw + (b * T_ + t) * GU;
      T* dpre_h = drec + b * GU;
      const T* dh_b = dh.data() + b * U;
      // The cell's equations backward, a loop over the units per cell (they vectorize); the
      // input and the recurrent pre-activations share their gradients but for the GRU's candidate.
      switch (cell) {
        case RecurrentCell::simple_rnn:
          for (std::int64_t u = 0; u < U; ++u) dpre_h[u] = dh_b[u] * (T(1) - g[u] * g[u]);
          std::copy(dpre_h, dpre_h + U, dpre_x);
          break;
        case RecurrentCell::lstm:
          lstm_step_backward(U, g, c_seq + (s * B + b) * U, c_prev + b * U, dh_b, dc.data() + b * U, dpre_h);
          std::copy(dpre_h, dpre_h + GU, dpre_x);
          break;
        case RecurrentCell::gru:
          for (std::int64_t u = 0; u < U; ++u) {
            const std::size_t bu = static_cast<std::size_t>(b * U + u);
            const T z = g[u], r = g[U + u], hh = g[2 * U + u];
            const T dhh_pre = dh_b[u] * (T(1) - z) * (T(1) - hh * hh);
            dpre_x[u] = dpre_h[u] = dh_b[u] * (h_prev[bu] - hh) * z * (T(1) - z);
            dpre_x[2 * U + u] = dhh_pre;
            direct[bu] = dh_b[u] * z;  // h = z h' + ...: the path to h' that skips R
            if (reset_after) {
              const T rec_h = rec_cache[(s * B + b) * U + u];
              dpre_x[U + u] = dpre_h[U + u] = dhh_pre * rec_h * r * (T(1) - r);
              dpre_h[2 * U + u] = dhh_pre * r;
            }
          }
          break;
      }
    }
    if (gru && !reset_after) {
      // hh = tanh(xw_h + (r h') R_h): d(r h') = dhh_pre R_h^T, then r's and h''s shares.
      const T* r_h = rec_cache + s * B * U;
      const T* dhh_pre = dxw + t * GU + 2 * U;  // rows b at stride T * GU
      cpu::gemm<T>(true, false, int(U), int(U), int(B), T(1), r_h, int(U), dhh_pre, int(T_ * GU), T(1),
                   dR + 2 * U, int(GU));
      std::vector<T>& d_rh = dh_next;  // scratch until dh_next is computed below
      cpu::gemm<T>(false, false, int(B), int(U), int(U), T(1), dhh_pre, int(T_ * GU), R_transposed.data() + 2 * U * U,
                   int(U), T(0), d_rh.data(), int(U));
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t u = 0; u < U; ++u) {
          const std::size_t bu = static_cast<std::size_t>(b * U + u);
          const T r = gates[(s * B + b) * GU + U + u];
          const T dr_pre = d_rh[bu] * h_prev[bu] * r * (T(1) - r);
          dxw[static_cast<std::size_t>((b * T_ + t) * GU + U + u)] = dr_pre;
          drec[b * GU + U + u] = dr_pre;
          direct[bu] += d_rh[bu] * r;
        }
    }
    // dh' = drec R^T (+ the direct path of the GRU).
    cpu::gemm<T>(false, false, int(B), int(U), int(rec_columns), T(1), drec, int(GU), R_transposed.data(), int(U),
                 T(0), dh_next.data(), int(U));
    if (gru)
      for (std::int64_t i = 0; i < B * U; ++i) dh_next[static_cast<std::size_t>(i)] += direct[static_cast<std::size_t>(i)];
    if (has_recurrent_bias(cell, options, bias))
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t j = 0; j < GU; ++j) drec_bias[static_cast<std::size_t>(j)] += drec[b * GU + j];
    dh.swap(dh_next);
  }
  // dR += sum over steps of h'^T drec: the states before steps 1.. are h_seq's first T - 1 steps,
  // one product over all their rows; step 0 starts from h0 (zeros when not given).
  if (T_ > 1)
    cpu::gemm<T>(true, false, int(U), int(rec_columns), int((T_ - 1) * B), T(1), h_seq, int(U),
                 drec_steps + B * GU, int(GU), T(1), dR, int(GU));
  if (h0.defined())
    cpu::gemm<T>(true, false, int(U), int(rec_columns), int(B), T(1), h0.data<T>(), int(U), drec_steps,
                 int(GU), T(1), dR, int(GU));

  // The input side of every step at once.
  cpu::gemm<T>(true, false, int(d.I), int(GU), int(B * T_), T(1), x.data<T>(), int(d.I), dxw,
               int(GU), T(0), grads.dkernel.data<T>(), int(GU));
  if (grads.dx.defined())
    cpu::gemm<T>(false, true, int(B * T_), int(d.I), int(GU), T(1), dxw, int(GU), kernel.data<T>(),
                 int(GU), T(0), grads.dx.data<T>(), int(d.I));
  if (bias.defined()) {
    T* db = grads.dbias.data<T>();
    cpu::column_sums(dxw, B * T_, GU, db);
    if (has_recurrent_bias(cell, options, bias)) std::copy(drec_bias.begin(), drec_bias.end(), db + GU);
  }
  std::copy(dh.begin(), dh.end(), grads.dh0.data<T>());
  if (lstm) std::copy(dc.begin(), dc.end(), grads.dc0.data<T>());
}

}  // namespace

RecurrentResult recurrent(RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                          const Tensor& recurrent_kernel, const Tensor& bias, const Tensor& h0,
                          const Tensor& c0, const RecurrentOptions& options) {
  const Dims d = check_recurrent(recurrent_cell_name(cell), cell, x, kernel, recurrent_kernel, bias,
                                 h0, c0, options);
  if (!d.device.is_cpu()) {
#if ATTNKIT_WITH_CUDNN
    if (d.device.is_cuda() && options.use_cudnn && d.B > 0)
      return cuda::cudnn_recurrent(cell, x, kernel, recurrent_kernel, bias, h0, c0, options);
#endif
    return ATTNKIT_DEVICE_OP(d.device, recurrent(cell, x, kernel, recurrent_kernel, bias, h0, c0, options));
  }
  const DType dt = x.dtype();
  const bool lstm = cell == RecurrentCell::lstm, gru = cell == RecurrentCell::gru;
  RecurrentResult out;
  out.y = options.return_sequences ? Tensor::empty({d.B, d.T, d.U}, dt) : Tensor::empty({d.B, d.U}, dt);
  out.h_last = Tensor::empty({d.B, d.U}, dt);
  if (lstm) out.c_last = Tensor::empty({d.B, d.U}, dt);
  out.cache.h_seq = Tensor::empty({d.T, d.B, d.U}, dt);
  out.cache.gates = Tensor::empty({d.T, d.B, d.GU()}, dt);
  if (lstm) out.cache.c_seq = Tensor::empty({d.T, d.B, d.U}, dt);
  if (gru) out.cache.recurrent = Tensor::empty({d.T, d.B, d.U}, dt);
  detail::dispatch_float(dt, [&](auto tag) {
    forward_impl<decltype(tag)>(cell, d, options, x, kernel, recurrent_kernel, bias, h0, c0, out);
  });
  return out;
}

RecurrentGrads recurrent_backward(RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                                  const Tensor& recurrent_kernel, const Tensor& bias,
                                  const Tensor& h0, const Tensor& c0,
                                  const RecurrentResult& forward, const Tensor& dy,
                                  const Tensor& dh_last, const Tensor& dc_last,
                                  const RecurrentOptions& options, bool needs_dx) {
  const char* op = "recurrent_backward";
  const Dims d = check_recurrent(op, cell, x, kernel, recurrent_kernel, bias, h0, c0, options);
  const bool lstm = cell == RecurrentCell::lstm, gru = cell == RecurrentCell::gru;
  // The forward ran through cuDNN, or saved its states and gates.
  const bool by_cudnn = forward.cache.cudnn_reserve.defined();
  if (by_cudnn) {
    detail::check_like(op, "cache.cudnn_y", forward.cache.cudnn_y, {d.B, d.T, d.U}, x);
  } else {
    detail::check_like(op, "cache.h_seq", forward.cache.h_seq, {d.T, d.B, d.U}, x);
    detail::check_like(op, "cache.gates", forward.cache.gates, {d.T, d.B, d.GU()}, x);
    if (lstm) detail::check_like(op, "cache.c_seq", forward.cache.c_seq, {d.T, d.B, d.U}, x);
    if (gru) detail::check_like(op, "cache.recurrent", forward.cache.recurrent, {d.T, d.B, d.U}, x);
  }
  if (dy.defined())
    detail::check_like(op, "dy", dy, options.return_sequences ? Shape{d.B, d.T, d.U} : Shape{d.B, d.U}, x);
  if (dh_last.defined()) detail::check_like(op, "dh_last", dh_last, {d.B, d.U}, x);
  if (dc_last.defined()) {
    ATTNKIT_CHECK(lstm, op, ": only an LSTM has a cell state gradient dc_last");
    detail::check_like(op, "dc_last", dc_last, {d.B, d.U}, x);
  }
  detail::common_device(op, {{"x", &x}, {by_cudnn ? "cache.cudnn_y" : "cache.h_seq",
                                        by_cudnn ? &forward.cache.cudnn_y : &forward.cache.h_seq},
                             {"dy", &dy}, {"dh_last", &dh_last}, {"dc_last", &dc_last}});
  if (by_cudnn) {
#if ATTNKIT_WITH_CUDNN
    return cuda::cudnn_recurrent_backward(cell, x, kernel, recurrent_kernel, bias, h0, c0, forward, dy, dh_last,
                                          dc_last, options, needs_dx);
#else
    ATTNKIT_FAIL(op, ": the forward ran through cuDNN, but this build has no cuDNN");
#endif
  }
  if (!d.device.is_cpu())
    return ATTNKIT_DEVICE_OP(d.device, recurrent_backward(cell, x, kernel, recurrent_kernel, bias, h0, c0, forward, dy,
                                                          dh_last, dc_last, options, needs_dx));
  const DType dt = x.dtype();
  RecurrentGrads grads;
  if (needs_dx) grads.dx = Tensor::empty_like(x);
  grads.dkernel = Tensor::empty_like(kernel);
  grads.drecurrent_kernel = Tensor::empty_like(recurrent_kernel);
  if (bias.defined()) grads.dbias = Tensor::empty_like(bias);
  grads.dh0 = Tensor::empty({d.B, d.U}, dt);
  if (lstm) grads.dc0 = Tensor::empty({d.B, d.U}, dt);
  detail::dispatch_float(dt, [&](auto tag) {
    backward_impl<decltype(tag)>(cell, d, options, x, kernel, recurrent_kernel, bias, h0, c0,
                                 forward.cache, dy, dh_last, dc_last, grads);
  });
  return grads;
}

}  // namespace attnkit::ops
