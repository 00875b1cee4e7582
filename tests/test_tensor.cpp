// Tensor, dtypes and the random generator: conversions against the compiler's own float16,
// Philox against the published known answers, views, copies, printing and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "attnkit/device.h"
#include "attnkit/tensor.h"
#include "cpu/philox.h"
#include "support.h"

namespace attnkit {
namespace {

using testing::values;

// ------------------------------------------------------------------ 16-bit floats

#if defined(__FLT16_MAX__)
TEST(DType, NamesReadBack) {
  for (const DType d : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::u8})
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d) << dtype_name(d);
  EXPECT_EQ(dtype_from_name("float32"), std::nullopt);
  EXPECT_EQ(dtype_from_name(""), std::nullopt);
}

TEST(DType, HalfMatchesCompilerFloat16OnEveryPattern) {
  // Every binary16 pattern converts to the float the compiler's _Float16 gives.
  for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
    _Float16 reference;
    const std::uint16_t b = static_cast<std::uint16_t>(bits);
    std::memcpy(&reference, &b, 2);
    const float expected = static_cast<float>(reference);
    const float got = half_bits_to_float(b);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(got)) << "pattern " << bits;
    } else {
      ASSERT_EQ(got, expected) << "pattern " << bits;
      ASSERT_EQ(float_to_half_bits(got), b) << "pattern " << bits << " does not round trip";
    }
  }
}

TEST(DType, FloatToHalfRoundsLikeCompilerFloat16) {
  // Random floats over the whole half range, subnormals and overflow included, plus ties.
  Generator gen(7);
  const std::vector<double> exponents = values(Tensor::uniform({20000}, -26.0, 17.0, gen));
  const std::vector<double> signs = values(Tensor::uniform({20000}, -1.0, 1.0, gen));
  std::vector<float> samples;
  for (std::size_t i = 0; i < exponents.size(); ++i)
    samples.push_back(static_cast<float>((signs[i] < 0 ? -1.0 : 1.0) * std::exp2(exponents[i])));
  // Exact halfway cases between neighbouring halves: 1 + 2^-11 (ties to even, down) and
  // 1 + 3 * 2^-11 (up), and the overflow threshold 65520.
  samples.insert(samples.end(), {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65504.0f, 65519.0f,
                                 65520.0f, 0x1p-25f, 0x1p-24f, 3 * 0x1p-26f, 0.0f, -0.0f});
  for (const float value : samples) {
    const _Float16 reference = static_cast<_Float16>(value);
    std::uint16_t expected;
    std::memcpy(&expected, &reference, 2);
    ASSERT_EQ(float_to_half_bits(value), expected) << "value " << value;
  }
}
#endif

TEST(DType, HalfSpecialValues) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(1e6f), 0x7c00);
  EXPECT_EQ(float_to_half_bits(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(std::nanf("")))));
  EXPECT_EQ(half_bits_to_float(0x0001), 0x1p-24f);  // smallest subnormal
}

// bfloat16 reference: the nearest of the two neighbouring bfloat16 values, computed in double,
// ties to the even pattern.
std::uint16_t bfloat16_reference(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const std::uint16_t down = static_cast<std::uint16_t>(bits >> 16);
  const std::uint16_t up = static_cast<std::uint16_t>(down + 1);
  const double d_down = std::abs(double(bfloat16_bits_to_float(down)) - value);
  const double d_up = std::abs(double(bfloat16_bits_to_float(up)) - value);
  if (d_down < d_up) return down;
  if (d_up < d_down) return up;
  return (down & 1) ? up : down;
}

