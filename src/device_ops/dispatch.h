// Internal: how src/ops reaches the device ops of a tensor's device.
//
//   if (!device.is_cpu()) return ATTNKIT_DEVICE_OP(device, softmax(x, log));
//
// runs sim_ops::softmax(x, log) for the sim and cuda_ops::softmax(x, log) for a GPU. A library
// built without CUDA has no cuda_ops, and no tensor can live on a GPU there (Storage refuses),
// so every device tensor is on the sim.
#pragma once

#include "attnkit/config.h"
#include "ops/op_common.h"

#define ATTNKIT_DEVICE_OPS sim_ops
#include "device_ops/device_ops.h"
#undef ATTNKIT_DEVICE_OPS

#if ATTNKIT_WITH_CUDA
#define ATTNKIT_DEVICE_OPS cuda_ops
#include "device_ops/device_ops.h"
#undef ATTNKIT_DEVICE_OPS
#define ATTNKIT_DEVICE_OP(device, call) ((device).is_sim() ? ::attnkit::sim_ops::call : ::attnkit::cuda_ops::call)
#else
#define ATTNKIT_DEVICE_OP(device, call) (::attnkit::sim_ops::call)
#endif

namespace attnkit::ops::detail {

// The device ops compute in float32 only; f64 is the cpu's.
void require_device_f32(const char* op, const Tensor& tensor);

}  // namespace attnkit::ops::detail

#include <type_traits>

#include "cpu/gemm.h"

namespace attnkit::ops::detail {

// The elements of a tensor whose dtype has been checked, on whichever device holds them.
template <typename T>
T* elements(const Tensor& tensor) {
  return static_cast<T*>(tensor.raw_data());
}

// Row-major products C = alpha op(A) op(B) + beta C (see cpu/gemm.h) on `device`, for `batch`
// triples of matrices whose consecutive members lie `stride_a`, `stride_b`, `stride_c` elements
// apart: cpu::gemm on the cpu, the device's gemm elsewhere (float32 only; one batched call).
template <typename T>
void gemm_on(Device device, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
             T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc,
             std::int64_t batch = 1, std::int64_t stride_a = 0, std::int64_t stride_b = 0, std::int64_t stride_c = 0) {
  if (device.is_cpu()) {
    for (std::int64_t i = 0; i < batch; ++i)
      cpu::gemm<T>(transpose_a, transpose_b, int(m), int(n), int(k), alpha, a + i * stride_a, int(lda),
                   b + i * stride_b, int(ldb), beta, c + i * stride_c, int(ldc));
  } else if constexpr (std::is_same_v<T, float>) {
    ATTNKIT_DEVICE_OP(device, gemm(device, transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                   batch, stride_a, stride_b, stride_c));
  } else {
    ATTNKIT_FAIL("products on ", device, " are float32 only");
  }
}

}  // namespace attnkit::ops::detail
