// Adam, AdamW and SGD, and the clipping and weight decay before their updates (see
// optimizers.h for the rules).
#include "attnkit/optimizers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/parallel.h"
#include "device_ops/dispatch.h"

namespace attnkit {
namespace {

// "null", or the option's value.
Json option_json(const std::optional<double>& option) { return option ? Json(*option) : Json(); }

// Applies `body(begin, end)` to consecutive ranges that cover a parameter's elements, on both
// cores when it is large.
template <typename F>
void for_each_weight_range(std::int64_t n, F&& body) {
  constexpr std::int64_t kChunk = 8192;
  cpu::parallel_for((n + kChunk - 1) / kChunk, kChunk * 8, [&](std::int64_t chunk) {
    body(chunk * kChunk, std::min(n, (chunk + 1) * kChunk));
  });
}

// The sum of the squares of each tensor's float32 elements: in double on the cpu, by
// kernels/optimizers.cu's squared_norm on a device (all launched before any is read back, so that
// a GPU waits once).
std::vector<double> squared_norms(const std::vector<const Tensor*>& tensors) {
  std::vector<double> sums(tensors.size(), 0.0);
  std::vector<Tensor> device_sums(tensors.size());
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& x = *tensors[k];
    if (!x.is_cpu()) {
      device_sums[k] = ATTNKIT_DEVICE_OP(x.device(), squared_norm(x));
      continue;
    }
    const float* data = x.data<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i) sums[k] += double(data[i]) * double(data[i]);
  }
  for (std::size_t k = 0; k < tensors.size(); ++k)
    if (device_sums[k].defined()) sums[k] = device_sums[k].to(Device::cpu()).item();
  return sums;
}

// grad * scale, clamped to [-clipvalue, clipvalue] when clipvalue > 0 (kernels/optimizers.cu's
// clip_gradient on a device); `grad` itself when that changes nothing.
Tensor clip_gradient(const Tensor& grad, double scale, double clipvalue) {
  if (scale == 1 && clipvalue == 0) return grad;
  if (!grad.is_cpu()) return ATTNKIT_DEVICE_OP(grad.device(), clip_gradient(grad, scale, clipvalue));
  Tensor clipped = Tensor::empty_like(grad);
  const float s = static_cast<float>(scale), c = static_cast<float>(clipvalue);
  const float* g = grad.data<float>();
  float* out = clipped.data<float>();
  for_each_weight_range(grad.numel(), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      float value = g[i] * s;
      if (c > 0) value = value < -c ? -c : (value > c ? c : value);  // NaN stays NaN
      out[i] = value;
    }
  });
  return clipped;
}

// param -= param * decay.
void decay_weights(Tensor& param, double decay) {
  if (!param.is_cpu()) {
    ATTNKIT_DEVICE_OP(param.device(), decay_weights(param, decay));
    return;
  }
  const float d = static_cast<float>(decay);
  float* w = param.data<float>();
  for_each_weight_range(param.numel(), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) w[i] -= w[i] * d;
  });
}

}  // namespace

Optimizer::Optimizer(LearningRate learning_rate, std::optional<double> weight_decay, std::optional<double> clipnorm,
                     std::optional<double> clipvalue, std::optional<double> global_clipnorm)
    : learning_rate_(std::move(learning_rate)), weight_decay_(weight_decay), clipnorm_(clipnorm),
      clipvalue_(clipvalue), global_clipnorm_(global_clipnorm) {
  ATTNKIT_CHECK(!weight_decay || (*weight_decay >= 0 && std::isfinite(*weight_decay)),
                "optimizer: weight_decay must be finite and not negative, got ", *weight_decay);
  const std::pair<const char*, std::optional<double>> clips[] = {
      {"clipnorm", clipnorm}, {"clipvalue", clipvalue}, {"global_clipnorm", global_clipnorm}};
  std::string given;  // "clipnorm 1.0 and clipvalue 0.5"
  int count = 0;
  for (const auto& [option, value] : clips) {
    if (!value) continue;
    ATTNKIT_CHECK(*value > 0 && std::isfinite(*value), "optimizer: ", option, " must be positive and finite, got ",
                  *value);
    given += (given.empty() ? "" : " and ") + std::string(option) + " " + Json(*value).dump();
    ++count;
  }
  ATTNKIT_CHECK(count <= 1, "optimizer: at most one of clipnorm, clipvalue and global_clipnorm may be set, got ",
                given);
}

void Optimizer::set_learning_rate(double learning_rate) {
  const LearningRateSchedule* schedule = learning_rate_.schedule();
  ATTNKIT_CHECK(schedule == nullptr, "optimizer: the learning rate follows the schedule ", schedule->name(),
                " and cannot be set (to ", learning_rate, ", as ReduceLROnPlateau does); give the optimizer a ",
                "constant learning rate to change it during training");
  learning_rate_ = LearningRate(learning_rate);
}

