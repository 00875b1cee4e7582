// The attention ops: forward against the seeds' definitions written as plain loops, backward
// against finite differences; masks, odd sizes, several heads, causal and cross attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "attnkit/ops/attention.h"
#include "attnkit/ops/shape.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// ------------------------------------------------------------------ additive pooling

struct AdditiveReference {
  std::vector<double> y, weights;
};

// Seed 000's Attention.call: a = exp(tanh(x.w + b)) * mask / (sum + eps); y = sum a x.
AdditiveReference reference_additive(const Tensor& x, const Tensor& w, const Tensor& b,
                                     const Tensor& mask, double eps, bool sequences) {
  const std::int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const auto vx = values(x), vw = values(w);
  AdditiveReference r;
  for (std::int64_t bi = 0; bi < B; ++bi) {
    std::vector<double> a(T);
    double sum = 0;
    for (std::int64_t t = 0; t < T; ++t) {
      double e = b.defined() ? b.item(t) : 0.0;
      for (std::int64_t k = 0; k < D; ++k) e += vx[(bi * T + t) * D + k] * vw[k];
      a[t] = std::exp(std::tanh(e)) * (mask.defined() ? mask.item(bi * T + t) : 1.0);
      sum += a[t];
    }
    for (std::int64_t t = 0; t < T; ++t) r.weights.push_back(sum + eps > 0 ? a[t] / (sum + eps) : 0.0);
    for (std::int64_t t = 0; t < (sequences ? T : 1); ++t)
      for (std::int64_t k = 0; k < D; ++k) {
        double acc = 0;
        for (std::int64_t s = 0; s < T; ++s)
          if (!sequences || s == t) acc += r.weights[bi * T + s] * vx[(bi * T + s) * D + k];
        r.y.push_back(acc);
      }
  }
  return r;
}

class AdditiveAttention : public ::testing::TestWithParam<std::tuple<bool, bool, double>> {};

TEST_P(AdditiveAttention, ForwardMatchesSeedAndGradient) {
  const auto [masked, sequences, eps] = GetParam();
  Generator gen(121);
  Tensor x = random_tensor({3, 7, 5}, gen), w = random_tensor({5}, gen), b = random_tensor({7}, gen);
  Tensor mask = masked ? random_mask(3, 7, gen) : Tensor();
  ops::AdditiveAttentionOptions options;
  options.return_sequences = sequences;
  options.epsilon = eps;
  ops::AdditiveAttentionResult r = ops::additive_attention(x, w, b, mask, options);
  const AdditiveReference ref = reference_additive(x, w, b, mask, eps, sequences);
  EXPECT_EQ(r.y.shape(), sequences ? (Shape{3, 7, 5}) : (Shape{3, 5}));
  EXPECT_TRUE(all_close(r.y, ref.y, 1e-13));
  EXPECT_TRUE(all_close(r.weights, ref.weights, 1e-13));

  GradCheck check;
  check.inputs = {x, w, b, mask.defined() ? mask : Tensor::full({3, 7}, 1, DType::u8)};
  check.forward = [=](const Tensors& in) { return Tensors{ops::additive_attention(in[0], in[1], in[2], in[3], options).y}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    const Tensor weights = ops::additive_attention(in[0], in[1], in[2], in[3], options).weights;
    auto g = ops::additive_attention_backward(in[0], in[1], in[2], weights, d[0], options);
    return Tensors{g.dx, g.dw, g.db, Tensor()};
  };
  check_gradients(check);
}

std::string additive_case_name(const ::testing::TestParamInfo<std::tuple<bool, bool, double>>& p) {
  return std::string(std::get<0>(p.param) ? "Masked" : "Unmasked") +
         (std::get<1>(p.param) ? "Sequences" : "Pooled") + (std::get<2>(p.param) > 0 ? "Seed000Epsilon" : "Softmax");
}

INSTANTIATE_TEST_SUITE_P(Gradient, AdditiveAttention,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Values(1e-7, 0.0)),
                         additive_case_name);

TEST(AdditiveAttention, FullyMaskedRowWeighsNothing) {
  Generator gen(122);
  Tensor x = random_tensor({2, 4, 3}, gen), w = random_tensor({3}, gen);
  Tensor mask = Tensor::from_vector<std::uint8_t>({0, 0, 0, 0, 1, 0, 1, 1}, {2, 4});
  for (const double eps : {1e-7, 0.0}) {
    ops::AdditiveAttentionOptions options;
    options.epsilon = eps;
    ops::AdditiveAttentionResult r = ops::additive_attention(x, w, Tensor(), mask, options);
    const auto a = values(r.weights);
    for (int t = 0; t < 4; ++t) EXPECT_EQ(a[t], 0.0);
    EXPECT_EQ(a[5], 0.0);
    EXPECT_NEAR(a[4] + a[6] + a[7], 1.0, 1e-6);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(r.y.item(k), 0.0);
  }
}

// ------------------------------------------------------------------ gating

TEST(GatingAttention, ForwardMatchesDenseSoftmaxMultiply) {
  Generator gen(123);
  Tensor x = random_tensor({2, 5, 6}, gen), W = random_tensor({6, 6}, gen), c = random_tensor({6}, gen);
  ops::GatingResult r = ops::gating_attention(x, W, c);
  const auto vx = values(x), vW = values(W);
  std::vector<double> probs, y;
  for (std::int64_t row = 0; row < 10; ++row) {
    std::vector<double> z(6);
    double sum = 0;
    for (int j = 0; j < 6; ++j) {
      z[j] = c.item(j);
      for (int i = 0; i < 6; ++i) z[j] += vx[row * 6 + i] * vW[i * 6 + j];
      sum += std::exp(z[j]);
    }
    for (int j = 0; j < 6; ++j) {
      probs.push_back(std::exp(z[j]) / sum);
      y.push_back(vx[row * 6 + j] * probs.back());
    }
  }
  EXPECT_TRUE(all_close(r.probs, probs, 1e-14));
  EXPECT_TRUE(all_close(r.y, y, 1e-14));
}

TEST(Gradient, GatingAttention) {
  Generator gen(124);
  GradCheck check;
  check.inputs = {random_tensor({2, 5, 6}, gen), random_tensor({6, 6}, gen), random_tensor({6}, gen)};
  check.forward = [](const Tensors& in) { return Tensors{ops::gating_attention(in[0], in[1], in[2]).y}; };
  check.backward = [](const Tensors& in, const Tensors&, const Tensors& d) {
    const Tensor probs = ops::gating_attention(in[0], in[1], in[2]).probs;
    auto g = ops::gating_attention_backward(in[0], in[1], probs, d[0], true);
    return Tensors{g.dx, g.dweight, g.dbias};
  };
  check_gradients(check);
}

