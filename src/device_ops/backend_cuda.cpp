// The GPU's services to the device ops: the stream of each device (cuda/runtime.h) and cuBLAS
// products. cuBLAS is column-major: the row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the operands go in swapped. Products stay in true float32 (no TF32),
// so that a GPU and the cpu agree closely.
#include <cublas_v2.h>

#include <algorithm>
#include <limits>

#include "attnkit/error.h"
#include "cuda/runtime.h"

#define ATTNKIT_DEVICE_OPS cuda_ops
#include "device_ops/device_ops.h"

#define ATTNKIT_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                                 \
    const cublasStatus_t attnkit_cublas_status = (call);                                               \
    if (attnkit_cublas_status != CUBLAS_STATUS_SUCCESS)                                                \
      ::attnkit::detail::throw_error(__FILE__, __LINE__, #call,                                        \
                                     ::attnkit::detail::concat("cuBLAS error: ",                       \
                                                               cublasGetStatusName(attnkit_cublas_status), \
                                                               ": ", cublasGetStatusString(attnkit_cublas_status))); \
  } while (0)

namespace attnkit::cuda_ops {
namespace {

// One handle per GPU, bound to that GPU's stream, products in true float32.
cublasHandle_t handle_for(Device device) {
  return cuda::handle_per_device<cublasHandle_t>(device.index, [](void* gpu_stream) {
    cublasHandle_t handle = nullptr;
    ATTNKIT_CUBLAS_CHECK(cublasCreate(&handle));
    ATTNKIT_CUBLAS_CHECK(cublasSetStream(handle, static_cast<cudaStream_t>(gpu_stream)));
    ATTNKIT_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH));
    return handle;
  });
}

}  // namespace

void* stream(Device device) { return cuda::stream(device.index); }

void gemm(Device device, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc, std::int64_t batch, std::int64_t stride_a, std::int64_t stride_b, std::int64_t stride_c) {
  if (m == 0 || n == 0 || batch == 0) return;
  // cuBLAS takes sizes and leading dimensions as int.
  constexpr std::int64_t kMax = std::numeric_limits<int>::max();
  ATTNKIT_CHECK(m <= kMax && n <= kMax && k <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax && batch <= kMax,
                "gemm on cuda: m ", m, ", n ", n, ", k ", k, ", leading dimensions ", lda, ", ", ldb, ", ", ldc,
                " and batch ", batch, ": cuBLAS takes each up to ", kMax);
  cuda::CurrentDevice current(device.index);
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Leading dimensions must be at least 1 even where k = 0 makes an operand empty.
  const auto at_least_one = [](std::int64_t ld) { return static_cast<int>(std::max<std::int64_t>(ld, 1)); };
  ATTNKIT_CUBLAS_CHECK(cublasSgemmStridedBatched(handle_for(device), op_b, op_a, int(n), int(m), int(k), &alpha, b,
                                                 at_least_one(ldb), stride_b, a, at_least_one(lda), stride_a, &beta, c,
                                                 at_least_one(ldc), stride_c, int(batch)));
}

}  // namespace attnkit::cuda_ops
