// kernels/gating_attention.cu under the sim executor against Dense-softmax gating written as
// plain loops in double here: over features (seed 000) and over time (seed 003), with and
// without the shared attention vector and the bias, widths from 5 to 700 (the gate's kernel in
// several chunks), a last tile of fewer rows. The backward's dx and dz against the chain rule;
// outputs start as NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/gating_attention.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

struct Case {
  bool over_time;
  std::int64_t B, T, D;  // over features: x [B, T, D], rows B T of width D
  bool average, bias;
};

struct Expected {
  std::vector<double> probs, y, dx, dz;
};

// Rows r of width n: over features, x[r * D + c]; over time, x[b, c, d] for r = b D + d.
struct Rows {
  const Case& c;
  std::int64_t count() const { return c.over_time ? c.B * c.D : c.B * c.T; }
  std::int64_t width() const { return c.over_time ? c.T : c.D; }
  std::size_t at(std::int64_t r, std::int64_t col) const {
    if (!c.over_time) return static_cast<std::size_t>(r * c.D + col);
    return static_cast<std::size_t>((r / c.D) * c.T * c.D + col * c.D + r % c.D);
  }
};

Expected reference(const Case& c, const std::vector<double>& x, const std::vector<double>& weight,
                   const std::vector<double>& bias, const std::vector<double>& dy) {
  const Rows rows{c};
  const std::int64_t R = rows.count(), n = rows.width(), group = c.average ? c.D : 1;
  std::vector<double> q(static_cast<std::size_t>(R * n));
  for (std::int64_t r = 0; r < R; ++r) {
    std::vector<double> z(static_cast<std::size_t>(n));
    double max = -INFINITY;
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = c.bias ? bias[static_cast<std::size_t>(j)] : 0.0;
      for (std::int64_t k = 0; k < n; ++k) acc += x[rows.at(r, k)] * weight[static_cast<std::size_t>(k * n + j)];
      z[static_cast<std::size_t>(j)] = acc;
      max = std::max(max, acc);
    }
    double sum = 0;
    for (const double v : z) sum += std::exp(v - max);
    for (std::int64_t j = 0; j < n; ++j) q[static_cast<std::size_t>(r * n + j)] = std::exp(z[static_cast<std::size_t>(j)] - max) / sum;
  }
  // probs: q, or the mean of q over each group of `group` rows.
  const auto mean_over_group = [&](const std::vector<double>& v, std::int64_t r, std::int64_t j) {
    double sum = 0;
    for (std::int64_t m = r / group * group; m < (r / group + 1) * group; ++m) sum += v[static_cast<std::size_t>(m * n + j)];
    return sum / static_cast<double>(group);
  };
  Expected e;
  e.probs.assign(x.size(), 0.0);
  e.y.assign(x.size(), 0.0);
  e.dx.assign(x.size(), 0.0);
  e.dz.assign(static_cast<std::size_t>(R * n), 0.0);
  std::vector<double> dprobs(static_cast<std::size_t>(R * n));
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t j = 0; j < n; ++j) {
      const double p = c.average ? mean_over_group(q, r, j) : q[static_cast<std::size_t>(r * n + j)];
      e.probs[rows.at(r, j)] = p;
      e.y[rows.at(r, j)] = x[rows.at(r, j)] * p;
      dprobs[static_cast<std::size_t>(r * n + j)] = dy[rows.at(r, j)] * x[rows.at(r, j)];
      e.dx[rows.at(r, j)] = dy[rows.at(r, j)] * p;
    }
  for (std::int64_t r = 0; r < R; ++r) {
    std::vector<double> dq(static_cast<std::size_t>(n));
    double dot = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      // probs = mean over the group of q: each row's q receives the group's mean of dprobs.
      dq[static_cast<std::size_t>(j)] = c.average ? mean_over_group(dprobs, r, j) : dprobs[static_cast<std::size_t>(r * n + j)];
      dot += q[static_cast<std::size_t>(r * n + j)] * dq[static_cast<std::size_t>(j)];
    }
    for (std::int64_t j = 0; j < n; ++j)
      e.dz[static_cast<std::size_t>(r * n + j)] = q[static_cast<std::size_t>(r * n + j)] * (dq[static_cast<std::size_t>(j)] - dot);
    for (std::int64_t k = 0; k < n; ++k) {
      double acc = 0;
      for (std::int64_t j = 0; j < n; ++j) acc += e.dz[static_cast<std::size_t>(r * n + j)] * weight[static_cast<std::size_t>(k * n + j)];
      e.dx[rows.at(r, k)] += acc;
    }
  }
  return e;
}

