// The optimizers' options against Keras 3's documented formulas, written here as plain loops in
// double: each learning-rate schedule step by step; Adam, AdamW and SGD with weight decay, each
// kind of gradient clipping and a schedule over several steps of random weights and gradients;
// the same steps on the sim device against the cpu; the defaults bit for bit as the plain
// update; argument errors; configs; schedules through fit, ReduceLROnPlateau and checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>

#include "attnkit/attnkit.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;
namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ------------------------------------------------------------------ schedules

TEST(Schedules, ExponentialDecayFollowsTheFormula) {
  struct Case {
    double initial, rate;
    std::int64_t decay_steps;
    bool staircase;
  };
  for (const Case& c : {Case{0.1, 0.96, 7, false}, Case{0.1, 0.96, 7, true}, Case{3e-3, 0.5, 1, true},
                        Case{2e-4, 1.3, 13, false}, Case{0.05, 0.9, 10, true}}) {
    const auto schedule = ExponentialDecay(c.initial, c.decay_steps, c.rate, c.staircase);
    for (std::int64_t step = 0; step <= 200; ++step) {
      // Keras: initial * rate^(step / decay_steps), the exponent floored in staircase mode.
      const double exponent = c.staircase ? double(step / c.decay_steps) : double(step) / double(c.decay_steps);
      const double expected = c.initial * std::exp(exponent * std::log(c.rate));
      EXPECT_NEAR((*schedule)(step), expected, 1e-13 * expected) << "step " << step << " staircase " << c.staircase;
    }
  }
  // Staircase: constant within each period of decay_steps, one factor per period.
  const auto stairs = ExponentialDecay(1.0, 10, 0.5, true);
  EXPECT_EQ((*stairs)(9), 1.0);
  EXPECT_EQ((*stairs)(10), 0.5);
  EXPECT_EQ((*stairs)(29), 0.25);
}

TEST(Schedules, PiecewiseConstantDecayChangesAfterEachBoundary) {
  const std::vector<std::int64_t> boundaries{3, 10, 11, 40};
  const std::vector<double> values{1.0, 0.5, 0.3, 0.1, 0.01};
  const auto schedule = PiecewiseConstantDecay(boundaries, values);
  for (std::int64_t step = 0; step <= 60; ++step) {
    // Keras: values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i].
    std::size_t piece = 0;
    while (piece < boundaries.size() && step > boundaries[piece]) ++piece;
    EXPECT_EQ((*schedule)(step), values[piece]) << "step " << step;
  }
  // A boundary is the last step of its value.
  EXPECT_EQ((*schedule)(3), 1.0);
  EXPECT_EQ((*schedule)(4), 0.5);
  EXPECT_EQ((*schedule)(10), 0.5);
  EXPECT_EQ((*schedule)(11), 0.3);
  EXPECT_EQ((*schedule)(12), 0.1);
  EXPECT_EQ((*schedule)(41), 0.01);
}

// Keras's CosineDecay.__call__, written out: warmup, then decay, then constant.
double cosine_decay(double initial, std::int64_t decay_steps, double alpha, std::optional<double> target,
                    std::int64_t warmup_steps, std::int64_t step) {
  double from = initial;
  double s = double(step);
  if (target) {
    if (step < warmup_steps) return initial + (*target - initial) * double(step) / double(warmup_steps);
    from = *target;
    s -= double(warmup_steps);
  }
  s = std::min(s, double(decay_steps));
  return from * ((1 - alpha) * 0.5 * (1 + std::cos(kPi * s / double(decay_steps))) + alpha);
}

TEST(Schedules, CosineDecayWithAndWithoutWarmup) {
  struct Case {
    double initial;
    std::int64_t decay_steps;
    double alpha;
    std::optional<double> target;
    std::int64_t warmup_steps;
  };
  for (const Case& c : {Case{0.1, 37, 0.0, std::nullopt, 0}, Case{0.02, 37, 0.1, std::nullopt, 0},
                        Case{0.0, 29, 0.05, 0.1, 13}, Case{1e-3, 5, 0.2, 3e-3, 1}, Case{0.01, 11, 0.0, 0.05, 0}}) {
    const auto schedule = CosineDecay(c.initial, c.decay_steps, c.alpha, c.target, c.warmup_steps);
    for (std::int64_t step = 0; step <= 120; ++step) {
      const double expected = cosine_decay(c.initial, c.decay_steps, c.alpha, c.target, c.warmup_steps, step);
      EXPECT_NEAR((*schedule)(step), expected, 1e-15 + 1e-13 * expected) << "step " << step;
    }
    // The ends: the warmup starts at the initial rate and reaches the target; the decay ends at
    // alpha times the rate it started from and stays there.
    const double peak = c.target ? *c.target : c.initial;
    EXPECT_NEAR((*schedule)(0), c.target && c.warmup_steps > 0 ? c.initial : peak, 1e-15);
    EXPECT_NEAR((*schedule)(c.warmup_steps), peak, 1e-15);
    EXPECT_NEAR((*schedule)(c.warmup_steps + c.decay_steps), c.alpha * peak, 1e-15);
    EXPECT_NEAR((*schedule)(c.warmup_steps + c.decay_steps + 50), c.alpha * peak, 1e-15);
  }
  // Halfway through the decay the rate is halfway between the peak and its alpha share.
  EXPECT_NEAR((*CosineDecay(0.0, 20, 0.1, 1.0, 10))(20), 0.55, 1e-15);
  EXPECT_NEAR((*CosineDecay(0.0, 20, 0.0, 1.0, 10))(5), 0.5, 1e-15);  // the warmup is linear
}

