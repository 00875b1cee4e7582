// kernels/masked_softmax.cu under the sim executor against plain loops in double: the masked
// softmax of attention scores (key masks, causal masking, queries that see no key, rows longer
// than a warp) and additive pooling's epsilon softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/masked_softmax.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

TEST(SimMaskedSoftmax, MatchesAPlainLoop) {
  Generator gen(71);
  const std::int64_t B = 3, H = 2;
  struct Lengths {
    std::int64_t queries, keys;
  };
  for (const Lengths lengths : {Lengths{5, 5}, Lengths{7, 70}, Lengths{40, 3}})
    for (const bool masked : {false, true})
      for (const bool causal : {false, true}) {
        const std::int64_t Tq = lengths.queries, Tk = lengths.keys;
        const std::vector<double> scores = values(random_tensor({B, H, Tq, Tk}, gen, -6.0, 6.0, DType::f32));
        std::vector<std::uint8_t> keep(static_cast<std::size_t>(B * Tk));
        for (std::int64_t b = 0; b < B; ++b)  // batch 1 hides every key; the others their last b keys
          for (std::int64_t j = 0; j < Tk; ++j) keep[static_cast<std::size_t>(b * Tk + j)] = b != 1 && j < Tk - b;
        std::vector<double> p(scores.size()), lse(static_cast<std::size_t>(B * H * Tq));
        for (std::int64_t row = 0; row < B * H * Tq; ++row) {
          const std::int64_t b = row / (H * Tq), i = row % Tq;
          auto visible = [&](std::int64_t j) {
            return (!masked || keep[static_cast<std::size_t>(b * Tk + j)] != 0) && !(causal && j > i);
          };
          double sum = 0;
          for (std::int64_t j = 0; j < Tk; ++j)
            if (visible(j)) sum += std::exp(scores[static_cast<std::size_t>(row * Tk + j)]);
          for (std::int64_t j = 0; j < Tk; ++j)
            p[static_cast<std::size_t>(row * Tk + j)] =
                visible(j) ? std::exp(scores[static_cast<std::size_t>(row * Tk + j)]) / sum : 0.0;
          lse[static_cast<std::size_t>(row)] = sum > 0 ? std::log(sum) : -std::numeric_limits<double>::infinity();
        }
        std::vector<float> scores_f(scores.begin(), scores.end());
        Buffer<float> s_sim(scores_f), lse_sim(poison(lse.size()));
        Buffer<std::uint8_t> keep_sim(keep);
        kern::masked_softmax(s_sim.data(), masked ? keep_sim.data() : nullptr, lse_sim.data(), B, H, Tq, Tk, causal,
                             nullptr);
        const std::string label = std::to_string(Tq) + "x" + std::to_string(Tk) + (masked ? " masked" : "") +
                                  (causal ? " causal" : "");
        EXPECT_TRUE(all_close(values(tensor_of(s_sim, {B, H, Tq, Tk})), p, 1e-6, 1e-5)) << label;
        EXPECT_TRUE(all_close(values(tensor_of(lse_sim, {B, H, Tq})), lse, 1e-5, 1e-5)) << label;
      }
}

TEST(SimEpsilonSoftmax, MatchesAPlainLoop) {
  Generator gen(72);
  for (const std::int64_t steps : {1, 20, 77})
    for (const double epsilon : {1e-7, 0.0, 0.5}) {
      const std::int64_t rows = 5;
      const std::vector<double> e = values(random_tensor({rows, steps}, gen, -1.0, 1.0, DType::f32));
      std::vector<std::uint8_t> keep(static_cast<std::size_t>(rows * steps));
      for (std::int64_t i = 0; i < rows * steps; ++i) keep[static_cast<std::size_t>(i)] = i / steps != 2 && i % 3 != 1;
      std::vector<double> a(e.size());
      for (std::int64_t r = 0; r < rows; ++r) {
        double sum = epsilon;
        for (std::int64_t t = 0; t < steps; ++t)
          if (keep[static_cast<std::size_t>(r * steps + t)]) sum += std::exp(e[static_cast<std::size_t>(r * steps + t)]);
        for (std::int64_t t = 0; t < steps; ++t) {
          const std::size_t at = static_cast<std::size_t>(r * steps + t);
          a[at] = keep[at] && sum > 0 ? std::exp(e[at]) / sum : 0.0;
        }
      }
      std::vector<float> e_f(e.begin(), e.end());
      Buffer<float> e_sim(e_f), a_sim(poison(a.size()));
      Buffer<std::uint8_t> keep_sim(keep);
      kern::epsilon_softmax(e_sim.data(), keep_sim.data(), a_sim.data(), rows, steps, epsilon, nullptr);
      EXPECT_TRUE(all_close(values(tensor_of(a_sim, {rows, steps})), a, 1e-7, 1e-5))
          << "steps " << steps << " epsilon " << epsilon;
    }
}

}  // namespace
}  // namespace attnkit
