// Test support: random inputs, and comparisons that report the first mismatches.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attnkit/tensor.h"

namespace attnkit::testing {

// Uniform values in [low, high) of the given shape and dtype (f64 unless said).
inline Tensor random_tensor(const Shape& shape, Generator& gen, double low = -1.0,
                            double high = 1.0, DType dtype = DType::f64) {
  return Tensor::uniform(shape, low, high, gen, dtype);
}

// A u8 mask [rows, cols] with each entry 1 with probability `keep`, and at least one 1 per row.
Tensor random_mask(std::int64_t rows, std::int64_t cols, Generator& gen, double keep = 0.6);

// Random token ids in [0, vocab) of the given shape (i32).
Tensor random_ids(const Shape& shape, std::int64_t vocab, Generator& gen);

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// Attention dropout's mask as attnkit/random.h describes it, written out here: probability j of
// row `row` (rows of `keys` probabilities) lies in the low (j even) or high half of word
// (j % 32) / 8 of block offset + row * 4 ceil(keys / 32) + 4 (j / 32) + (j % 8) / 2 of the stream
// of `seed`, and is kept when that half is at least round(rate 65536); the kept ones are scaled by
// reference_dropout_scale, 1 / (1 - rate') with rate' that threshold / 65536.
bool reference_dropout_keeps(std::uint64_t seed, std::uint64_t offset, double rate, std::int64_t row,
                             std::int64_t keys, std::int64_t j);
double reference_dropout_scale(double rate);

// Checks |actual - expected| <= atol + rtol * |expected| element by element; on failure reports
// the count and the first few mismatches with their flat indices.
::testing::AssertionResult all_close(const std::vector<double>& actual,
                                     const std::vector<double>& expected, double atol,
                                     double rtol = 0.0);
inline ::testing::AssertionResult all_close(const Tensor& actual,
                                            const std::vector<double>& expected, double atol,
                                            double rtol = 0.0) {
  return all_close(values(actual), expected, atol, rtol);
}
inline ::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected,
                                            double atol, double rtol = 0.0) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << actual.describe() << " vs "
                                         << expected.describe();
  return all_close(values(actual), values(expected), atol, rtol);
}

// Expects `statement` to throw attnkit::Error whose message contains `fragment`.
#define EXPECT_ATTNKIT_ERROR(statement, fragment)                                            \
  do {                                                                                       \
    try {                                                                                    \
      statement;                                                                             \
      ADD_FAILURE() << "expected attnkit::Error containing \"" << (fragment) << "\"";        \
    } catch (const ::attnkit::Error& error) {                                                \
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)                 \
          << "the error was: " << error.what();                                              \
    }                                                                                        \
  } while (0)

}  // namespace attnkit::testing