// The CPU's fused gating in float32 at odd sizes (rows that do not fill its blocks of 32, features
// not a multiple of the vector width), with and without a bias, against the definition in double:
// p = softmax(x W + c), y = x p; dz = p (dy x - sum dy x p), dx = dy p + dz W^T, dW = x^T dz, dc = sum dz.
TEST(GatingAttention, Float32AtOddSizesMatchesTheDefinitionInDouble) {
  Generator gen(125);
  const std::int64_t B = 3, T = 23, D = 33, rows = B * T;
  const Tensor x = random_tensor({B, T, D}, gen, -2, 2, DType::f32), W = random_tensor({D, D}, gen, -0.5, 0.5, DType::f32),
               c = random_tensor({D}, gen, -1, 1, DType::f32), dy = random_tensor({B, T, D}, gen, -1, 1, DType::f32);
  const auto vx = values(x), vW = values(W), vc = values(c), vdy = values(dy);
  for (const bool has_bias : {true, false}) {
    std::vector<double> probs(rows * D), y(rows * D), dx(rows * D), dW(D * D, 0.0), dc(D, 0.0);
    for (std::int64_t r = 0; r < rows; ++r) {
      std::vector<double> z(D), dz(D);
      double sum = 0, dot = 0;
      for (std::int64_t j = 0; j < D; ++j) {
        z[j] = has_bias ? vc[j] : 0.0;
        for (std::int64_t i = 0; i < D; ++i) z[j] += vx[r * D + i] * vW[i * D + j];
      }
      const double max = *std::max_element(z.begin(), z.end());
      for (std::int64_t j = 0; j < D; ++j) sum += std::exp(z[j] - max);
      for (std::int64_t j = 0; j < D; ++j) {
        probs[r * D + j] = std::exp(z[j] - max) / sum;
        y[r * D + j] = vx[r * D + j] * probs[r * D + j];
        dot += vdy[r * D + j] * vx[r * D + j] * probs[r * D + j];
      }
      for (std::int64_t j = 0; j < D; ++j) {
        dz[j] = probs[r * D + j] * (vdy[r * D + j] * vx[r * D + j] - dot);
        dc[j] += dz[j];
      }
      for (std::int64_t i = 0; i < D; ++i) {
        dx[r * D + i] = vdy[r * D + i] * probs[r * D + i];
        for (std::int64_t j = 0; j < D; ++j) {
          dx[r * D + i] += dz[j] * vW[i * D + j];
          dW[i * D + j] += vx[r * D + i] * dz[j];
        }
      }
    }
    const ops::GatingResult result = ops::gating_attention(x, W, has_bias ? c : Tensor());
    const ops::GatingGrads grads = ops::gating_attention_backward(x, W, result.probs, dy, has_bias);
    EXPECT_EQ(result.y.dtype(), DType::f32);
    EXPECT_TRUE(all_close(result.probs, probs, 1e-6, 1e-5)) << "bias " << has_bias;
    EXPECT_TRUE(all_close(result.y, y, 1e-6, 1e-5)) << "bias " << has_bias;
    EXPECT_TRUE(all_close(grads.dx, dx, 1e-5, 1e-5)) << "bias " << has_bias;
    EXPECT_TRUE(all_close(grads.dweight, dW, 1e-4, 1e-5)) << "bias " << has_bias;
    EXPECT_EQ(grads.dbias.defined(), has_bias);
    if (has_bias) {
      EXPECT_TRUE(all_close(grads.dbias, dc, 1e-5, 1e-5));
    }
  }
}

// Seed 003's attention_3d_block: Permute, Dense(T, softmax), optional mean over features and
// RepeatVector, Permute back, Multiply.
std::vector<double> reference_temporal(const Tensor& x, const Tensor& W, const Tensor& c, bool single,
                                       std::vector<double>* probs_out) {
  const std::int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const auto vx = values(x), vW = values(W);
  std::vector<double> q(B * D * T);  // [B, D, T]
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t d = 0; d < D; ++d) {
      double sum = 0;
      for (std::int64_t t = 0; t < T; ++t) {
        double z = c.item(t);
        for (std::int64_t s = 0; s < T; ++s) z += vx[(b * T + s) * D + d] * vW[s * T + t];
        q[(b * D + d) * T + t] = std::exp(z);
        sum += q[(b * D + d) * T + t];
      }
      for (std::int64_t t = 0; t < T; ++t) q[(b * D + d) * T + t] /= sum;
    }
  std::vector<double> y;
  probs_out->clear();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t d = 0; d < D; ++d) {
        double p = q[(b * D + d) * T + t];
        if (single) {
          p = 0;
          for (std::int64_t f = 0; f < D; ++f) p += q[(b * D + f) * T + t] / double(D);
        }
        probs_out->push_back(p);
        y.push_back(vx[(b * T + t) * D + d] * p);
      }
  return y;
}

class TemporalGating : public ::testing::TestWithParam<bool> {};

TEST_P(TemporalGating, ForwardMatchesSeed003AndGradient) {
  const bool single = GetParam();
  Generator gen(125);
  Tensor x = random_tensor({3, 7, 2}, gen), W = random_tensor({7, 7}, gen), c = random_tensor({7}, gen);
  ops::GatingResult r = ops::temporal_gating_attention(x, W, c, single);
  std::vector<double> probs;
  const auto y = reference_temporal(x, W, c, single, &probs);
  EXPECT_TRUE(all_close(r.y, y, 1e-14));
  EXPECT_TRUE(all_close(r.probs, probs, 1e-14));

  GradCheck check;
  check.inputs = {x, W, c};
  check.forward = [=](const Tensors& in) { return Tensors{ops::temporal_gating_attention(in[0], in[1], in[2], single).y}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    auto g = ops::temporal_gating_attention_backward(in[0], in[1], in[2], d[0], single);
    return Tensors{g.dx, g.dweight, g.dbias};
  };
  check_gradients(check);
}

std::string temporal_case_name(const ::testing::TestParamInfo<bool>& p) {
  return p.param ? "SingleVector" : "PerFeature";
}

INSTANTIATE_TEST_SUITE_P(Gradient, TemporalGating, ::testing::Bool(), temporal_case_name);

// ------------------------------------------------------------------ scaled dot-product attention

struct SdpaReference {
  std::vector<double> out, lse, weights;
};

// The attention's lse of every query against the reference's (-inf where it sees no key), its
// output and weights.
void expect_matches(const ops::AttentionResult& r, const SdpaReference& ref) {
  EXPECT_TRUE(all_close(r.out, ref.out, 1e-13));
  EXPECT_TRUE(all_close(r.weights, ref.weights, 1e-13));
  const auto lse = values(r.lse);
  for (std::size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(ref.lse[i]))
      EXPECT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << "query " << i << " sees no key";
    else
      EXPECT_NEAR(lse[i], ref.lse[i], 1e-12) << "query " << i;
  }
}

// Attention dropout's reference mask (support.h) for the options.
bool reference_keeps(const ops::AttentionOptions& o, std::int64_t row, std::int64_t keys, std::int64_t j) {
  return reference_dropout_keeps(o.dropout_seed, o.dropout_offset, o.dropout, row, keys, j);
}

// How the dropout's rows are laid out for a reference of one batch element of a larger batch (a
// sequence of a variable-length batch): its index and the batch's queries and keys.
struct DropoutRows {
  std::int64_t batch_index = 0, queries = 0, keys = 0;  // 0: the reference's own
};

