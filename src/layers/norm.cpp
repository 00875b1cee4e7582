// Normalisation layers: BatchNormalization and LayerNormalization over the last axis.
#include "attnkit/ops/norm.h"
#include "layers/layer_classes.h"

namespace attnkit::layers {
namespace {

std::int64_t channels_of(const std::string& label, const std::vector<Shape>& input_shapes) {
  ATTNKIT_CHECK(input_shapes.size() == 1 && !input_shapes[0].empty() && input_shapes[0].back() > 0, label,
                ": needs one input with a known last axis");
  return input_shapes[0].back();
}

}  // namespace

// ------------------------------------------------------------------ BatchNormalization

BatchNormalizationLayer::BatchNormalizationLayer(double momentum, double epsilon)
    : Layer("BatchNormalization"), momentum_(momentum), epsilon_(epsilon) {}

std::vector<Shape> BatchNormalizationLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  channels_of(label(), input_shapes);
  return {input_shapes[0]};
}

void BatchNormalizationLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator&) {
  const std::int64_t channels = channels_of(label(), input_shapes);
  gamma_ = &add_parameter("gamma", Tensor::full({channels}, 1.0));
  beta_ = &add_parameter("beta", Tensor::zeros({channels}));
  moving_mean_ = &add_parameter("moving_mean", Tensor::zeros({channels}), false);
  moving_variance_ = &add_parameter("moving_variance", Tensor::full({channels}, 1.0), false);
}

struct BatchNormCache {
  Tensor mean, rstd;
  bool training;
};

Tensors BatchNormalizationLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  ops::NormResult r = ops::batch_norm(inputs[0], gamma_->value, beta_->value, moving_mean_->value,
                                      moving_variance_->value, context.training, momentum_, epsilon_);
  cache = BatchNormCache{r.mean, r.rstd, context.training};
  return {r.y};
}

Tensors BatchNormalizationLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                          const std::vector<bool>& needs_grad) {
  const auto& c = std::any_cast<const BatchNormCache&>(cache);
  ops::NormGrads g = ops::batch_norm_backward(inputs[0], gamma_->value, c.mean, c.rstd, output_grads[0], c.training);
  if (gamma_->trainable) {
    accumulate(*gamma_, g.dgamma);
    accumulate(*beta_, g.dbeta);
  }
  return {needs_grad[0] ? g.dx : Tensor()};
}

Json BatchNormalizationLayer::options_config() const { return {{"momentum", momentum_}, {"epsilon", epsilon_}}; }

LayerPtr BatchNormalizationLayer::from_config(const Json& config) {
  return std::make_shared<BatchNormalizationLayer>(config.at("momentum").get<double>(),
                                                   config.at("epsilon").get<double>());
}

// ------------------------------------------------------------------ LayerNormalization

LayerNormalizationLayer::LayerNormalizationLayer(double epsilon) : Layer("LayerNormalization"), epsilon_(epsilon) {}

std::vector<Shape> LayerNormalizationLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  channels_of(label(), input_shapes);
  return {input_shapes[0]};
}

void LayerNormalizationLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator&) {
  const std::int64_t channels = channels_of(label(), input_shapes);
  gamma_ = &add_parameter("gamma", Tensor::full({channels}, 1.0));
  beta_ = &add_parameter("beta", Tensor::zeros({channels}));
}

Tensors LayerNormalizationLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  ops::NormResult r = ops::layer_norm(inputs[0], gamma_->value, beta_->value, epsilon_);
  cache = r;
  return {r.y};
}

Tensors LayerNormalizationLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                          const std::vector<bool>& needs_grad) {
  const auto& r = std::any_cast<const ops::NormResult&>(cache);
  ops::NormGrads g = ops::layer_norm_backward(inputs[0], gamma_->value, r.mean, r.rstd, output_grads[0]);
  if (gamma_->trainable) {
    accumulate(*gamma_, g.dgamma);
    accumulate(*beta_, g.dbeta);
  }
  return {needs_grad[0] ? g.dx : Tensor()};
}

Json LayerNormalizationLayer::options_config() const { return {{"epsilon", epsilon_}}; }

LayerPtr LayerNormalizationLayer::from_config(const Json& config) {
  return std::make_shared<LayerNormalizationLayer>(config.at("epsilon").get<double>());
}

// ------------------------------------------------------------------ factories

LayerRef BatchNormalization(double momentum, double epsilon) {
  return LayerRef(std::make_shared<BatchNormalizationLayer>(momentum, epsilon));
}
LayerRef LayerNormalization(double epsilon) { return LayerRef(std::make_shared<LayerNormalizationLayer>(epsilon)); }

}  // namespace attnkit::layers
