// Conv1D (im2col + one matrix product) and MaxPool1D, channels last: on the CPU here, and on a
// device through the im2col and pooling kernels of kernels/conv.cu and the device's products.
#include "attnkit/ops/conv.h"

#include <limits>
#include <vector>

#include "attnkit/ops/linear.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/reduce.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {

Padding parse_padding(const std::string& name) {
  if (name == "valid") return Padding::valid;
  if (name == "same") return Padding::same;
  ATTNKIT_FAIL("unknown padding \"", name, "\" (expected valid or same)");
}

const char* padding_name(Padding padding) { return padding == Padding::same ? "same" : "valid"; }

namespace {

struct ConvDims {
  std::int64_t batch, steps, in, kernel, out, out_steps, left;
};

ConvDims conv_dims(const char* op, const Tensor& x, const Tensor& weight, Padding padding) {
  detail::check_float(op, "x", x);
  detail::check_rank(op, "x", x, 3, "[B, T, Cin]");
  detail::check_rank(op, "weight", weight, 3, "[K, Cin, Cout]");
  ATTNKIT_CHECK(weight.size(1) == x.size(2) && weight.dtype() == x.dtype(), op,
                ": weight must be [K, Cin, Cout] with Cin = ", x.size(2),
                " (the channels of x) and the dtype of x, got ", weight.describe());
  ConvDims d{x.size(0), x.size(1), x.size(2), weight.size(0), weight.size(2), 0, 0};
  ATTNKIT_CHECK(d.kernel >= 1, op, ": the kernel size must be at least 1, got ", weight.describe());
  if (padding == Padding::same) {
    d.out_steps = d.steps;
    d.left = (d.kernel - 1) / 2;
  } else {
    ATTNKIT_CHECK(d.steps >= d.kernel, op, ": 'valid' padding needs at least K = ", d.kernel,
                  " steps, x has ", d.steps);
    d.out_steps = d.steps - d.kernel + 1;
  }
  return d;
}

// cols[(b, t), (k, c)] = x[b, t + k - left, c], zero outside the sequence.
template <typename T>
void im2col(const ConvDims& d, const T* x, T* cols) {
  const std::int64_t width = d.kernel * d.in;
  cpu::parallel_for(d.batch * d.out_steps, width, [&](std::int64_t row) {
    const std::int64_t b = row / d.out_steps, t = row % d.out_steps;
    for (std::int64_t k = 0; k < d.kernel; ++k) {
      const std::int64_t source = t + k - d.left;
      T* dst = cols + row * width + k * d.in;
      if (source < 0 || source >= d.steps) {
        for (std::int64_t c = 0; c < d.in; ++c) dst[c] = T(0);
      } else {
        const T* src = x + (b * d.steps + source) * d.in;
        for (std::int64_t c = 0; c < d.in; ++c) dst[c] = src[c];
      }
    }
  });
}

// The adjoint of im2col: dx[b, t + k - left, c] += dcols[(b, t), (k, c)].
template <typename T>
void col2im(const ConvDims& d, const T* dcols, T* dx) {
  const std::int64_t width = d.kernel * d.in;
  // Each batch element owns its rows of dx, so batches can run in parallel.
  cpu::parallel_for(d.batch, d.out_steps * width, [&](std::int64_t b) {
    T* dxb = dx + b * d.steps * d.in;
    for (std::int64_t i = 0; i < d.steps * d.in; ++i) dxb[i] = T(0);
    for (std::int64_t t = 0; t < d.out_steps; ++t)
      for (std::int64_t k = 0; k < d.kernel; ++k) {
        const std::int64_t target = t + k - d.left;
        if (target < 0 || target >= d.steps) continue;
        const T* src = dcols + (b * d.out_steps + t) * width + k * d.in;
        T* dst = dxb + target * d.in;
        for (std::int64_t c = 0; c < d.in; ++c) dst[c] += src[c];
      }
  });
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, Padding padding) {
  const ConvDims d = conv_dims("conv1d", x, weight, padding);
  if (bias.defined()) detail::check_like("conv1d", "bias", bias, {d.out}, x);
  const Device device = detail::common_device("conv1d", {{"x", &x}, {"weight", &weight}, {"bias", &bias}});
  if (!device.is_cpu()) {
    detail::require_device_f32("conv1d", x);
    const Tensor cols = ATTNKIT_DEVICE_OP(device, im2col(x, d.kernel, 1, d.left, d.out_steps));
    const Tensor y = matmul(cols, weight.reshape({d.kernel * d.in, d.out}));
    return (bias.defined() ? bias_add(y, bias) : y).reshape({d.batch, d.out_steps, d.out});
  }
  Tensor y = Tensor::empty({d.batch, d.out_steps, d.out}, x.dtype());
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t rows = d.batch * d.out_steps, width = d.kernel * d.in;
    Tensor cols_scratch = Tensor::empty({rows * width}, x.dtype());  // from the host cache when large
    T* cols = cols_scratch.data<T>();
    im2col(d, x.data<T>(), cols);
    T* py = y.data<T>();
    if (bias.defined()) {
      const T* pb = bias.data<T>();
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t o = 0; o < d.out; ++o) py[r * d.out + o] = pb[o];
    }
    cpu::gemm<T>(false, false, int(rows), int(d.out), int(width), T(1), cols, int(width),
                 weight.data<T>(), int(d.out), bias.defined() ? T(1) : T(0), py, int(d.out));
  });
  return y;
}

