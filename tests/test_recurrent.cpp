// SimpleRNN, LSTM and GRU: forward against a step-by-step reference written from Keras's cell
// equations, backward (through time, with initial and final states) against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "attnkit/ops/recurrent.h"
#include "cpu/fast_math.h"
#include "gradcheck.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;
using ops::RecurrentCell;

struct Reference {
  std::vector<double> y, h_last, c_last;
};

double logistic(double v) { return 1 / (1 + std::exp(-v)); }

// The cells as Keras's RNN layers compute them, one sample and one step at a time.
Reference reference_recurrent(RecurrentCell cell, const Tensor& x, const Tensor& kernel,
                              const Tensor& recurrent, const Tensor& bias, const Tensor& h0,
                              const Tensor& c0, const ops::RecurrentOptions& opt) {
  const std::int64_t B = x.size(0), T = x.size(1), I = x.size(2);
  const std::int64_t GU = kernel.size(1), U = recurrent.size(0);
  const auto vx = values(x), W = values(kernel), R = values(recurrent);
  std::vector<double> b_in(GU, 0.0), b_rec(GU, 0.0);
  if (bias.defined()) {
    const auto vb = values(bias);
    for (std::int64_t j = 0; j < GU; ++j) b_in[j] = vb[j];
    if (bias.dim() == 2)
      for (std::int64_t j = 0; j < GU; ++j) b_rec[j] = vb[GU + j];
  }
  std::vector<double> h = h0.defined() ? values(h0) : std::vector<double>(B * U, 0.0);
  std::vector<double> c = c0.defined() ? values(c0) : std::vector<double>(B * U, 0.0);
  Reference out;
  std::vector<std::vector<double>> steps;
  for (std::int64_t s = 0; s < T; ++s) {
    const std::int64_t t = opt.go_backwards ? T - 1 - s : s;
    std::vector<double> h_new(B * U), c_new(B * U);
    for (std::int64_t b = 0; b < B; ++b) {
      std::vector<double> xw(GU), hr(GU);
      for (std::int64_t j = 0; j < GU; ++j) {
        xw[j] = b_in[j];
        for (std::int64_t i = 0; i < I; ++i) xw[j] += vx[(b * T + t) * I + i] * W[i * GU + j];
        hr[j] = b_rec[j];
        for (std::int64_t u = 0; u < U; ++u) hr[j] += h[b * U + u] * R[u * GU + j];
      }
      for (std::int64_t u = 0; u < U; ++u) {
        const double hp = h[b * U + u];
        if (cell == RecurrentCell::simple_rnn) {
          h_new[b * U + u] = std::tanh(xw[u] + hr[u]);
        } else if (cell == RecurrentCell::lstm) {
          const double i = logistic(xw[u] + hr[u]), f = logistic(xw[U + u] + hr[U + u]);
          const double g = std::tanh(xw[2 * U + u] + hr[2 * U + u]), o = logistic(xw[3 * U + u] + hr[3 * U + u]);
          c_new[b * U + u] = f * c[b * U + u] + i * g;
          h_new[b * U + u] = o * std::tanh(c_new[b * U + u]);
        } else {
          const double z = logistic(xw[u] + hr[u]);
          double candidate = xw[2 * U + u];
          if (opt.reset_after) {
            candidate += logistic(xw[U + u] + hr[U + u]) * hr[2 * U + u];
          } else {
            for (std::int64_t k = 0; k < U; ++k)  // (r * h') R_h, with r of unit k
              candidate += logistic(xw[U + k] + hr[U + k]) * h[b * U + k] * R[k * GU + 2 * U + u];
          }
          h_new[b * U + u] = z * hp + (1 - z) * std::tanh(candidate);
        }
      }
    }
    h = h_new;
    if (cell == RecurrentCell::lstm) c = c_new;
    steps.push_back(h);
  }
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t s = 0; s < T; ++s)
      for (std::int64_t u = 0; u < U; ++u)
        if (opt.return_sequences) out.y.push_back(steps[s][b * U + u]);
  if (!opt.return_sequences) out.y = h;
  out.h_last = h;
  out.c_last = c;
  return out;
}

struct Case {
  RecurrentCell cell;
  bool return_sequences, go_backwards, reset_after, with_bias, with_state;
};

