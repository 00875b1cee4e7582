// attnkit/optimizers.h: Adam, AdamW and SGD, with Keras 3's defaults and update rules, and the
// options of its BaseOptimizer: decoupled weight decay, gradient clipping, and learning-rate
// schedules (schedules.h).
//
// One step (Keras 3's apply()), with lr the learning rate at the step count before it
// (iterations(), from 0: the constant, or the schedule's value there), over the trainable
// parameters that have a gradient:
//   1. clip the gradients, by at most one of
//        clipnorm c         g = g c / max(||g||, c), each gradient on its own
//        global_clipnorm c  g = g c / max(N, c), N = sqrt(sum of ||g||^2 over every gradient of
//                           the step), computed before any parameter changes
//        clipvalue c        g = min(max(g, -c), c), element by element
//   2. decoupled weight decay wd:  p = p - p wd lr
//   3. the update (t = iterations() + 1):
//        Adam:  lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)
//               m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//               p -= lr_t m / (sqrt(v) + epsilon)          (TensorFlow's form of the update)
//        SGD:   v = momentum v - lr g;  p += v             (momentum 0: p -= lr g)
//   4. iterations() += 1.
// AdamW is Adam whose weight decay is 0.004 unless given. Without weight decay, clipping or a
// schedule, a step is exactly the plain update. The arguments are checked when the optimizer is
// made: the learning rate positive, weight_decay finite and not negative, clip options positive
// and finite, at most one of them set.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnkit/layer.h"
#include "attnkit/schedules.h"

namespace attnkit {

// ATTNKIT_ARG for the options that every optimizer shares: the setter returns the derived
// options, so that one chain sets both kinds: AdamOptions().clipnorm(1.0).beta_1(0.8).
#define ATTNKIT_OPTIMIZER_ARG(T, name)          \
 public:                                        \
  Derived& name(const T& value) {               \
    name##_ = value;                            \
    return static_cast<Derived&>(*this);        \
  }                                             \
  const T& name() const { return name##_; }     \
                                                \
 private:                                       \
  T name##_

// Keras's BaseOptimizer arguments; an unset option (std::nullopt, Keras's None) is off.
template <typename Derived>
class OptimizerOptions {
  // A constant or a schedule: Adam(AdamOptions().learning_rate(CosineDecay(1e-3, 1000))).
  ATTNKIT_OPTIMIZER_ARG(LearningRate, learning_rate);
  ATTNKIT_OPTIMIZER_ARG(std::optional<double>, weight_decay);
  ATTNKIT_OPTIMIZER_ARG(std::optional<double>, clipnorm);
  ATTNKIT_OPTIMIZER_ARG(std::optional<double>, clipvalue);
  ATTNKIT_OPTIMIZER_ARG(std::optional<double>, global_clipnorm);

 protected:
  explicit OptimizerOptions(double default_learning_rate) : learning_rate_(default_learning_rate) {}
};

#undef ATTNKIT_OPTIMIZER_ARG

struct AdamOptions : OptimizerOptions<AdamOptions> {
  AdamOptions() : OptimizerOptions(1e-3) {}
  ATTNKIT_ARG(double, beta_1) = 0.9;
  ATTNKIT_ARG(double, beta_2) = 0.999;
  ATTNKIT_ARG(double, epsilon) = 1e-7;
};

struct SgdOptions : OptimizerOptions<SgdOptions> {
  SgdOptions() : OptimizerOptions(0.01) {}
  ATTNKIT_ARG(double, momentum) = 0.0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One step (see above) for every trainable parameter that has a gradient, then clears the
  // gradients.
  void step(const std::vector<Parameter*>& parameters);
  // The learning rate of the next step.
  double learning_rate() const { return learning_rate_.at(iterations_); }
  // Replaces a constant learning rate (ReduceLROnPlateau does); an error when the rate follows a
  // schedule, as in Keras.
  void set_learning_rate(double learning_rate);
  // The schedule the learning rate follows; null for a constant.
  const LearningRateSchedule* learning_rate_schedule() const { return learning_rate_.schedule(); }
  std::int64_t iterations() const { return iterations_; }
  virtual std::string name() const = 0;
  // As Keras's get_config(): "learning_rate" (a number, or the schedule's config()),
  // "weight_decay", "clipnorm", "global_clipnorm", "clipvalue" (null when unset), and the
  // optimizer's own arguments.
  Json config() const;
  // Moves the optimizer's slots (Adam's moments) to `device`, with the parameters they follow.
  void to(Device device);
  // For checkpoints of training (FitOptions::checkpoint): a parameter's slots (none before its
  // first update), and putting slots and the step count back (a schedule resumes from the step
  // count).
  std::vector<Tensor> slots(const Parameter& parameter) const;
  void set_slots(const Parameter& parameter, std::vector<Tensor> slots);
  void set_iterations(std::int64_t iterations);

 protected:
  template <typename Options>
  explicit Optimizer(const OptimizerOptions<Options>& options)
      : Optimizer(options.learning_rate(), options.weight_decay(), options.clipnorm(), options.clipvalue(),
                  options.global_clipnorm()) {}
  // The optimizer's own arguments, for config().
  virtual Json arguments() const = 0;
  // Updates one parameter with `grad` (clipped, the weights already decayed) at learning rate
  // `learning_rate`, step `step` (1 for the first); `state` holds this optimizer's slots for the
  // parameter, created empty.
  virtual void update(Parameter& parameter, const Tensor& grad, std::vector<Tensor>& state, double learning_rate,
                      std::int64_t step) = 0;

 private:
  Optimizer(LearningRate learning_rate, std::optional<double> weight_decay, std::optional<double> clipnorm,
            std::optional<double> clipvalue, std::optional<double> global_clipnorm);
  // The factor by which each gradient is scaled (1: untouched) under clipnorm or global_clipnorm.
  std::vector<double> clip_scales(const std::vector<Parameter*>& parameters) const;

  LearningRate learning_rate_;
  std::optional<double> weight_decay_, clipnorm_, clipvalue_, global_clipnorm_;
  std::int64_t iterations_ = 0;
  std::map<const Parameter*, std::vector<Tensor>> state_;
};

std::shared_ptr<Optimizer> Adam(const AdamOptions& options);
std::shared_ptr<Optimizer> Adam(LearningRate learning_rate = 1e-3, double beta_1 = 0.9, double beta_2 = 0.999,
                                double epsilon = 1e-7);
// Adam with decoupled weight decay; the options' weight_decay is 0.004 unless set.
std::shared_ptr<Optimizer> AdamW(const AdamOptions& options);
std::shared_ptr<Optimizer> AdamW(LearningRate learning_rate = 1e-3, double weight_decay = 0.004, double beta_1 = 0.9,
                                 double beta_2 = 0.999, double epsilon = 1e-7);
std::shared_ptr<Optimizer> SGD(const SgdOptions& options);
std::shared_ptr<Optimizer> SGD(LearningRate learning_rate = 0.01, double momentum = 0.0);

}  // namespace attnkit