Conv1dGrads conv1d_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, bool has_bias,
                            Padding padding, bool needs_dx) {
  const ConvDims d = conv_dims("conv1d_backward", x, weight, padding);
  detail::check_like("conv1d_backward", "dy", dy, {d.batch, d.out_steps, d.out}, x);
  const Device device = detail::common_device("conv1d_backward", {{"x", &x}, {"weight", &weight}, {"dy", &dy}});
  if (!device.is_cpu()) {
    detail::require_device_f32("conv1d_backward", x);
    const std::int64_t rows = d.batch * d.out_steps, width = d.kernel * d.in;
    const Tensor cols = ATTNKIT_DEVICE_OP(device, im2col(x, d.kernel, 1, d.left, d.out_steps));
    const Tensor dy_rows = dy.reshape({rows, d.out});
    Conv1dGrads grads;
    grads.dweight = matmul(cols, dy_rows, true, false).reshape(weight.shape());
    if (needs_dx) {
      const Tensor dcols = matmul(dy_rows, weight.reshape({width, d.out}), false, true);
      grads.dx = ATTNKIT_DEVICE_OP(device, col2im(dcols, x.shape(), d.kernel, 1, d.left, d.out_steps));
    }
    if (has_bias) grads.dbias = bias_add_backward(dy_rows);
    return grads;
  }
  Conv1dGrads grads{needs_dx ? Tensor::empty_like(x) : Tensor(), Tensor::empty_like(weight),
                    has_bias ? Tensor::empty({d.out}, x.dtype()) : Tensor()};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t rows = d.batch * d.out_steps, width = d.kernel * d.in;
    Tensor cols_scratch = Tensor::empty({rows * width}, x.dtype());  // from the host cache when large
    T* cols = cols_scratch.data<T>();
    im2col(d, x.data<T>(), cols);
    const T* pdy = dy.data<T>();
    cpu::gemm<T>(true, false, int(width), int(d.out), int(rows), T(1), cols, int(width), pdy,
                 int(d.out), T(0), grads.dweight.data<T>(), int(d.out));
    if (needs_dx) {
      // cols is free now: reuse it for dcols = dy weight^T.
      cpu::gemm<T>(false, true, int(rows), int(width), int(d.out), T(1), pdy, int(d.out),
                   weight.data<T>(), int(d.out), T(0), cols, int(width));
      col2im(d, cols, grads.dx.data<T>());
    }
    if (has_bias) cpu::column_sums(pdy, rows, d.out, grads.dbias.data<T>());
  });
  return grads;
}