std::string describe(const Case& c) {
  std::string name = ops::recurrent_cell_name(c.cell);
  if (c.cell == RecurrentCell::gru) name += c.reset_after ? "_ResetAfter" : "_ResetBefore";
  name += c.return_sequences ? "_Sequences" : "_Last";
  if (c.go_backwards) name += "_Backwards";
  if (!c.with_bias) name += "_NoBias";
  if (c.with_state) name += "_InitialState";
  return name;
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) { return describe(p.param); }
void PrintTo(const Case& c, std::ostream* out) { *out << describe(c); }

class Recurrent : public ::testing::TestWithParam<Case> {
 protected:
  // x [2, 5, 3], 4 units; initial states and biases when the case has them.
  Tensors inputs(Generator& gen) const {
    const Case& c = GetParam();
    const std::int64_t G = ops::recurrent_gate_count(c.cell), U = 4;
    Tensors in{random_tensor({2, 5, 3}, gen, -1.5, 1.5), random_tensor({3, G * U}, gen),
               random_tensor({U, G * U}, gen)};
    const bool two_biases = c.cell == RecurrentCell::gru && c.reset_after;
    in.push_back(c.with_bias ? random_tensor(two_biases ? Shape{2, G * U} : Shape{G * U}, gen) : Tensor());
    in.push_back(c.with_state ? random_tensor({2, U}, gen) : Tensor());
    in.push_back(c.with_state && c.cell == RecurrentCell::lstm ? random_tensor({2, U}, gen) : Tensor());
    return in;
  }
  ops::RecurrentOptions options() const {
    const Case& c = GetParam();
    ops::RecurrentOptions o;
    o.return_sequences = c.return_sequences;
    o.go_backwards = c.go_backwards;
    o.reset_after = c.reset_after;
    return o;
  }
};

TEST_P(Recurrent, ForwardMatchesKerasCellEquations) {
  Generator gen(101);
  const Tensors in = inputs(gen);
  const ops::RecurrentOptions o = options();
  const RecurrentCell cell = GetParam().cell;
  ops::RecurrentResult r = ops::recurrent(cell, in[0], in[1], in[2], in[3], in[4], in[5], o);
  const Reference ref = reference_recurrent(cell, in[0], in[1], in[2], in[3], in[4], in[5], o);
  EXPECT_EQ(r.y.shape(), o.return_sequences ? (Shape{2, 5, 4}) : (Shape{2, 4}));
  EXPECT_TRUE(all_close(r.y, ref.y, 1e-12));
  EXPECT_TRUE(all_close(r.h_last, ref.h_last, 1e-12));
  if (cell == RecurrentCell::lstm) {
    EXPECT_TRUE(all_close(r.c_last, ref.c_last, 1e-12));
  }
}

TEST_P(Recurrent, Gradient) {
  Generator gen(102);
  const Case c = GetParam();
  const ops::RecurrentOptions o = options();
  GradCheck check;
  // Only defined tensors take part; remember where each one sits among the op's arguments.
  const Tensors all = inputs(gen);
  std::vector<std::size_t> slot;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i].defined()) {
      check.inputs.push_back(all[i]);
      slot.push_back(i);
    }
  auto expand = [=](const Tensors& in) {
    Tensors args(6);
    for (std::size_t i = 0; i < in.size(); ++i) args[slot[i]] = in[i];
    return args;
  };
  const bool lstm = c.cell == RecurrentCell::lstm;
  // Outputs: y and the final states, so that the state gradients are checked too.
  check.forward = [=](const Tensors& in) {
    const Tensors a = expand(in);
    ops::RecurrentResult r = ops::recurrent(c.cell, a[0], a[1], a[2], a[3], a[4], a[5], o);
    return lstm ? Tensors{r.y, r.h_last, r.c_last} : Tensors{r.y, r.h_last};
  };
  check.backward = [=](const Tensors& in, const Tensors&, const Tensors& d) {
    const Tensors a = expand(in);
    ops::RecurrentResult r = ops::recurrent(c.cell, a[0], a[1], a[2], a[3], a[4], a[5], o);
    ops::RecurrentGrads g = ops::recurrent_backward(c.cell, a[0], a[1], a[2], a[3], a[4], a[5], r, d[0],
                                                    d[1], lstm ? d[2] : Tensor(), o);
    const Tensors grads{g.dx, g.dkernel, g.drecurrent_kernel, g.dbias, g.dh0, g.dc0};
    Tensors selected;
    for (const std::size_t s : slot) selected.push_back(grads[s]);
    return selected;
  };
  check_gradients(check);
}

