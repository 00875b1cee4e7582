// The learning-rate schedules of schedules.h, each following Keras 3's __call__ (in double).
#include "attnkit/schedules.h"

#include <algorithm>
#include <cmath>

#include "attnkit/error.h"

namespace attnkit {
namespace {

constexpr double kPi = 3.14159265358979323846;

class ExponentialDecaySchedule : public LearningRateSchedule {
 public:
  ExponentialDecaySchedule(double initial_learning_rate, std::int64_t decay_steps, double decay_rate, bool staircase)
      : initial_learning_rate_(initial_learning_rate), decay_steps_(decay_steps), decay_rate_(decay_rate),
        staircase_(staircase) {
    ATTNKIT_CHECK(initial_learning_rate > 0 && std::isfinite(initial_learning_rate),
                  "ExponentialDecay: initial_learning_rate must be positive and finite, got ", initial_learning_rate);
    ATTNKIT_CHECK(decay_steps > 0, "ExponentialDecay: decay_steps must be positive, got ", decay_steps);
    ATTNKIT_CHECK(decay_rate > 0 && std::isfinite(decay_rate),
                  "ExponentialDecay: decay_rate must be positive and finite, got ", decay_rate);
  }
  double operator()(std::int64_t step) const override {
    double exponent = static_cast<double>(step) / static_cast<double>(decay_steps_);
    if (staircase_) exponent = std::floor(exponent);
    return initial_learning_rate_ * std::pow(decay_rate_, exponent);
  }
  std::string name() const override { return "ExponentialDecay"; }

 protected:
  Json arguments() const override {
    return {{"initial_learning_rate", initial_learning_rate_},
            {"decay_steps", decay_steps_},
            {"decay_rate", decay_rate_},
            {"staircase", staircase_},
            {"name", name()}};
  }

 private:
  double initial_learning_rate_;
  std::int64_t decay_steps_;
  double decay_rate_;
  bool staircase_;
};

class PiecewiseConstantDecaySchedule : public LearningRateSchedule {
 public:
  PiecewiseConstantDecaySchedule(std::vector<std::int64_t> boundaries, std::vector<double> values)
      : boundaries_(std::move(boundaries)), values_(std::move(values)) {
    ATTNKIT_CHECK(!boundaries_.empty(), "PiecewiseConstantDecay: boundaries must not be empty");
    ATTNKIT_CHECK(values_.size() == boundaries_.size() + 1, "PiecewiseConstantDecay: values must have one more ",
                  "element than boundaries, got ", values_.size(), " values and ", boundaries_.size(), " boundaries");
    for (std::size_t i = 1; i < boundaries_.size(); ++i)
      ATTNKIT_CHECK(boundaries_[i - 1] < boundaries_[i], "PiecewiseConstantDecay: boundaries must increase, got ",
                    boundaries_[i - 1], " then ", boundaries_[i], " at index ", i);
    for (std::size_t i = 0; i < values_.size(); ++i)
      ATTNKIT_CHECK(values_[i] >= 0 && std::isfinite(values_[i]),
                    "PiecewiseConstantDecay: values must be finite and not negative, got ", values_[i], " at index ", i);
  }
  double operator()(std::int64_t step) const override {
    // The first boundary at or after the step: values[i] holds while step <= boundaries[i].
    const auto bound = std::lower_bound(boundaries_.begin(), boundaries_.end(), step);
    return values_[static_cast<std::size_t>(bound - boundaries_.begin())];
  }
  std::string name() const override { return "PiecewiseConstantDecay"; }

 protected:
  Json arguments() const override { return {{"boundaries", boundaries_}, {"values", values_}, {"name", name()}}; }

