// The CUDA runtime under the tensors: device queries, allocation, copies in both directions and
// between views, and the errors for a full GPU. Skipped, with the runtime's reason, where no GPU
// is present.
#include <gtest/gtest.h>

#include "attnkit/device.h"
#include "attnkit/tensor.h"
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

TEST_F(CudaRuntime, DeviceMisuseAndExhaustionAreClearErrors) {
  Tensor device = Tensor::zeros({4}, DType::f32, Device::cuda());
  EXPECT_ATTNKIT_ERROR(device.data<float>(), "cannot be read on the host");
  EXPECT_ATTNKIT_ERROR(Tensor::empty({std::int64_t(1) << 50}, DType::f32, Device::cuda()), "CUDA out of memory");
  EXPECT_ATTNKIT_ERROR(Tensor::zeros({2}, DType::f32, Device::cuda(cuda_device_count())), "cannot allocate on cuda:");
}

}  // namespace
}  // namespace attnkit