// softmax(s) v per head, written from the definition in double: s = scale q . k (1 / sqrt(dk)
// unless given), softcap on it, plus bias, minus slope |i - j|; keys outside the window and the
// masks hidden; key head h / (H / Hkv); under dropout, v weighted by P Z / (1 - rate').
SdpaReference reference_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                             const ops::AttentionOptions& o, DropoutRows rows = {}) {
  const std::int64_t B = q.size(0), Tq = q.size(1), Tk = k.size(1), H = o.num_heads;
  const std::int64_t Hkv = o.num_kv_heads > 0 ? o.num_kv_heads : H;
  const std::int64_t dk = q.size(2) / H, dv = v.size(2) / Hkv;
  const double scale = o.scale.value_or(1 / std::sqrt(double(dk)));
  const auto vq = values(q), vk = values(k), vv = values(v);
  const auto bias = o.bias.defined() ? values(o.bias) : std::vector<double>();
  const auto slopes = o.alibi_slopes.defined() ? values(o.alibi_slopes) : std::vector<double>();
  SdpaReference r;
  r.out.assign(B * Tq * H * dv, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < Tq; ++i) {
        const std::int64_t g = h / (H / Hkv);
        std::vector<double> s(Tk, -std::numeric_limits<double>::infinity());
        double max = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < Tk; ++j) {
          const bool visible = (!mask.defined() || mask.item(b * Tk + j) != 0) && (!o.causal || j <= i) &&
                               (o.window_left < 0 || j >= i - o.window_left) &&
                               (o.window_right < 0 || j <= i + o.window_right) &&
                               (!o.attention_mask.defined() ||
                                o.attention_mask.item(((o.attention_mask.size(0) == 1 ? 0 : b) * Tq + i) * Tk + j) != 0);
          if (!visible) continue;
          double dot = 0;
          for (std::int64_t c = 0; c < dk; ++c) dot += vq[(b * Tq + i) * H * dk + h * dk + c] * vk[(b * Tk + j) * Hkv * dk + g * dk + c];
          double x = scale * dot;
          if (o.softcap > 0) x = o.softcap * std::tanh(x / o.softcap);
          if (!bias.empty()) {
            const std::int64_t bb = o.bias.size(0) == 1 ? 0 : b, bh = o.bias.size(1) == 1 ? 0 : h;
            x += bias[((bb * o.bias.size(1) + bh) * Tq + i) * Tk + j];
          }
          if (!slopes.empty()) x -= slopes[h] * double(std::abs(i - j));
          s[j] = x;
          max = std::max(max, x);
        }
        double sum = 0;
        if (max > -std::numeric_limits<double>::infinity())
          for (const double x : s) sum += std::exp(x - max);
        r.lse.push_back(sum > 0 ? max + std::log(sum) : -std::numeric_limits<double>::infinity());
        const std::int64_t row_queries = rows.queries > 0 ? rows.queries : Tq, row_keys = rows.keys > 0 ? rows.keys : Tk;
        const std::int64_t row = ((rows.batch_index + b) * H + h) * row_queries + i;
        for (std::int64_t j = 0; j < Tk; ++j) {
          const double p = sum > 0 ? std::exp(s[j] - max) / sum : 0.0;
          r.weights.push_back(p);
          const double kept = o.dropout == 0 ? p : reference_keeps(o, row, row_keys, j) ? p * reference_dropout_scale(o.dropout) : 0.0;
          for (std::int64_t c = 0; c < dv; ++c)
            r.out[(b * Tq + i) * H * dv + h * dv + c] += kept * vv[(b * Tk + j) * Hkv * dv + g * dv + c];
        }
      }
  return r;
}

struct SdpaCase {
  const char* name;
  std::int64_t heads, Tq, Tk, dk, dv;
  bool masked, causal;
  std::optional<double> scale;
};

class Sdpa : public ::testing::TestWithParam<SdpaCase> {};

TEST_P(Sdpa, ForwardMatchesDefinitionAndGradient) {
  const SdpaCase c = GetParam();
  Generator gen(131);
  const std::int64_t B = 2;
  Tensor q = random_tensor({B, c.Tq, c.heads * c.dk}, gen, -1.5, 1.5);
  Tensor k = random_tensor({B, c.Tk, c.heads * c.dk}, gen, -1.5, 1.5);
  Tensor v = random_tensor({B, c.Tk, c.heads * c.dv}, gen);
  Tensor mask = c.masked ? random_mask(B, c.Tk, gen) : Tensor();
  ops::AttentionOptions options;
  options.num_heads = c.heads;
  options.causal = c.causal;
  options.scale = c.scale;
  options.return_weights = true;
  expect_matches(ops::scaled_dot_product_attention(q, k, v, mask, options), reference_sdpa(q, k, v, mask, options));

  GradCheck check;
  check.inputs = {q, k, v, mask.defined() ? mask : Tensor::full({B, c.Tk}, 1, DType::u8)};
  options.return_weights = false;
  check.forward = [=](const Tensors& in) {
    return Tensors{ops::scaled_dot_product_attention(in[0], in[1], in[2], in[3], options).out};
  };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    ops::AttentionResult f = ops::scaled_dot_product_attention(in[0], in[1], in[2], in[3], options);
    ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(in[0], in[1], in[2], in[3], f, d[0], options);
    return Tensors{g.dq, g.dk, g.dv, Tensor()};
  };
  check_gradients(check);
}

std::string sdpa_case_name(const ::testing::TestParamInfo<SdpaCase>& p) { return p.param.name; }
void PrintTo(const SdpaCase& c, std::ostream* out) { *out << c.name; }

INSTANTIATE_TEST_SUITE_P(
    Gradient, Sdpa,
    ::testing::Values(SdpaCase{"SingleHead", 1, 5, 5, 4, 4, false, false, std::nullopt},
                      SdpaCase{"ThreeHeadsMasked", 3, 7, 7, 3, 5, true, false, std::nullopt},
                      SdpaCase{"CausalSelf", 2, 6, 6, 4, 3, false, true, std::nullopt},
                      SdpaCase{"CausalMasked", 2, 5, 5, 3, 3, true, true, std::nullopt},
                      SdpaCase{"CrossLongerKeys", 2, 3, 8, 4, 2, true, false, std::nullopt},
                      SdpaCase{"CrossCausalMoreQueries", 1, 7, 4, 5, 3, false, true, std::nullopt},
                      SdpaCase{"LuongDotScaleOne", 1, 4, 6, 5, 5, false, false, 1.0}),
    sdpa_case_name);

TEST(Sdpa, QueryThatSeesNoKeyGetsZeros) {
  Generator gen(132);
  Tensor q = random_tensor({1, 3, 4}, gen), k = random_tensor({1, 3, 4}, gen), v = random_tensor({1, 3, 4}, gen);
  Tensor mask = Tensor::from_vector<std::uint8_t>({0, 0, 1}, {1, 3});
  ops::AttentionOptions options;
  options.causal = true;  // queries 0 and 1 see only keys 0..1, both masked
  ops::AttentionResult r = ops::scaled_dot_product_attention(q, k, v, mask, options);
  for (int c = 0; c < 8; ++c) EXPECT_EQ(r.out.item(c), 0.0);
  EXPECT_TRUE(all_close(r.out.slice(0, 1).reshape({3, 4}).slice(2, 3), values(v.reshape({3, 4}).slice(2, 3)), 1e-15));
  ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(q, k, v, mask, r, Tensor::full({1, 3, 4}, 1.0, DType::f64), options);
  for (int c = 0; c < 8; ++c) EXPECT_EQ(g.dq.item(c), 0.0);
}

TEST(Sdpa, HeadsMustDivideTheWidth) {
  Tensor q = Tensor::zeros({1, 2, 30}), v = Tensor::zeros({1, 2, 30});
  ops::AttentionOptions options;
  options.num_heads = 4;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, q, v, Tensor(), options),
                       "the width 30 of q is not divisible by 4 heads");
  options.num_heads = 2;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, Tensor::zeros({1, 3, 20}), v, Tensor(), options),
                       "k must have shape [1, 3, 30]");
}

