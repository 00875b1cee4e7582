// A user's program: multi-head self-attention over random tokens through the installed library.
// Prints one line and exits 0 when the attention weights are distributions.
#include <attnkit/attnkit.h>

#include <cmath>
#include <cstdio>

int main() {
  using namespace attnkit;
  Generator gen(2024);
  Tensor table = Tensor::uniform({50, 8}, -0.05, 0.05, gen);
  Tensor ids = Tensor::from_vector<std::int32_t>({3, 14, 15, 9, 26, 5}, {2, 3});
  Tensor x = ops::embedding(ids, table);  // [2, 3, 8]
  ops::AttentionOptions options;
  options.num_heads = 2;
  options.return_weights = true;
  ops::AttentionResult r = ops::scaled_dot_product_attention(x, x, x, Tensor(), options);
  const std::vector<float> w = r.weights.to_vector<float>();  // [2, 2, 3, 3]
  for (std::size_t row = 0; row < w.size() / 3; ++row) {
    const float sum = w[3 * row] + w[3 * row + 1] + w[3 * row + 2];
    if (std::fabs(sum - 1.0f) > 1e-5f) {
      std::printf("attention row %zu sums to %f\n", row, sum);
      return 1;
    }
  }
  std::printf("attnkit %s: attention output %s\n", ATTNKIT_VERSION_STRING, r.out.describe().c_str());
  return 0;
}