TEST(Schedules, BadArgumentsAreErrors) {
  EXPECT_ATTNKIT_ERROR(ExponentialDecay(0.1, 0, 0.9), "ExponentialDecay: decay_steps must be positive, got 0");
  EXPECT_ATTNKIT_ERROR(ExponentialDecay(0.1, -5, 0.9), "decay_steps must be positive, got -5");
  EXPECT_ATTNKIT_ERROR(ExponentialDecay(0.1, 10, 0.0), "decay_rate must be positive and finite, got 0");
  EXPECT_ATTNKIT_ERROR(ExponentialDecay(0.1, 10, kNaN), "decay_rate must be positive and finite, got nan");
  EXPECT_ATTNKIT_ERROR(ExponentialDecay(0.0, 10, 0.9), "initial_learning_rate must be positive and finite, got 0");
  EXPECT_ATTNKIT_ERROR(ExponentialDecay(kInf, 10, 0.9), "initial_learning_rate must be positive and finite, got inf");
  EXPECT_ATTNKIT_ERROR(PiecewiseConstantDecay({5, 5}, {1, 2, 3}), "boundaries must increase, got 5 then 5 at index 1");
  EXPECT_ATTNKIT_ERROR(PiecewiseConstantDecay({5, 3}, {1, 2, 3}), "boundaries must increase, got 5 then 3");
  EXPECT_ATTNKIT_ERROR(PiecewiseConstantDecay({5, 8}, {1, 2}), "got 2 values and 2 boundaries");
  EXPECT_ATTNKIT_ERROR(PiecewiseConstantDecay({}, {1}), "boundaries must not be empty");
  EXPECT_ATTNKIT_ERROR(PiecewiseConstantDecay({5}, {1, -2}), "values must be finite and not negative, got -2 at index 1");
  EXPECT_ATTNKIT_ERROR(PiecewiseConstantDecay({5}, {kNaN, 2}), "got nan at index 0");
  EXPECT_ATTNKIT_ERROR(CosineDecay(0.1, 0), "CosineDecay: decay_steps must be positive, got 0");
  EXPECT_ATTNKIT_ERROR(CosineDecay(0.1, 10, 1.5), "alpha must be in [0, 1], got 1.5");
  EXPECT_ATTNKIT_ERROR(CosineDecay(-0.1, 10), "initial_learning_rate must be finite and not negative, got -0.1");
  EXPECT_ATTNKIT_ERROR(CosineDecay(0.1, 10, 0.0, std::nullopt, 5), "warmup_steps 5 needs a warmup_target");
  EXPECT_ATTNKIT_ERROR(CosineDecay(0.1, 10, 0.0, 0.0, 5), "warmup_target must be positive and finite, got 0");
  EXPECT_ATTNKIT_ERROR(CosineDecay(0.1, 10, 0.0, 1.0, -1), "warmup_steps must not be negative, got -1");
  EXPECT_ATTNKIT_ERROR(LearningRate(std::shared_ptr<LearningRateSchedule>()), "the learning-rate schedule is null");
}

TEST(Schedules, ConfigIsKerasSerialization) {
  EXPECT_EQ(ExponentialDecay(0.1, 100, 0.96, true)->config(),
            Json::parse(R"({"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1,
                "decay_steps": 100, "decay_rate": 0.96, "staircase": true, "name": "ExponentialDecay"}})"));
  EXPECT_EQ(PiecewiseConstantDecay({10, 20}, {0.1, 0.01, 0.001})->config(),
            Json::parse(R"({"class_name": "PiecewiseConstantDecay", "config": {"boundaries": [10, 20],
                "values": [0.1, 0.01, 0.001], "name": "PiecewiseConstantDecay"}})"));
  EXPECT_EQ(CosineDecay(0.0, 1000, 0.1, 0.01, 50)->config(),
            Json::parse(R"({"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.0,
                "decay_steps": 1000, "alpha": 0.1, "name": "CosineDecay", "warmup_target": 0.01,
                "warmup_steps": 50}})"));
  EXPECT_TRUE(CosineDecay(0.1, 10)->config().at("config").at("warmup_target").is_null());
}