TEST(DType, BFloat16RoundsToNearestEven) {
  Generator gen(11);
  const std::vector<double> draws = values(Tensor::uniform({50000}, -1.0, 1.0, gen));
  for (const double d : draws) {
    const float value = static_cast<float>(d * std::exp2(d * 60));
    ASSERT_EQ(float_to_bfloat16_bits(value), bfloat16_reference(value)) << "value " << value;
  }
  // Exact ties: 1 + 2^-8 lies between 1 and 1 + 2^-7 and rounds to the even 1.
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(float_to_bfloat16_bits(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_TRUE(std::isnan(bfloat16_bits_to_float(float_to_bfloat16_bits(std::nanf("")))));
}

// ------------------------------------------------------------------ Philox

TEST(Random, Philox4x32KnownAnswers) {
  // The known-answer vectors published with Random123 (Salmon et al., SC'11).
  const Philox4x32 zero = philox4x32_10(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(zero.word[0], 0x6627e8d5u);
  EXPECT_EQ(zero.word[1], 0xe169c58du);
  EXPECT_EQ(zero.word[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.word[3], 0x9b00dbd8u);
  const Philox4x32 ones = philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u);
  EXPECT_EQ(ones.word[0], 0x408f276du);
  EXPECT_EQ(ones.word[1], 0x41c83b0eu);
  EXPECT_EQ(ones.word[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.word[3], 0x6d5451fdu);
  const Philox4x32 pi = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u,
                                      0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi.word[0], 0xd16cfe09u);
  EXPECT_EQ(pi.word[1], 0x94fdccebu);
  EXPECT_EQ(pi.word[2], 0x5001e420u);
  EXPECT_EQ(pi.word[3], 0x24126ea1u);
}

TEST(Random, BlocksDrawnTogetherEqualBlocksDrawnOneByOne) {
  // 45 blocks (more than the 32 drawn side by side, and not a multiple of them) across the 2^32
  // boundary of the counter's low word, with both halves of the key set.
  const std::uint64_t seed = 0x0123456789abcdefull, first = 0xfffffffbull;
  std::uint32_t words[4 * 45];
  cpu::philox_blocks(seed, first, 45, words);
  for (std::uint64_t i = 0; i < 45; ++i) {
    const std::uint64_t counter = first + i;
    const Philox4x32 one = philox4x32_10(static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                                         0, 0, 0x89abcdefu, 0x01234567u);
    for (int w = 0; w < 4; ++w) EXPECT_EQ(words[4 * i + w], one.word[w]) << "block " << i << " word " << w;
  }
}

TEST(Random, UniformFollowsTheDocumentedCounterLayout) {
  const std::uint64_t seed = 0x0123456789abcdefull;
  Generator gen(seed);
  Tensor first = Tensor::uniform({7}, -2.0, 3.0, gen, DType::f64);
  Tensor second = Tensor::uniform({3}, 0.0, 1.0, gen, DType::f64);
  EXPECT_EQ(gen.offset(), 2u + 1u);  // ceil(7/4) + ceil(3/4) blocks
  for (std::uint64_t i = 0; i < 7; ++i) {
    const Philox4x32 block = philox4x32_10(static_cast<std::uint32_t>(i / 4), 0, 0, 0,
                                           0x89abcdefu, 0x01234567u);
    const double u = static_cast<double>(block.word[i % 4] >> 8) / 16777216.0;
    EXPECT_EQ(first.item(static_cast<std::int64_t>(i)), -2.0 + 5.0 * u);
  }
  const Philox4x32 block = philox4x32_10(2, 0, 0, 0, 0x89abcdefu, 0x01234567u);
  EXPECT_EQ(second.item(0), static_cast<double>(block.word[0] >> 8) / 16777216.0);
}

TEST(Random, SameSeedSameNumbersAndStreamsDoNotOverlap) {
  Generator a(5), b(5), c(6);
  const auto x = values(Tensor::uniform({1000}, 0.0, 1.0, a));
  EXPECT_EQ(x, values(Tensor::uniform({1000}, 0.0, 1.0, b)));
  EXPECT_NE(x, values(Tensor::uniform({1000}, 0.0, 1.0, c)));
  EXPECT_NE(x, values(Tensor::uniform({1000}, 0.0, 1.0, a)));  // the next draw moves on
}

TEST(Random, UniformAndNormalMoments) {
  Generator gen(99);
  const std::int64_t n = 200000;
  const auto u = values(Tensor::uniform({n}, -1.0, 3.0, gen));
  const auto z = values(Tensor::normal({n}, 2.0, 0.5, gen));
  double su = 0, sz = 0, szz = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    ASSERT_GE(u[i], -1.0);
    ASSERT_LT(u[i], 3.0);
    su += u[i];
    sz += z[i];
    szz += (z[i] - 2.0) * (z[i] - 2.0);
  }
  // Mean of U(-1, 3) is 1 with standard error 4/sqrt(12 n); allow 5 standard errors.
  EXPECT_NEAR(su / n, 1.0, 5 * 4 / std::sqrt(12.0 * n));
  EXPECT_NEAR(sz / n, 2.0, 5 * 0.5 / std::sqrt(double(n)));
  EXPECT_NEAR(szz / n, 0.25, 5 * 0.25 * std::sqrt(2.0 / n));
}

TEST(Random, UniformIntCoversTheRange) {
  Generator gen(3);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) ++counts[gen.uniform_int(7)];
  for (const int c : counts) EXPECT_NEAR(c, 1000, 150);
}

// ------------------------------------------------------------------ tensors

TEST(Tensor, FactoriesShapesAndDtypes) {
  Tensor z = Tensor::zeros({2, 3, 5}, DType::i32);
  EXPECT_EQ(z.shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(z.numel(), 30);
  EXPECT_EQ(z.dim(), 3);
  EXPECT_EQ(z.size(-1), 5);
  EXPECT_EQ(z.nbytes(), 120u);
  for (const double v : values(z)) EXPECT_EQ(v, 0.0);
  Tensor f = Tensor::full({4}, 2.5, DType::bf16);
  EXPECT_EQ(values(f), std::vector<double>(4, 2.5));
  Tensor scalar = Tensor::full({}, 7.0);
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.item(), 7.0);
  EXPECT_EQ(Tensor::empty({0, 3}).numel(), 0);
}

TEST(Tensor, HostVectorsRoundTripInEveryDtype) {
  const std::vector<float> f{1.5f, -2.25f, 3.0f, 0.125f, -7.0f, 9.5f};
  EXPECT_EQ(Tensor::from_vector(f, {2, 3}).to_vector<float>(), f);
  const std::vector<double> d{1e-300, -2.0, 3.5};
  EXPECT_EQ(Tensor::from_vector(d, {3}).to_vector<double>(), d);
  const std::vector<std::int32_t> i{-5, 0, 2147483647};
  EXPECT_EQ(Tensor::from_vector(i, {3}).to_vector<std::int32_t>(), i);
  const std::vector<std::uint8_t> u{0, 1, 255};
  EXPECT_EQ(Tensor::from_vector(u, {3}).to_vector<std::uint8_t>(), u);
  // Values exact in 16 bits survive f32 -> f16/bf16 -> f32.
  Tensor x = Tensor::from_vector(f, {6});
  EXPECT_EQ(x.to(DType::f16).to_vector<float>(), f);
  EXPECT_EQ(x.to(DType::bf16).to_vector<float>(), f);
  EXPECT_EQ(x.to(DType::f16).dtype(), DType::f16);
  EXPECT_EQ(x.to(DType::i32).to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, -2, 3, 0, -7, 9}));
}