std::vector<double> doubles(const Buffer<float>& b) {
  const std::vector<float> v = b.values();
  return {v.begin(), v.end()};
}

TEST(SimGatingAttention, MatchesDenseSoftmaxGatingForwardAndBackward) {
  Generator gen(980);
  for (const Case& c : {Case{false, 3, 20, 32, false, true}, Case{false, 2, 7, 5, false, false},
                        Case{false, 5, 29, 100, false, true},  // 20 rows a tile: the last tile holds 5
                        Case{false, 1, 3, 700, false, true},   // the kernel in chunks of 2 of its 700 rows
                        Case{true, 4, 20, 32, false, true}, Case{true, 3, 20, 2, true, true},
                        Case{true, 2, 20, 32, true, false}, Case{true, 3, 33, 7, false, true}}) {
    const Rows rows{c};
    const std::string label = std::string(c.over_time ? "over time" : "over features") + " B" + std::to_string(c.B) +
                              " T" + std::to_string(c.T) + " D" + std::to_string(c.D) +
                              (c.average ? " average" : "") + (c.bias ? " bias" : "");
    const std::int64_t n = rows.width();
    const std::vector<double> x = values(random_tensor({c.B, c.T, c.D}, gen, -2, 2, DType::f32));
    const std::vector<double> weight = values(random_tensor({n, n}, gen, -0.5, 0.5, DType::f32));
    const std::vector<double> bias = values(random_tensor({n}, gen, -1, 1, DType::f32));
    const std::vector<double> dy = values(random_tensor({c.B, c.T, c.D}, gen, -1, 1, DType::f32));
    const Expected expected = reference(c, x, weight, bias, dy);

    const auto to_floats = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    Buffer<float> x_sim(to_floats(x)), weight_sim(to_floats(weight)), bias_sim(to_floats(bias)), dy_sim(to_floats(dy));
    Buffer<float> probs(x.size()), y(x.size()), q(x.size()), dx(x.size()), dz(static_cast<std::size_t>(rows.count() * n));
    const kern::GatingLayout layout =
        c.over_time ? kern::gating_over_time(c.B, c.T, c.D) : kern::gating_over_features(c.B * c.T, c.D);
    ASSERT_TRUE(kern::gating_fused_fits(layout, c.average)) << label;
    const float* b = c.bias ? bias_sim.data() : nullptr;
    kern::gating_forward(layout, x_sim.data(), weight_sim.data(), b, c.average, probs.data(), y.data(), nullptr);
    EXPECT_TRUE(all_close(doubles(probs), expected.probs, 1e-6, 1e-4)) << label << ": probs";
    EXPECT_TRUE(all_close(doubles(y), expected.y, 1e-6, 1e-4)) << label << ": y";
    kern::gating_forward(layout, x_sim.data(), weight_sim.data(), b, false, q.data(), nullptr, nullptr);
    kern::gating_backward(layout, x_sim.data(), weight_sim.data(), q.data(), dy_sim.data(), c.average, dx.data(),
                          dz.data(), nullptr);
    EXPECT_TRUE(all_close(doubles(dx), expected.dx, 1e-5, 1e-4)) << label << ": dx";
    EXPECT_TRUE(all_close(doubles(dz), expected.dz, 1e-6, 1e-4)) << label << ": dz";
  }
}

TEST(SimGatingAttention, SaysWhatDoesNotFitItsTile) {
  EXPECT_FALSE(kern::gating_fused_fits(kern::gating_over_features(10, 2049), false));
  EXPECT_TRUE(kern::gating_fused_fits(kern::gating_over_time(2, 20, 100), false));
  EXPECT_FALSE(kern::gating_fused_fits(kern::gating_over_time(2, 30, 100), true));  // a group of 3000
  EXPECT_ATTNKIT_ERROR(kern::gating_forward(kern::gating_over_time(2, 30, 100), nullptr, nullptr, nullptr, true,
                                            nullptr, nullptr, nullptr),
                       "do not fit the fused kernel's tile of 2048 elements");
}

}  // namespace
}  // namespace attnkit
