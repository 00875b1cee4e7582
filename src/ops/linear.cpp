// Matrix products, linear (Dense) and bias addition on the CPU.
#include "attnkit/ops/linear.h"

#include <algorithm>

#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/reduce.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

using detail::check_float;
using detail::common_device;
using detail::dispatch_float;
using detail::elements;
using detail::gemm_on;
using detail::require_device_f32;

struct MatmulDims {
  std::int64_t batch, m, k, n;
};

// Checks the operands of matmul and returns the problem size.
MatmulDims matmul_dims(const char* op, const Tensor& a, const Tensor& b, bool transpose_a,
                       bool transpose_b) {
  check_float(op, "a", a);
  check_float(op, "b", b);
  ATTNKIT_CHECK(a.dtype() == b.dtype(), op, ": a and b differ in dtype: ", a.describe(), " and ",
                b.describe());
  ATTNKIT_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), op,
                ": a and b must both be matrices or both batches of matrices, got ",
                a.describe(), " and ", b.describe());
  const bool batched = a.dim() == 3;
  if (batched)
    ATTNKIT_CHECK(a.size(0) == b.size(0), op, ": batch sizes differ: ", a.describe(), " and ",
                  b.describe());
  MatmulDims dims;
  dims.batch = batched ? a.size(0) : 1;
  dims.m = transpose_a ? a.size(-1) : a.size(-2);
  dims.k = transpose_a ? a.size(-2) : a.size(-1);
  const std::int64_t kb = transpose_b ? b.size(-1) : b.size(-2);
  dims.n = transpose_b ? b.size(-2) : b.size(-1);
  ATTNKIT_CHECK(dims.k == kb, op, ": inner extents differ (", dims.k, " vs ", kb, ") for a ",
                a.describe(), (transpose_a ? " (transposed)" : ""), " and b ", b.describe(),
                (transpose_b ? " (transposed)" : ""));
  return dims;
}

Shape matmul_shape(const MatmulDims& d, bool batched, std::int64_t rows, std::int64_t cols) {
  return batched ? Shape{d.batch, rows, cols} : Shape{rows, cols};
}

// The rows of a [..., features] tensor: all leading axes flattened.
std::int64_t rows_of(const Tensor& x) { return x.numel() / std::max<std::int64_t>(x.size(-1), 1); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const MatmulDims d = matmul_dims("matmul", a, b, transpose_a, transpose_b);
  const Device device = common_device("matmul", {{"a", &a}, {"b", &b}});
  require_device_f32("matmul", a);
  Tensor c = Tensor::empty(matmul_shape(d, a.dim() == 3, d.m, d.n), a.dtype(), device);
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t m = d.m, n = d.n, k = d.k;
    const std::int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
    gemm_on<T>(device, transpose_a, transpose_b, m, n, k, T(1), elements<T>(a), lda, elements<T>(b), ldb, T(0),
               elements<T>(c), n, d.batch, m * k, k * n, m * n);
  });
  return c;
}

MatmulGrads matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc, bool transpose_a,
                            bool transpose_b) {
  const MatmulDims d = matmul_dims("matmul_backward", a, b, transpose_a, transpose_b);
  const bool batched = a.dim() == 3;
  detail::check_like("matmul_backward", "dc", dc, matmul_shape(d, batched, d.m, d.n), a);
  const Device device = common_device("matmul_backward", {{"a", &a}, {"b", &b}, {"dc", &dc}});
  require_device_f32("matmul_backward", a);
  MatmulGrads grads{Tensor::empty_like(a), Tensor::empty_like(b)};
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t m = d.m, n = d.n, k = d.k;
    const std::int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
    const T* pa = elements<T>(a);
    const T* pb = elements<T>(b);
    const T* pdc = elements<T>(dc);
    T* pda = elements<T>(grads.da);
    T* pdb = elements<T>(grads.db);
    const std::int64_t size_a = m * k, size_b = k * n, size_c = m * n, batch = d.batch;
    // c = op(a) op(b): d op(a) = dc op(b)^T and d op(b) = op(a)^T dc, stored transposed where
    // the operand was; every matrix of the batch alike.
    if (!transpose_a)
      gemm_on<T>(device, false, !transpose_b, m, k, n, T(1), pdc, n, pb, ldb, T(0), pda, k, batch, size_c, size_b,
                 size_a);
    else
      gemm_on<T>(device, transpose_b, true, k, m, n, T(1), pb, ldb, pdc, n, T(0), pda, m, batch, size_b, size_c,
                 size_a);
    if (!transpose_b)
      gemm_on<T>(device, !transpose_a, false, k, n, m, T(1), pa, lda, pdc, n, T(0), pdb, n, batch, size_a, size_c,
                 size_b);
    else
      gemm_on<T>(device, true, transpose_a, n, k, m, T(1), pdc, n, pa, lda, T(0), pdb, k, batch, size_c, size_a,
                 size_b);
  });
  return grads;
}

