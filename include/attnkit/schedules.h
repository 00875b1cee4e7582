// attnkit/schedules.h: learning-rate schedules, with the semantics and defaults of Keras 3's
// keras.optimizers.schedules, and LearningRate, the constant or schedule that optimizers take.
//
// A schedule maps the optimizer's step (its iteration count before the update: 0 for the first
// update) to a learning rate:
//
//   ExponentialDecay(r0, decay_steps, decay_rate, staircase)
//       r0 * decay_rate^(step / decay_steps)         (staircase: the exponent floored)
//   PiecewiseConstantDecay(boundaries, values)
//       values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i],
//       values[n] after boundaries[n-1] (n boundaries, n + 1 values)
//   CosineDecay(r0, decay_steps, alpha, warmup_target, warmup_steps)
//       without a warmup target: r0 * decayed(min(step, decay_steps));
//       with one: r0 + (warmup_target - r0) * step / warmup_steps while step < warmup_steps, then
//       warmup_target * decayed(min(step - warmup_steps, decay_steps)); where
//       decayed(s) = (1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha
//
// Arguments are checked when a schedule is made. Rates are computed in double.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnkit {

using Json = nlohmann::json;

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  // The learning rate at `step` (>= 0).
  virtual double operator()(std::int64_t step) const = 0;
  // Keras's class name: "ExponentialDecay", ...
  virtual std::string name() const = 0;
  // As Keras serializes a schedule: {"class_name": name(), "config": {its arguments}}.
  Json config() const { return {{"class_name", name()}, {"config", arguments()}}; }

 protected:
  virtual Json arguments() const = 0;
};

std::shared_ptr<LearningRateSchedule> ExponentialDecay(double initial_learning_rate, std::int64_t decay_steps,
                                                       double decay_rate, bool staircase = false);
std::shared_ptr<LearningRateSchedule> PiecewiseConstantDecay(std::vector<std::int64_t> boundaries,
                                                             std::vector<double> values);
std::shared_ptr<LearningRateSchedule> CosineDecay(double initial_learning_rate, std::int64_t decay_steps,
                                                  double alpha = 0.0,
                                                  std::optional<double> warmup_target = std::nullopt,
                                                  std::int64_t warmup_steps = 0);

// An optimizer's learning rate: a constant (positive and finite, checked here) or a schedule
// (Keras's `learning_rate` argument takes either). Converts implicitly from both.
class LearningRate {
 public:
  LearningRate(double constant);
  template <typename Schedule, typename = std::enable_if_t<std::is_base_of_v<LearningRateSchedule, Schedule>>>
  LearningRate(std::shared_ptr<Schedule> schedule) : schedule_(checked(std::move(schedule))) {}

  // The rate at `step`: the constant, or the schedule's value there.
  double at(std::int64_t step) const { return schedule_ ? (*schedule_)(step) : constant_; }
  // Null for a constant.
  const LearningRateSchedule* schedule() const { return schedule_.get(); }
  // The constant as a number, or the schedule's config().
  Json config() const { return schedule_ ? schedule_->config() : Json(constant_); }

 private:
  // `schedule`, which must not be null.
  static std::shared_ptr<const LearningRateSchedule> checked(std::shared_ptr<const LearningRateSchedule> schedule);

  double constant_ = 0;
  std::shared_ptr<const LearningRateSchedule> schedule_;
};

}  // namespace attnkit
