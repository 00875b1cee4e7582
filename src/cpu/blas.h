// Internal: row-major matrix products through OpenBLAS, for float and double.
//
// gemm computes C = alpha * op(A) * op(B) + beta * C with op(X) = X or X^T; op(A) is [M, K],
// op(B) is [K, N], C is [M, N]; lda, ldb and ldc are the row strides as stored.
//
// OpenBLAS runs single-threaded inside attnkit (blas.cpp sets it when the library loads, unless
// OPENBLAS_NUM_THREADS says otherwise): its own threads and attnkit's OpenMP threads would
// otherwise spin against each other on a small machine. Large products are split here instead,
// into blocks of rows computed on the OpenMP threads.
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace attnkit::cpu {

namespace detail {
inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                      const float* a, int lda, const float* b, int ldb, float beta, float* c,
                      int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
                      const double* a, int lda, const double* b, int ldb, double beta, double* c,
                      int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
// Below this many multiply-adds a product stays on one thread.
constexpr std::int64_t kParallelGemmWork = std::int64_t(1) << 21;
}  // namespace detail

template <typename T>
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS rejects zero leading dimensions; the product is empty
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  lda = std::max(lda, 1), ldb = std::max(ldb, 1), ldc = std::max(ldc, 1);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const std::int64_t work = std::int64_t(m) * n * k;
  if (threads < 2 || m < 2 * threads || work < detail::kParallelGemmWork) {
    detail::blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Rows of C (and of op(A)) in one block per thread; row i of op(A) starts at a + i * lda, or
  // at column i (a + i) when A is stored transposed.
  const int block = (m + threads - 1) / threads;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int first = t * block, rows = std::min(block, m - first);
    if (rows <= 0) continue;
    const T* a_rows = transpose_a ? a + first : a + static_cast<std::int64_t>(first) * lda;
    detail::blas_gemm(ta, tb, rows, n, k, alpha, a_rows, lda, b, ldb, beta,
                      c + static_cast<std::int64_t>(first) * ldc, ldc);
  }
}

}  // namespace attnkit::cpu
