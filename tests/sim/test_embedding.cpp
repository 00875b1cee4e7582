// kernels/embedding.cu under the sim executor against the CPU ops of ops/embedding.h.
#include <gtest/gtest.h>

#include "attnkit/ops/embedding.h"
#include "kernels/embedding.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

TEST(SimEmbedding, ForwardMatchesTheCpuOp) {
  Generator gen(21);
  for (const std::int64_t count : {1, 7, 1001}) {
    for (const std::int64_t features : {1, 7, 33}) {
      const std::int64_t vocabulary = 13;
      const Tensor ids = random_ids({count}, vocabulary, gen);
      const Tensor table = random_tensor({vocabulary, features}, gen, -2.0, 2.0, DType::f32);
      Buffer<std::int32_t> ids_sim(values_of<std::int32_t>(ids));
      Buffer<float> table_sim(floats_of(table)), y_sim(poison(static_cast<std::size_t>(count * features)));
      kern::embedding_forward(ids_sim.data(), table_sim.data(), y_sim.data(), count, features, nullptr);
      EXPECT_TRUE(all_close(tensor_of(y_sim, {count, features}), ops::embedding(ids, table), 0, 0))
          << "count=" << count << " features=" << features;
    }
  }
}

TEST(SimEmbedding, BackwardMatchesTheCpuOp) {
  // Repeated ids add into the same row with atomics, in an order that varies between schedules
  // (the launcher tells the sim so). With a vocabulary of 3, a row sums hundreds of values in
  // [-1, 1] whose partial sums reach about 10 while the total may be near 0: orders differ by a
  // few 1e-6 there.
  Generator gen(22);
  for (const std::int64_t count : {1, 7, 1001}) {
    for (const std::int64_t features : {1, 7, 33}) {
      for (const std::int64_t vocabulary : {3, 257}) {
        const Tensor ids = random_ids({count}, vocabulary, gen);
        const Tensor dy = random_tensor({count, features}, gen, -1.0, 1.0, DType::f32);
        Buffer<std::int32_t> ids_sim(values_of<std::int32_t>(ids));
        Buffer<float> dy_sim(floats_of(dy)), dtable_sim(poison(static_cast<std::size_t>(vocabulary * features)));
        kern::embedding_backward(ids_sim.data(), dy_sim.data(), dtable_sim.data(), count, vocabulary, features,
                                 nullptr);
        EXPECT_TRUE(all_close(tensor_of(dtable_sim, {vocabulary, features}),
                              ops::embedding_backward(ids, dy, vocabulary), 1e-5, 1e-5))
            << "count=" << count << " features=" << features << " vocabulary=" << vocabulary;
      }
    }
  }
}

}  // namespace
}  // namespace attnkit