// Key lengths hide what a byte mask of the same keys hides; lengths outside [0, Tk] are refused.
TEST(Sdpa, KeyLengthsHideTheKeysPastThem) {
  Generator gen(133);
  const std::int64_t B = 3, Tq = 4, Tk = 6, D = 5;
  const Tensor q = random_tensor({B, Tq, D}, gen), k = random_tensor({B, Tk, D}, gen), v = random_tensor({B, Tk, D}, gen);
  const Tensor dout = random_tensor({B, Tq, D}, gen);
  const std::vector<std::int32_t> lengths{6, 0, 2};
  std::vector<std::uint8_t> keep;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < Tk; ++j) keep.push_back(j < lengths[static_cast<std::size_t>(b)]);
  const Tensor as_lengths = Tensor::from_vector(lengths, {B});
  const Tensor as_mask = Tensor::from_vector(keep, {B, Tk});
  const ops::AttentionResult a = ops::scaled_dot_product_attention(q, k, v, as_lengths);
  const ops::AttentionResult m = ops::scaled_dot_product_attention(q, k, v, as_mask);
  EXPECT_TRUE(all_close(a.out, m.out, 0));
  EXPECT_TRUE(all_close(a.lse, m.lse, 0));
  const ops::AttentionGrads ga = ops::scaled_dot_product_attention_backward(q, k, v, as_lengths, a, dout);
  const ops::AttentionGrads gm = ops::scaled_dot_product_attention_backward(q, k, v, as_mask, m, dout);
  EXPECT_TRUE(all_close(ga.dq, gm.dq, 0));
  EXPECT_TRUE(all_close(ga.dk, gm.dk, 0));
  EXPECT_TRUE(all_close(ga.dv, gm.dv, 0));
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, v, Tensor::from_vector<std::int32_t>({6, 7, 1}, {B})),
                       "the key length 7 of batch element 1 is outside [0, 6]");
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, v, Tensor::from_vector<std::int32_t>({6, 1}, {2})),
                       "key lengths must be i32 [B] = [3]");
}

// Packed projections give what the same columns given apart give, and dqkv holds dq, dk, dv
// side by side; the packed backward also passes the finite-difference check.
TEST(Sdpa, PackedSelfAttentionIsAttentionOverItsColumns) {
  Generator gen(134);
  const std::int64_t B = 2, T = 5, H = 2, W = 6;
  const Tensor qkv = random_tensor({B, T, 3 * W}, gen, -1.5, 1.5), dout = random_tensor({B, T, W}, gen);
  const Tensor mask = random_mask(B, T, gen);
  ops::AttentionOptions options;
  options.num_heads = H;
  options.causal = true;
  const std::vector<Tensor> parts = ops::concat_backward(qkv, {W, W, W});
  const ops::AttentionResult packed = ops::packed_self_attention(qkv, mask, options);
  const ops::AttentionResult apart = ops::scaled_dot_product_attention(parts[0], parts[1], parts[2], mask, options);
  EXPECT_TRUE(all_close(packed.out, apart.out, 1e-15));
  EXPECT_TRUE(all_close(packed.lse, apart.lse, 1e-15));
  const Tensor dqkv = ops::packed_self_attention_backward(qkv, mask, packed, dout, options);
  const ops::AttentionGrads g =
      ops::scaled_dot_product_attention_backward(parts[0], parts[1], parts[2], mask, apart, dout, options);
  EXPECT_TRUE(all_close(dqkv, ops::concat({g.dq, g.dk, g.dv}), 1e-15));

  GradCheck check;
  check.inputs = {qkv, mask};
  check.forward = [=](const Tensors& in) { return Tensors{ops::packed_self_attention(in[0], in[1], options).out}; };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    const ops::AttentionResult f = ops::packed_self_attention(in[0], in[1], options);
    return Tensors{ops::packed_self_attention_backward(in[0], in[1], f, d[0], options), Tensor()};
  };
  check_gradients(check);
  EXPECT_ATTNKIT_ERROR(ops::packed_self_attention(Tensor::zeros({1, 2, 20}), Tensor(), options),
                       "the width 20 of qkv is not a multiple of 6 heads (2 for q, 2 each for k and v)");
}

// The cpu computes f16 and bf16 in f32: the same numbers as the f32 op on the converted
// inputs, rounded to the dtype; lse stays f32.
TEST(Sdpa, SixteenBitFloatsComputeInFloat32) {
  Generator gen(135);
  for (const DType dtype : {DType::f16, DType::bf16}) {
    const Tensor q = random_tensor({2, 7, 8}, gen, -1, 1, dtype), k = random_tensor({2, 9, 8}, gen, -1, 1, dtype);
    const Tensor v = random_tensor({2, 9, 8}, gen, -1, 1, dtype), dout = random_tensor({2, 7, 8}, gen, -1, 1, dtype);
    ops::AttentionOptions options;
    options.num_heads = 2;
    const ops::AttentionResult r = ops::scaled_dot_product_attention(q, k, v, Tensor(), options);
    const ops::AttentionResult f = ops::scaled_dot_product_attention(q.to(DType::f32), k.to(DType::f32),
                                                                     v.to(DType::f32), Tensor(), options);
    EXPECT_EQ(r.out.dtype(), dtype);
    EXPECT_EQ(r.lse.dtype(), DType::f32);
    EXPECT_TRUE(all_close(r.out, values(f.out.to(dtype)), 0)) << dtype;
    EXPECT_TRUE(all_close(r.lse, f.lse, 0)) << dtype;
    const ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(q, k, v, Tensor(), r, dout, options);
    const ops::AttentionGrads gf = ops::scaled_dot_product_attention_backward(
        q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), Tensor(), f, dout.to(DType::f32), options);
    EXPECT_EQ(g.dq.dtype(), dtype);
    // The backward reads out in the dtype, so delta = dout . out moves by its rounding.
    const double tolerance = dtype == DType::f16 ? 2e-3 : 2e-2;
    EXPECT_TRUE(all_close(g.dq, gf.dq, tolerance)) << dtype;
    EXPECT_TRUE(all_close(g.dk, gf.dk, tolerance)) << dtype;
    EXPECT_TRUE(all_close(g.dv, values(gf.dv.to(dtype)), 0)) << dtype;
  }
}

// ------------------------------------------------------------------ grouped heads and score modifiers

// The features of ops/attention.h (4.) beyond plain attention.
struct SdpaFeatures {
  const char* name;
  std::int64_t heads, kv_heads;
  bool masked, causal;
  Shape bias;  // empty: none; else [B or 1, H or 1, Tq, Tk]
  bool alibi;
  double softcap;
  std::int64_t left, right;  // the window
  std::int64_t mask_batch = 0;  // the attention mask's first extent (1 or B), 0: none
  double dropout = 0;
};

class SdpaModified : public ::testing::TestWithParam<SdpaFeatures> {};

