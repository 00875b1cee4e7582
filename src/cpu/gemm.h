// Internal: row-major matrix products on the CPU, for float and double.
//
// gemm computes C = alpha * op(A) * op(B) + beta * C with op(X) = X or X^T; op(A) is [M, K],
// op(B) is [K, N], C is [M, N]; lda, ldb and ldc are the row strides as stored. With beta = 0,
// C is only written (it may hold anything, NaN included, beforehand).
//
// attnkit's own code (gemm.cpp), not a BLAS library's: a product compiled for the machine's
// vector width (-march=native) needs no detection of the CPU at run time, which BLAS libraries
// get wrong on processors newer than themselves (a generic SSE kernel, 3 to 4 times slower), and
// at the sizes of the sentiment models (a few hundred rows, 32 to 256 columns) it is as fast as a
// tuned BLAS. Large products are split into blocks of rows on the CPU threads (parallel.h); inside a
// parallel region a product runs on its thread alone.
#pragma once

#include <cstdint>

namespace attnkit::cpu {

template <typename T>
void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
          T beta, T* c, int ldc);

extern template void gemm<float>(bool, bool, int, int, int, float, const float*, int, const float*, int, float,
                                 float*, int);
extern template void gemm<double>(bool, bool, int, int, int, double, const double*, int, const double*, int, double,
                                  double*, int);

// The floating-point operations (2 m n k each) of every gemm call since the process started, on
// all threads: the bulk of a training step's arithmetic, which the zoo benchmark sets beside the
// CPU's product rate to give an epoch's floor.
std::int64_t gemm_flops();

}  // namespace attnkit::cpu
