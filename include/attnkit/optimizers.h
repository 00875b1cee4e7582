// attnkit/optimizers.h: Adam and SGD, with Keras's defaults and update rules.
//
//   Adam:  t += 1;  lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)
//          m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//          p -= lr_t m / (sqrt(v) + epsilon)          (TensorFlow's form of the update)
//   SGD:   v = momentum v - lr g;  p += v             (momentum 0: p -= lr g)
// The arguments are checked when the optimizer is made.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attnkit/layer.h"

namespace attnkit {

class Optimizer {
 public:
  explicit Optimizer(double learning_rate);
  virtual ~Optimizer() = default;
  // Updates every trainable parameter that has a gradient, then clears the gradients.
  void step(const std::vector<Parameter*>& parameters);
  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double learning_rate);
  std::int64_t iterations() const { return iterations_; }
  virtual std::string name() const = 0;
  virtual Json config() const = 0;
  // Moves the optimizer's slots (Adam's moments) to `device`, with the parameters they follow.
  void to(Device device);
  // For checkpoints of training (FitOptions::checkpoint): a parameter's slots (none before its
  // first update), and putting slots and the step count back.
  std::vector<Tensor> slots(const Parameter& parameter) const;
  void set_slots(const Parameter& parameter, std::vector<Tensor> slots);
  void set_iterations(std::int64_t iterations);

 protected:
  // Updates one parameter; `state` holds this optimizer's slots for it, created empty.
  virtual void update(Parameter& parameter, std::vector<Tensor>& state) = 0;

 private:
  double learning_rate_;
  std::int64_t iterations_ = 0;
  std::map<const Parameter*, std::vector<Tensor>> state_;
};

std::shared_ptr<Optimizer> Adam(double learning_rate = 1e-3, double beta_1 = 0.9, double beta_2 = 0.999,
                                double epsilon = 1e-7);
std::shared_ptr<Optimizer> SGD(double learning_rate = 0.01, double momentum = 0.0);

}  // namespace attnkit