// ------------------------------------------------------------------ Keras 3's apply(), in double

// An optimizer's settings for the reference; 0 leaves an option unset.
struct Settings {
  bool adam = true;  // else SGD
  std::function<double(std::int64_t)> learning_rate;
  double weight_decay = 0, clipnorm = 0, clipvalue = 0, global_clipnorm = 0;
  double beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7, momentum = 0;
};

using Weights = std::vector<std::vector<double>>;  // [parameter][element]

// BaseOptimizer.apply of Keras 3 in double: clip the gradients, decay the weights, update (Adam
// in Keras's form: m += (g - m)(1 - beta_1), ...), then count the step.
class KerasReference {
 public:
  KerasReference(Settings settings, Weights weights)
      : s_(std::move(settings)), weights_(std::move(weights)), m_(zeros_like(weights_)), v_(zeros_like(weights_)) {}

  void apply(Weights grads) {
    const double lr = s_.learning_rate(iterations_);
    if (s_.clipnorm > 0) {
      for (auto& g : grads) {
        const double norm = std::sqrt(sum_of_squares(g));
        for (double& x : g) x = x * s_.clipnorm / std::max(norm, s_.clipnorm);
      }
    } else if (s_.global_clipnorm > 0) {
      double total = 0;
      for (const auto& g : grads) total += sum_of_squares(g);
      const double norm = std::sqrt(total);
      for (auto& g : grads)
        for (double& x : g) x = x * s_.global_clipnorm / std::max(norm, s_.global_clipnorm);
    } else if (s_.clipvalue > 0) {
      for (auto& g : grads)
        for (double& x : g) x = std::min(std::max(x, -s_.clipvalue), s_.clipvalue);
    }
    for (auto& w : weights_)
      for (double& x : w) x = x - x * s_.weight_decay * lr;
    const double t = double(iterations_ + 1);
    for (std::size_t k = 0; k < weights_.size(); ++k)
      for (std::size_t i = 0; i < weights_[k].size(); ++i) {
        const double g = grads[k][i];
        double &w = weights_[k][i], &m = m_[k][i], &v = v_[k][i];
        if (s_.adam) {
          m += (g - m) * (1 - s_.beta_1);
          v += (g * g - v) * (1 - s_.beta_2);
          const double alpha = lr * std::sqrt(1 - std::pow(s_.beta_2, t)) / (1 - std::pow(s_.beta_1, t));
          w -= m * alpha / (std::sqrt(v) + s_.epsilon);
        } else if (s_.momentum != 0) {
          m = m * s_.momentum - g * lr;
          w += m;
        } else {
          w -= g * lr;
        }
      }
    ++iterations_;
  }
  const Weights& weights() const { return weights_; }

 private:
  static Weights zeros_like(const Weights& w) {
    Weights z;
    for (const auto& p : w) z.emplace_back(p.size(), 0.0);
    return z;
  }
  static double sum_of_squares(const std::vector<double>& g) {
    double sum = 0;
    for (const double x : g) sum += x * x;
    return sum;
  }

  Settings s_;
  Weights weights_, m_, v_;  // m_: SGD's momentum buffer too
  std::int64_t iterations_ = 0;
};

// Random weights and gradients for three parameters of odd sizes over `steps` steps. Parameter 0's
// gradients are large (norm about 5), parameter 1's gradient is all zeros at step 0, parameter 2's
// are small (norm under 0.2), so that a clip of 1 rescales some and leaves others.
struct Problem {
  std::vector<Shape> shapes{{7, 3}, {5}, {2, 9}};
  Tensors initial;
  std::vector<Tensors> grads;  // [step][parameter]

  Problem(std::uint64_t seed, int steps) {
    Generator gen(seed);
    for (const Shape& shape : shapes) initial.push_back(random_tensor(shape, gen, -1.0, 1.0, DType::f32));
    for (int step = 0; step < steps; ++step) {
      grads.push_back({random_tensor(shapes[0], gen, -2.0, 2.0, DType::f32),
                       step == 0 ? Tensor::zeros(shapes[1]) : random_tensor(shapes[1], gen, -1.0, 1.0, DType::f32),
                       random_tensor(shapes[2], gen, -0.04, 0.04, DType::f32)});
    }
  }
  int steps() const { return static_cast<int>(grads.size()); }
  static Weights values_of(const Tensors& tensors) {
    Weights w;
    for (const Tensor& t : tensors) w.push_back(values(t));
    return w;
  }
};

