// Row-major matrix products (see gemm.h). The innermost kernel keeps a tile of C (kRows rows of
// two vectors) in vector registers and, for each element of K, adds one broadcast element of A
// times two vectors of B to it. A is read where it is stored. B is read where it is stored too
// when its rows are rows of op(B) (not transposed); a transposed B, and the last panel of
// columns when N is not a multiple of the tile, are first copied into panels of kCols columns
// (kDepth rows of K at a time, so that a panel stays in the L1 cache while the kernel sweeps a
// block of kBlockRows rows of A, which stays in L2). At the sizes of the sentiment models (32
// to 640 rows) copying the operands, as BLAS libraries do, costs as much as the products.
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/parallel.h"

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

// Where the kernel reads a panel of op(B): vector v of row k at data + k * row_stride + v * kLanes.
template <typename T>
struct Panel {
  const T* data;
  std::int64_t row_stride;
};

// C[rows, cols] = alpha * op(A)[rows, depth] panel[depth, cols] + beta * C for one tile (rows <=
// kRows, cols <= kCols), with op(A)'s element (r, k) at a[r * lda + k], or at a[k * lda + r] when
// A is transposed. Rows of the tile past `rows` repeat the last row of A; columns past `cols`
// are computed from what the panel holds there and dropped. beta = 0 never reads C.
template <typename T, bool kTransposedA>
void tile_kernel(int depth, const T* __restrict a, std::int64_t lda, int rows, Panel<T> b, T* __restrict c, int ldc,
                 int cols, T alpha, T beta) {
  using Vector = typename Tile<T>::Vector;
  constexpr int kRows = Tile<T>::kRows, kVectors = Tile<T>::kVectors, kLanes = Tile<T>::kLanes;
  constexpr int kCols = Tile<T>::kCols;
  std::int64_t row_offset[kRows];
  for (int r = 0; r < kRows; ++r) row_offset[r] = std::min(r, rows - 1) * (kTransposedA ? 1 : lda);
  Vector acc[kRows][kVectors] = {};
  for (int k = 0; k < depth; ++k) {
    Vector bk[kVectors];
    for (int v = 0; v < kVectors; ++v) std::memcpy(&bk[v], b.data + k * b.row_stride + v * kLanes, sizeof(Vector));
    const T* a_k = kTransposedA ? a + k * lda : a + k;
    // A scalar operand of a vector operation is broadcast to every lane.
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVectors; ++v) acc[r][v] += a_k[row_offset[r]] * bk[v];
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

// op(B)'s rows [k0, k0 + depth) and columns [j0, j0 + cols) copied into a panel of kCols columns
// (0 past `cols`), with op(B)'s element (k, j) at b[k * ldb + j], or at b[j * ldb + k] when B is
// transposed; read in the order of storage.
template <typename T>
Panel<T> pack_panel(const T* b, std::int64_t ldb, bool transpose_b, int k0, int depth, int j0, int cols, T* out) {
  constexpr int kCols = Tile<T>::kCols;
  std::fill(out, out + std::size_t(depth) * kCols, T(0));
  if (transpose_b) {
    for (int j = 0; j < cols; ++j) {
      const T* column = b + (j0 + j) * ldb + k0;
      for (int k = 0; k < depth; ++k) out[k * kCols + j] = column[k];
    }
  } else {
    for (int k = 0; k < depth; ++k) std::copy_n(b + (k0 + k) * ldb + j0, cols, out + k * kCols);
  }
  return {out, kCols};
}

// The product on the calling thread.
template <typename T>
void gemm_here(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
               int ldb, T beta, T* c, int ldc) {
  constexpr int kRows = Tile<T>::kRows, kCols = Tile<T>::kCols;
  thread_local std::vector<T> packed;
  const int panels = (n + kCols - 1) / kCols;
  std::vector<Panel<T>> panel(static_cast<std::size_t>(panels));
  for (int k0 = 0; k0 < k; k0 += kDepth) {
    const int depth = std::min(kDepth, k - k0);
    const T beta_here = k0 == 0 ? beta : T(1);  // later blocks of K add to C
    packed.resize(std::size_t(panels) * kCols * depth);
    for (int p = 0; p < panels; ++p) {
      const int cols = std::min(kCols, n - p * kCols);
      panel[p] = !transpose_b && cols == kCols ? Panel<T>{b + std::int64_t(k0) * ldb + p * kCols, ldb}
                                               : pack_panel(b, ldb, transpose_b, k0, depth, p * kCols, cols,
                                                            packed.data() + std::size_t(p) * kCols * depth);
    }
    // op(A)'s block of rows from i0, from column k0.
    const auto a_block = [&](int i0) {
      return transpose_a ? a + std::int64_t(k0) * lda + i0 : a + std::int64_t(i0) * lda + k0;
    };
    for (int i0 = 0; i0 < m; i0 += kBlockRows<T>) {
      const int rows = std::min(kBlockRows<T>, m - i0);
      for (int p = 0; p < panels; ++p)
        for (int s = 0; s < rows; s += kRows) {
          const T* a_strip = a_block(i0 + s);
          T* c_tile = c + std::int64_t(i0 + s) * ldc + p * kCols;
          const int tile_rows = std::min(kRows, rows - s), tile_cols = std::min(kCols, n - p * kCols);
          if (transpose_a)
            tile_kernel<T, true>(depth, a_strip, lda, tile_rows, panel[p], c_tile, ldc, tile_cols, alpha, beta_here);
          else
            tile_kernel<T, false>(depth, a_strip, lda, tile_rows, panel[p], c_tile, ldc, tile_cols, alpha, beta_here);
        }
    }
  }
}

std::atomic<std::int64_t> flops_counted{0};

}  // namespace

