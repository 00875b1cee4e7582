// cpu::gemm, the CPU's matrix product, against a plain loop in double: every transposition, row
// strides wider than the rows, alpha and beta (beta = 0 never reads C), and sizes on both sides
// of its tiles and blocks (rows of 8 or 6, columns of two vectors, K in blocks of 256, rows in
// blocks of 16 tiles), on one thread and split over the CPU threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu/gemm.h"

namespace attnkit {
namespace {

struct Product {
  int m, n, k;
  bool transpose_a, transpose_b;
  int pad_a, pad_b, pad_c;  // extra elements at the end of each stored row
  double alpha, beta;
};

// Runs one product in T and checks every element of C against the double loop, within the bound
// on rounding that holds for any order of summation: (K + 2) units of T's precision times the sum
// of the terms' magnitudes. A misplaced element is off by a term's size, far above it.
template <typename T>
void check_product(const Product& p, std::mt19937& gen) {
  const double tolerance = std::numeric_limits<T>::epsilon() * (p.k + 2);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const int lda = (p.transpose_a ? p.m : p.k) + p.pad_a, ldb = (p.transpose_b ? p.k : p.n) + p.pad_b;
  const int ldc = p.n + p.pad_c;
  std::vector<T> a(std::size_t(p.transpose_a ? p.k : p.m) * lda), b(std::size_t(p.transpose_b ? p.n : p.k) * ldb);
  std::vector<T> c(std::size_t(p.m) * ldc);
  for (T& x : a) x = T(uniform(gen));
  for (T& x : b) x = T(uniform(gen));
  for (T& x : c) x = p.beta == 0 ? std::numeric_limits<T>::quiet_NaN() : T(uniform(gen));
  const std::vector<T> c_before = c;
  cpu::gemm<T>(p.transpose_a, p.transpose_b, p.m, p.n, p.k, T(p.alpha), a.data(), lda, b.data(), ldb, T(p.beta),
               c.data(), ldc);
  int wrong = 0;
  for (int i = 0; i < p.m; ++i) {
    for (int j = 0; j < p.n; ++j) {
      double sum = 0, magnitude = 0;
      for (int q = 0; q < p.k; ++q) {
        const double x = p.transpose_a ? a[std::size_t(q) * lda + i] : a[std::size_t(i) * lda + q];
        const double y = p.transpose_b ? b[std::size_t(j) * ldb + q] : b[std::size_t(q) * ldb + j];
        sum += x * y;
        magnitude += std::abs(x * y);
      }
      const double old_part = p.beta == 0 ? 0.0 : p.beta * c_before[std::size_t(i) * ldc + j];  // C may be NaN
      const double expected = p.alpha * sum + old_part;
      const double bound = tolerance * (std::abs(p.alpha) * magnitude + std::abs(old_part));
      const double actual = c[std::size_t(i) * ldc + j];
      if (!(std::abs(actual - expected) <= bound) && ++wrong <= 3)
        ADD_FAILURE() << p.m << "x" << p.n << "x" << p.k << " transposes " << p.transpose_a << p.transpose_b
                      << " alpha " << p.alpha << " beta " << p.beta << ": C[" << i << ", " << j << "] = " << actual
                      << ", expected " << expected;
    }
    // The padding past each row of C is not C's: untouched.
    for (int j = p.n; j < ldc; ++j)
      if (!(c[std::size_t(i) * ldc + j] == c_before[std::size_t(i) * ldc + j]) &&
          !(std::isnan(double(c_before[std::size_t(i) * ldc + j])) && std::isnan(double(c[std::size_t(i) * ldc + j]))))
        ADD_FAILURE() << "C's padding at row " << i << " column " << j << " was written";
  }
  EXPECT_EQ(wrong, 0) << "wrong elements in the " << p.m << "x" << p.n << "x" << p.k << " product";
}

std::vector<Product> products(std::mt19937& gen) {
  std::vector<Product> list;
  const double alphas[] = {1.0, -0.75}, betas[] = {0.0, 1.0, 0.5};
  int next = 0;
  // Odd sizes around the tiles (6 or 8 rows, 16 to 32 columns), K across a block of 256, and
  // more rows than a block of 16 tiles.
  for (const int m : {1, 5, 7, 9, 33, 131})
    for (const int n : {1, 2, 15, 17, 33, 70})
      for (const int k : {1, 3, 31, 257}) {
        Product p{m, n, k, bool(next & 1), bool(next & 2), next % 3, (next + 1) % 3, next % 2, alphas[next % 2],
                  betas[next % 3]};
        list.push_back(p);
        ++next;
      }
  // Large enough to be split over the threads, and K of several blocks.
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      list.push_back({203, 161, 600, ta, tb, 1, 2, 3, 1.0, 0.5});
      // Fewer rows of A than of B: a transposed B is read where it lies (C^T = B op(A)^T).
      list.push_back({21, 650, 259, ta, tb, 0, 3, 1, -0.75, tb ? 0.0 : 1.0});
      list.push_back({32, 256, 64, ta, tb, 2, 0, 0, 1.0, 0.5});
    }
  list.push_back({97, 45, 1100, false, true, 0, 0, 0, 1.0, 0.0});
  std::shuffle(list.begin(), list.end(), gen);
  return list;
}

TEST(Gemm, FloatProductsMatchADoubleLoop) {
  std::mt19937 gen(11);
  for (const Product& p : products(gen)) check_product<float>(p, gen);
}

TEST(Gemm, DoubleProductsMatchADoubleLoop) {
  std::mt19937 gen(12);
  for (const Product& p : products(gen)) check_product<double>(p, gen);
}

TEST(Gemm, AnEmptyDepthScalesC) {
  std::vector<float> c{1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  cpu::gemm<float>(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.5f, c.data(), 3);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f}));
  std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
  cpu::gemm<float>(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.0f, c.data(), 3);
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
}

}  // namespace
}  // namespace attnkit
