// kernels/concat.cu under the sim executor against the CPU ops of ops/shape.h (last axis).
#include <gtest/gtest.h>

#include <memory>

#include "attnkit/ops/shape.h"
#include "kernels/concat.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

TEST(SimConcat, ForwardAndBackwardMatchTheCpuOps) {
  Generator gen(41);
  const std::vector<std::vector<std::int64_t>> column_sets = {{1}, {7, 1}, {3, 1001, 5}, {2, 0, 9}};
  for (const std::int64_t rows : {1, 7, 33}) {
    for (const std::vector<std::int64_t>& columns : column_sets) {
      std::int64_t width = 0;
      std::vector<Tensor> parts;
      std::vector<std::unique_ptr<Buffer<float>>> part_sims, grad_sims;
      std::vector<const float*> part_pointers;
      std::vector<float*> grad_pointers;
      for (const std::int64_t c : columns) {
        width += c;
        parts.push_back(random_tensor({rows, c}, gen, -2.0, 2.0, DType::f32));
        part_sims.push_back(std::make_unique<Buffer<float>>(floats_of(parts.back())));
        grad_sims.push_back(std::make_unique<Buffer<float>>(poison(static_cast<std::size_t>(rows * c))));
        part_pointers.push_back(part_sims.back()->data());
        grad_pointers.push_back(grad_sims.back()->data());
      }
      const auto whole = static_cast<std::size_t>(rows * width);
      Buffer<float> y_sim(poison(whole));
      kern::concat_forward(part_pointers, columns, y_sim.data(), rows, nullptr);
      EXPECT_TRUE(all_close(tensor_of(y_sim, {rows, width}), ops::concat(parts, -1), 0, 0))
          << "rows=" << rows << " pieces=" << columns.size();

      const Tensor dy = random_tensor({rows, width}, gen, -1.0, 1.0, DType::f32);
      Buffer<float> dy_sim(floats_of(dy));
      kern::concat_backward(dy_sim.data(), grad_pointers, columns, rows, nullptr);
      const std::vector<Tensor> expected = ops::concat_backward(dy, columns, -1);
      for (std::size_t i = 0; i < columns.size(); ++i)
        EXPECT_TRUE(all_close(tensor_of(*grad_sims[i], {rows, columns[i]}), expected[i], 0, 0))
            << "rows=" << rows << " pieces=" << columns.size() << " piece " << i;
    }
  }
}

TEST(SimConcat, MismatchedColumnCountsAreAnError) {
  Buffer<float> part(poison(4)), y(poison(4));
  EXPECT_ATTNKIT_ERROR(kern::concat_forward({part.data()}, {2, 2}, y.data(), 2, nullptr), "column counts");
}

}  // namespace
}  // namespace attnkit