// The weights after each step of `optimizer` on `problem`, with the parameters on `device`
// (copied back to the cpu).
std::vector<Tensors> run_steps(Optimizer& optimizer, const Problem& problem, Device device) {
  std::vector<Parameter> parameters;
  for (std::size_t k = 0; k < problem.shapes.size(); ++k)
    parameters.push_back({"p" + std::to_string(k), problem.initial[k].clone().to(device), Tensor(), true});
  std::vector<Parameter*> pointers;
  for (Parameter& p : parameters) pointers.push_back(&p);
  std::vector<Tensors> after;
  for (int step = 0; step < problem.steps(); ++step) {
    for (std::size_t k = 0; k < parameters.size(); ++k) parameters[k].grad = problem.grads[step][k].clone().to(device);
    optimizer.step(pointers);
    after.emplace_back();
    for (const Parameter& p : parameters) {
      EXPECT_EQ(p.value.device(), device);
      EXPECT_FALSE(p.grad.defined());  // cleared
      after.back().push_back(p.value.to(Device::cpu()).clone());
    }
  }
  return after;
}

// Runs `optimizer` on the cpu beside the reference, expecting the weights to agree after every step.
void expect_keras_update(const std::shared_ptr<Optimizer>& optimizer, const Settings& settings, std::uint64_t seed,
                         const std::string& label) {
  const Problem problem(seed, 6);
  const std::vector<Tensors> after = run_steps(*optimizer, problem, Device::cpu());
  KerasReference reference(settings, Problem::values_of(problem.initial));
  for (int step = 0; step < problem.steps(); ++step) {
    reference.apply(Problem::values_of(problem.grads[step]));
    for (std::size_t k = 0; k < problem.shapes.size(); ++k)
      EXPECT_TRUE(all_close(after[step][k], reference.weights()[k], 2e-6, 2e-5))
          << label << ": parameter " << k << " after step " << step + 1;
  }
  EXPECT_EQ(optimizer->iterations(), problem.steps()) << label;
}

std::function<double(std::int64_t)> constant(double rate) {
  return [rate](std::int64_t) { return rate; };
}

// ------------------------------------------------------------------ updates against the reference

TEST(Optimizers, AdamWFollowsKerasUpdate) {
  Settings s;
  s.learning_rate = constant(0.05);
  s.weight_decay = 0.3;
  expect_keras_update(AdamW(0.05, 0.3), s, 401, "AdamW(0.05, 0.3)");
  // Keras's defaults: weight decay 0.004, the betas and epsilon of Adam.
  s.learning_rate = constant(0.02);
  s.weight_decay = 0.004;
  expect_keras_update(AdamW(AdamOptions().learning_rate(0.02)), s, 402, "AdamW, default decay");
  s.beta_1 = 0.8;
  s.beta_2 = 0.95;
  s.epsilon = 1e-4;
  s.weight_decay = 0.1;
  expect_keras_update(AdamW(0.02, 0.1, 0.8, 0.95, 1e-4), s, 403, "AdamW, other betas");
  // Weight decay is an option of every optimizer: Adam with it is AdamW.
  expect_keras_update(Adam(AdamOptions().learning_rate(0.02).weight_decay(0.1).beta_1(0.8).beta_2(0.95).epsilon(1e-4)),
                      s, 404, "Adam with weight_decay");
  EXPECT_EQ(AdamW()->config().at("weight_decay"), 0.004);
  EXPECT_EQ(AdamW()->config().at("learning_rate"), 1e-3);
  EXPECT_EQ(AdamW()->name(), "AdamW");
}

TEST(Optimizers, SgdWithWeightDecayFollowsKerasUpdate) {
  for (const double momentum : {0.0, 0.9}) {
    Settings s;
    s.adam = false;
    s.learning_rate = constant(0.1);
    s.weight_decay = 0.2;
    s.momentum = momentum;
    expect_keras_update(SGD(SgdOptions().learning_rate(0.1).momentum(momentum).weight_decay(0.2)), s, 410,
                        "SGD momentum " + std::to_string(momentum));
  }
}

