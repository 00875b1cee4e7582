// Flatten (a view) and concatenation along any axis (block copies) on the CPU.
//
// A tensor viewed around an axis is [outer, extent, inner]; concatenation copies, for each of
// the outer blocks, extent * inner contiguous elements from every input in turn.
#include "attnkit/ops/shape.h"

#include <cstring>
#include <utility>

#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {

Tensor flatten(const Tensor& x) {
  ATTNKIT_CHECK(x.defined() && x.dim() >= 1, "flatten: x must be [B, ...], got ", x.describe());
  return x.reshape({x.size(0), x.numel() / std::max<std::int64_t>(x.size(0), 1)});
}

Tensor flatten_backward(const Tensor& dy, const Shape& input_shape) {
  ATTNKIT_CHECK(dy.defined() && shape_numel(input_shape) == dy.numel(), "flatten_backward: dy ",
                dy.describe(), " does not hold the ", shape_numel(input_shape),
                " elements of the input shape ", shape_str(input_shape));
  return dy.reshape(input_shape);
}

namespace {

struct AxisSplit {
  std::int64_t outer = 1, inner = 1;
};

AxisSplit split_around(const Shape& shape, std::int64_t axis) {
  AxisSplit s;
  for (std::int64_t i = 0; i < axis; ++i) s.outer *= shape[static_cast<std::size_t>(i)];
  for (std::size_t i = static_cast<std::size_t>(axis) + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

// Copies, for every outer block, `parts[i]` runs of bytes between the parts and the whole.
// to_whole: parts -> whole (concat); otherwise whole -> parts (split).
void move_blocks(char* whole, const std::vector<char*>& parts, const std::vector<std::size_t>& part_bytes,
                 std::int64_t outer, bool to_whole) {
  std::size_t whole_row = 0;
  for (const std::size_t b : part_bytes) whole_row += b;
  for (std::int64_t o = 0; o < outer; ++o) {
    char* cursor = whole + static_cast<std::size_t>(o) * whole_row;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      char* part = parts[i] + static_cast<std::size_t>(o) * part_bytes[i];
      if (to_whole)
        std::memcpy(cursor, part, part_bytes[i]);
      else
        std::memcpy(part, cursor, part_bytes[i]);
      cursor += part_bytes[i];
    }
  }
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis) {
  ATTNKIT_CHECK(!xs.empty(), "concat: needs at least one tensor");
  const Tensor& first = xs[0];
  ATTNKIT_CHECK(first.defined() && first.dim() >= 1, "concat: input 0 must have at least one axis, got ",
                first.describe());
  const std::int64_t a = detail::normalize_axis("concat", axis, first.dim());
  Shape shape = first.shape();
  shape[static_cast<std::size_t>(a)] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    bool compatible = x.defined() && x.dim() == first.dim() && x.dtype() == first.dtype() &&
                      x.device() == first.device();
    for (std::int64_t d = 0; compatible && d < first.dim(); ++d)
      compatible = d == a || x.size(d) == first.size(d);
    ATTNKIT_CHECK(compatible, "concat: input ", i, " ", x.describe(),
                  " must match input 0 ", first.describe(), " in dtype, device and every axis but ", a);
    shape[static_cast<std::size_t>(a)] += x.size(a);
  }
  const AxisSplit split = split_around(shape, a);
  if (!first.is_cpu()) {
    detail::require_device_f32("concat", first);
    std::vector<std::int64_t> columns;
    for (const Tensor& x : xs) columns.push_back(x.size(a) * split.inner);
    return ATTNKIT_DEVICE_OP(first.device(), concat(xs, shape, split.outer, columns));
  }
  Tensor y = Tensor::empty(shape, first.dtype());
  std::vector<char*> parts;
  std::vector<std::size_t> part_bytes;
  for (const Tensor& x : xs) {
    parts.push_back(static_cast<char*>(x.raw_data()));
    part_bytes.push_back(static_cast<std::size_t>(x.size(a) * split.inner) * dtype_size(x.dtype()));
  }
  move_blocks(static_cast<char*>(y.raw_data()), parts, part_bytes, split.outer, true);
  return y;
}

std::vector<Tensor> concat_backward(const Tensor& dy, const std::vector<std::int64_t>& extents,
                                    std::int64_t axis) {
  ATTNKIT_CHECK(dy.defined() && dy.dim() >= 1, "concat_backward: dy must have at least one axis");
  const std::int64_t a = detail::normalize_axis("concat_backward", axis, dy.dim());
  std::int64_t total = 0;
  for (const std::int64_t e : extents) {
    ATTNKIT_CHECK(e >= 0, "concat_backward: negative extent ", e);
    total += e;
  }
  ATTNKIT_CHECK(total == dy.size(a), "concat_backward: the extents sum to ", total, " but dy ",
                dy.describe(), " has ", dy.size(a), " on axis ", a);
  const AxisSplit split = split_around(dy.shape(), a);
  if (!dy.is_cpu()) {
    detail::require_device_f32("concat_backward", dy);
    std::vector<Shape> shapes;
    std::vector<std::int64_t> columns;
    for (const std::int64_t e : extents) {
      shapes.push_back(dy.shape());
      shapes.back()[static_cast<std::size_t>(a)] = e;
      columns.push_back(e * split.inner);
    }
    return ATTNKIT_DEVICE_OP(dy.device(), concat_backward(dy, shapes, split.outer, columns));
  }
  std::vector<Tensor> grads;
  std::vector<char*> parts;
  std::vector<std::size_t> part_bytes;
  for (const std::int64_t e : extents) {
    Shape shape = dy.shape();
    shape[static_cast<std::size_t>(a)] = e;
    grads.push_back(Tensor::empty(shape, dy.dtype()));
    parts.push_back(static_cast<char*>(grads.back().raw_data()));
    part_bytes.push_back(static_cast<std::size_t>(e * split.inner) * dtype_size(dy.dtype()));
  }
  move_blocks(static_cast<char*>(dy.raw_data()), parts, part_bytes, split.outer, false);
  return grads;
}

Tensor transpose(const Tensor& x, std::int64_t axis_a, std::int64_t axis_b) {
  ATTNKIT_CHECK(x.defined(), "transpose: x is undefined");
  std::int64_t a = detail::normalize_axis("transpose", axis_a, x.dim());
  std::int64_t b = detail::normalize_axis("transpose", axis_b, x.dim());
  if (a > b) std::swap(a, b);
  Shape shape = x.shape();
  std::swap(shape[static_cast<std::size_t>(a)], shape[static_cast<std::size_t>(b)]);
  if (a == b) return x.clone();
  // x viewed as [outer, A, mid, B, inner]; y as [outer, B, mid, A, inner].
  const Shape& in = x.shape();
  std::int64_t outer = 1, mid = 1, inner = 1;
  for (std::int64_t i = 0; i < a; ++i) outer *= in[static_cast<std::size_t>(i)];
  for (std::int64_t i = a + 1; i < b; ++i) mid *= in[static_cast<std::size_t>(i)];
  for (std::int64_t i = b + 1; i < x.dim(); ++i) inner *= in[static_cast<std::size_t>(i)];
  const std::int64_t A = in[static_cast<std::size_t>(a)], B = in[static_cast<std::size_t>(b)];
  if (!x.is_cpu()) {
    detail::require_device_f32("transpose", x);
    return ATTNKIT_DEVICE_OP(x.device(), swap_axes(x, shape, outer, A, mid, B, inner));
  }
  Tensor y = Tensor::empty(shape, x.dtype());
  const std::size_t run = static_cast<std::size_t>(inner) * dtype_size(x.dtype());
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(y.raw_data());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < A; ++i)
      for (std::int64_t m = 0; m < mid; ++m)
        for (std::int64_t j = 0; j < B; ++j) {
          const std::int64_t from = (((o * A + i) * mid + m) * B + j);
          const std::int64_t to = (((o * B + j) * mid + m) * A + i);
          std::memcpy(dst + static_cast<std::size_t>(to) * run, src + static_cast<std::size_t>(from) * run, run);
        }
  return y;
}

}  // namespace attnkit::ops