TEST(Tensor, ViewsShareStorage) {
  Tensor x = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {4, 3});
  Tensor r = x.reshape({2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 6}));
  EXPECT_TRUE(r.shares_storage_with(x));
  Tensor rows = x.slice(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(rows), (std::vector<double>{3, 4, 5, 6, 7, 8}));
  rows.data<float>()[0] = 100;  // writes through to x
  EXPECT_EQ(x.item(3), 100.0);
  EXPECT_EQ(r.item(3), 100.0);
  Tensor copy = x.clone();
  EXPECT_FALSE(copy.shares_storage_with(x));
  copy.data<float>()[0] = -1;
  EXPECT_EQ(x.item(0), 0.0);
  Tensor target = Tensor::zeros({2, 3});
  target.copy_from(rows);
  EXPECT_EQ(values(target), (std::vector<double>{100, 4, 5, 6, 7, 8}));
}

TEST(Tensor, PrintingShowsDescriptionAndElidesLongAxes) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(x.str(), "Tensor(f32[2, 3] on cpu)\n[[1, 2, 3],\n [4, 5, 6]]");
  std::vector<float> long_values(10);
  for (int i = 0; i < 10; ++i) long_values[i] = float(i);
  EXPECT_EQ(Tensor::from_vector(long_values, {10}).str(2),
            "Tensor(f32[10] on cpu)\n[0, 1, ..., 8, 9]");
  EXPECT_EQ(Tensor().str(), "Tensor(undefined)");
}