TEST(Clipping, ClipnormRescalesEachGradientOnItsOwn) {
  Settings s;
  s.learning_rate = constant(0.01);
  s.clipnorm = 1.0;
  expect_keras_update(Adam(AdamOptions().learning_rate(0.01).clipnorm(1.0)), s, 420, "Adam clipnorm");
  s.adam = false;
  s.learning_rate = constant(0.1);
  s.momentum = 0.5;
  expect_keras_update(SGD(SgdOptions().learning_rate(0.1).momentum(0.5).clipnorm(1.0)), s, 421, "SGD clipnorm");
  s.clipnorm = 0.05;  // every non-zero gradient clipped, the small ones too
  expect_keras_update(SGD(SgdOptions().learning_rate(0.1).momentum(0.5).clipnorm(0.05)), s, 422, "SGD clipnorm 0.05");
}

TEST(Clipping, GlobalClipnormRescalesAllGradientsTogether) {
  Settings s;
  s.adam = false;
  s.learning_rate = constant(0.1);
  s.global_clipnorm = 1.5;
  expect_keras_update(SGD(SgdOptions().learning_rate(0.1).global_clipnorm(1.5)), s, 430, "SGD global_clipnorm");
  s.adam = true;
  s.learning_rate = constant(0.01);
  expect_keras_update(Adam(AdamOptions().learning_rate(0.01).global_clipnorm(1.5)), s, 431, "Adam global_clipnorm");
}

TEST(Clipping, ClipvalueClampsEachElement) {
  Settings s;
  s.adam = false;
  s.learning_rate = constant(0.1);
  s.clipvalue = 0.5;
  expect_keras_update(SGD(SgdOptions().learning_rate(0.1).clipvalue(0.5)), s, 440, "SGD clipvalue");
  s.adam = true;
  s.learning_rate = constant(0.01);
  s.clipvalue = 0.02;  // the small gradients clamped too
  expect_keras_update(Adam(AdamOptions().learning_rate(0.01).clipvalue(0.02)), s, 441, "Adam clipvalue");
}

// A gradient within the clip (parameter 2 under clipnorm 1; the zero gradient of parameter 1 at
// the first step) is left exactly as it is: the weights equal those of an unclipped optimizer.
TEST(Clipping, GradientsWithinTheClipAreUntouched) {
  const Problem problem(450, 4);
  const auto plain = SGD(0.1), clipped = SGD(SgdOptions().learning_rate(0.1).clipnorm(1.0));
  const std::vector<Tensors> expected = run_steps(*plain, problem, Device::cpu());
  const std::vector<Tensors> after = run_steps(*clipped, problem, Device::cpu());
  EXPECT_TRUE(all_close(after[0][1], expected[0][1], 0)) << "the zero gradient";
  EXPECT_TRUE(all_close(after[0][1], problem.initial[1], 0)) << "the zero gradient moves nothing";
  for (int step = 0; step < problem.steps(); ++step)
    EXPECT_TRUE(all_close(after[step][2], expected[step][2], 0)) << "step " << step + 1;
  EXPECT_FALSE(all_close(after[0][0], expected[0][0], 1e-6)) << "the large gradient is clipped";
  // A global norm under the clip leaves every gradient alone.
  const auto roomy = SGD(SgdOptions().learning_rate(0.1).global_clipnorm(100.0));
  const std::vector<Tensors> unclipped = run_steps(*roomy, problem, Device::cpu());
  for (int step = 0; step < problem.steps(); ++step)
    for (std::size_t k = 0; k < problem.shapes.size(); ++k)
      EXPECT_TRUE(all_close(unclipped[step][k], expected[step][k], 0)) << "step " << step + 1 << ", parameter " << k;
}

// With a schedule the rate of each step is the schedule's at the step count before it, for the
// weight decay as for the update; learning_rate() is the rate of the next step.
TEST(Optimizers, ScheduleDrivesEachStep) {
  const auto schedule = CosineDecay(0.0, 4, 0.1, 0.05, 2);
  Settings s;
  s.learning_rate = [&](std::int64_t step) { return cosine_decay(0.0, 4, 0.1, 0.05, 2, step); };
  s.weight_decay = 0.5;
  s.clipnorm = 1.0;
  expect_keras_update(AdamW(AdamOptions().learning_rate(schedule).weight_decay(0.5).clipnorm(1.0)), s, 460,
                      "AdamW, cosine decay, clipnorm");
  s.adam = false;
  s.momentum = 0.9;
  s.clipnorm = 0;
  s.global_clipnorm = 2.0;
  s.learning_rate = [](std::int64_t step) { return step <= 1 ? 0.2 : (step <= 3 ? 0.1 : 0.05); };
  expect_keras_update(
      SGD(SgdOptions().learning_rate(PiecewiseConstantDecay({1, 3}, {0.2, 0.1, 0.05})).momentum(0.9).weight_decay(0.5)
              .global_clipnorm(2.0)),
      s, 461, "SGD, piecewise constant, global_clipnorm");

  const auto optimizer = SGD(ExponentialDecay(0.1, 3, 0.5));
  Parameter p{"kernel", Tensor::full({4}, 1.0), Tensor(), true};
  for (std::int64_t step = 0; step < 7; ++step) {
    EXPECT_EQ(optimizer->learning_rate(), 0.1 * std::pow(0.5, double(step) / 3)) << "step " << step;
    p.grad = Tensor::full({4}, 1.0);
    optimizer->step({&p});
  }
  optimizer->set_iterations(30);  // as a checkpoint restores it
  EXPECT_EQ(optimizer->learning_rate(), 0.1 * std::pow(0.5, 10.0));
  EXPECT_EQ(optimizer->learning_rate_schedule()->name(), "ExponentialDecay");
  EXPECT_EQ(SGD()->learning_rate_schedule(), nullptr);
}

