// Embedding: gather against indexing, scatter-add gradient (repeated ids add up) against finite
// differences, and ids outside the vocabulary named in the error.
#include <gtest/gtest.h>

#include "attnkit/ops/embedding.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

TEST(Embedding, GathersRows) {
  Generator gen(61);
  Tensor table = random_tensor({11, 5}, gen);
  Tensor ids = random_ids({3, 7}, 11, gen);
  Tensor y = ops::embedding(ids, table);
  EXPECT_EQ(y.shape(), (Shape{3, 7, 5}));
  const auto vt = values(table);
  const auto vi = ids.to_vector<std::int32_t>();
  std::vector<double> expected;
  for (const std::int32_t id : vi)
    for (int f = 0; f < 5; ++f) expected.push_back(vt[static_cast<std::size_t>(id * 5 + f)]);
  EXPECT_TRUE(all_close(y, expected, 0));
}

TEST(Gradient, Embedding) {
  Generator gen(62);
  GradCheck check;
  // 21 positions over 6 ids: repeats are certain.
  check.inputs = {random_ids({3, 7}, 6, gen), random_tensor({6, 4}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::embedding(in[0], in[1])}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    return Tensors{Tensor(), ops::embedding_backward(in[0], d[0], in[1].size(0))};
  };
  check_gradients(check);
}

TEST(Embedding, IdOutsideVocabularyIsNamed) {
  Tensor table = Tensor::zeros({10, 3});
  Tensor ids = Tensor::from_vector<std::int32_t>({1, 2, 10, 3}, {2, 2});
  EXPECT_ATTNKIT_ERROR(ops::embedding(ids, table), "id 10 at position 2 is outside the vocabulary [0, 10)");
  EXPECT_ATTNKIT_ERROR(ops::embedding(Tensor::zeros({2, 2}), table), "ids must be an i32 tensor");
}

}  // namespace
}  // namespace attnkit