// Forward against the definition, and every gradient (dq, dk, dv and dbias) against finite
// differences; the bias holds -inf entries (a float mask), one of them a whole row.
TEST_P(SdpaModified, ForwardMatchesDefinitionAndGradient) {
  const SdpaFeatures c = GetParam();
  Generator gen(136);
  const std::int64_t B = 2, Tq = 6, Tk = 7, dk = 3, dv = 2;
  const Tensor q = random_tensor({B, Tq, c.heads * dk}, gen, -1.5, 1.5);
  const Tensor k = random_tensor({B, Tk, c.kv_heads * dk}, gen, -1.5, 1.5);
  const Tensor v = random_tensor({B, Tk, c.kv_heads * dv}, gen);
  const Tensor mask = c.masked ? random_mask(B, Tk, gen, 0.8) : Tensor::full({B, Tk}, 1, DType::u8);
  ops::AttentionOptions options;
  options.num_heads = c.heads, options.num_kv_heads = c.kv_heads, options.causal = c.causal;
  options.softcap = c.softcap, options.window_left = c.left, options.window_right = c.right;
  options.dropout = c.dropout, options.dropout_seed = 0x5EED, options.dropout_offset = 77;
  if (c.alibi) {
    std::vector<float> slopes;
    for (std::int64_t h = 0; h < c.heads; ++h) slopes.push_back(std::ldexp(1.0f, -1 - static_cast<int>(h)));
    options.alibi_slopes = Tensor::from_vector(slopes, {c.heads});
  }
  Tensor bias;
  if (!c.bias.empty()) {
    std::vector<double> b = values(random_tensor(c.bias, gen, -2, 2));
    for (std::size_t e = 3; e < b.size(); e += 5) b[e] = -std::numeric_limits<double>::infinity();
    std::fill(b.begin() + Tk, b.begin() + 2 * Tk, -std::numeric_limits<double>::infinity());  // query 1 of the first matrix
    bias = Tensor::from_vector(b, c.bias);
  }
  options.bias = bias;
  if (c.mask_batch > 0) options.attention_mask = random_mask(c.mask_batch * Tq, Tk, gen, 0.7).reshape({c.mask_batch, Tq, Tk});
  options.return_weights = true;
  expect_matches(ops::scaled_dot_product_attention(q, k, v, mask, options), reference_sdpa(q, k, v, mask, options));

  GradCheck check;
  check.inputs = {q, k, v, mask};
  if (bias.defined()) check.inputs.push_back(bias);
  options.return_weights = false;
  options.bias_grad = bias.defined();
  const auto with_bias = [options](const Tensors& in) {
    ops::AttentionOptions o = options;
    if (in.size() > 4) o.bias = in[4];
    return o;
  };
  check.forward = [=](const Tensors& in) {
    return Tensors{ops::scaled_dot_product_attention(in[0], in[1], in[2], in[3], with_bias(in)).out};
  };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    const ops::AttentionOptions o = with_bias(in);
    const ops::AttentionResult f = ops::scaled_dot_product_attention(in[0], in[1], in[2], in[3], o);
    const ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(in[0], in[1], in[2], in[3], f, d[0], o);
    Tensors grads{g.dq, g.dk, g.dv, Tensor()};
    if (in.size() > 4) grads.push_back(g.dbias);
    return grads;
  };
  check_gradients(check);
}

std::string modified_case_name(const ::testing::TestParamInfo<SdpaFeatures>& p) { return p.param.name; }
void PrintTo(const SdpaFeatures& c, std::ostream* out) { *out << c.name; }

INSTANTIATE_TEST_SUITE_P(
    Gradient, SdpaModified,
    ::testing::Values(SdpaFeatures{"GroupedQueryMasked", 4, 2, true, false, {}, false, 0, -1, -1},
                      SdpaFeatures{"MultiQueryCausal", 3, 1, false, true, {}, false, 0, -1, -1},
                      SdpaFeatures{"BiasEveryHeadMasked", 2, 2, true, false, {2, 2, 6, 7}, false, 0, -1, -1},
                      SdpaFeatures{"BiasSharedByBatchWithAlibi", 2, 2, false, false, {1, 2, 6, 7}, true, 0, -1, -1},
                      SdpaFeatures{"BiasSharedByHeadsSoftcap", 3, 3, false, true, {2, 1, 6, 7}, false, 1.5, -1, -1},
                      SdpaFeatures{"SlidingWindowAlibiSoftcap", 2, 1, false, false, {}, true, 2.0, 2, 1},
                      SdpaFeatures{"AttentionMaskPerBatchElement", 2, 2, false, false, {}, false, 0, -1, -1, 2},
                      SdpaFeatures{"EverythingAtOnce", 4, 2, true, true, {1, 1, 6, 7}, true, 3.0, 3, -1, 1},
                      SdpaFeatures{"DropoutMaskedCausal", 2, 2, true, true, {}, false, 0, -1, -1, 0, 0.3},
                      SdpaFeatures{"DropoutWithEverything", 4, 2, true, false, {2, 1, 6, 7}, true, 2.0, 4, 2, 2, 0.25}),
    modified_case_name);

// A query that sees no key through the window or the bias alone gets out 0, lse -inf and no
// gradient, never NaN.
TEST(SdpaModified, QueryHiddenByWindowOrBiasGetsZeros) {
  Generator gen(137);
  const Tensor q = random_tensor({1, 4, 4}, gen), k = random_tensor({1, 4, 4}, gen), v = random_tensor({1, 4, 4}, gen);
  const Tensor mask = Tensor::from_vector<std::uint8_t>({1, 0, 1, 1}, {1, 4});
  ops::AttentionOptions options;
  options.window_left = options.window_right = 0;  // each query sees its own key only; key 1 is masked
  ops::AttentionResult r = ops::scaled_dot_product_attention(q, k, v, mask, options);
  EXPECT_TRUE(std::isinf(r.lse.item(1)) && r.lse.item(1) < 0);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(r.out.item(4 + c), 0.0);
  std::vector<double> bias(16, 0.0);
  std::fill(bias.begin() + 8, bias.begin() + 12, -std::numeric_limits<double>::infinity());  // query 2
  options = {};
  options.bias = Tensor::from_vector(bias, {1, 1, 4, 4});
  options.bias_grad = true;
  r = ops::scaled_dot_product_attention(q, k, v, Tensor(), options);
  EXPECT_TRUE(std::isinf(r.lse.item(2)) && r.lse.item(2) < 0);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(r.out.item(8 + c), 0.0);
  const ops::AttentionGrads g =
      ops::scaled_dot_product_attention_backward(q, k, v, Tensor(), r, Tensor::full({1, 4, 4}, 1.0, DType::f64), options);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(g.dq.item(8 + c), 0.0);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(g.dbias.item(8 + j), 0.0);
  for (const double x : values(g.dk)) EXPECT_TRUE(std::isfinite(x));
}

TEST(SdpaModified, RefusesWhatItCannotTake) {
  const Tensor q = Tensor::zeros({2, 3, 8}), k = Tensor::zeros({2, 5, 8});
  ops::AttentionOptions options;
  options.num_heads = 4, options.num_kv_heads = 3;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "num_kv_heads 3 must divide num_heads 4");
  options.num_kv_heads = 2;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "k must have shape [2, 5, 4]");
  options.num_kv_heads = 0;
  options.bias = Tensor::zeros({2, 2, 3, 5});
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options),
                       "bias must be [B or 1, H or 1, Tq, Tk] = [2 or 1, 4 or 1, 3, 5], got f32[2, 2, 3, 5]");
  options.bias = Tensor::zeros({1, 4, 3, 5}, DType::f16);
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "bias must be f32 or q's dtype f32");
  options.bias = Tensor();
  options.bias_grad = true;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "bias_grad asks for the gradient of a bias");
  options.bias_grad = false;
  options.softcap = -1;
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "softcap must be 0 (none) or positive");
  options.softcap = 0;
  options.alibi_slopes = Tensor::zeros({3});
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "alibi_slopes must be f32 [H] = [4]");
  options.alibi_slopes = Tensor();
  for (const double rate : {-0.1, 1.0, std::nan("")}) {
    options.dropout = rate;
    EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options), "dropout must be in [0, 1)");
  }
  options.dropout = 1 - std::ldexp(1.0, -18);
  EXPECT_ATTNKIT_ERROR(ops::scaled_dot_product_attention(q, k, k, Tensor(), options),
                       "would drop every probability (the rate is taken to a multiple of 2^-16)");
}