std::int64_t gemm_flops() { return flops_counted.load(std::memory_order_relaxed); }

template <typename T>
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
          T beta, T* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (transpose_b && m < n && k > 0) {
    // A transposed B is copied into panels, all n x k of it, before the kernel reads it. With
    // fewer rows in A than in B (a small batch times a layer's weight transposed), C^T = B op(A)^T
    // reads B where it lies and copies at most A; C then takes C^T's transpose.
    thread_local std::vector<T> c_transposed;
    c_transposed.resize(std::size_t(n) * m);
    T* ct = c_transposed.data();
    gemm(false, !transpose_a, n, m, k, T(1), b, ldb, a, lda, T(0), ct, m);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        T& out = c[std::int64_t(i) * ldc + j];
        out = beta == T(0) ? alpha * ct[std::int64_t(j) * m + i] : alpha * ct[std::int64_t(j) * m + i] + beta * out;
      }
    return;
  }
  flops_counted.fetch_add(2 * std::int64_t(m) * n * k, std::memory_order_relaxed);
  if (k == 0) {  // the product is empty
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[std::int64_t(i) * ldc + j] = beta == T(0) ? T(0) : beta * c[std::int64_t(i) * ldc + j];
    return;
  }
  const int threads = pool_threads();
  if (threads < 2 || m < 2 * threads || std::int64_t(m) * n * k < kParallelWork) {
    gemm_here(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Rows of C (and of op(A)) in one block per thread; row i of op(A) starts at a + i * lda, or at
  // column i (a + i) when A is transposed.
  const int block = (m + threads - 1) / threads;
  parallel_for(threads, std::int64_t(block) * n * k, [&](std::int64_t t) {
    const int first = static_cast<int>(t) * block, rows = std::min(block, m - first);
    if (rows <= 0) return;
    const T* a_rows = transpose_a ? a + first : a + std::int64_t(first) * lda;
    gemm_here(transpose_a, transpose_b, rows, n, k, alpha, a_rows, lda, b, ldb, beta, c + std::int64_t(first) * ldc,
              ldc);
  });
}

template void gemm<float>(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);
template void gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double,
                           double*, int);

}  // namespace attnkit::cpu