namespace {

void check_linear(const char* op, const Tensor& x, const Tensor& weight) {
  check_float(op, "x", x);
  check_float(op, "weight", weight);
  ATTNKIT_CHECK(x.dim() >= 1, op, ": x must be [..., in], got ", x.describe());
  ATTNKIT_CHECK(weight.dim() == 2 && weight.size(0) == x.size(-1) && weight.dtype() == x.dtype(),
                op, ": weight must be [in, out] with in = ", x.size(-1),
                " (the last extent of x) and the dtype of x, got ", weight.describe());
}

Shape with_last(const Shape& shape, std::int64_t last) {
  Shape out = shape;
  out.back() = last;
  return out;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear("linear", x, weight);
  const std::int64_t in = weight.size(0), out = weight.size(1), rows = rows_of(x);
  if (bias.defined()) detail::check_like("linear", "bias", bias, {out}, x);
  const Device device = common_device("linear", {{"x", &x}, {"weight", &weight}, {"bias", &bias}});
  require_device_f32("linear", x);
  Tensor y = Tensor::empty(with_last(x.shape(), out), x.dtype(), device);
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* py = elements<T>(y);
    // On the cpu every row starts from the bias and the product accumulates onto it; a device
    // adds the bias after the product.
    const bool bias_first = bias.defined() && device.is_cpu();
    if (bias_first) {
      const T* pb = bias.data<T>();
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < out; ++j) py[r * out + j] = pb[j];
    }
    gemm_on<T>(device, false, false, rows, out, in, T(1), elements<T>(x), in, elements<T>(weight), out,
               bias_first ? T(1) : T(0), py, out);
  });
  if (bias.defined() && !device.is_cpu()) ATTNKIT_DEVICE_OP(device, bias_add(y, bias, y));
  return y;
}

LinearGrads linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, bool has_bias,
                            bool needs_dx) {
  check_linear("linear_backward", x, weight);
  const std::int64_t in = weight.size(0), out = weight.size(1), rows = rows_of(x);
  detail::check_like("linear_backward", "dy", dy, with_last(x.shape(), out), x);
  const Device device = common_device("linear_backward", {{"x", &x}, {"weight", &weight}, {"dy", &dy}});
  require_device_f32("linear_backward", x);
  LinearGrads grads{needs_dx ? Tensor::empty_like(x) : Tensor(), Tensor::empty_like(weight), Tensor()};
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = elements<T>(dy);
    if (needs_dx)
      gemm_on<T>(device, false, true, rows, in, out, T(1), pdy, out, elements<T>(weight), out, T(0),
                 elements<T>(grads.dx), in);
    gemm_on<T>(device, true, false, in, out, rows, T(1), elements<T>(x), in, pdy, out, T(0),
               elements<T>(grads.dweight), out);
  });
  if (has_bias) grads.dbias = bias_add_backward(dy.reshape({rows, out}));
  return grads;
}

Tensor bias_add(const Tensor& x, const Tensor& bias) {
  check_float("bias_add", "x", x);
  ATTNKIT_CHECK(x.dim() >= 1, "bias_add: x must be [..., C], got ", x.describe());
  detail::check_like("bias_add", "bias", bias, {x.size(-1)}, x);
  const Device device = common_device("bias_add", {{"x", &x}, {"bias", &bias}});
  Tensor y = Tensor::empty_like(x);
  if (!device.is_cpu()) {
    require_device_f32("bias_add", x);
    ATTNKIT_DEVICE_OP(device, bias_add(x, bias, y));
    return y;
  }
  const std::int64_t channels = x.size(-1), rows = rows_of(x);
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pb = bias.data<T>();
    T* py = y.data<T>();
    cpu::parallel_for(rows, channels, [&](std::int64_t r) {
      for (std::int64_t c = 0; c < channels; ++c) py[r * channels + c] = px[r * channels + c] + pb[c];
    });
  });
  return y;
}

Tensor bias_add_backward(const Tensor& dy) {
  check_float("bias_add_backward", "dy", dy);
  ATTNKIT_CHECK(dy.dim() >= 1, "bias_add_backward: dy must be [..., C], got ", dy.describe());
  if (!dy.is_cpu()) {
    require_device_f32("bias_add_backward", dy);
    return ATTNKIT_DEVICE_OP(dy.device(), bias_add_backward(dy));
  }
  Tensor dbias = Tensor::empty({dy.size(-1)}, dy.dtype());
  dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::column_sums(dy.data<T>(), rows_of(dy), dy.size(-1), dbias.data<T>());
  });
  return dbias;
}

}  // namespace attnkit::ops
