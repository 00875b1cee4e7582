// Mean along an axis and reversal of an axis on the CPU.
//
// The tensor is viewed as [outer, n, inner] around the axis.
#include "attnkit/ops/reduce.h"

#include <cstring>
#include <vector>

#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

struct AroundAxis {
  std::int64_t outer = 1, n = 1, inner = 1;
};

AroundAxis around(const Shape& shape, std::int64_t axis) {
  AroundAxis a;
  a.n = shape[static_cast<std::size_t>(axis)];
  for (std::int64_t i = 0; i < axis; ++i) a.outer *= shape[static_cast<std::size_t>(i)];
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < shape.size(); ++i) a.inner *= shape[i];
  return a;
}

}  // namespace

Tensor mean(const Tensor& x, std::int64_t axis) {
  detail::check_float("mean", "x", x);
  ATTNKIT_CHECK(x.dim() >= 1, "mean: x must have at least one axis, got ", x.describe());
  const std::int64_t a = detail::normalize_axis("mean", axis, x.dim());
  ATTNKIT_CHECK(x.size(a) > 0, "mean: axis ", a, " of ", x.describe(), " is empty");
  const AroundAxis s = around(x.shape(), a);
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + a);
  if (!x.is_cpu()) {
    detail::require_device_f32("mean", x);
    return ATTNKIT_DEVICE_OP(x.device(), mean(x, s.outer, s.n, s.inner, out_shape));
  }
  Tensor y = Tensor::empty(out_shape, x.dtype());
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    std::vector<double> sums(static_cast<std::size_t>(s.inner));
    for (std::int64_t o = 0; o < s.outer; ++o) {
      std::fill(sums.begin(), sums.end(), 0.0);
      for (std::int64_t k = 0; k < s.n; ++k)
        for (std::int64_t i = 0; i < s.inner; ++i) sums[static_cast<std::size_t>(i)] += px[(o * s.n + k) * s.inner + i];
      for (std::int64_t i = 0; i < s.inner; ++i)
        py[o * s.inner + i] = static_cast<T>(sums[static_cast<std::size_t>(i)] / double(s.n));
    }
  });
  return y;
}

Tensor mean_backward(const Tensor& dy, const Shape& input_shape, std::int64_t axis) {
  detail::check_float("mean_backward", "dy", dy);
  const std::int64_t rank = static_cast<std::int64_t>(input_shape.size());
  ATTNKIT_CHECK(rank >= 1, "mean_backward: the input shape must have at least one axis");
  const std::int64_t a = detail::normalize_axis("mean_backward", axis, rank);
  Shape reduced = input_shape;
  reduced.erase(reduced.begin() + a);
  detail::check_shape("mean_backward", "dy", dy, reduced);
  const AroundAxis s = around(input_shape, a);
  if (!dy.is_cpu()) {
    detail::require_device_f32("mean_backward", dy);
    return ATTNKIT_DEVICE_OP(dy.device(), mean_backward(dy, s.outer, s.n, s.inner, input_shape));
  }
  Tensor dx = Tensor::empty(input_shape, dy.dtype());
  detail::dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t k = 0; k < s.n; ++k)
        for (std::int64_t i = 0; i < s.inner; ++i)
          pdx[(o * s.n + k) * s.inner + i] = static_cast<T>(pdy[o * s.inner + i] / double(s.n));
  });
  return dx;
}

Tensor flip(const Tensor& x, std::int64_t axis) {
  ATTNKIT_CHECK(x.defined() && x.dim() >= 1, "flip: x must have at least one axis");
  const std::int64_t a = detail::normalize_axis("flip", axis, x.dim());
  const AroundAxis s = around(x.shape(), a);
  if (!x.is_cpu()) {
    detail::require_device_f32("flip", x);
    return ATTNKIT_DEVICE_OP(x.device(), flip(x, s.outer, s.n, s.inner));
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const std::size_t run = static_cast<std::size_t>(s.inner) * dtype_size(x.dtype());
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(y.raw_data());
  for (std::int64_t o = 0; o < s.outer; ++o)
    for (std::int64_t k = 0; k < s.n; ++k)
      std::memcpy(dst + static_cast<std::size_t>(o * s.n + k) * run,
                  src + static_cast<std::size_t>(o * s.n + (s.n - 1 - k)) * run, run);
  return y;
}

}  // namespace attnkit::ops
