// The CUDA runtime under the tensors: device queries, allocation, copies in both directions and
// between views, ops on a second GPU while the first is current and copies between GPUs, and the
// errors for a full GPU. Skipped, with the runtime's reason, where no GPU (or no second GPU) is
// present.
#include <gtest/gtest.h>

#include "attnkit/device.h"
#include "attnkit/ops/attention.h"
#include "attnkit/ops/softmax.h"
#include "attnkit/tensor.h"
#include "cuda/runtime.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

class CudaRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: " << cuda_status();
  }
};

TEST_F(CudaRuntime, DescribesTheDevice) {
  const CudaDeviceInfo info = cuda_device_info(0);
  EXPECT_FALSE(info.name.empty());
  EXPECT_GE(info.compute_major, 8) << "attnkit targets sm_80 and newer, found " << info.name;
  EXPECT_GT(info.multiprocessors, 0);
  EXPECT_GT(info.global_memory_bytes, 0u);
  std::printf("cuda:0 is %s, sm_%d%d, %d SMs, %.1f GiB\n", info.name.c_str(), info.compute_major,
              info.compute_minor, info.multiprocessors, info.global_memory_bytes / 1073741824.0);
}

TEST_F(CudaRuntime, CopiesRoundTripInEveryDtype) {
  Generator gen(141);
  for (const DType dtype : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    Tensor host = random_tensor({37, 13}, gen, -3, 3, dtype);
    Tensor device = host.to(Device::cuda());
    EXPECT_TRUE(device.is_cuda());
    EXPECT_EQ(device.describe(), std::string(dtype_name(dtype)) + "[37, 13] on cuda:0");
    EXPECT_TRUE(all_close(device.to(Device::cpu()), values(host), 0)) << dtype;
    EXPECT_TRUE(all_close(device.clone().to(Device::cpu()), values(host), 0)) << dtype;
  }
  Tensor ids = random_ids({5, 20}, 6000, gen);
  EXPECT_EQ(ids.to(Device::cuda()).to_vector<std::int32_t>(), ids.to_vector<std::int32_t>());
}

TEST_F(CudaRuntime, ViewsOfDeviceTensorsCopyTheirOwnRows) {
  Generator gen(142);
  Tensor host = random_tensor({10, 4}, gen);
  Tensor device = host.to(Device::cuda());
  Tensor rows = device.slice(3, 7);
  EXPECT_TRUE(all_close(rows.to(Device::cpu()), values(host.slice(3, 7)), 0));
  Tensor target = Tensor::zeros({4, 4}, DType::f64, Device::cuda());
  target.copy_from(host.slice(6, 10));  // host -> device
  EXPECT_TRUE(all_close(target.to(Device::cpu()), values(host.slice(6, 10)), 0));
  EXPECT_TRUE(all_close(Tensor::full({3}, 2.5, DType::f32, Device::cuda()), {2.5, 2.5, 2.5}, 0));
}

// Kernels (one with more than 48 KB of shared memory), cuBLAS and copies for tensors on cuda:1
// while cuda:0 is current: each runs on the tensors' GPU and matches the cpu; a result copied
// from cuda:1 to cuda:0 right after the op that wrote it is that op's result.
TEST_F(CudaRuntime, OpsRunOnTheirTensorsGpuWhileAnotherIsCurrent) {
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs two GPUs: " << cuda_status();
  Generator gen(143);
  const cuda::CurrentDevice first(0);
  const Device second = Device::cuda(1);
  const Tensor x = random_tensor({33, 70}, gen, -3, 3, DType::f32);
  const Tensor y = ops::softmax(x.to(second));
  EXPECT_EQ(y.device(), second);
  EXPECT_TRUE(all_close(y.to(Device::cpu()), values(ops::softmax(x)), 1e-6));
  EXPECT_TRUE(all_close(y.to(Device::cuda(0)).to(Device::cpu()), values(ops::softmax(x)), 1e-6));

  // Fused attention in bf16 at head dim 128 (its launches opt in to more shared memory).
  const Tensor q = random_tensor({2, 150, 256}, gen, -1, 1, DType::bf16), k = random_tensor({2, 90, 256}, gen, -1, 1, DType::bf16);
  const Tensor v = random_tensor({2, 90, 256}, gen, -1, 1, DType::bf16);
  ops::AttentionOptions options;
  options.num_heads = 2;
  const Tensor out = ops::scaled_dot_product_attention(q.to(second), k.to(second), v.to(second), Tensor(), options).out;
  const Tensor expected = ops::scaled_dot_product_attention(q, k, v, Tensor(), options).out;
  EXPECT_TRUE(all_close(out.to(Device::cpu()).to(DType::f32), values(expected.to(DType::f32)), 2e-2, 2e-2));
}

TEST_F(CudaRuntime, DeviceMisuseAndExhaustionAreClearErrors) {
  Tensor device = Tensor::zeros({4}, DType::f32, Device::cuda());
  EXPECT_ATTNKIT_ERROR(device.data<float>(), "cannot be read on the host");
  EXPECT_ATTNKIT_ERROR(Tensor::empty({std::int64_t(1) << 50}, DType::f32, Device::cuda()), "CUDA out of memory");
  EXPECT_ATTNKIT_ERROR(Tensor::zeros({2}, DType::f32, Device::cuda(cuda_device_count())), "cannot allocate on cuda:");
}

}  // namespace
}  // namespace attnkit
