// kernels/additive_attention.cu under the sim executor against seed 000's pooling written as
// plain loops in double here, forward and backward: pooled and as sequences, with and without
// the per-step bias, masks (a row that hides every step), epsilon 0, and rows of x too wide for
// one chunk of shared memory. Outputs start as NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/additive_attention.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

struct Case {
  std::int64_t B, T, D;
  bool sequences, bias, masked;
  double epsilon;
};

struct Expected {
  std::vector<double> y, weights, dx, dw, db;
};

// e_t = tanh(x_t . w + b_t); a = mask exp(e) / (sum + eps); y = sum a x (or a x); and the
// gradient by the chain rule through each of those steps.
Expected reference(const Case& c, const std::vector<double>& x, const std::vector<double>& w,
                   const std::vector<double>& b, const std::vector<std::uint8_t>& keep, const std::vector<double>& dy) {
  Expected r;
  r.y.assign(static_cast<std::size_t>(c.sequences ? c.B * c.T * c.D : c.B * c.D), 0.0);
  r.weights.assign(static_cast<std::size_t>(c.B * c.T), 0.0);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(static_cast<std::size_t>(c.D), 0.0);
  r.db.assign(static_cast<std::size_t>(c.T), 0.0);
  const auto X = [&](std::int64_t bi, std::int64_t t, std::int64_t k) { return x[static_cast<std::size_t>((bi * c.T + t) * c.D + k)]; };
  const auto DY = [&](std::int64_t bi, std::int64_t t, std::int64_t k) {
    return dy[static_cast<std::size_t>(c.sequences ? (bi * c.T + t) * c.D + k : bi * c.D + k)];
  };
  for (std::int64_t bi = 0; bi < c.B; ++bi) {
    std::vector<double> e(static_cast<std::size_t>(c.T)), s(e.size()), a(e.size()), da(e.size());
    double sum = 0;
    for (std::int64_t t = 0; t < c.T; ++t) {
      double dot = c.bias ? b[static_cast<std::size_t>(t)] : 0.0;
      for (std::int64_t k = 0; k < c.D; ++k) dot += X(bi, t, k) * w[static_cast<std::size_t>(k)];
      e[static_cast<std::size_t>(t)] = std::tanh(dot);
      const bool visible = !c.masked || keep[static_cast<std::size_t>(bi * c.T + t)];
      s[static_cast<std::size_t>(t)] = visible ? std::exp(e[static_cast<std::size_t>(t)]) : 0.0;
      sum += s[static_cast<std::size_t>(t)];
    }
    const double denominator = sum + c.epsilon;
    for (std::int64_t t = 0; t < c.T; ++t) {
      const double at = denominator > 0 ? s[static_cast<std::size_t>(t)] / denominator : 0.0;
      a[static_cast<std::size_t>(t)] = at;
      r.weights[static_cast<std::size_t>(bi * c.T + t)] = at;
      for (std::int64_t k = 0; k < c.D; ++k) {
        const std::size_t out = static_cast<std::size_t>(c.sequences ? (bi * c.T + t) * c.D + k : bi * c.D + k);
        r.y[out] += at * X(bi, t, k);
        da[static_cast<std::size_t>(t)] += DY(bi, t, k) * X(bi, t, k);
      }
    }
    // Through a_t = s_t / (sum + eps): ds_t = (da_t - sum_u a_u da_u) / (sum + eps); then s_t =
    // exp(e_t) gives de_t = s_t ds_t, and e_t = tanh(pre_t) gives dpre_t = de_t (1 - e_t^2).
    double weighted = 0;
    for (std::int64_t t = 0; t < c.T; ++t) weighted += a[static_cast<std::size_t>(t)] * da[static_cast<std::size_t>(t)];
    for (std::int64_t t = 0; t < c.T; ++t) {
      const std::size_t ts = static_cast<std::size_t>(t);
      const double ds = denominator > 0 ? (da[ts] - weighted) / denominator : 0.0;
      const double dpre = s[ts] * ds * (1 - e[ts] * e[ts]);
      r.db[ts] += dpre;
      for (std::int64_t k = 0; k < c.D; ++k) {
        r.dw[static_cast<std::size_t>(k)] += dpre * X(bi, t, k);
        r.dx[static_cast<std::size_t>((bi * c.T + t) * c.D + k)] = a[ts] * DY(bi, t, k) + dpre * w[static_cast<std::size_t>(k)];
      }
    }
  }
  return r;
}

