// Row-major matrix products (see gemm.h), blocked as BLAS libraries do: op(B) is copied into
// panels of kTile columns and op(A) into strips of kTile rows, so that the innermost kernel reads
// both sequentially and keeps a whole tile of C in vector registers, one multiply-add per element
// of A and vector of B. The blocks of K (kDepth) keep a panel of B in the L1 cache, and the blocks
// of rows (kBlockRows) a block of A's strips in L2, while the kernel sweeps them.
#include "cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace attnkit::cpu {
namespace {

// The vector registers of the instruction set this file is compiled for.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64, kVectorRegisters = 32;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32, kVectorRegisters = 16;
#else
constexpr int kVectorBytes = 16, kVectorRegisters = 16;
#endif

// A tile of C held in registers: kRows rows of two vectors each. 2 * kRows accumulators, two
// vectors of B and one broadcast element of A fit the register file (8 rows with 32 registers:
// 19 in use; 6 rows with 16: 15).
template <typename T>
struct Tile {
  typedef T Vector __attribute__((vector_size(kVectorBytes)));
  static constexpr int kLanes = kVectorBytes / int(sizeof(T));
  static constexpr int kVectors = 2;
  static constexpr int kCols = kLanes * kVectors;
  static constexpr int kRows = kVectorRegisters >= 32 ? 8 : 6;
};

constexpr int kDepth = 256;  // elements of K per block
template <typename T>
constexpr int kBlockRows = Tile<T>::kRows * 16;

// Below this many multiply-adds a product stays on one thread.
constexpr std::int64_t kParallelWork = std::int64_t(1) << 21;

// A matrix as stored: element (i, j) at data[i * row_stride + j * col_stride]; a transposed
// operand is the same storage with the strides swapped.
template <typename T>
struct Strided {
  const T* data;
  std::int64_t row_stride, col_stride;
  T at(std::int64_t i, std::int64_t j) const { return data[i * row_stride + j * col_stride]; }
};

// Rows [row0, row0 + rows) and columns [col0, col0 + cols) of `m`, as strips of `width` rows:
// strip s holds, column after column, its `width` elements (0 past the last row). Read
// transposed, this packs op(B)'s panels of columns.
template <typename T>
void pack(const Strided<T>& m, std::int64_t row0, int rows, std::int64_t col0, int cols, int width, T* out) {
  for (int s = 0; s < rows; s += width, out += std::size_t(width) * cols) {
    const int valid = std::min(width, rows - s);
    // Reads in the order of storage: along rows when their elements are adjacent.
    if (m.col_stride == 1) {
      for (int r = 0; r < valid; ++r)
        for (int j = 0; j < cols; ++j) out[j * width + r] = m.at(row0 + s + r, col0 + j);
    } else {
      for (int j = 0; j < cols; ++j)
        for (int r = 0; r < valid; ++r) out[j * width + r] = m.at(row0 + s + r, col0 + j);
    }
    for (int j = 0; j < cols; ++j)
      for (int r = valid; r < width; ++r) out[j * width + r] = T(0);
  }
}

// C[rows, cols] = alpha * (strip of A) (panel of B) + beta * C for one tile (rows <= kRows,
// cols <= kCols), over `depth` elements of K. beta = 0 never reads C.
template <typename T>
void tile_kernel(int depth, const T* __restrict a_strip, const T* __restrict b_panel, T* __restrict c, int ldc,
                 int rows, int cols, T alpha, T beta) {
  using Vector = typename Tile<T>::Vector;
  constexpr int kRows = Tile<T>::kRows, kVectors = Tile<T>::kVectors, kLanes = Tile<T>::kLanes;
  constexpr int kCols = Tile<T>::kCols;
  Vector acc[kRows][kVectors] = {};
  for (int k = 0; k < depth; ++k, a_strip += kRows, b_panel += kCols) {
    Vector b[kVectors];
    for (int v = 0; v < kVectors; ++v) std::memcpy(&b[v], b_panel + v * kLanes, sizeof(Vector));
    // A scalar operand of a vector operation is broadcast to every lane.
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVectors; ++v) acc[r][v] += a_strip[r] * b[v];
  }
  if (rows == kRows && cols == kCols) {
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVectors; ++v) {
        T* out = c + std::int64_t(r) * ldc + v * kLanes;
        Vector result = alpha * acc[r][v];
        if (beta != T(0)) {
          Vector old;
          std::memcpy(&old, out, sizeof(Vector));
          result += beta * old;
        }
        std::memcpy(out, &result, sizeof(Vector));
      }
    return;
  }
  T tile[kRows][kCols];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVectors; ++v) std::memcpy(&tile[r][v * kLanes], &acc[r][v], sizeof(Vector));
  for (int r = 0; r < rows; ++r) {
    T* out = c + std::int64_t(r) * ldc;
    for (int j = 0; j < cols; ++j) out[j] = alpha * tile[r][j] + (beta != T(0) ? beta * out[j] : T(0));
  }
}