// ------------------------------------------------------------------ attention dropout

// Over keys that span three blocks' worth of 32 and rows of every batch element and head: with v
// the identity, out_ij = P_ij Z_ij / (1 - rate'), so the output shows the mask. It is the mask
// of attnkit/random.h (written out again in reference_keeps), in f32 and f64 alike, and
// attention_dropout_mask gives it; about `rate` of the entries are dropped, and a draw at another
// offset drops others.
TEST(SdpaDropout, DropsTheDocumentedEntriesAndScalesTheRest) {
  Generator gen(141);
  const std::int64_t B = 2, H = 3, Tq = 5, Tk = 70;
  ops::AttentionOptions options;
  options.num_heads = H, options.num_kv_heads = 1;
  options.dropout = 0.3, options.dropout_seed = 2024, options.dropout_offset = 1000;
  std::vector<double> identity(static_cast<std::size_t>(B * Tk * Tk), 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < Tk; ++j) identity[static_cast<std::size_t>((b * Tk + j) * Tk + j)] = 1.0;
  const Tensor q = random_tensor({B, Tq, H * 4}, gen), k = random_tensor({B, Tk, 4}, gen);
  const Tensor v = Tensor::from_vector(identity, {B, Tk, Tk});
  const Tensor mask = ops::attention_dropout_mask(B, H, Tq, Tk, options);
  ASSERT_EQ(mask.shape(), Shape({B, H, Tq, Tk}));
  const double scale = reference_dropout_scale(0.3);
  std::int64_t dropped = 0;
  for (const DType dtype : {DType::f64, DType::f32}) {
    options.return_weights = true;
    const ops::AttentionResult r = ops::scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), Tensor(), options);
    const std::vector<double> out = values(r.out), weights = values(r.weights);
    dropped = 0;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t i = 0; i < Tq; ++i)
          for (std::int64_t j = 0; j < Tk; ++j) {
            const std::int64_t row = (b * H + h) * Tq + i;
            const bool kept = reference_keeps(options, row, Tk, j);
            const double p = weights[static_cast<std::size_t>(row * Tk + j)];  // before dropout
            ASSERT_GT(p, 0.0);
            EXPECT_NEAR(out[static_cast<std::size_t>(((b * Tq + i) * H + h) * Tk + j)], kept ? p * scale : 0.0, 1e-6 * p)
                << dtype_name(dtype) << " b " << b << " h " << h << " i " << i << " j " << j;
            EXPECT_EQ(mask.data<std::uint8_t>()[row * Tk + j], kept ? 1 : 0) << "row " << row << " j " << j;
            dropped += kept ? 0 : 1;
          }
  }
  EXPECT_NEAR(double(dropped) / double(B * H * Tq * Tk), 0.3, 0.05);
  ops::AttentionOptions later = options;
  later.dropout_offset += ops::attention_dropout_numbers(B, H, Tq, Tk) / 4;
  EXPECT_EQ(ops::attention_dropout_numbers(B, H, Tq, Tk), std::uint64_t(B * H * Tq) * 12 * 4);
  const std::vector<std::uint8_t> first = mask.to_vector<std::uint8_t>();
  const std::vector<std::uint8_t> second = ops::attention_dropout_mask(B, H, Tq, Tk, later).to_vector<std::uint8_t>();
  std::int64_t differ = 0;
  for (std::size_t e = 0; e < first.size(); ++e) differ += first[e] != second[e];
  EXPECT_GT(differ, static_cast<std::int64_t>(first.size() / 5));
  options.dropout = 0;
  EXPECT_EQ(values(ops::attention_dropout_mask(B, H, Tq, Tk, options)), std::vector<double>(first.size(), 1.0));
}

// Packed projections with grouped key heads: [B, T, (H + 2 Hkv) d] gives what the columns apart give.
TEST(SdpaModified, PackedGroupedProjectionsAreAttentionOverTheirColumns) {
  Generator gen(138);
  const std::int64_t B = 2, T = 5, H = 4, Hkv = 2, d = 3;
  const Tensor qkv = random_tensor({B, T, (H + 2 * Hkv) * d}, gen, -1.5, 1.5), dout = random_tensor({B, T, H * d}, gen);
  ops::AttentionOptions options;
  options.num_heads = H, options.num_kv_heads = Hkv, options.causal = true;
  const std::vector<Tensor> parts = ops::concat_backward(qkv, {H * d, Hkv * d, Hkv * d});
  const ops::AttentionResult packed = ops::packed_self_attention(qkv, Tensor(), options);
  const ops::AttentionResult apart = ops::scaled_dot_product_attention(parts[0], parts[1], parts[2], Tensor(), options);
  EXPECT_TRUE(all_close(packed.out, apart.out, 1e-15));
  const Tensor dqkv = ops::packed_self_attention_backward(qkv, Tensor(), packed, dout, options);
  const ops::AttentionGrads g =
      ops::scaled_dot_product_attention_backward(parts[0], parts[1], parts[2], Tensor(), apart, dout, options);
  EXPECT_TRUE(all_close(dqkv, ops::concat({g.dq, g.dk, g.dv}), 1e-15));
}

// ------------------------------------------------------------------ variable-length batches

struct VarlenFeatures {
  const char* name;
  std::int64_t heads, kv_heads;
  bool causal, alibi;
  double softcap;
  std::int64_t left, right;  // the window
  double dropout = 0;
};

// Sequences of 5, 0, 9, 1 and 4 queries against 6, 3, 0, 8 and 4 keys: one without queries (its
// keys get gradients 0), one without keys (its queries get 0 and lse -inf).
const std::vector<std::int32_t> kVarlenQueryStarts{0, 5, 5, 14, 15, 19}, kVarlenKeyStarts{0, 6, 9, 9, 17, 21};

// Sequence b of a variable-length operand [total, H, d] as a batch of one, [1, n, H d].
Tensor sequence_of(const Tensor& x, const std::vector<std::int32_t>& starts, std::size_t b) {
  return x.slice(starts[b], starts[b + 1]).reshape({1, starts[b + 1] - starts[b], x.size(1) * x.size(2)});
}

class Varlen : public ::testing::TestWithParam<VarlenFeatures> {};