// ------------------------------------------------------------------ defaults

// Without weight decay, clipping or a schedule the step is the plain update, bit for bit: the
// update of optimizers.h in float32, computed here.
TEST(Optimizers, DefaultsAreThePlainUpdateBitForBit) {
  const Problem problem(470, 5);
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
  std::vector<std::vector<float>> w, m, v;
  for (const Tensor& t : problem.initial) {
    w.push_back(t.to_vector<float>());
    m.emplace_back(w.back().size(), 0.0f);
    v.emplace_back(w.back().size(), 0.0f);
  }
  std::vector<std::vector<float>> sgd_w = w, velocity = m;
  const auto adam = Adam(), adam_no_decay = Adam(AdamOptions().weight_decay(0.0)), sgd = SGD(0.1, 0.9);
  const std::vector<Tensors> adam_after = run_steps(*adam, problem, Device::cpu());
  const std::vector<Tensors> no_decay_after = run_steps(*adam_no_decay, problem, Device::cpu());
  const std::vector<Tensors> sgd_after = run_steps(*sgd, problem, Device::cpu());
  for (int step = 0; step < problem.steps(); ++step) {
    const double t = step + 1;
    const float step_size = static_cast<float>(1e-3 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t)));
    for (std::size_t k = 0; k < w.size(); ++k) {
      const std::vector<float> g = problem.grads[step][k].to_vector<float>();
      for (std::size_t i = 0; i < g.size(); ++i) {
        m[k][i] = b1 * m[k][i] + (1 - b1) * g[i];
        v[k][i] = b2 * v[k][i] + (1 - b2) * g[i] * g[i];
        w[k][i] -= step_size * m[k][i] / (std::sqrt(v[k][i]) + eps);
        velocity[k][i] = 0.9f * velocity[k][i] - 0.1f * g[i];
        sgd_w[k][i] += velocity[k][i];
      }
      EXPECT_EQ(adam_after[step][k].to_vector<float>(), w[k]) << "Adam, step " << step + 1;
      EXPECT_EQ(no_decay_after[step][k].to_vector<float>(), w[k]) << "Adam, weight decay 0, step " << step + 1;
      EXPECT_EQ(sgd_after[step][k].to_vector<float>(), sgd_w[k]) << "SGD, step " << step + 1;
    }
  }
  EXPECT_EQ(Adam()->config(), Json::parse(R"({"learning_rate": 0.001, "weight_decay": null, "clipnorm": null,
      "global_clipnorm": null, "clipvalue": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7})"));
  EXPECT_EQ(SGD()->config(), Json::parse(R"({"learning_rate": 0.01, "weight_decay": null, "clipnorm": null,
      "global_clipnorm": null, "clipvalue": null, "momentum": 0.0})"));
}

// ------------------------------------------------------------------ on the sim device

