// Test support: random masks and ids, tolerant comparisons.
#include "support.h"

#include <cmath>
#include <sstream>

#include "attnkit/random.h"

namespace attnkit::testing {

Tensor random_mask(std::int64_t rows, std::int64_t cols, Generator& gen, double keep) {
  const std::vector<float> draws = Tensor::uniform({rows, cols}, 0.0, 1.0, gen).to_vector<float>();
  std::vector<std::uint8_t> mask(draws.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    bool any = false;
    for (std::int64_t c = 0; c < cols; ++c) {
      const auto at = static_cast<std::size_t>(r * cols + c);
      mask[at] = draws[at] < keep ? 1 : 0;
      any = any || mask[at];
    }
    if (!any && cols > 0) mask[static_cast<std::size_t>(r * cols + gen.uniform_int(cols))] = 1;
  }
  return Tensor::from_vector(mask, {rows, cols});
}

bool reference_dropout_keeps(std::uint64_t seed, std::uint64_t offset, double rate, std::int64_t row,
                             std::int64_t keys, std::int64_t j) {
  const std::uint64_t blocks_per_row = static_cast<std::uint64_t>((keys + 31) / 32 * 4);
  const std::uint64_t block =
      offset + static_cast<std::uint64_t>(row) * blocks_per_row + static_cast<std::uint64_t>(j / 32 * 4 + j % 8 / 2);
  const std::uint32_t word = philox_block(seed, block).word[j % 32 / 8];
  const std::uint32_t half = j % 2 == 0 ? word & 0xFFFFu : word >> 16;
  return half >= static_cast<std::uint32_t>(std::lround(rate * 65536));
}

double reference_dropout_scale(double rate) { return 1 / (1 - static_cast<double>(std::lround(rate * 65536)) / 65536); }

Tensor random_ids(const Shape& shape, std::int64_t vocab, Generator& gen) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& id : ids) id = static_cast<std::int32_t>(gen.uniform_int(static_cast<std::uint64_t>(vocab)));
  return Tensor::from_vector(ids, shape);
}

::testing::AssertionResult all_close(const std::vector<double>& actual,
                                     const std::vector<double>& expected, double atol,
                                     double rtol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs " << expected.size() << " expected";
  std::ostringstream report;
  std::size_t mismatches = 0;
  double worst = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(actual[i] - expected[i]);
    // Equal infinities agree (the -inf log-sum-exp of a query that sees no key); NaN never does.
    const bool ok = error <= atol + rtol * std::abs(expected[i]) || (std::isinf(expected[i]) && actual[i] == expected[i]);
    if (ok) continue;
    if (++mismatches <= 5)
      report << "\n  [" << i << "] got " << actual[i] << ", expected " << expected[i]
             << " (error " << error << ")";
    if (!(error <= worst)) worst = error;
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << actual.size()
                                       << " elements differ beyond atol " << atol << " + rtol "
                                       << rtol << " (worst error " << worst << "):"
                                       << report.str();
}

}  // namespace attnkit::testing