const RecurrentCell kCells[] = {RecurrentCell::simple_rnn, RecurrentCell::lstm, RecurrentCell::gru};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const RecurrentCell cell : kCells)
    for (const bool sequences : {false, true})
      for (const bool backwards : {false, true}) cases.push_back({cell, sequences, backwards, true, true, false});
  for (const RecurrentCell cell : kCells) {
    cases.push_back({cell, false, false, true, true, true});   // initial states
    cases.push_back({cell, true, false, true, false, false});  // no bias
  }
  cases.push_back({RecurrentCell::gru, true, false, false, true, false});  // reset_after=False
  cases.push_back({RecurrentCell::gru, false, true, false, true, true});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Gradient, Recurrent, ::testing::ValuesIn(all_cases()), case_name);

TEST(Recurrent, KerasParameterShapesAreEnforced) {
  Tensor x = Tensor::zeros({2, 5, 3});
  EXPECT_ATTNKIT_ERROR(ops::recurrent(RecurrentCell::lstm, x, Tensor::zeros({3, 10}), Tensor::zeros({2, 8}), Tensor()),
                       "kernel must be [I, 4 * units]");
  EXPECT_ATTNKIT_ERROR(ops::recurrent(RecurrentCell::gru, x, Tensor::zeros({3, 12}), Tensor::zeros({4, 12}),
                                      Tensor::zeros({12})),
                       "bias must have shape [2, 12]");
  EXPECT_ATTNKIT_ERROR(ops::recurrent(RecurrentCell::simple_rnn, x, Tensor::zeros({3, 4}), Tensor::zeros({4, 4}),
                                      Tensor(), Tensor(), Tensor::zeros({2, 4})),
                       "only an LSTM has a cell state");
}

// The cells' exp, tanh and sigmoid (cpu/fast_math.h) against the C library in double, over
// every magnitude they meet: a few float units in the last place.
TEST(FastMath, ExpTanhAndSigmoidAgreeWithTheCLibrary) {
  double worst_exp = 0, worst_tanh = 0, worst_sigmoid = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double e = std::exp(double(x)), t = std::tanh(double(x)), s = 1 / (1 + std::exp(-double(x)));
    worst_exp = std::max(worst_exp, std::abs(cpu::fast_exp(x) - e) / e);
    worst_tanh = std::max(worst_tanh, std::abs(cpu::fast_tanh(x) - t) / std::max(std::abs(t), 1e-30));
    worst_sigmoid = std::max(worst_sigmoid, std::abs(cpu::fast_sigmoid(x) - s) / s);
  }
  for (float x = -0.3f; x <= 0.3f; x += 1.3e-5f)  // tanh's two formulas meet at 0.2
    worst_tanh = std::max(worst_tanh, std::abs(cpu::fast_tanh(x) - std::tanh(double(x))) /
                                          std::max(std::abs(std::tanh(double(x))), 1e-30));
  const double ulp = std::ldexp(1.0, -23);
  EXPECT_LT(worst_exp, 3 * ulp);
  EXPECT_LT(worst_tanh, 4 * ulp);
  EXPECT_LT(worst_sigmoid, 4 * ulp);
  EXPECT_TRUE(std::isnan(cpu::fast_exp(NAN)) && std::isnan(cpu::fast_tanh(NAN)) && std::isnan(cpu::fast_sigmoid(NAN)));
  EXPECT_EQ(cpu::fast_tanh(1000.0f), 1.0f);
  EXPECT_EQ(cpu::fast_tanh(-1000.0f), -1.0f);
  EXPECT_EQ(cpu::fast_sigmoid(-1000.0f), cpu::fast_sigmoid(-1000.0f));  // finite, not NaN
  EXPECT_LT(cpu::fast_sigmoid(-1000.0f), 1e-30f);
}

}  // namespace
}  // namespace attnkit