TEST(Optimizers, OnTheSimDeviceAsOnTheCpu) {
  const std::vector<std::pair<std::string, std::function<std::shared_ptr<Optimizer>()>>> makers = {
      {"AdamW clipnorm", [] { return AdamW(AdamOptions().learning_rate(0.01).weight_decay(0.2).clipnorm(1.0)); }},
      {"Adam clipvalue, schedule",
       [] { return Adam(AdamOptions().learning_rate(CosineDecay(0.0, 3, 0.1, 0.02, 2)).clipvalue(0.3)); }},
      {"Adam global_clipnorm", [] { return Adam(AdamOptions().learning_rate(0.01).global_clipnorm(1.5)); }},
      {"SGD momentum, decay, global_clipnorm",
       [] { return SGD(SgdOptions().learning_rate(0.1).momentum(0.9).weight_decay(0.3).global_clipnorm(1.5)); }},
      {"SGD clipnorm, schedule",
       [] { return SGD(SgdOptions().learning_rate(ExponentialDecay(0.2, 2, 0.7)).clipnorm(0.5)); }},
      {"SGD clipvalue", [] { return SGD(SgdOptions().learning_rate(0.1).clipvalue(0.25)); }},
  };
  const Problem problem(480, 5);
  for (const auto& [label, make] : makers) {
    const std::vector<Tensors> on_cpu = run_steps(*make(), problem, Device::cpu());
    const std::vector<Tensors> on_sim = run_steps(*make(), problem, Device::sim());
    for (int step = 0; step < problem.steps(); ++step)
      for (std::size_t k = 0; k < problem.shapes.size(); ++k)
        EXPECT_TRUE(all_close(on_sim[step][k], on_cpu[step][k], 1e-6, 1e-5))
            << label << ": parameter " << k << " after step " << step + 1;
  }
}

// ------------------------------------------------------------------ arguments and configs

TEST(Optimizers, BadOptionsAreErrors) {
  EXPECT_ATTNKIT_ERROR(Adam(AdamOptions().clipnorm(1.0).clipvalue(0.5)),
                       "at most one of clipnorm, clipvalue and global_clipnorm may be set, got clipnorm 1.0 and "
                       "clipvalue 0.5");
  EXPECT_ATTNKIT_ERROR(SGD(SgdOptions().clipnorm(1.0).global_clipnorm(2.0)), "got clipnorm 1.0 and global_clipnorm 2.0");
  EXPECT_ATTNKIT_ERROR(SGD(SgdOptions().clipvalue(1.0).global_clipnorm(2.0)), "at most one of");
  EXPECT_ATTNKIT_ERROR(Adam(AdamOptions().clipnorm(0.0)), "optimizer: clipnorm must be positive and finite, got 0");
  EXPECT_ATTNKIT_ERROR(Adam(AdamOptions().clipvalue(-1.0)), "clipvalue must be positive and finite, got -1");
  EXPECT_ATTNKIT_ERROR(Adam(AdamOptions().global_clipnorm(kInf)), "global_clipnorm must be positive and finite, got inf");
  EXPECT_ATTNKIT_ERROR(SGD(SgdOptions().clipnorm(kNaN)), "clipnorm must be positive and finite, got nan");
  EXPECT_ATTNKIT_ERROR(AdamW(1e-3, -0.01), "weight_decay must be finite and not negative, got -0.01");
  EXPECT_ATTNKIT_ERROR(SGD(SgdOptions().weight_decay(kNaN)), "weight_decay must be finite and not negative, got nan");
  EXPECT_ATTNKIT_ERROR(Adam(AdamOptions().learning_rate(0.0)), "the learning rate must be positive, got 0");
  EXPECT_ATTNKIT_ERROR(SGD(kInf), "the learning rate must be positive, got inf");
  EXPECT_ATTNKIT_ERROR(AdamW(AdamOptions().beta_1(1.0)), "AdamW: beta_1 and beta_2 must be in [0, 1), got 1 and 0.999");
  EXPECT_ATTNKIT_ERROR(Adam(AdamOptions().epsilon(0.0)), "Adam: epsilon must be positive, got 0");
  EXPECT_ATTNKIT_ERROR(SGD(SgdOptions().momentum(1.0)), "SGD: momentum must be in [0, 1), got 1");
}

TEST(Optimizers, ASetLearningRateFollowsNoSchedule) {
  const auto constant_rate = Adam(0.01);
  constant_rate->set_learning_rate(0.005);
  EXPECT_EQ(constant_rate->learning_rate(), 0.005);
  EXPECT_EQ(constant_rate->config().at("learning_rate"), 0.005);
  EXPECT_ATTNKIT_ERROR(constant_rate->set_learning_rate(0.0), "the learning rate must be positive, got 0");
  const auto scheduled = Adam(ExponentialDecay(0.01, 10, 0.9));
  EXPECT_ATTNKIT_ERROR(scheduled->set_learning_rate(0.005),
                       "the learning rate follows the schedule ExponentialDecay and cannot be set (to 0.005");
}

