// Adam and SGD (see optimizers.h for the update rules).
#include "attnkit/optimizers.h"

#include <algorithm>
#include <cmath>

#include "cpu/parallel.h"
#include "device_ops/dispatch.h"

namespace attnkit {

Optimizer::Optimizer(double learning_rate) : learning_rate_(learning_rate) {
  ATTNKIT_CHECK(learning_rate > 0 && std::isfinite(learning_rate), "optimizer: the learning rate must be positive, got ",
                learning_rate);
}

void Optimizer::set_learning_rate(double learning_rate) {
  ATTNKIT_CHECK(learning_rate > 0 && std::isfinite(learning_rate), "optimizer: the learning rate must be positive, got ",
                learning_rate);
  learning_rate_ = learning_rate;
}

void Optimizer::step(const std::vector<Parameter*>& parameters) {
  ++iterations_;
  for (Parameter* p : parameters) {
    if (!p->trainable || !p->grad.defined()) continue;
    ATTNKIT_CHECK(p->value.dtype() == DType::f32 && p->grad.dtype() == DType::f32, "optimizer: parameter '", p->name,
                  "' must be f32, got ", p->value.describe(), " with gradient ", p->grad.describe());
    ATTNKIT_CHECK(p->grad.device() == p->value.device(), "optimizer: the gradient of parameter '", p->name,
                  "' is on ", p->grad.device(), " but the parameter is on ", p->value.device());
    update(*p, state_[p]);
    p->grad = Tensor();
  }
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

// Applies `body(begin, end)` to consecutive ranges that cover a parameter's elements, on both
// cores when it is large.
template <typename F>
void for_each_weight_range(std::int64_t n, F&& body) {
  constexpr std::int64_t kChunk = 8192;
  cpu::parallel_for((n + kChunk - 1) / kChunk, kChunk * 8, [&](std::int64_t chunk) {
    body(chunk * kChunk, std::min(n, (chunk + 1) * kChunk));
  });
}

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
  AdamOptimizer(double learning_rate, double beta_1, double beta_2, double epsilon)
      : Optimizer(learning_rate), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon) {
    ATTNKIT_CHECK(beta_1 >= 0 && beta_1 < 1 && beta_2 >= 0 && beta_2 < 1, "Adam: beta_1 and beta_2 must be in [0, 1), got ",
                  beta_1, " and ", beta_2);
    ATTNKIT_CHECK(epsilon > 0, "Adam: epsilon must be positive, got ", epsilon);
  }
  std::string name() const override { return "Adam"; }
  Json config() const override {
    return {{"learning_rate", learning_rate()}, {"beta_1", beta_1_}, {"beta_2", beta_2_}, {"epsilon", epsilon_}};
  }

 protected:
  void update(Parameter& p, std::vector<Tensor>& state) override {
    if (state.empty()) state = {Tensor::zeros_like(p.value), Tensor::zeros_like(p.value)};
    if (!p.value.is_cpu()) {  // the same update, in kernels/optimizers.cu
      ATTNKIT_DEVICE_OP(p.value.device(), adam_step(p.value, p.grad, state[0], state[1], learning_rate(), beta_1_,
                                                    beta_2_, epsilon_, iterations()));
      return;
    }
    const double t = static_cast<double>(iterations());
    const float step = static_cast<float>(learning_rate() * std::sqrt(1 - std::pow(beta_2_, t)) /
                                          (1 - std::pow(beta_1_, t)));
    const float b1 = static_cast<float>(beta_1_), b2 = static_cast<float>(beta_2_), eps = static_cast<float>(epsilon_);
    float* w = p.value.data<float>();
    const float* g = p.grad.data<float>();
    float* m = state[0].data<float>();
    float* v = state[1].data<float>();
    for_each_weight_range(p.value.numel(), [&](std::int64_t begin, std::int64_t end) {
      adam_update(w + begin, g + begin, m + begin, v + begin, end - begin, step, b1, b2, eps);
    });
  }

 private:
  double beta_1_, beta_2_, epsilon_;
};

class SgdOptimizer : public Optimizer {
 public:
  SgdOptimizer(double learning_rate, double momentum) : Optimizer(learning_rate), momentum_(momentum) {
    ATTNKIT_CHECK(momentum >= 0 && momentum < 1, "SGD: momentum must be in [0, 1), got ", momentum);
  }
  std::string name() const override { return "SGD"; }
  Json config() const override { return {{"learning_rate", learning_rate()}, {"momentum", momentum_}}; }

 protected:
  void update(Parameter& p, std::vector<Tensor>& state) override {
    if (momentum_ != 0 && state.empty()) state = {Tensor::zeros_like(p.value)};
    if (!p.value.is_cpu()) {  // the same update, in kernels/optimizers.cu
      ATTNKIT_DEVICE_OP(p.value.device(),
                        sgd_step(p.value, p.grad, state.empty() ? nullptr : &state[0], learning_rate(), momentum_));
      return;
    }
    const float lr = static_cast<float>(learning_rate()), mu = static_cast<float>(momentum_);
    float* w = p.value.data<float>();
    const float* g = p.grad.data<float>();
    float* velocity = state.empty() ? nullptr : state[0].data<float>();
    for_each_weight_range(p.value.numel(), [&](std::int64_t begin, std::int64_t end) {
      sgd_update(w + begin, g + begin, velocity == nullptr ? nullptr : velocity + begin, end - begin, lr, mu);
    });
  }

 private:
  double momentum_;
};

}  // namespace

std::shared_ptr<Optimizer> Adam(double learning_rate, double beta_1, double beta_2, double epsilon) {
  return std::make_shared<AdamOptimizer>(learning_rate, beta_1, beta_2, epsilon);
}

std::shared_ptr<Optimizer> SGD(double learning_rate, double momentum) {
  return std::make_shared<SgdOptimizer>(learning_rate, momentum);
}

}  // namespace attnkit
