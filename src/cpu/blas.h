// Internal: row-major matrix products through OpenBLAS, for float and double.
//
// gemm computes C = alpha * op(A) * op(B) + beta * C with op(X) = X or X^T; op(A) is [M, K],
// op(B) is [K, N], C is [M, N]; lda, ldb and ldc are the row strides as stored.
#pragma once

#include <cblas.h>

#include <algorithm>

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
  detail::blas_gemm(transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
                    m, n, k, alpha, a, std::max(lda, 1), b, std::max(ldb, 1), beta, c,
                    std::max(ldc, 1));
}

}  // namespace attnkit::cpu
