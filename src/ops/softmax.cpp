// Softmax and log-softmax along any axis on the CPU.
//
// The tensor is viewed as [outer, n, inner] with n the extent of the axis; each of the
// outer * inner lanes is normalised on its own (stride `inner` between its elements).
#include "attnkit/ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/fast_math.h"
#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"
#include "ops/softmax_row.h"

namespace attnkit::ops {
namespace {

using detail::dispatch_float;

struct Lanes {
  std::int64_t outer, n, inner;
};

Lanes lanes_of(const char* op, const Tensor& x, std::int64_t axis) {
  detail::check_float(op, "x", x);
  ATTNKIT_CHECK(x.dim() >= 1, op, ": x must have at least one axis, got ", x.describe());
  const std::int64_t a = detail::normalize_axis(op, axis, x.dim());
  Lanes lanes{1, x.size(a), 1};
  for (std::int64_t i = 0; i < a; ++i) lanes.outer *= x.size(i);
  for (std::int64_t i = a + 1; i < x.dim(); ++i) lanes.inner *= x.size(i);
  return lanes;
}

// Calls body(base, stride) for each lane; element k of the lane is at base + k * stride.
template <typename F>
void for_each_lane(const Lanes& lanes, F&& body) {
  cpu::parallel_for(lanes.outer * lanes.inner, lanes.n * 8, [&](std::int64_t lane) {
    const std::int64_t o = lane / lanes.inner, i = lane % lanes.inner;
    body(o * lanes.n * lanes.inner + i, lanes.inner);
  });
}

// A lane: element k at x[k * stride]. Two forms of the same arithmetic: a long contiguous lane
// (16 or more) in softmax_row (ops/softmax_row.h), where every loop vectorizes; any other lane
// in plain loops with the sums in double. `omp simd` reductions cost a serial pass over a whole
// vector of partial sums at their end, which a lane of 2 (the classifier's softmax) pays in
// full, and a strided lane would gather.
template <typename T>
void softmax_strided_lane(const T* x, T* y, std::int64_t n, std::int64_t stride, bool log) {
  T max = -std::numeric_limits<T>::infinity();
  for (std::int64_t k = 0; k < n; ++k) max = std::max(max, x[k * stride]);
  double sum = 0;
  if (log) {
    for (std::int64_t k = 0; k < n; ++k) sum += cpu::fast_exp(static_cast<T>(x[k * stride] - max));
    const double log_sum = std::log(sum);
    for (std::int64_t k = 0; k < n; ++k) y[k * stride] = static_cast<T>(double(x[k * stride] - max) - log_sum);
    return;
  }
  for (std::int64_t k = 0; k < n; ++k) y[k * stride] = cpu::fast_exp(static_cast<T>(x[k * stride] - max));
  for (std::int64_t k = 0; k < n; ++k) sum += y[k * stride];
  for (std::int64_t k = 0; k < n; ++k) y[k * stride] = static_cast<T>(y[k * stride] / sum);
}

// Whether a lane takes softmax_row.
bool is_long_contiguous(const Lanes& lanes, std::int64_t stride) { return stride == 1 && lanes.n >= 16; }

template <typename T>
void softmax_forward(const Lanes& lanes, const T* x, T* y, bool log) {
  for_each_lane(lanes, [&](std::int64_t base, std::int64_t stride) {
    if (is_long_contiguous(lanes, stride))
      softmax_row(x + base, y + base, lanes.n, log);
    else
      softmax_strided_lane(x + base, y + base, lanes.n, stride, log);
  });
}

// The gradient of one lane, in the two forms of the forward (the formulas: ops/softmax_row.h).
template <typename T>
void softmax_backward_strided_lane(const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t stride, bool log) {
  double dot = 0;
  for (std::int64_t k = 0; k < n; ++k)
    dot += log ? double(dy[k * stride]) : double(dy[k * stride]) * double(y[k * stride]);
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t at = k * stride;
    dx[at] = log ? static_cast<T>(dy[at] - double(cpu::fast_exp(y[at])) * dot)
                 : static_cast<T>(double(y[at]) * (double(dy[at]) - dot));
  }
}

template <typename T>
void softmax_backward_lanes(const Lanes& lanes, const T* y, const T* dy, T* dx, bool log) {
  for_each_lane(lanes, [&](std::int64_t base, std::int64_t stride) {
    if (is_long_contiguous(lanes, stride))
      softmax_row_backward(y + base, dy + base, dx + base, lanes.n, log);
    else
      softmax_backward_strided_lane(y + base, dy + base, dx + base, lanes.n, stride, log);
  });
}

// The device kernels normalise over the last axis.
void require_last_axis(const char* op, const Tensor& x, std::int64_t axis) {
  detail::require_device_f32(op, x);
  ATTNKIT_CHECK(x.dim() == 0 || detail::normalize_axis(op, axis, x.dim()) == x.dim() - 1, op, ": on ", x.device(),
                " only the last axis is supported, got axis ", axis, " of ", x.describe());
}

Tensor forward(const char* op, const Tensor& x, std::int64_t axis, bool log) {
  const Lanes lanes = lanes_of(op, x, axis);
  if (!x.is_cpu()) {
    require_last_axis(op, x, axis);
    return ATTNKIT_DEVICE_OP(x.device(), softmax(x, log));
  }
  Tensor y = Tensor::empty_like(x);
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    softmax_forward(lanes, x.data<T>(), y.data<T>(), log);
  });
  return y;
}

Tensor backward(const char* op, const Tensor& y, const Tensor& dy, std::int64_t axis, bool log) {
  const Lanes lanes = lanes_of(op, y, axis);
  detail::check_like(op, "dy", dy, y.shape(), y);
  const Device device = detail::common_device(op, {{"y", &y}, {"dy", &dy}});
  if (!device.is_cpu()) {
    require_last_axis(op, y, axis);
    return ATTNKIT_DEVICE_OP(device, softmax_backward(y, dy, log));
  }
  Tensor dx = Tensor::empty_like(y);
  dispatch_float(y.dtype(), [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_lanes(lanes, y.data<T>(), dy.data<T>(), dx.data<T>(), log);
  });
  return dx;
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t axis) { return forward("softmax", x, axis, false); }

Tensor softmax_backward(const Tensor& y, const Tensor& dy, std::int64_t axis) {
  return backward("softmax_backward", y, dy, axis, false);
}

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  return forward("log_softmax", x, axis, true);
}

Tensor log_softmax_backward(const Tensor& y, const Tensor& dy, std::int64_t axis) {
  return backward("log_softmax_backward", y, dy, axis, true);
}

}  // namespace attnkit::ops