 private:
  std::vector<std::int64_t> boundaries_;
  std::vector<double> values_;
};

class CosineDecaySchedule : public LearningRateSchedule {
 public:
  CosineDecaySchedule(double initial_learning_rate, std::int64_t decay_steps, double alpha,
                      std::optional<double> warmup_target, std::int64_t warmup_steps)
      : initial_learning_rate_(initial_learning_rate), decay_steps_(decay_steps), alpha_(alpha),
        warmup_target_(warmup_target), warmup_steps_(warmup_steps) {
    // Keras's own example warms up from 0, so a zero initial rate is allowed.
    ATTNKIT_CHECK(initial_learning_rate >= 0 && std::isfinite(initial_learning_rate),
                  "CosineDecay: initial_learning_rate must be finite and not negative, got ", initial_learning_rate);
    ATTNKIT_CHECK(decay_steps > 0, "CosineDecay: decay_steps must be positive, got ", decay_steps);
    ATTNKIT_CHECK(alpha >= 0 && alpha <= 1, "CosineDecay: alpha must be in [0, 1], got ", alpha);
    ATTNKIT_CHECK(warmup_steps >= 0, "CosineDecay: warmup_steps must not be negative, got ", warmup_steps);
    if (warmup_target) {
      ATTNKIT_CHECK(*warmup_target > 0 && std::isfinite(*warmup_target),
                    "CosineDecay: warmup_target must be positive and finite, got ", *warmup_target);
    } else {
      // Keras ignores warmup_steps without a target; a warmup asked for and not done is refused.
      ATTNKIT_CHECK(warmup_steps == 0, "CosineDecay: warmup_steps ", warmup_steps, " needs a warmup_target");
    }
  }
  double operator()(std::int64_t step) const override {
    const double decay_steps = static_cast<double>(decay_steps_);
    if (!warmup_target_) return decayed(std::min(static_cast<double>(step), decay_steps), initial_learning_rate_);
    const double warmup_steps = static_cast<double>(warmup_steps_);
    const double s = std::min(static_cast<double>(step), decay_steps + warmup_steps);
    if (s < warmup_steps)
      return (*warmup_target_ - initial_learning_rate_) * (s / warmup_steps) + initial_learning_rate_;
    return decayed(s - warmup_steps, *warmup_target_);
  }
  std::string name() const override { return "CosineDecay"; }

 protected:
  Json arguments() const override {
    return {{"initial_learning_rate", initial_learning_rate_},
            {"decay_steps", decay_steps_},
            {"alpha", alpha_},
            {"name", name()},
            {"warmup_target", warmup_target_ ? Json(*warmup_target_) : Json()},
            {"warmup_steps", warmup_steps_}};
  }

 private:
  // `from` decayed over `s` of the decay_steps steps.
  double decayed(double s, double from) const {
    const double cosine = 0.5 * (1.0 + std::cos(kPi * s / static_cast<double>(decay_steps_)));
    return from * ((1.0 - alpha_) * cosine + alpha_);
  }

  double initial_learning_rate_;
  std::int64_t decay_steps_;
  double alpha_;
  std::optional<double> warmup_target_;
  std::int64_t warmup_steps_;
};

}  // namespace

std::shared_ptr<LearningRateSchedule> ExponentialDecay(double initial_learning_rate, std::int64_t decay_steps,
                                                       double decay_rate, bool staircase) {
  return std::make_shared<ExponentialDecaySchedule>(initial_learning_rate, decay_steps, decay_rate, staircase);
}

std::shared_ptr<LearningRateSchedule> PiecewiseConstantDecay(std::vector<std::int64_t> boundaries,
                                                             std::vector<double> values) {
  return std::make_shared<PiecewiseConstantDecaySchedule>(std::move(boundaries), std::move(values));
}

std::shared_ptr<LearningRateSchedule> CosineDecay(double initial_learning_rate, std::int64_t decay_steps,
                                                  double alpha, std::optional<double> warmup_target,
                                                  std::int64_t warmup_steps) {
  return std::make_shared<CosineDecaySchedule>(initial_learning_rate, decay_steps, alpha, warmup_target,
                                               warmup_steps);
}

LearningRate::LearningRate(double constant) : constant_(constant) {
  ATTNKIT_CHECK(constant > 0 && std::isfinite(constant), "optimizer: the learning rate must be positive, got ",
                constant);
}

std::shared_ptr<const LearningRateSchedule> LearningRate::checked(
    std::shared_ptr<const LearningRateSchedule> schedule) {
  ATTNKIT_CHECK(schedule != nullptr, "optimizer: the learning-rate schedule is null");
  return schedule;
}

}  // namespace attnkit