MaxPool1dResult max_pool1d(const Tensor& x, std::int64_t pool, std::int64_t stride, Padding padding) {
  detail::check_float("max_pool1d", "x", x);
  detail::check_rank("max_pool1d", "x", x, 3, "[B, T, C]");
  if (stride == 0) stride = pool;
  ATTNKIT_CHECK(pool >= 1 && stride >= 1, "max_pool1d: pool and stride must be positive, got pool ",
                pool, " and stride ", stride);
  const std::int64_t batch = x.size(0), steps = x.size(1), channels = x.size(2);
  std::int64_t out_steps = 0, left = 0;
  if (padding == Padding::valid) {
    ATTNKIT_CHECK(steps >= pool, "max_pool1d: 'valid' pooling needs at least ", pool,
                  " steps, x has ", steps);
    out_steps = (steps - pool) / stride + 1;
  } else {
    out_steps = (steps + stride - 1) / stride;
    left = std::max<std::int64_t>(0, (out_steps - 1) * stride + pool - steps) / 2;
  }
  if (!x.is_cpu()) {
    detail::require_device_f32("max_pool1d", x);
    MaxPool1dResult result;
    ATTNKIT_DEVICE_OP(x.device(), max_pool1d(x, pool, stride, left, out_steps, result.y, result.argmax));
    return result;
  }
  MaxPool1dResult result{Tensor::empty({batch, out_steps, channels}, x.dtype()),
                         Tensor::empty({batch, out_steps, channels}, DType::i32)};
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = result.y.data<T>();
    std::int32_t* arg = result.argmax.data<std::int32_t>();
    cpu::parallel_for(batch * out_steps, pool * channels, [&](std::int64_t row) {
      const std::int64_t b = row / out_steps, t = row % out_steps;
      const std::int64_t begin = std::max<std::int64_t>(0, t * stride - left);
      const std::int64_t end = std::min(steps, t * stride - left + pool);
      for (std::int64_t c = 0; c < channels; ++c) {
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t best_step = begin;
        for (std::int64_t s = begin; s < end; ++s) {
          const T v = px[(b * steps + s) * channels + c];
          if (v > best) {
            best = v;
            best_step = s;
          }
        }
        py[row * channels + c] = px[(b * steps + best_step) * channels + c];
        arg[row * channels + c] = static_cast<std::int32_t>(best_step);
      }
    });
  });
  return result;
}

Tensor max_pool1d_backward(const Tensor& dy, const Tensor& argmax, std::int64_t input_steps) {
  detail::check_float("max_pool1d_backward", "dy", dy);
  detail::check_rank("max_pool1d_backward", "dy", dy, 3, "[B, T', C]");
  ATTNKIT_CHECK(argmax.defined() && argmax.dtype() == DType::i32 && argmax.shape() == dy.shape(),
                "max_pool1d_backward: argmax must be i32 with the shape of dy ", dy.describe(),
                ", got ", argmax.describe());
  const Device device = detail::common_device("max_pool1d_backward", {{"dy", &dy}, {"argmax", &argmax}});
  const std::int64_t batch = dy.size(0), out_steps = dy.size(1), channels = dy.size(2);
  // Checked on a host copy on a device too: a bad step must not become a wild write there.
  const Tensor argmax_host = argmax.to(Device::cpu());
  const std::int32_t* arg = argmax_host.data<std::int32_t>();
  for (std::int64_t i = 0; i < argmax.numel(); ++i)
    ATTNKIT_CHECK(arg[i] >= 0 && arg[i] < input_steps, "max_pool1d_backward: argmax ", arg[i],
                  " at position ", i, " is outside the ", input_steps, " input steps");
  if (!device.is_cpu()) {
    detail::require_device_f32("max_pool1d_backward", dy);
    return ATTNKIT_DEVICE_OP(device, max_pool1d_backward(dy, argmax, input_steps));
  }
  Tensor dx = Tensor::zeros({batch, input_steps, channels}, dy.dtype());
  detail::dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    // Overlapping windows (stride < pool) may pick one step twice: accumulate per batch element.
    cpu::parallel_for(batch, out_steps * channels, [&](std::int64_t b) {
      for (std::int64_t t = 0; t < out_steps; ++t)
        for (std::int64_t c = 0; c < channels; ++c) {
          const std::int64_t i = (b * out_steps + t) * channels + c;
          pdx[(b * input_steps + arg[i]) * channels + c] += pdy[i];
        }
    });
  });
  return dx;
}

}  // namespace attnkit::ops
