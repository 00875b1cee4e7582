// Internal: reductions shared by several CPU ops.
#pragma once

#include <cstdint>
#include <vector>

namespace attnkit::cpu {

// out[c] = sum over r of x[r, c], for x [rows, cols]; accumulated in double.
template <typename T>
void column_sums(const T* x, std::int64_t rows, std::int64_t cols, T* out) {
  std::vector<double> sums(static_cast<std::size_t>(cols), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    for (std::int64_t c = 0; c < cols; ++c) sums[static_cast<std::size_t>(c)] += row[c];
  }
  for (std::int64_t c = 0; c < cols; ++c) out[c] = static_cast<T>(sums[static_cast<std::size_t>(c)]);
}

}  // namespace attnkit::cpu