// Each sequence's output and lse against the definition in double as a batch of one, and dq, dk,
// dv against finite differences.
TEST_P(Varlen, EachSequenceMatchesTheDefinitionAndGradient) {
  const VarlenFeatures c = GetParam();
  Generator gen(140);
  const std::int64_t dk = 3, dv = 2, total_q = kVarlenQueryStarts.back(), total_k = kVarlenKeyStarts.back();
  const Tensor q = random_tensor({total_q, c.heads, dk}, gen, -1.5, 1.5);
  const Tensor k = random_tensor({total_k, c.kv_heads, dk}, gen, -1.5, 1.5);
  const Tensor v = random_tensor({total_k, c.kv_heads, dv}, gen);
  const Tensor cu_q = Tensor::from_vector(kVarlenQueryStarts, {6}), cu_k = Tensor::from_vector(kVarlenKeyStarts, {6});
  ops::AttentionOptions options;
  options.causal = c.causal, options.softcap = c.softcap, options.window_left = c.left, options.window_right = c.right;
  options.dropout = c.dropout, options.dropout_seed = 99, options.dropout_offset = 5;
  if (c.alibi) {
    std::vector<float> slopes;
    for (std::int64_t h = 0; h < c.heads; ++h) slopes.push_back(std::ldexp(1.0f, -1 - static_cast<int>(h)));
    options.alibi_slopes = Tensor::from_vector(slopes, {c.heads});
  }
  const ops::AttentionResult r = ops::varlen_attention(q, k, v, cu_q, cu_k, options);
  ASSERT_EQ(r.out.shape(), Shape({total_q, c.heads, dv}));
  ASSERT_EQ(r.lse.shape(), Shape({c.heads, total_q}));
  const std::vector<double> out = values(r.out), lse = values(r.lse);
  ops::AttentionOptions one = options;
  one.num_heads = c.heads, one.num_kv_heads = c.kv_heads;
  for (std::size_t b = 0; b + 1 < kVarlenQueryStarts.size(); ++b) {
    const std::int64_t first = kVarlenQueryStarts[b], n = kVarlenQueryStarts[b + 1] - first;
    if (n == 0) continue;
    // Its dropout is that of the padded batch [B, H, 9, 8].
    const SdpaReference ref = reference_sdpa(sequence_of(q, kVarlenQueryStarts, b), sequence_of(k, kVarlenKeyStarts, b),
                                             sequence_of(v, kVarlenKeyStarts, b), Tensor(), one,
                                             {static_cast<std::int64_t>(b), 9, 8});
    EXPECT_TRUE(all_close(std::vector<double>(out.begin() + first * c.heads * dv, out.begin() + (first + n) * c.heads * dv),
                          ref.out, 1e-13))
        << "sequence " << b;
    for (std::int64_t h = 0; h < c.heads; ++h)
      for (std::int64_t i = 0; i < n; ++i) {
        const double expected = ref.lse[h * n + i], got = lse[h * total_q + first + i];
        if (std::isinf(expected))
          EXPECT_TRUE(std::isinf(got) && got < 0) << "sequence " << b << " head " << h << " query " << i;
        else
          EXPECT_NEAR(got, expected, 1e-12) << "sequence " << b << " head " << h << " query " << i;
      }
  }

  GradCheck check;
  check.inputs = {q, k, v};
  check.forward = [=](const Tensors& in) {
    return Tensors{ops::varlen_attention(in[0], in[1], in[2], cu_q, cu_k, options).out};
  };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    const ops::AttentionResult f = ops::varlen_attention(in[0], in[1], in[2], cu_q, cu_k, options);
    const ops::AttentionGrads g = ops::varlen_attention_backward(in[0], in[1], in[2], cu_q, cu_k, f, d[0], options);
    return Tensors{g.dq, g.dk, g.dv};
  };
  check_gradients(check);
}

std::string varlen_case_name(const ::testing::TestParamInfo<VarlenFeatures>& p) { return p.param.name; }
void PrintTo(const VarlenFeatures& c, std::ostream* out) { *out << c.name; }

INSTANTIATE_TEST_SUITE_P(Gradient, Varlen,
                         ::testing::Values(VarlenFeatures{"Plain", 2, 2, false, false, 0, -1, -1},
                                           VarlenFeatures{"GroupedQueryCausal", 4, 2, true, false, 0, -1, -1},
                                           VarlenFeatures{"MultiQueryWindowAlibiSoftcap", 3, 1, false, true, 2.0, 2, 1},
                                           VarlenFeatures{"DropoutGroupedCausal", 4, 2, true, false, 0, -1, -1, 0.4}),
                         varlen_case_name);

// 16-bit operands compute in f32 (as the other attention ops on the cpu): the f32 results rounded.
TEST(Varlen, SixteenBitFloatsComputeInFloat32) {
  Generator gen(141);
  const Tensor q = random_tensor({19, 2, 8}, gen, -1, 1, DType::f32), k = random_tensor({21, 2, 8}, gen, -1, 1, DType::f32);
  const Tensor v = random_tensor({21, 2, 8}, gen, -1, 1, DType::f32), dout = random_tensor({19, 2, 8}, gen, -1, 1, DType::f32);
  const Tensor cu_q = Tensor::from_vector(kVarlenQueryStarts, {6}), cu_k = Tensor::from_vector(kVarlenKeyStarts, {6});
  for (const DType dtype : {DType::f16, DType::bf16}) {
    const Tensor q16 = q.to(dtype), k16 = k.to(dtype), v16 = v.to(dtype), dout16 = dout.to(dtype);
    const ops::AttentionResult r16 = ops::varlen_attention(q16, k16, v16, cu_q, cu_k);
    const ops::AttentionResult r32 = ops::varlen_attention(q16.to(DType::f32), k16.to(DType::f32), v16.to(DType::f32), cu_q, cu_k);
    EXPECT_TRUE(all_close(r16.out, r32.out.to(dtype), 0.0)) << dtype_name(dtype);
    EXPECT_EQ(r16.lse.dtype(), DType::f32);
    EXPECT_TRUE(all_close(r16.lse, r32.lse, 0.0)) << dtype_name(dtype);
    // The backward reads the output as the forward returned it, rounded.
    ops::AttentionResult rounded = r32;
    rounded.out = r16.out.to(DType::f32);
    const ops::AttentionGrads g16 = ops::varlen_attention_backward(q16, k16, v16, cu_q, cu_k, r16, dout16);
    const ops::AttentionGrads g32 = ops::varlen_attention_backward(q16.to(DType::f32), k16.to(DType::f32), v16.to(DType::f32),
                                                                   cu_q, cu_k, rounded, dout16.to(DType::f32));
    EXPECT_TRUE(all_close(g16.dq, g32.dq.to(dtype), 0.0)) << dtype_name(dtype);
    EXPECT_TRUE(all_close(g16.dk, g32.dk.to(dtype), 0.0)) << dtype_name(dtype);
    EXPECT_TRUE(all_close(g16.dv, g32.dv.to(dtype), 0.0)) << dtype_name(dtype);
  }
}

TEST(Varlen, RefusesBadOffsetsAndWhatSequencesCannotShare) {
  const Tensor q = Tensor::zeros({7, 2, 4}), k = Tensor::zeros({5, 1, 4});
  const auto offsets = [](std::vector<std::int32_t> v) {
    const auto n = static_cast<std::int64_t>(v.size());
    return Tensor::from_vector(v, {n});
  };
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, offsets({0, 4, 3, 7}), offsets({0, 2, 3, 5})),
                       "cu_seqlens_q must not decrease, but cu_seqlens_q[2] = 3 < cu_seqlens_q[1] = 4");
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, offsets({0, 3, 7}), offsets({0, 2, 4})),
                       "cu_seqlens_k[2] = 4 must be the number of steps, 5");
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, offsets({1, 3, 7}), offsets({0, 2, 5})), "cu_seqlens_q[0] must be 0, got 1");
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, offsets({0, 3, 7}), offsets({0, 1, 2, 5})),
                       "must count the same sequences");
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, Tensor::from_vector<float>({0, 3, 7}, {3}), offsets({0, 2, 5})),
                       "cu_seqlens_q must be i32 [B + 1], got f32[3]");
  ops::AttentionOptions options;
  options.num_heads = 4;
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, offsets({0, 3, 7}), offsets({0, 2, 5}), options),
                       "num_heads 4 and num_kv_heads 0 disagree with the heads of q");
  options.num_heads = 1;
  options.bias = Tensor::zeros({1, 2, 7, 5});
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, k, k, offsets({0, 3, 7}), offsets({0, 2, 5}), options),
                       "a variable-length batch takes no bias, attention mask or returned weights");
  EXPECT_ATTNKIT_ERROR(ops::varlen_attention(q, Tensor::zeros({5, 3, 4}), Tensor::zeros({5, 3, 4}), offsets({0, 3, 7}),
                                             offsets({0, 2, 5})),
                       "the key heads 3 of k must divide the heads 2 of q");
}