// The product on the calling thread.
template <typename T>
void gemm_here(const Strided<T>& a, const Strided<T>& b, int m, int n, int k, T alpha, T beta, T* c, int ldc) {
  constexpr int kRows = Tile<T>::kRows, kCols = Tile<T>::kCols;
  thread_local std::vector<T> a_packed, b_packed;
  const int panels = (n + kCols - 1) / kCols;
  // op(B)^T is B's storage with the strides swapped; its rows are op(B)'s columns.
  const Strided<T> b_transposed{b.data, b.col_stride, b.row_stride};
  for (int k0 = 0; k0 < k; k0 += kDepth) {
    const int depth = std::min(kDepth, k - k0);
    const T beta_here = k0 == 0 ? beta : T(1);  // later blocks of K add to C
    b_packed.resize(std::size_t(panels) * kCols * depth);
    pack(b_transposed, 0, n, k0, depth, kCols, b_packed.data());
    for (int i0 = 0; i0 < m; i0 += kBlockRows<T>) {
      const int rows = std::min(kBlockRows<T>, m - i0);
      a_packed.resize(std::size_t((rows + kRows - 1) / kRows) * kRows * depth);
      pack(a, i0, rows, k0, depth, kRows, a_packed.data());
      for (int p = 0; p < panels; ++p)
        for (int s = 0; s < rows; s += kRows)
          tile_kernel(depth, a_packed.data() + std::size_t(s) * depth, b_packed.data() + std::size_t(p) * kCols * depth,
                      c + std::int64_t(i0 + s) * ldc + p * kCols, ldc, std::min(kRows, rows - s),
                      std::min(kCols, n - p * kCols), alpha, beta_here);
    }
  }
}

}  // namespace

template <typename T>
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
          T beta, T* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // the product is empty
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[std::int64_t(i) * ldc + j] = beta == T(0) ? T(0) : beta * c[std::int64_t(i) * ldc + j];
    return;
  }
  const Strided<T> sa{a, transpose_a ? 1 : lda, transpose_a ? lda : 1};
  const Strided<T> sb{b, transpose_b ? 1 : ldb, transpose_b ? ldb : 1};
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads < 2 || m < 2 * threads || std::int64_t(m) * n * k < kParallelWork) {
    gemm_here(sa, sb, m, n, k, alpha, beta, c, ldc);
    return;
  }
  // Rows of C (and of op(A)) in one block per thread.
  const int block = (m + threads - 1) / threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int first = t * block, rows = std::min(block, m - first);
    if (rows <= 0) continue;
    const Strided<T> a_rows{sa.data + first * sa.row_stride, sa.row_stride, sa.col_stride};
    gemm_here(a_rows, sb, rows, n, k, alpha, beta, c + std::int64_t(first) * ldc, ldc);
  }
}

template void gemm<float>(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);
template void gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double,
                           double*, int);

}  // namespace attnkit::cpu
