// Activations, elementwise products and sums on the CPU.
#include "attnkit/ops/elementwise.h"

#include <cmath>

#include "attnkit/ops/softmax.h"
#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

using detail::check_float;
using detail::common_device;
using detail::dispatch_float;
using detail::require_device_f32;

// Applies `f` to every element index of tensors with n elements, on as many cores as pays. `f`
// holds its pointers by value, and each thread loops over its own copy of it: the pointers are
// then locals that the loop's stores cannot change, they stay in registers, and the loop
// vectorizes (a conditional such as relu's included).
template <typename F>
void for_each_element(std::int64_t n, const F& f) {
  constexpr std::int64_t kChunk = 4096;
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  cpu::parallel_for(chunks, kChunk * 4, [&](std::int64_t chunk) {
    const F body = f;
    const std::int64_t end = std::min(n, (chunk + 1) * kChunk);
#pragma omp simd
    for (std::int64_t i = chunk * kChunk; i < end; ++i) body(i);
  });
}

template <typename T>
T sigmoid_of(T x) {
  // Two forms so that exp never overflows.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b, const char* name_b) {
  ATTNKIT_CHECK(b.defined() && a.shape() == b.shape() && a.dtype() == b.dtype(), op, ": ", name_b,
                " must match the shape and dtype of the first operand ", a.describe(), ", got ",
                b.describe());
}

}  // namespace

Activation parse_activation(const std::string& name) {
  if (name.empty() || name == "linear" || name == "none") return Activation::linear;
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "softmax") return Activation::softmax;
  ATTNKIT_FAIL("unknown activation \"", name, "\" (expected linear, relu, tanh, sigmoid or softmax)");
}

const char* activation_name(Activation kind) {
  switch (kind) {
    case Activation::linear: return "linear";
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
    case Activation::sigmoid: return "sigmoid";
    case Activation::softmax: return "softmax";
  }
  return "unknown";
}

Tensor activation(const Tensor& x, Activation kind) {
  check_float("activation", "x", x);
  if (kind == Activation::softmax) return softmax(x, -1);
  if (!x.is_cpu()) {
    require_device_f32("activation", x);
    return ATTNKIT_DEVICE_OP(x.device(), activation(x, kind));
  }
  Tensor y = Tensor::empty_like(x);
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    switch (kind) {
      case Activation::linear: for_each_element(x.numel(), [=](std::int64_t i) { py[i] = px[i]; }); break;
      case Activation::relu:
        // NaN passes through, so that a fault upstream reaches the loss and stops training.
        for_each_element(x.numel(), [=](std::int64_t i) { py[i] = px[i] < T(0) ? T(0) : px[i]; });
        break;
      case Activation::tanh: for_each_element(x.numel(), [=](std::int64_t i) { py[i] = std::tanh(px[i]); }); break;
      case Activation::sigmoid:
        for_each_element(x.numel(), [=](std::int64_t i) { py[i] = sigmoid_of(px[i]); });
        break;
      case Activation::softmax: break;  // handled above
    }
  });
  return y;
}

Tensor activation_backward(const Tensor& y, const Tensor& dy, Activation kind) {
  check_float("activation_backward", "y", y);
  check_same_shape("activation_backward", y, dy, "dy");
  if (kind == Activation::softmax) return softmax_backward(y, dy, -1);
  const Device device = common_device("activation_backward", {{"y", &y}, {"dy", &dy}});
  if (!device.is_cpu()) {
    require_device_f32("activation_backward", y);
    return ATTNKIT_DEVICE_OP(device, activation_backward(y, dy, kind));
  }
  Tensor dx = Tensor::empty_like(y);
  dispatch_float(y.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* py = y.data<T>();
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    switch (kind) {
      case Activation::linear: for_each_element(y.numel(), [=](std::int64_t i) { pdx[i] = pdy[i]; }); break;
      case Activation::relu:
        for_each_element(y.numel(), [=](std::int64_t i) { pdx[i] = py[i] > T(0) ? pdy[i] : T(0); });
        break;
      case Activation::tanh:
        for_each_element(y.numel(), [=](std::int64_t i) { pdx[i] = pdy[i] * (T(1) - py[i] * py[i]); });
        break;
      case Activation::sigmoid:
        for_each_element(y.numel(), [=](std::int64_t i) { pdx[i] = pdy[i] * py[i] * (T(1) - py[i]); });
        break;
      case Activation::softmax: break;  // handled above
    }
  });
  return dx;
}

Tensor multiply(const Tensor& a, const Tensor& b) {
  check_float("multiply", "a", a);
  check_same_shape("multiply", a, b, "b");
  const Device device = common_device("multiply", {{"a", &a}, {"b", &b}});
  if (!device.is_cpu()) {
    require_device_f32("multiply", a);
    return ATTNKIT_DEVICE_OP(device, multiply(a, b));
  }
  Tensor y = Tensor::empty_like(a);
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.data<T>();
    for_each_element(a.numel(), [=](std::int64_t i) { py[i] = pa[i] * pb[i]; });
  });
  return y;
}

MultiplyGrads multiply_backward(const Tensor& a, const Tensor& b, const Tensor& dy) {
  check_float("multiply_backward", "a", a);
  check_same_shape("multiply_backward", a, b, "b");
  check_same_shape("multiply_backward", a, dy, "dy");
  const Device device = common_device("multiply_backward", {{"a", &a}, {"b", &b}, {"dy", &dy}});
  MultiplyGrads grads;
  if (!device.is_cpu()) {
    require_device_f32("multiply_backward", a);
    ATTNKIT_DEVICE_OP(device, multiply_backward(a, b, dy, grads.da, grads.db));
    return grads;
  }
  grads = {Tensor::empty_like(a), Tensor::empty_like(b)};
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const T* pdy = dy.data<T>();
    T* pda = grads.da.data<T>();
    T* pdb = grads.db.data<T>();
    for_each_element(a.numel(), [=](std::int64_t i) {
      pda[i] = pdy[i] * pb[i];
      pdb[i] = pdy[i] * pa[i];
    });
  });
  return grads;
}

Tensor add(const Tensor& a, const Tensor& b) {
  check_float("add", "a", a);
  check_same_shape("add", a, b, "b");
  const Device device = common_device("add", {{"a", &a}, {"b", &b}});
  if (!device.is_cpu()) {
    require_device_f32("add", a);
    return ATTNKIT_DEVICE_OP(device, add(a, b));
  }
  Tensor y = Tensor::empty_like(a);
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.data<T>();
    for_each_element(a.numel(), [=](std::int64_t i) { py[i] = pa[i] + pb[i]; });
  });
  return y;
}

}  // namespace attnkit::ops
