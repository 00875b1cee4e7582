// The sim's services to the device ops: one stream (none), and products on its memory, which is
// host memory, through the cpu's gemm. The sim runs kernels; cuBLAS is not one of them.
#include "cpu/gemm.h"

#define ATTNKIT_DEVICE_OPS sim_ops
#include "device_ops/device_ops.h"

namespace attnkit::sim_ops {

void* stream(Device) { return nullptr; }

void gemm(Device, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc,
          std::int64_t batch, std::int64_t stride_a, std::int64_t stride_b, std::int64_t stride_c) {
  for (std::int64_t i = 0; i < batch; ++i)
    cpu::gemm<float>(transpose_a, transpose_b, int(m), int(n), int(k), alpha, a + i * stride_a, int(lda),
                     b + i * stride_b, int(ldb), beta, c + i * stride_c, int(ldc));
}

}  // namespace attnkit::sim_ops