std::vector<double> floats_to_doubles(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(SimAdditiveAttention, MatchesSeedPoolingForwardAndBackward) {
  Generator gen(960);
  for (const Case& c : {Case{3, 20, 32, false, true, true, 1e-7}, Case{3, 20, 32, true, true, true, 1e-7},
                        Case{2, 7, 5, false, false, false, 0.0}, Case{4, 9, 37, true, false, true, 0.0},
                        Case{2, 21, 1000, false, true, false, 1e-7},  // 8 steps a chunk: three chunks
                        Case{2, 13, 700, true, true, true, 0.5}, Case{1, 1, 3, false, true, false, 1e-7}}) {
    const std::string label = "B" + std::to_string(c.B) + " T" + std::to_string(c.T) + " D" + std::to_string(c.D) +
                              (c.sequences ? " sequences" : " pooled") + (c.bias ? " bias" : "") +
                              (c.masked ? " masked" : "") + " eps " + std::to_string(c.epsilon);
    const std::vector<double> x = values(random_tensor({c.B, c.T, c.D}, gen, -1, 1, DType::f32));
    const std::vector<double> w = values(random_tensor({c.D}, gen, -0.3, 0.3, DType::f32));
    const std::vector<double> b = values(random_tensor({c.T}, gen, -1, 1, DType::f32));
    const std::vector<double> dy =
        values(random_tensor(c.sequences ? Shape{c.B, c.T, c.D} : Shape{c.B, c.D}, gen, -1, 1, DType::f32));
    std::vector<std::uint8_t> keep(static_cast<std::size_t>(c.B * c.T));
    for (std::int64_t i = 0; i < c.B * c.T; ++i)  // row 1 hides every step; the others every third
      keep[static_cast<std::size_t>(i)] = i / c.T != 1 && i % 3 != 2;
    const Expected expected = reference(c, x, w, b, keep, dy);

    const auto to_floats = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    Buffer<float> x_sim(to_floats(x)), w_sim(to_floats(w)), b_sim(to_floats(b)), dy_sim(to_floats(dy));
    Buffer<std::uint8_t> keep_sim(keep);
    Buffer<float> y_sim(expected.y.size()), weights_sim(static_cast<std::size_t>(c.B * c.T));
    const kern::AdditiveAttentionShape shape{c.B, c.T, c.D, c.sequences};
    kern::additive_attention_forward(shape, x_sim.data(), w_sim.data(), c.bias ? b_sim.data() : nullptr,
                                     c.masked ? keep_sim.data() : nullptr, static_cast<float>(c.epsilon), y_sim.data(),
                                     weights_sim.data(), nullptr);
    EXPECT_TRUE(all_close(floats_to_doubles(y_sim.values()), expected.y, 1e-5, 1e-4)) << label << ": y";
    EXPECT_TRUE(all_close(floats_to_doubles(weights_sim.values()), expected.weights, 1e-6, 1e-5)) << label;

    Buffer<float> dx_sim(x.size()), dw_partial(static_cast<std::size_t>(c.B * c.D));
    Buffer<float> dpre(static_cast<std::size_t>(c.B * c.T)), slope(dpre.size());
    kern::additive_attention_backward(shape, x_sim.data(), w_sim.data(), c.bias ? b_sim.data() : nullptr,
                                      weights_sim.data(), dy_sim.data(), dx_sim.data(), dw_partial.data(), dpre.data(),
                                      slope.data(), nullptr);
    EXPECT_TRUE(all_close(floats_to_doubles(dx_sim.values()), expected.dx, 1e-5, 1e-4)) << label << ": dx";
    std::vector<double> dw(static_cast<std::size_t>(c.D), 0.0), db(static_cast<std::size_t>(c.T), 0.0);
    for (std::int64_t bi = 0; bi < c.B; ++bi) {
      for (std::int64_t k = 0; k < c.D; ++k) dw[static_cast<std::size_t>(k)] += dw_partial.data()[bi * c.D + k];
      for (std::int64_t t = 0; t < c.T; ++t) db[static_cast<std::size_t>(t)] += dpre.data()[bi * c.T + t];
    }
    EXPECT_TRUE(all_close(dw, expected.dw, 1e-4, 1e-4)) << label << ": dw";
    EXPECT_TRUE(all_close(db, expected.db, 1e-5, 1e-4)) << label << ": db";
  }
}

TEST(SimAdditiveAttention, RefusesRowsWiderThanItsChunk) {
  const kern::AdditiveAttentionShape shape{1, 2, kern::kAdditiveAttentionMaxFeatures + 1, false};
  EXPECT_ATTNKIT_ERROR(kern::additive_attention_forward(shape, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                                                        nullptr, nullptr),
                       "features at most 4096");
}

}  // namespace
}  // namespace attnkit
