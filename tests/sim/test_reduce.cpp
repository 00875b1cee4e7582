// kernels/reduce.cu under the sim executor against ops::mean, ops::mean_backward and ops::flip,
// over every axis of [B, T, D] arrays. The mean's blocks split the summed rows among 8 warps, so
// that a missing barrier before the partial sums are added would be seen.
#include <gtest/gtest.h>

#include "attnkit/ops/reduce.h"
#include "kernels/reduce.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

struct AroundAxis {
  std::int64_t outer = 1, n = 1, inner = 1;
};

AroundAxis around(const Shape& shape, std::size_t axis) {
  AroundAxis a;
  a.n = shape[axis];
  for (std::size_t i = 0; i < axis; ++i) a.outer *= shape[i];
  for (std::size_t i = axis + 1; i < shape.size(); ++i) a.inner *= shape[i];
  return a;
}

Shape without_axis(Shape shape, std::size_t axis) {
  shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(axis));
  return shape;
}

TEST(SimReduce, MeanForwardAndBackwardMatchTheCpuOps) {
  Generator gen(41);
  for (const std::int64_t batch : {1, 3})
    for (const std::int64_t time : {1, 7, 33})
      for (const std::int64_t features : {1, 5, 100})
        for (const std::size_t axis : {0, 1, 2}) {
          const Shape shape{batch, time, features};
          const AroundAxis s = around(shape, axis);
          const Shape reduced = without_axis(shape, axis);
          const std::size_t count = static_cast<std::size_t>(s.outer * s.n * s.inner);
          const std::size_t reduced_count = static_cast<std::size_t>(s.outer * s.inner);
          const Tensor x = random_tensor(shape, gen, -2.0, 2.0, DType::f32);
          const Tensor dy = random_tensor(reduced, gen, -1.0, 1.0, DType::f32);
          Buffer<float> x_sim(floats_of(x)), y_sim(poison(reduced_count));
          kern::mean_forward(x_sim.data(), y_sim.data(), s.outer, s.n, s.inner, nullptr);
          EXPECT_TRUE(all_close(tensor_of(y_sim, reduced), ops::mean(x, static_cast<std::int64_t>(axis)), 1e-6, 1e-6))
              << x.describe() << " axis " << axis;
          Buffer<float> dy_sim(floats_of(dy)), dx_sim(poison(count));
          kern::mean_backward(dy_sim.data(), dx_sim.data(), s.outer, s.n, s.inner, nullptr);
          EXPECT_TRUE(all_close(tensor_of(dx_sim, shape), ops::mean_backward(dy, shape, static_cast<std::int64_t>(axis)),
                                0, 0))
              << x.describe() << " axis " << axis;
        }
}

// Many time steps: each of the 8 row lanes of a block sums several of them.
TEST(SimReduce, MeanOverALongTimeAxis) {
  Generator gen(42);
  const Shape shape{2, 1000, 37};
  const Tensor x = random_tensor(shape, gen, -2.0, 2.0, DType::f32);
  Buffer<float> x_sim(floats_of(x)), y_sim(poison(2 * 37));
  kern::mean_forward(x_sim.data(), y_sim.data(), 2, 1000, 37, nullptr);
  EXPECT_TRUE(all_close(tensor_of(y_sim, {2, 37}), ops::mean(x, 1), 1e-6, 1e-5));
}

TEST(SimReduce, FlipMatchesTheCpuOp) {
  Generator gen(43);
  const Shape shape{3, 7, 5};
  const Tensor x = random_tensor(shape, gen, -2.0, 2.0, DType::f32);
  for (const std::size_t axis : {0, 1, 2}) {
    const AroundAxis s = around(shape, axis);
    Buffer<float> x_sim(floats_of(x)), y_sim(poison(3 * 7 * 5));
    kern::flip(x_sim.data(), y_sim.data(), s.outer, s.n, s.inner, nullptr);
    EXPECT_TRUE(all_close(tensor_of(y_sim, shape), ops::flip(x, static_cast<std::int64_t>(axis)), 0, 0))
        << "axis " << axis;
  }
}

TEST(SimReduce, RejectsBadSizes) {
  EXPECT_ATTNKIT_ERROR(kern::mean_forward(nullptr, nullptr, 2, 0, 3, nullptr),
                       "mean_forward: the mean of an empty axis is undefined");
  EXPECT_ATTNKIT_ERROR(kern::mean_backward(nullptr, nullptr, 2, -1, 3, nullptr),
                       "mean_backward: sizes must not be negative");
  EXPECT_ATTNKIT_ERROR(kern::flip(nullptr, nullptr, -1, 2, 3, nullptr), "flip: sizes must not be negative");
}

}  // namespace
}  // namespace attnkit