Json Optimizer::config() const {
  Json config{{"learning_rate", learning_rate_.config()},
              {"weight_decay", option_json(weight_decay_)},
              {"clipnorm", option_json(clipnorm_)},
              {"global_clipnorm", option_json(global_clipnorm_)},
              {"clipvalue", option_json(clipvalue_)}};
  config.update(arguments());
  return config;
}

std::vector<double> Optimizer::clip_scales(const std::vector<Parameter*>& parameters) const {
  std::vector<double> scales(parameters.size(), 1.0);
  if (!clipnorm_ && !global_clipnorm_) return scales;
  std::vector<const Tensor*> grads;
  for (const Parameter* p : parameters) grads.push_back(&p->grad);
  const std::vector<double> sums = squared_norms(grads);
  if (clipnorm_) {
    for (std::size_t k = 0; k < parameters.size(); ++k)
      scales[k] = *clipnorm_ / std::max(std::sqrt(sums[k]), *clipnorm_);  // NaN stays NaN
    return scales;
  }
  double total = 0;
  for (const double sum : sums) total += sum;
  const double global_norm = std::sqrt(total);
  // As Keras: a global norm that is not finite makes every gradient NaN, rather than zero.
  const double scale = std::isfinite(global_norm) ? *global_clipnorm_ / std::max(global_norm, *global_clipnorm_)
                                                  : std::numeric_limits<double>::quiet_NaN();
  std::fill(scales.begin(), scales.end(), scale);
  return scales;
}

void Optimizer::step(const std::vector<Parameter*>& parameters) {
  std::vector<Parameter*> updated;
  for (Parameter* p : parameters) {
    if (!p->trainable || !p->grad.defined()) continue;
    ATTNKIT_CHECK(p->value.dtype() == DType::f32 && p->grad.dtype() == DType::f32, "optimizer: parameter '", p->name,
                  "' must be f32, got ", p->value.describe(), " with gradient ", p->grad.describe());
    ATTNKIT_CHECK(p->grad.device() == p->value.device(), "optimizer: the gradient of parameter '", p->name,
                  "' is on ", p->grad.device(), " but the parameter is on ", p->value.device());
    updated.push_back(p);
  }
  const double lr = learning_rate();
  const std::vector<double> scales = clip_scales(updated);
  for (std::size_t k = 0; k < updated.size(); ++k) {
    Parameter& p = *updated[k];
    const Tensor grad = clip_gradient(p.grad, scales[k], clipvalue_.value_or(0.0));
    if (weight_decay_.value_or(0.0) > 0) decay_weights(p.value, *weight_decay_ * lr);
    update(p, grad, state_[&p], lr, iterations_ + 1);
    p.grad = Tensor();
  }
  ++iterations_;
}

void Optimizer::to(Device device) {
  for (auto& entry : state_)
    for (Tensor& slot : entry.second) slot = slot.to(device);
}

std::vector<Tensor> Optimizer::slots(const Parameter& parameter) const {
  const auto found = state_.find(&parameter);
  return found == state_.end() ? std::vector<Tensor>{} : found->second;
}

void Optimizer::set_slots(const Parameter& parameter, std::vector<Tensor> slots) {
  for (const Tensor& slot : slots)
    ATTNKIT_CHECK(slot.shape() == parameter.value.shape() && slot.dtype() == parameter.value.dtype(),
                  "optimizer: a slot of parameter '", parameter.name, "' must be like ", parameter.value.describe(),
                  ", got ", slot.describe());
  for (Tensor& slot : slots) slot = slot.to(parameter.value.device());
  state_[&parameter] = std::move(slots);
}

void Optimizer::set_iterations(std::int64_t iterations) {
  ATTNKIT_CHECK(iterations >= 0, "optimizer: the step count must not be negative, got ", iterations);
  iterations_ = iterations;
}

