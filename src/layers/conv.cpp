// Convolution and pooling layers: Conv1D, MaxPooling1D, GlobalMaxPooling1D, GlobalAveragePooling1D.
#include "attnkit/ops/reduce.h"
#include "json_integers.h"
#include "layers/initializers.h"
#include "layers/layer_classes.h"

namespace attnkit::layers {
namespace {

void expect_sequence(const std::string& label, const Shape& shape) {
  ATTNKIT_CHECK(shape.size() == 2 && shape[1] > 0, label, ": needs inputs [steps, channels] with known channels, got ",
                shape_str(shape));
}

}  // namespace

// ------------------------------------------------------------------ Conv1D

Conv1DLayer::Conv1DLayer(std::int64_t filters, std::int64_t kernel_size, ops::Padding padding,
                         ops::Activation activation, bool use_bias)
    : Layer("Conv1D"), filters_(filters), kernel_size_(kernel_size), padding_(padding),
      activation_(activation), use_bias_(use_bias) {
  ATTNKIT_CHECK(filters > 0 && kernel_size > 0, "Conv1D: filters and kernel_size must be positive, got ", filters,
                " and ", kernel_size);
}

std::vector<Shape> Conv1DLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  expect_sequence(label(), input_shapes[0]);
  std::int64_t steps = input_shapes[0][0];
  if (padding_ == ops::Padding::valid && steps > 0) {
    ATTNKIT_CHECK(steps >= kernel_size_, label(), ": 'valid' padding needs at least ", kernel_size_, " steps, got ",
                  steps);
    steps = steps - kernel_size_ + 1;
  }
  return {{steps, filters_}};
}

void Conv1DLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  kernel_ = &add_parameter("kernel", glorot_uniform({kernel_size_, input_shapes[0][1], filters_}, init));
  if (use_bias_) bias_ = &add_parameter("bias", Tensor::zeros({filters_}));
}

Tensors Conv1DLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  Tensor y = ops::activation(ops::conv1d(inputs[0], kernel_->value, use_bias_ ? bias_->value : Tensor(), padding_),
                             activation_);
  cache = y;
  return {y};
}

Tensors Conv1DLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                              const std::vector<bool>& needs_grad) {
  const Tensor dz = ops::activation_backward(std::any_cast<const Tensor&>(cache), output_grads[0], activation_);
  const ops::Conv1dGrads g = ops::conv1d_backward(inputs[0], kernel_->value, dz, use_bias_, padding_, needs_grad[0]);
  if (kernel_->trainable) accumulate(*kernel_, g.dweight);
  if (use_bias_ && bias_->trainable) accumulate(*bias_, g.dbias);
  return {g.dx};
}

Json Conv1DLayer::options_config() const {
  return {{"filters", filters_},
          {"kernel_size", kernel_size_},
          {"padding", ops::padding_name(padding_)},
          {"activation", ops::activation_name(activation_)},
          {"use_bias", use_bias_}};
}

LayerPtr Conv1DLayer::from_config(const Json& config) {
  return std::make_shared<Conv1DLayer>(detail::json_integer(config.at("filters"), "filters"),
                                       detail::json_integer(config.at("kernel_size"), "kernel_size"),
                                       ops::parse_padding(config.at("padding").get<std::string>()),
                                       ops::parse_activation(config.at("activation").get<std::string>()),
                                       config.at("use_bias").get<bool>());
}

// ------------------------------------------------------------------ MaxPooling1D

MaxPooling1DLayer::MaxPooling1DLayer(std::int64_t pool_size, std::int64_t strides, ops::Padding padding)
    : Layer("MaxPooling1D"), pool_size_(pool_size), strides_(strides == 0 ? pool_size : strides), padding_(padding) {
  ATTNKIT_CHECK(pool_size > 0 && strides >= 0, "MaxPooling1D: pool_size must be positive and strides not negative");
}

std::vector<Shape> MaxPooling1DLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  expect_sequence(label(), input_shapes[0]);
  const std::int64_t steps = input_shapes[0][0];
  std::int64_t out = -1;
  if (steps > 0) {
    if (padding_ == ops::Padding::same) {
      out = (steps + strides_ - 1) / strides_;
    } else {
      ATTNKIT_CHECK(steps >= pool_size_, label(), ": needs at least ", pool_size_, " steps, got ", steps);
      out = (steps - pool_size_) / strides_ + 1;
    }
  }
  return {{out, input_shapes[0][1]}};
}

Tensors MaxPooling1DLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  ops::MaxPool1dResult r = ops::max_pool1d(inputs[0], pool_size_, strides_, padding_);
  cache = r.argmax;
  return {r.y};
}

Tensors MaxPooling1DLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                    const std::vector<bool>&) {
  return {ops::max_pool1d_backward(output_grads[0], std::any_cast<const Tensor&>(cache), inputs[0].size(1))};
}

Json MaxPooling1DLayer::options_config() const {
  return {{"pool_size", pool_size_}, {"strides", strides_}, {"padding", ops::padding_name(padding_)}};
}

LayerPtr MaxPooling1DLayer::from_config(const Json& config) {
  return std::make_shared<MaxPooling1DLayer>(detail::json_integer(config.at("pool_size"), "pool_size"),
                                             detail::json_integer(config.at("strides"), "strides"),
                                             ops::parse_padding(config.at("padding").get<std::string>()));
}

// ------------------------------------------------------------------ global pooling

GlobalPooling1DLayer::GlobalPooling1DLayer(bool average)
    : Layer(average ? "GlobalAveragePooling1D" : "GlobalMaxPooling1D"), average_(average) {}

std::vector<Shape> GlobalPooling1DLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  expect_sequence(label(), input_shapes[0]);
  return {{input_shapes[0][1]}};
}

Tensors GlobalPooling1DLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  const Tensor& x = inputs[0];
  if (average_) return {ops::mean(x, 1)};
  // The maximum over all steps is one pooling window as long as the sequence.
  ops::MaxPool1dResult r = ops::max_pool1d(x, x.size(1));
  cache = r.argmax;
  return {r.y.reshape({x.size(0), x.size(2)})};
}

Tensors GlobalPooling1DLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                                       const std::vector<bool>&) {
  const Tensor& x = inputs[0];
  if (average_) return {ops::mean_backward(output_grads[0], x.shape(), 1)};
  const Tensor dy = output_grads[0].reshape({x.size(0), 1, x.size(2)});
  return {ops::max_pool1d_backward(dy, std::any_cast<const Tensor&>(cache), x.size(1))};
}

Json GlobalPooling1DLayer::options_config() const { return Json::object(); }

LayerPtr GlobalPooling1DLayer::from_config(const Json&, bool average) {
  return std::make_shared<GlobalPooling1DLayer>(average);
}

// ------------------------------------------------------------------ factories

LayerRef Conv1D(std::int64_t filters, std::int64_t kernel_size, const std::string& padding,
                const std::string& activation, bool use_bias) {
  return LayerRef(std::make_shared<Conv1DLayer>(filters, kernel_size, ops::parse_padding(padding),
                                                ops::parse_activation(activation), use_bias));
}
LayerRef MaxPooling1D(std::int64_t pool_size, std::int64_t strides, const std::string& padding) {
  return LayerRef(std::make_shared<MaxPooling1DLayer>(pool_size, strides, ops::parse_padding(padding)));
}
LayerRef GlobalMaxPooling1D() { return LayerRef(std::make_shared<GlobalPooling1DLayer>(false)); }
LayerRef GlobalAveragePooling1D() { return LayerRef(std::make_shared<GlobalPooling1DLayer>(true)); }

}  // namespace attnkit::layers
