// kernels/dropout.cu under the sim executor against the CPU ops of ops/dropout.h: the masks
// and the values agree bit for bit.
#include <gtest/gtest.h>

#include "attnkit/ops/dropout.h"
#include "kernels/dropout.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

TEST(SimDropout, ForwardAndBackwardMatchTheCpuOpBitForBit) {
  Generator gen(31);
  for (const std::uint64_t seed : {0ull, 1234ull, 0x9E3779B97F4A7C15ull}) {
    for (const std::int64_t n : {1, 7, 1001}) {
      for (const double rate : {0.1, 0.5, 0.9}) {
        const Tensor x = random_tensor({n}, gen, -3.0, 3.0, DType::f32);
        const Tensor dy = random_tensor({n}, gen, -1.0, 1.0, DType::f32);
        Generator dropout_gen(seed);
        dropout_gen.set_offset(seed % 1000);  // a draw that does not start the stream
        const std::uint64_t offset = dropout_gen.offset();
        const ops::DropoutResult expected = ops::dropout(x, rate, dropout_gen);
        const auto size = static_cast<std::size_t>(n);
        // 2 is neither 0 nor 1: a mask byte the kernel forgets to write fails.
        Buffer<float> x_sim(floats_of(x)), y_sim(poison(size));
        Buffer<std::uint8_t> mask_sim(std::vector<std::uint8_t>(size, 2));
        kern::dropout_forward(x_sim.data(), y_sim.data(), mask_sim.data(), n, rate, seed, offset, nullptr);
        EXPECT_EQ(mask_sim.values(), values_of<std::uint8_t>(expected.mask)) << "seed=" << seed << " n=" << n << " rate=" << rate;
        EXPECT_TRUE(all_close(tensor_of(y_sim, {n}), expected.y, 0, 0))
            << "seed=" << seed << " n=" << n << " rate=" << rate;
        Buffer<float> dy_sim(floats_of(dy)), dx_sim(poison(size));
        kern::dropout_backward(dy_sim.data(), mask_sim.data(), dx_sim.data(), n, rate, nullptr);
        EXPECT_TRUE(all_close(tensor_of(dx_sim, {n}), ops::dropout_backward(dy, expected.mask, rate), 0, 0))
            << "seed=" << seed << " n=" << n << " rate=" << rate;
      }
    }
  }
}

TEST(SimDropout, RateOutsideRangeIsAnError) {
  Buffer<float> x(std::vector<float>(7, 1.0f)), y(poison(7));
  Buffer<std::uint8_t> mask(7);
  EXPECT_ATTNKIT_ERROR(kern::dropout_forward(x.data(), y.data(), mask.data(), 7, 1.0, 0, 0, nullptr), "rate");
  EXPECT_ATTNKIT_ERROR(kern::dropout_backward(x.data(), mask.data(), y.data(), 7, -0.1, nullptr), "rate");
}

}  // namespace
}  // namespace attnkit
