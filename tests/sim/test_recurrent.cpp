// kernels/recurrent.cu under the sim executor: one step of each cell against the equations of
// ops/recurrent.h evaluated in double, and the step's backward against central finite
// differences of those equations. (tests/test_device_ops.cpp runs whole sequences through the
// kernels against the cpu op.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/recurrent.h"
#include "sim_support.h"
#include "support.h"

namespace attnkit {
namespace {

using Cell = ops::RecurrentCell;
using sim::Buffer;
using namespace testing;
namespace kern = sim_kernels;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// One unit's step in double: pre_x and pre_h hold the G pre-activations of unit u (input side;
// recurrent side with its bias), h_prev and c_prev its previous states.
struct UnitStep {
  double h, c;
};
UnitStep unit_step(Cell cell, const double* pre_x, const double* pre_h, double h_prev, double c_prev) {
  switch (cell) {
    case Cell::simple_rnn:
      return {std::tanh(pre_x[0] + pre_h[0]), 0.0};
    case Cell::lstm: {
      const double i = sigmoid(pre_x[0] + pre_h[0]), f = sigmoid(pre_x[1] + pre_h[1]);
      const double g = std::tanh(pre_x[2] + pre_h[2]), o = sigmoid(pre_x[3] + pre_h[3]);
      const double c = f * c_prev + i * g;
      return {o * std::tanh(c), c};
    }
    case Cell::gru: {
      const double z = sigmoid(pre_x[0] + pre_h[0]), r = sigmoid(pre_x[1] + pre_h[1]);
      const double hh = std::tanh(pre_x[2] + r * pre_h[2]);
      return {z * h_prev + (1 - z) * hh, 0.0};
    }
  }
  return {0.0, 0.0};
}

TEST(SimRecurrent, StepForwardAndBackwardFollowTheCellEquations) {
  Generator gen(71);
  const std::int64_t B = 3, T = 4, U = 5, t = 2;
  for (const Cell cell : {Cell::simple_rnn, Cell::lstm, Cell::gru})
    for (const bool from_zero_states : {true, false}) {
      const bool lstm = cell == Cell::lstm, gru = cell == Cell::gru;
      const std::int64_t G = ops::recurrent_gate_count(cell), GU = G * U;
      const std::string what = std::string(ops::recurrent_cell_name(cell)) + (from_zero_states ? " from zeros" : "");
      const Tensor xw = random_tensor({B, T, GU}, gen, -2, 2, DType::f32);
      const Tensor rec = random_tensor({B, GU}, gen, -2, 2, DType::f32);
      const Tensor rec_bias = random_tensor({GU}, gen, -1, 1, DType::f32);
      const Tensor h_prev = random_tensor({B, U}, gen, -1, 1, DType::f32);
      const Tensor c_prev = random_tensor({B, U}, gen, -2, 2, DType::f32);
      const Tensor dh = random_tensor({B, U}, gen, -1, 1, DType::f32);
      const Tensor dy = random_tensor({B, T, U}, gen, -1, 1, DType::f32);
      const Tensor dc = random_tensor({B, U}, gen, -1, 1, DType::f32);

      Buffer<float> xw_sim(floats_of(xw)), rec_sim(floats_of(rec)), rec_bias_sim(floats_of(rec_bias));
      Buffer<float> h_prev_sim(floats_of(h_prev)), c_prev_sim(floats_of(c_prev));
      Buffer<float> gates_sim(poison(std::size_t(B * GU))), h_sim(poison(std::size_t(B * U)));
      Buffer<float> c_sim(poison(std::size_t(B * U))), rec_h_sim(poison(std::size_t(B * U)));
      // From zero states: no recurrent product, no previous states; the recurrent bias stays.
      const float* rec_in = from_zero_states ? nullptr : rec_sim.data();
      const float* h_in = from_zero_states ? nullptr : h_prev_sim.data();
      const float* c_in = from_zero_states || !lstm ? nullptr : c_prev_sim.data();
      const kern::RecurrentStep step{cell, B, T, U, t};
      kern::recurrent_step_forward(xw_sim.data(), rec_in, rec_bias_sim.data(), c_in, h_in, gates_sim.data(),
                                   h_sim.data(), lstm ? c_sim.data() : nullptr, gru ? rec_h_sim.data() : nullptr, step,
                                   nullptr);

      Buffer<float> dh_sim(floats_of(dh)), dy_sim(floats_of(dy)), dc_sim(floats_of(dc));
      Buffer<float> dxw_sim(poison(std::size_t(B * T * GU))), drec_sim(poison(std::size_t(B * GU)));
      Buffer<float> dh_direct_sim(poison(std::size_t(B * U)));
      kern::recurrent_step_backward(gates_sim.data(), lstm ? c_sim.data() : nullptr, c_in, h_in,
                                    gru ? rec_h_sim.data() : nullptr, dh_sim.data(), dy_sim.data() + t * U,
                                    lstm ? dc_sim.data() : nullptr, dxw_sim.data(), drec_sim.data(),
                                    gru ? dh_direct_sim.data() : nullptr, step, nullptr);

      const std::vector<double> xw_v = values(xw), rec_v = values(rec), bias_v = values(rec_bias);
      const std::vector<double> hp_v = values(h_prev), cp_v = values(c_prev), dh_v = values(dh), dy_v = values(dy);
      const std::vector<double> dc_v = values(dc);
      std::vector<double> h_want, c_want, rec_h_want, dxw_want, drec_want, dc_want, dh_direct_want;
      std::vector<double> h_got, c_got, rec_h_got, dxw_got, drec_got, dc_got, dh_direct_got;
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t u = 0; u < U; ++u) {
          const std::int64_t bu = b * U + u;
          double pre_x[4], pre_h[4];
          for (std::int64_t g = 0; g < G; ++g) {
            pre_x[g] = xw_v[std::size_t((b * T + t) * GU + g * U + u)];
            pre_h[g] = (from_zero_states ? 0.0 : rec_v[std::size_t(b * GU + g * U + u)]) + bias_v[std::size_t(g * U + u)];
          }
          double hp = from_zero_states ? 0.0 : hp_v[std::size_t(bu)];
          double cp = from_zero_states || !lstm ? 0.0 : cp_v[std::size_t(bu)];
          const UnitStep out = unit_step(cell, pre_x, pre_h, hp, cp);
          h_want.push_back(out.h);
          h_got.push_back(h_sim.values()[std::size_t(bu)]);
          if (lstm) {
            c_want.push_back(out.c);
            c_got.push_back(c_sim.values()[std::size_t(bu)]);
          }
          if (gru) {
            rec_h_want.push_back(pre_h[2]);
            rec_h_got.push_back(rec_h_sim.values()[std::size_t(bu)]);
          }
          // The loss whose gradient the backward step gives: (dh + dy) h + dc c.
          const double dh_total = dh_v[std::size_t(bu)] + dy_v[std::size_t((b * T + t) * U + u)];
          const double dc_in = lstm ? dc_v[std::size_t(bu)] : 0.0;
          const auto loss = [&] {
            const UnitStep s = unit_step(cell, pre_x, pre_h, hp, cp);
            return dh_total * s.h + dc_in * s.c;
          };
          const auto derivative = [&](double& variable) {
            const double saved = variable, step_size = 1e-6;
            variable = saved + step_size;
            const double up = loss();
            variable = saved - step_size;
            const double down = loss();
            variable = saved;
            return (up - down) / (2 * step_size);
          };
          for (std::int64_t g = 0; g < G; ++g) {
            dxw_want.push_back(derivative(pre_x[g]));
            dxw_got.push_back(dxw_sim.values()[std::size_t((b * T + t) * GU + g * U + u)]);
            drec_want.push_back(derivative(pre_h[g]));
            drec_got.push_back(drec_sim.values()[std::size_t(b * GU + g * U + u)]);
          }
          if (lstm) {
            dc_want.push_back(derivative(cp));
            dc_got.push_back(dc_sim.values()[std::size_t(bu)]);
          }
          if (gru) {  // the path from h' to h that skips the recurrent product
            dh_direct_want.push_back(derivative(hp));
            dh_direct_got.push_back(dh_direct_sim.values()[std::size_t(bu)]);
          }
        }
      EXPECT_TRUE(all_close(h_got, h_want, 1e-6, 1e-5)) << what;
      EXPECT_TRUE(all_close(c_got, c_want, 1e-6, 1e-5)) << what;
      EXPECT_TRUE(all_close(rec_h_got, rec_h_want, 1e-6, 1e-5)) << what;
      EXPECT_TRUE(all_close(dxw_got, dxw_want, 1e-5, 1e-4)) << what;
      EXPECT_TRUE(all_close(drec_got, drec_want, 1e-5, 1e-4)) << what;
      EXPECT_TRUE(all_close(dc_got, dc_want, 1e-5, 1e-4)) << what;
      EXPECT_TRUE(all_close(dh_direct_got, dh_direct_want, 1e-5, 1e-4)) << what;
    }
}

TEST(SimRecurrent, StateGradientsSumTheirSources) {
  Generator gen(72);
  const std::int64_t n = 37;
  const Tensor dy = random_tensor({n}, gen, -1, 1, DType::f32), dh_last = random_tensor({n}, gen, -1, 1, DType::f32);
  const Tensor dc_last = random_tensor({n}, gen, -1, 1, DType::f32);
  Buffer<float> dy_sim(floats_of(dy)), dh_last_sim(floats_of(dh_last)), dc_last_sim(floats_of(dc_last));
  Buffer<float> dh_sim(poison(std::size_t(n))), dc_sim(poison(std::size_t(n)));
  kern::recurrent_state_grads(dy_sim.data(), dh_last_sim.data(), dc_last_sim.data(), dh_sim.data(), dc_sim.data(), n,
                              nullptr);
  std::vector<double> sum = values(dy);
  for (std::int64_t i = 0; i < n; ++i) sum[std::size_t(i)] += values(dh_last)[std::size_t(i)];
  EXPECT_TRUE(all_close(values(tensor_of(dh_sim, {n})), sum, 1e-7, 1e-6));
  EXPECT_TRUE(all_close(tensor_of(dc_sim, {n}), dc_last, 0, 0));
  // Absent sources count as zeros.
  kern::recurrent_state_grads(nullptr, nullptr, nullptr, dh_sim.data(), dc_sim.data(), n, nullptr);
  EXPECT_TRUE(all_close(tensor_of(dh_sim, {n}), Tensor::zeros({n}), 0, 0));
  EXPECT_TRUE(all_close(tensor_of(dc_sim, {n}), Tensor::zeros({n}), 0, 0));
}

TEST(SimRecurrent, RejectsAStepOutsideTheSequence) {
  const kern::RecurrentStep step{Cell::lstm, 2, 3, 4, 3};
  EXPECT_ATTNKIT_ERROR(kern::recurrent_step_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                    nullptr, nullptr, step, nullptr),
                       "recurrent_step_forward: needs batch >= 0, units > 0 and 0 <= t < steps");
}

}  // namespace
}  // namespace attnkit
