// The gradient checker (see gradcheck.h).
#include "gradcheck.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support.h"

namespace attnkit::testing {
namespace {

double projected_loss(const Tensors& outputs, const Tensors& projections) {
  double loss = 0;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const std::vector<double> y = values(outputs[k]);
    const std::vector<double> r = values(projections[k]);
    for (std::size_t i = 0; i < y.size(); ++i) loss += r[i] * y[i];
  }
  return loss;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (const double x : v) m = std::max(m, std::abs(x));
  return m;
}

Tensors to_dtype(const Tensors& tensors, DType dtype) {
  Tensors out;
  for (const Tensor& t : tensors)
    out.push_back(t.defined() && is_floating(t.dtype()) ? t.to(dtype) : t);
  return out;
}

// Compares a float32 result with the float64 one, relative to the float64 tensor's magnitude.
void expect_f32_agrees(const Tensor& f32, const Tensor& f64, double tolerance,
                       const std::string& what) {
  ASSERT_TRUE(f32.defined() && f64.defined()) << what << ": missing in one precision";
  ASSERT_EQ(f32.dtype(), DType::f32) << what;
  ASSERT_EQ(f32.shape(), f64.shape()) << what;
  const std::vector<double> reference = values(f64);
  EXPECT_TRUE(all_close(values(f32), reference, tolerance * std::max(1.0, max_abs(reference))))
      << what << ": float32 differs from float64";
}

}  // namespace

void check_gradients(const GradCheck& check) {
  const Tensors outputs = check.forward(check.inputs);
  ASSERT_FALSE(outputs.empty()) << "the forward returned no outputs";
  Generator projection_gen(20240611);
  Tensors projections;
  for (const Tensor& y : outputs) {
    ASSERT_EQ(y.dtype(), DType::f64) << "outputs of an f64 forward must be f64";
    projections.push_back(Tensor::uniform(y.shape(), -1.0, 1.0, projection_gen, DType::f64));
  }
  const Tensors grads = check.backward(check.inputs, outputs, projections);
  ASSERT_EQ(grads.size(), check.inputs.size()) << "backward must return one entry per input";

  for (std::size_t j = 0; j < check.inputs.size(); ++j) {
    const Tensor& input = check.inputs[j];
    const bool differentiable = is_floating(input.dtype()) && check.no_grad.count(j) == 0;
    if (!differentiable) {
      EXPECT_FALSE(grads[j].defined()) << "input " << j << " takes no gradient but got one";
      continue;
    }
    ASSERT_TRUE(grads[j].defined()) << "no gradient for input " << j;
    ASSERT_EQ(grads[j].shape(), input.shape()) << "gradient " << j << " has the wrong shape";
    ASSERT_EQ(input.dtype(), DType::f64) << "floating inputs must be f64";
    const std::vector<double> analytic = values(grads[j]);
    int reported = 0;
    for (std::int64_t i = 0; i < input.numel(); ++i) {
      Tensors moved = check.inputs;
      moved[j] = input.clone();
      double* x = moved[j].data<double>();
      x[i] = input.data<double>()[i] + check.step;
      const double plus = projected_loss(check.forward(moved), projections);
      x[i] = input.data<double>()[i] - check.step;
      const double minus = projected_loss(check.forward(moved), projections);
      const double numeric = (plus - minus) / (2 * check.step);
      const double a = analytic[static_cast<std::size_t>(i)];
      const double scale = std::max({1.0, std::abs(a), std::abs(numeric)});
      if (!(std::abs(a - numeric) <= check.tolerance * scale) && reported++ < 5)
        ADD_FAILURE() << "input " << j << " " << input.describe() << ", element " << i
                      << ": analytic gradient " << a << ", finite difference " << numeric;
    }
  }

  // The float32 instantiation against the float64 one.
  const Tensors inputs32 = to_dtype(check.inputs, DType::f32);
  const Tensors outputs32 = check.forward(inputs32);
  ASSERT_EQ(outputs32.size(), outputs.size());
  for (std::size_t k = 0; k < outputs.size(); ++k)
    expect_f32_agrees(outputs32[k], outputs[k], check.f32_tolerance, "output " + std::to_string(k));
  const Tensors grads32 = check.backward(inputs32, outputs32, to_dtype(projections, DType::f32));
  ASSERT_EQ(grads32.size(), grads.size());
  for (std::size_t j = 0; j < grads.size(); ++j)
    if (grads[j].defined())
      expect_f32_agrees(grads32[j], grads[j], check.f32_tolerance, "gradient " + std::to_string(j));
}

}  // namespace attnkit::testing

#include "attnkit/model.h"

namespace attnkit::testing {

void check_model_gradients(Model& model, const Tensors& inputs, bool training, int elements_per_parameter,
                           double tolerance) {
  const auto named = model.named_parameters();
  for (const auto& entry : named) entry.second->value = entry.second->value.to(DType::f64);
  auto run = [&]() {
    Generator generator(99);
    CallContext context;
    context.training = training;
    context.generator = &generator;
    return model.forward(inputs, context);
  };
  const Tensors outputs = run();
  Generator projection_gen(515);
  Tensors projections;
  for (const Tensor& y : outputs) projections.push_back(Tensor::uniform(y.shape(), -1, 1, projection_gen, DType::f64));
  for (const auto& entry : named) entry.second->grad = Tensor();
  run();
  model.backward(projections);
  const double h = 1e-6;
  int checked = 0;
  for (const auto& [name, p] : named) {
    if (!p->trainable) {
      EXPECT_FALSE(p->grad.defined()) << name << " is frozen but received a gradient";
      continue;
    }
    ASSERT_TRUE(p->grad.defined()) << "no gradient for " << name;
    ASSERT_EQ(p->grad.shape(), p->value.shape()) << name;
    const std::vector<double> analytic = values(p->grad);
    const std::int64_t n = p->value.numel();
    const std::int64_t stride = std::max<std::int64_t>(1, n / elements_per_parameter);
    int reported = 0;
    for (std::int64_t i = 0; i < n; i += stride, ++checked) {
      double* w = p->value.data<double>();
      const double saved = w[i];
      w[i] = saved + h;
      const double plus = projected_loss(run(), projections);
      w[i] = saved - h;
      const double minus = projected_loss(run(), projections);
      w[i] = saved;
      const double numeric = (plus - minus) / (2 * h);
      const double a = analytic[static_cast<std::size_t>(i)];
      if (!(std::abs(a - numeric) <= tolerance * std::max({1.0, std::abs(a), std::abs(numeric)})) && reported++ < 3)
        ADD_FAILURE() << name << " " << p->value.describe() << ", element " << i << ": analytic " << a
                      << ", finite difference " << numeric;
    }
  }
  EXPECT_GT(checked, 0) << "the model has no trainable parameter to check";
}

}  // namespace attnkit::testing
