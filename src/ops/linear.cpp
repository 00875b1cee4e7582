// Matrix products, linear (Dense) and bias addition on the CPU, through OpenBLAS.
#include "attnkit/ops/linear.h"

#include <algorithm>

#include "cpu/blas.h"
#include "cpu/parallel.h"
#include "cpu/reduce.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

using detail::check_float;
using detail::common_device;
using detail::dispatch_float;
using detail::require_cpu;

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
  require_cpu("matmul", common_device("matmul", {{"a", &a}, {"b", &b}}));
  Tensor c = Tensor::empty(matmul_shape(d, a.dim() == 3, d.m, d.n), a.dtype());
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int m = int(d.m), n = int(d.n), k = int(d.k);
    const int lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
    for (std::int64_t i = 0; i < d.batch; ++i)
      cpu::gemm<T>(transpose_a, transpose_b, m, n, k, T(1), a.data<T>() + i * d.m * d.k, lda,
                   b.data<T>() + i * d.k * d.n, ldb, T(0), c.data<T>() + i * d.m * d.n, n);
  });
  return c;
}

MatmulGrads matmul_backward(const Tensor& a, const Tensor& b, const Tensor& dc, bool transpose_a,
                            bool transpose_b) {
  const MatmulDims d = matmul_dims("matmul_backward", a, b, transpose_a, transpose_b);
  const bool batched = a.dim() == 3;
  detail::check_like("matmul_backward", "dc", dc, matmul_shape(d, batched, d.m, d.n), a);
  require_cpu("matmul_backward",
              common_device("matmul_backward", {{"a", &a}, {"b", &b}, {"dc", &dc}}));
  MatmulGrads grads{Tensor::empty_like(a), Tensor::empty_like(b)};
  dispatch_float(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const int m = int(d.m), n = int(d.n), k = int(d.k);
    const int lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
    for (std::int64_t i = 0; i < d.batch; ++i) {
      const T* pa = a.data<T>() + i * d.m * d.k;
      const T* pb = b.data<T>() + i * d.k * d.n;
      const T* pdc = dc.data<T>() + i * d.m * d.n;
      T* pda = grads.da.data<T>() + i * d.m * d.k;
      T* pdb = grads.db.data<T>() + i * d.k * d.n;
      // c = op(a) op(b): d op(a) = dc op(b)^T and d op(b) = op(a)^T dc, stored transposed
      // where the operand was.
      if (!transpose_a)
        cpu::gemm<T>(false, !transpose_b, m, k, n, T(1), pdc, n, pb, ldb, T(0), pda, k);
      else
        cpu::gemm<T>(transpose_b, true, k, m, n, T(1), pb, ldb, pdc, n, T(0), pda, m);
      if (!transpose_b)
        cpu::gemm<T>(!transpose_a, false, k, n, m, T(1), pa, lda, pdc, n, T(0), pdb, n);
      else
        cpu::gemm<T>(true, transpose_a, n, k, m, T(1), pdc, n, pa, lda, T(0), pdb, k);
    }
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
  require_cpu("linear", common_device("linear", {{"x", &x}, {"weight", &weight}, {"bias", &bias}}));
  Tensor y = Tensor::empty(with_last(x.shape(), out), x.dtype());
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* py = y.data<T>();
    if (bias.defined()) {  // start every row from the bias and accumulate the product onto it
      const T* pb = bias.data<T>();
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < out; ++j) py[r * out + j] = pb[j];
    }
    cpu::gemm<T>(false, false, int(rows), int(out), int(in), T(1), x.data<T>(), int(in),
                 weight.data<T>(), int(out), bias.defined() ? T(1) : T(0), py, int(out));
  });
  return y;
}

LinearGrads linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, bool has_bias,
                            bool needs_dx) {
  check_linear("linear_backward", x, weight);
  const std::int64_t in = weight.size(0), out = weight.size(1), rows = rows_of(x);
  detail::check_like("linear_backward", "dy", dy, with_last(x.shape(), out), x);
  require_cpu("linear_backward",
              common_device("linear_backward", {{"x", &x}, {"weight", &weight}, {"dy", &dy}}));
  LinearGrads grads{needs_dx ? Tensor::empty_like(x) : Tensor(), Tensor::empty_like(weight),
                    has_bias ? Tensor::empty({out}, x.dtype()) : Tensor()};
  dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    if (needs_dx)
      cpu::gemm<T>(false, true, int(rows), int(in), int(out), T(1), pdy, int(out), weight.data<T>(),
                   int(out), T(0), grads.dx.data<T>(), int(in));
    cpu::gemm<T>(true, false, int(in), int(out), int(rows), T(1), x.data<T>(), int(in), pdy,
                 int(out), T(0), grads.dweight.data<T>(), int(out));
    if (has_bias) cpu::column_sums(pdy, rows, out, grads.dbias.data<T>());
  });
  return grads;
}

Tensor bias_add(const Tensor& x, const Tensor& bias) {
  check_float("bias_add", "x", x);
  ATTNKIT_CHECK(x.dim() >= 1, "bias_add: x must be [..., C], got ", x.describe());
  detail::check_like("bias_add", "bias", bias, {x.size(-1)}, x);
  require_cpu("bias_add", common_device("bias_add", {{"x", &x}, {"bias", &bias}}));
  Tensor y = Tensor::empty_like(x);
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
  require_cpu("bias_add_backward", dy.device());
  Tensor dbias = Tensor::empty({dy.size(-1)}, dy.dtype());
  dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::column_sums(dy.data<T>(), rows_of(dy), dy.size(-1), dbias.data<T>());
  });
  return dbias;
}

}  // namespace attnkit::ops