TEST(Tensor, MisuseIsReportedClearly) {
  using testing::random_tensor;
  EXPECT_ATTNKIT_ERROR(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), "do not fill shape [2, 2]");
  Tensor x = Tensor::zeros({2, 2});
  EXPECT_ATTNKIT_ERROR(x.data<double>(), "holds f32 elements, not f64");
  EXPECT_ATTNKIT_ERROR(x.reshape({3, -1}), "cannot infer");
  EXPECT_ATTNKIT_ERROR(x.reshape({5}), "cannot view f32[2, 2] on cpu as [5]");
  EXPECT_ATTNKIT_ERROR(x.slice(1, 3), "out of range");
  EXPECT_ATTNKIT_ERROR(x.size(2), "axis 2 is out of range");
  EXPECT_ATTNKIT_ERROR(Tensor::empty({2, -1}), "negative extent");
  EXPECT_ATTNKIT_ERROR(Tensor::empty({std::int64_t(1) << 40, std::int64_t(1) << 40}),
                       "has more elements than memory can hold");
  EXPECT_ATTNKIT_ERROR(Tensor::empty({std::int64_t(1) << 50}), "out of host memory: could not allocate");
  EXPECT_ATTNKIT_ERROR(Tensor().data<float>(), "undefined");
  EXPECT_ATTNKIT_ERROR(Device::parse("gpu"), "unknown device \"gpu\"");
  Tensor y = Tensor::zeros({3});
  EXPECT_ATTNKIT_ERROR(x.copy_from(y), "cannot copy f32[3] on cpu into f32[2, 2] on cpu");
}

TEST(Tensor, ErrorsCarryTheirSourceLocation) {
  try {
    Tensor::zeros({2}).data<std::int32_t>();
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.file().rfind("src/", 0), 0u) << error.file();
    EXPECT_GT(error.line(), 0);
    EXPECT_FALSE(error.statement().empty());
  }
}

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
}

TEST(Device, CudaWithoutAGpuIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present: " << cuda_status();
  EXPECT_FALSE(cuda_status().empty());
  EXPECT_ATTNKIT_ERROR(Tensor::zeros({2}, DType::f32, Device::cuda()), "cuda:0");
  EXPECT_ATTNKIT_ERROR(cuda_device_info(0), "cuda:0");
}

// Memory handed over by another library: read and written in place, kept while any view of it
// lives, and released once, by the given function, after the last.
TEST(Tensor, ExternalMemoryIsUsedInPlaceAndReleasedOnceAfterTheLastView) {
  std::vector<float> memory{1.5f, -2.0f, 3.25f, 4.0f, 0.5f, 6.0f};
  int releases = 0;
  Tensor view;
  {
    Tensor t = Tensor::from_external(memory.data(), {2, 3}, DType::f32, Device::cpu(), [&] { ++releases; });
    EXPECT_EQ(t.data<float>(), memory.data());
    EXPECT_EQ(t.to_vector<float>(), memory);
    t.data<float>()[4] = 9.0f;
    EXPECT_EQ(memory[4], 9.0f);
    view = t.reshape({3, 2}).slice(1, 3);
  }
  EXPECT_EQ(releases, 0);
  EXPECT_EQ(view.to_vector<float>(), (std::vector<float>{3.25f, 4.0f, 9.0f, 6.0f}));
  view = Tensor();
  EXPECT_EQ(releases, 1);
  EXPECT_ATTNKIT_ERROR(Tensor::from_external(nullptr, {2}, DType::f32, Device::cpu(), [] {}),
                       "Tensor::from_external: null data for 8 bytes");
}

}  // namespace
}  // namespace attnkit
