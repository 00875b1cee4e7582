// Dropout: the mask follows the documented Philox rule, the scaling is inverted dropout, and the
// backward routes gradients through the same mask.
#include <gtest/gtest.h>

#include "attnkit/ops/dropout.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

TEST(Dropout, MaskFollowsPhiloxAndScalesKeptValues) {
  Generator gen(51);
  Tensor x = random_tensor({5, 7, 3}, gen);  // 105 elements: not a multiple of four
  Generator dropout_gen(1234);
  dropout_gen.set_offset(10);
  const double rate = 0.3;
  ops::DropoutResult r = ops::dropout(x, rate, dropout_gen);
  EXPECT_EQ(dropout_gen.offset(), 10u + 27u);  // ceil(105 / 4) blocks
  const auto vx = values(x), vy = values(r.y), keep = values(r.mask);
  int kept = 0;
  for (std::size_t i = 0; i < vx.size(); ++i) {
    const Philox4x32 block = philox4x32_10(static_cast<std::uint32_t>(10 + i / 4), 0, 0, 0, 1234, 0);
    const bool expected_keep = static_cast<double>(block.word[i % 4] >> 8) / 16777216.0 >= rate;
    ASSERT_EQ(keep[i], expected_keep ? 1.0 : 0.0) << "element " << i;
    EXPECT_DOUBLE_EQ(vy[i], expected_keep ? vx[i] / (1 - rate) : 0.0);
    kept += expected_keep;
  }
  EXPECT_GT(kept, 50);
  EXPECT_LT(kept, 95);
}

TEST(Dropout, KeepFractionMatchesRate) {
  Generator gen(52);
  Tensor x = Tensor::full({100000}, 1.0);
  const auto keep = values(ops::dropout(x, 0.25, gen).mask);
  double sum = 0;
  for (const double k : keep) sum += k;
  EXPECT_NEAR(sum / 100000, 0.75, 5 * std::sqrt(0.75 * 0.25 / 100000));
}

TEST(Gradient, Dropout) {
  Generator gen(53);
  GradCheck check;
  check.inputs = {random_tensor({4, 9, 5}, gen)};
  // The same seed on every call, so that every forward of the check drops the same elements.
  check.forward = [](const Tensors& in) {
    Generator g(77);
    return Tensors{ops::dropout(in[0], 0.4, g).y};
  };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    Generator g(77);
    return Tensors{ops::dropout_backward(d[0], ops::dropout(in[0], 0.4, g).mask, 0.4)};
  };
  check_gradients(check);
}

TEST(Dropout, RateOutsideRangeIsAnError) {
  Generator gen(1);
  EXPECT_ATTNKIT_ERROR(ops::dropout(Tensor::zeros({3}), 1.0, gen), "rate must be in [0, 1)");
  EXPECT_ATTNKIT_ERROR(ops::dropout_backward(Tensor::zeros({3}), Tensor::zeros({3}), 0.5), "mask must be u8");
}

}  // namespace
}  // namespace attnkit