TEST(Optimizers, ConfigHasTheOptionsAndTheSchedule) {
  const auto adam = Adam(AdamOptions().learning_rate(ExponentialDecay(0.01, 100, 0.5)).clipnorm(1.5).beta_2(0.99));
  EXPECT_EQ(adam->config(), Json::parse(R"({
      "learning_rate": {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.01,
          "decay_steps": 100, "decay_rate": 0.5, "staircase": false, "name": "ExponentialDecay"}},
      "weight_decay": null, "clipnorm": 1.5, "global_clipnorm": null, "clipvalue": null,
      "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-7})"));
  const auto sgd = SGD(SgdOptions().momentum(0.5).weight_decay(0.01).global_clipnorm(2.0));
  EXPECT_EQ(sgd->config(), Json::parse(R"({"learning_rate": 0.01, "weight_decay": 0.01, "clipnorm": null,
      "global_clipnorm": 2.0, "clipvalue": null, "momentum": 0.5})"));
  EXPECT_EQ(SGD(SgdOptions().clipvalue(0.5))->config().at("clipvalue"), 0.5);
}

// ------------------------------------------------------------------ through fit

struct Data {
  Tensor x, y;
};

// 120 samples of 5 features; the label is the sign of the second, one-hot.
Data make_data() {
  Generator gen(490);
  Data d{Tensor::uniform({120, 5}, -1.0, 1.0, gen), Tensor()};
  std::vector<float> y;
  for (std::int64_t i = 0; i < 120; ++i) {
    const bool positive = d.x.data<float>()[i * 5 + 1] > 0;
    y.push_back(positive ? 1.0f : 0.0f);
    y.push_back(positive ? 0.0f : 1.0f);
  }
  d.y = Tensor::from_vector(y, {120, 2});
  return d;
}

std::unique_ptr<Model> make_model(std::shared_ptr<Optimizer> optimizer) {
  auto model = std::make_unique<Sequential>(Shape{5}, DType::f32, "scheduled", 13);
  model->add(layers::Dense(8, "tanh")).add(layers::Dense(2, "softmax"));
  model->compile(CompileOptions().optimizer(std::move(optimizer)));
  return model;
}

std::shared_ptr<Optimizer> scheduled_adamw() {
  return AdamW(AdamOptions().learning_rate(ExponentialDecay(0.02, 4, 0.8)).weight_decay(0.05).clipnorm(0.5));
}

TEST(OptimizersInFit, TheLoggedRateFollowsTheSchedule) {
  const Data d = make_data();
  auto model = make_model(scheduled_adamw());
  const History h = model->fit(d.x, d.y, FitOptions().epochs(3).batch_size(32).validation_split(0.2).verbose(0));
  // 96 training samples: 3 steps an epoch; the logged rate is the next step's.
  const std::vector<double>& lr = h.history.at("lr");
  ASSERT_EQ(lr.size(), 3u);
  for (std::size_t e = 0; e < lr.size(); ++e)
    EXPECT_NEAR(lr[e], 0.02 * std::pow(0.8, 3.0 * double(e + 1) / 4), 1e-15) << "epoch " << e + 1;
  EXPECT_EQ(model->optimizer().iterations(), 9);
}

TEST(OptimizersInFit, ReduceLROnPlateauCannotChangeAScheduledRate) {
  const Data d = make_data();
  auto model = make_model(scheduled_adamw());
  // min_delta 1e9: no epoch after the first counts as an improvement, so the second asks to reduce.
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, FitOptions().epochs(2).validation_split(0.2).verbose(0).callbacks(
                                                {ReduceLROnPlateau("val_loss", 0.5, 0, 1e9)})),
                       "the learning rate follows the schedule ExponentialDecay and cannot be set");
}

// A fit stopped after two epochs and resumed from its checkpoint ends as one that ran through:
// the schedule resumes from the restored step count.
TEST(OptimizersInFit, AScheduleResumesFromACheckpoint) {
  const Data d = make_data();
  const auto options = [](int epochs, const std::string& folder) {
    return FitOptions().epochs(epochs).batch_size(16).validation_split(0.2).seed(3).verbose(0).checkpoint(folder).resume(
        !folder.empty());
  };
  auto whole = make_model(scheduled_adamw());
  const History whole_history = whole->fit(d.x, d.y, options(5, ""));
  const fs::path folder = fs::temp_directory_path() / "attnkit_optimizers_schedule_resume";
  fs::remove_all(folder);
  make_model(scheduled_adamw())->fit(d.x, d.y, options(2, folder.string()));
  auto resumed = make_model(scheduled_adamw());
  const History resumed_history = resumed->fit(d.x, d.y, options(5, folder.string()));
  EXPECT_EQ(resumed->optimizer().iterations(), whole->optimizer().iterations());
  const Tensors a = whole->get_weights(), b = resumed->get_weights();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(all_close(b[i], a[i], 0)) << "weight " << i;
  EXPECT_EQ(resumed_history.history, whole_history.history);
  fs::remove_all(folder);
}

}  // namespace
}  // namespace attnkit