namespace {

// Adam's update of n weights. The arrays do not overlap (restrict), so the loop vectorizes.
void adam_update(float* __restrict w, const float* __restrict g, float* __restrict m, float* __restrict v,
                 std::int64_t n, float step, float b1, float b2, float eps) {
  for (std::int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    w[i] -= step * m[i] / (std::sqrt(v[i]) + eps);
  }
}

void sgd_update(float* __restrict w, const float* __restrict g, float* __restrict velocity, std::int64_t n, float lr,
                float momentum) {
  if (velocity == nullptr) {
    for (std::int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    velocity[i] = momentum * velocity[i] - lr * g[i];
    w[i] += velocity[i];
  }
}

class AdamOptimizer : public Optimizer {
 public:
  // `name`: "Adam", or "AdamW" for the same update with its weight decay.
  AdamOptimizer(const AdamOptions& options, std::string name)
      : Optimizer(options), name_(std::move(name)), beta_1_(options.beta_1()), beta_2_(options.beta_2()),
        epsilon_(options.epsilon()) {
    ATTNKIT_CHECK(beta_1_ >= 0 && beta_1_ < 1 && beta_2_ >= 0 && beta_2_ < 1, name_,
                  ": beta_1 and beta_2 must be in [0, 1), got ", beta_1_, " and ", beta_2_);
    ATTNKIT_CHECK(epsilon_ > 0, name_, ": epsilon must be positive, got ", epsilon_);
  }
  std::string name() const override { return name_; }

 protected:
  Json arguments() const override { return {{"beta_1", beta_1_}, {"beta_2", beta_2_}, {"epsilon", epsilon_}}; }
  void update(Parameter& p, const Tensor& grad, std::vector<Tensor>& state, double learning_rate,
              std::int64_t step) override {
    if (state.empty()) state = {Tensor::zeros_like(p.value), Tensor::zeros_like(p.value)};
    if (!p.value.is_cpu()) {  // the same update, in kernels/optimizers.cu
      ATTNKIT_DEVICE_OP(p.value.device(), adam_step(p.value, grad, state[0], state[1], learning_rate, beta_1_,
                                                    beta_2_, epsilon_, step));
      return;
    }
    const double t = static_cast<double>(step);
    const float step_size =
        static_cast<float>(learning_rate * std::sqrt(1 - std::pow(beta_2_, t)) / (1 - std::pow(beta_1_, t)));
    const float b1 = static_cast<float>(beta_1_), b2 = static_cast<float>(beta_2_), eps = static_cast<float>(epsilon_);
    float* w = p.value.data<float>();
    const float* g = grad.data<float>();
    float* m = state[0].data<float>();
    float* v = state[1].data<float>();
    for_each_weight_range(p.value.numel(), [&](std::int64_t begin, std::int64_t end) {
      adam_update(w + begin, g + begin, m + begin, v + begin, end - begin, step_size, b1, b2, eps);
    });
  }

 private:
  std::string name_;
  double beta_1_, beta_2_, epsilon_;
};

class SgdOptimizer : public Optimizer {
 public:
  explicit SgdOptimizer(const SgdOptions& options) : Optimizer(options), momentum_(options.momentum()) {
    ATTNKIT_CHECK(momentum_ >= 0 && momentum_ < 1, "SGD: momentum must be in [0, 1), got ", momentum_);
  }
  std::string name() const override { return "SGD"; }

 protected:
  Json arguments() const override { return {{"momentum", momentum_}}; }
  void update(Parameter& p, const Tensor& grad, std::vector<Tensor>& state, double learning_rate,
              std::int64_t) override {
    if (momentum_ != 0 && state.empty()) state = {Tensor::zeros_like(p.value)};
    if (!p.value.is_cpu()) {  // the same update, in kernels/optimizers.cu
      ATTNKIT_DEVICE_OP(p.value.device(),
                        sgd_step(p.value, grad, state.empty() ? nullptr : &state[0], learning_rate, momentum_));
      return;
    }
    const float lr = static_cast<float>(learning_rate), mu = static_cast<float>(momentum_);
    float* w = p.value.data<float>();
    const float* g = grad.data<float>();
    float* velocity = state.empty() ? nullptr : state[0].data<float>();
    for_each_weight_range(p.value.numel(), [&](std::int64_t begin, std::int64_t end) {
      sgd_update(w + begin, g + begin, velocity == nullptr ? nullptr : velocity + begin, end - begin, lr, mu);
    });
  }

 private:
  double momentum_;
};

}  // namespace

std::shared_ptr<Optimizer> Adam(const AdamOptions& options) { return std::make_shared<AdamOptimizer>(options, "Adam"); }

std::shared_ptr<Optimizer> Adam(LearningRate learning_rate, double beta_1, double beta_2, double epsilon) {
  return Adam(AdamOptions().learning_rate(learning_rate).beta_1(beta_1).beta_2(beta_2).epsilon(epsilon));
}

std::shared_ptr<Optimizer> AdamW(const AdamOptions& options) {
  AdamOptions with_decay = options;
  if (!with_decay.weight_decay()) with_decay.weight_decay(0.004);  // Keras's AdamW default
  return std::make_shared<AdamOptimizer>(with_decay, "AdamW");
}

std::shared_ptr<Optimizer> AdamW(LearningRate learning_rate, double weight_decay, double beta_1, double beta_2,
                                 double epsilon) {
  return AdamW(AdamOptions()
                   .learning_rate(learning_rate)
                   .weight_decay(weight_decay)
                   .beta_1(beta_1)
                   .beta_2(beta_2)
                   .epsilon(epsilon));
}

std::shared_ptr<Optimizer> SGD(const SgdOptions& options) { return std::make_shared<SgdOptimizer>(options); }

std::shared_ptr<Optimizer> SGD(LearningRate learning_rate, double momentum) {
  return SGD(SgdOptions().learning_rate(learning_rate).momentum(momentum));
}

}  // namespace attnkit