// ------------------------------------------------------------------ decoding against a cache

struct DecodeFeatures {
  const char* name;
  bool causal, alibi;
  double softcap;
  std::int64_t left, right;  // the window
};

class Decode : public ::testing::TestWithParam<DecodeFeatures> {};

// The new steps land in the caches in place (the rest untouched), and each query attends to its
// batch element's steps as the definition in double has it, written here with the queries as the
// last Tq steps: query t at position L - Tq + t, the causal bound, the window and ALiBi from there.
// One batch element starts empty; in another the first queries come before any step (out 0, lse
// -inf under causal).
TEST_P(Decode, AppendsInPlaceAndAttendsAsTheLastSteps) {
  const DecodeFeatures c = GetParam();
  Generator gen(142);
  const std::int64_t B = 3, capacity = 20, H = 4, Hkv = 2, dk = 3, dv = 2, Tq = 3, Tn = 2;
  const std::vector<std::int32_t> before{5, 0, 14};
  const Tensor q = random_tensor({B, Tq, H * dk}, gen, -1.5, 1.5);
  Tensor k_cache = random_tensor({B, capacity, Hkv * dk}, gen, -1.5, 1.5), v_cache = random_tensor({B, capacity, Hkv * dv}, gen);
  const Tensor k_new = random_tensor({B, Tn, Hkv * dk}, gen, -1.5, 1.5), v_new = random_tensor({B, Tn, Hkv * dv}, gen);
  const std::vector<double> k_before = values(k_cache), v_before = values(v_cache);
  ops::AttentionOptions options;
  options.num_heads = H, options.num_kv_heads = Hkv, options.causal = c.causal, options.softcap = c.softcap;
  options.window_left = c.left, options.window_right = c.right;
  std::vector<float> slopes;
  for (std::int64_t h = 0; h < H; ++h) slopes.push_back(c.alibi ? std::ldexp(1.0f, -1 - static_cast<int>(h)) : 0.0f);
  if (c.alibi) options.alibi_slopes = Tensor::from_vector(slopes, {H});
  const ops::AttentionResult r = ops::decode_attention(q, k_cache, v_cache, Tensor::from_vector(before, {B}), k_new, v_new, options);

  const std::vector<double> kc = values(k_cache), vc = values(v_cache), kn = values(k_new), vn = values(v_new);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < capacity; ++t) {
      const bool fresh = t >= before[b] && t < before[b] + Tn;
      for (std::int64_t e = 0; e < Hkv * dk; ++e)
        EXPECT_EQ(kc[(b * capacity + t) * Hkv * dk + e], fresh ? kn[(b * Tn + t - before[b]) * Hkv * dk + e]
                                                              : k_before[(b * capacity + t) * Hkv * dk + e])
            << "k_cache b " << b << " step " << t;
      for (std::int64_t e = 0; e < Hkv * dv; ++e)
        EXPECT_EQ(vc[(b * capacity + t) * Hkv * dv + e], fresh ? vn[(b * Tn + t - before[b]) * Hkv * dv + e]
                                                              : v_before[(b * capacity + t) * Hkv * dv + e])
            << "v_cache b " << b << " step " << t;
    }

  const std::vector<double> vq = values(q), out = values(r.out), lse = values(r.lse);
  const double scale = 1 / std::sqrt(double(dk)), hidden = -std::numeric_limits<double>::infinity();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t t = 0; t < Tq; ++t) {
        const std::int64_t L = before[b] + Tn, at = L - Tq + t, g = h / (H / Hkv);
        std::vector<double> s(L, hidden);
        double max = hidden;
        for (std::int64_t j = 0; j < L; ++j) {
          if ((c.causal && j > at) || (c.left >= 0 && j < at - c.left) || (c.right >= 0 && j > at + c.right)) continue;
          double dot = 0;
          for (std::int64_t e = 0; e < dk; ++e) dot += vq[(b * Tq + t) * H * dk + h * dk + e] * kc[(b * capacity + j) * Hkv * dk + g * dk + e];
          double x = scale * dot;
          if (c.softcap > 0) x = c.softcap * std::tanh(x / c.softcap);
          s[j] = x - slopes[h] * double(std::abs(at - j));
          max = std::max(max, s[j]);
        }
        double sum = 0;
        for (const double x : s) sum += x == hidden ? 0.0 : std::exp(x - max);
        const double got_lse = lse[(b * H + h) * Tq + t];
        if (sum == 0)
          EXPECT_TRUE(std::isinf(got_lse) && got_lse < 0) << "b " << b << " h " << h << " t " << t;
        else
          EXPECT_NEAR(got_lse, max + std::log(sum), 1e-12) << "b " << b << " h " << h << " t " << t;
        for (std::int64_t e = 0; e < dv; ++e) {
          double expected = 0;
          for (std::int64_t j = 0; j < L; ++j)
            if (s[j] != hidden) expected += std::exp(s[j] - max) / sum * vc[(b * capacity + j) * Hkv * dv + g * dv + e];
          EXPECT_NEAR(out[(b * Tq + t) * H * dv + h * dv + e], expected, 1e-13) << "b " << b << " h " << h << " t " << t;
        }
      }
}

std::string decode_case_name(const ::testing::TestParamInfo<DecodeFeatures>& p) { return p.param.name; }
void PrintTo(const DecodeFeatures& c, std::ostream* out) { *out << c.name; }

INSTANTIATE_TEST_SUITE_P(Attention, Decode,
                         ::testing::Values(DecodeFeatures{"Plain", false, false, 0, -1, -1},
                                           DecodeFeatures{"Causal", true, false, 0, -1, -1},
                                           DecodeFeatures{"CausalWindowAlibiSoftcap", true, true, 2.0, 4, -1}),
                         decode_case_name);

TEST(Decode, RefusesWhatDoesNotFit) {
  const Tensor q = Tensor::zeros({2, 1, 8}), cache = Tensor::zeros({2, 6, 8}), one = Tensor::zeros({2, 2, 8});
  const Tensor lengths = Tensor::from_vector<std::int32_t>({3, 5}, {2});
  EXPECT_ATTNKIT_ERROR(ops::decode_attention(q, cache, cache, lengths, one, one),
                       "batch element 1 holds 5 steps; with 2 new ones they must fit the capacity 6");
  EXPECT_ATTNKIT_ERROR(ops::decode_attention(q, cache, cache, lengths, one, Tensor()), "k_new and v_new come together");
  EXPECT_ATTNKIT_ERROR(ops::decode_attention(q, cache, cache, Tensor::from_vector<float>({3, 5}, {2})),
                       "cache_lengths must be i32 [B] = [2]");
  ops::AttentionOptions options;
  options.dropout = 0.1;
  EXPECT_ATTNKIT_ERROR(ops::decode_attention(q, cache, cache, lengths, Tensor(), Tensor(), options),
                       "takes no bias, attention mask, dropout or returned weights");
}

}  // namespace
}  // namespace attnkit
