// Core layers: Input, Embedding, Dense, Dropout, Flatten, Activation, Concatenate, Multiply,
// Add and PaddingMask.
#include <vector>

#include "attnkit/ops/dropout.h"
#include "attnkit/ops/embedding.h"
#include "attnkit/ops/linear.h"
#include "attnkit/ops/shape.h"
#include "json_integers.h"
#include "layers/initializers.h"
#include "layers/layer_classes.h"

namespace attnkit::layers {

// ------------------------------------------------------------------ Input

InputLayer::InputLayer(Shape shape, DType dtype, std::string name)
    : Layer("InputLayer", std::move(name)), shape_(std::move(shape)), dtype_(dtype) {
  for (const std::int64_t extent : shape_)
    ATTNKIT_CHECK(extent == -1 || extent > 0, "Input: extents must be positive or -1 (unknown), got ",
                  shape_str(shape_));
}

// Called on nothing, it makes the node that Input() returns.
std::vector<Shape> InputLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 0, 0);
  return {shape_};
}

Tensors InputLayer::forward(const Tensors& inputs, const CallContext&, std::any&) { return inputs; }

Tensors InputLayer::backward(const Tensors&, const std::any&, const Tensors&, const std::vector<bool>&) {
  return {};
}

Json InputLayer::options_config() const { return {{"shape", shape_}, {"dtype", dtype_name(dtype_)}}; }

LayerPtr InputLayer::from_config(const Json& config) {
  const Shape shape = detail::json_shape(config.at("shape"), "an Input's shape");
  const std::string dtype = config.at("dtype").get<std::string>();
  const std::optional<DType> d = dtype_from_name(dtype);
  ATTNKIT_CHECK(d.has_value(), "an Input has the unknown dtype '", dtype, "'");
  return std::make_shared<InputLayer>(shape, *d, "");
}

// ------------------------------------------------------------------ Embedding

EmbeddingLayer::EmbeddingLayer(std::int64_t input_dim, std::int64_t output_dim)
    : Layer("Embedding"), input_dim_(input_dim), output_dim_(output_dim) {
  ATTNKIT_CHECK(input_dim > 0 && output_dim > 0, "Embedding: input_dim and output_dim must be positive, got ",
                input_dim, " and ", output_dim);
}

std::vector<Shape> EmbeddingLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  Shape out = input_shapes[0];
  out.push_back(output_dim_);
  return {out};
}

std::vector<DType> EmbeddingLayer::output_dtypes(const std::vector<DType>& input_dtypes) const {
  ATTNKIT_CHECK(input_dtypes.size() == 1 && input_dtypes[0] == DType::i32, label(),
                ": token ids must be i32, got ", (input_dtypes.empty() ? "nothing" : dtype_name(input_dtypes[0])));
  return {DType::f32};
}

void EmbeddingLayer::create_parameters(const std::vector<Shape>&, Generator& init) {
  embeddings_ = &add_parameter("embeddings", Tensor::uniform({input_dim_, output_dim_}, -0.05, 0.05, init));
}

Tensors EmbeddingLayer::forward(const Tensors& inputs, const CallContext&, std::any&) {
  return {ops::embedding(inputs[0], embeddings_->value)};
}

Tensors EmbeddingLayer::backward(const Tensors& inputs, const std::any&, const Tensors& output_grads,
                                 const std::vector<bool>&) {
  if (embeddings_->trainable && output_grads[0].defined())
    accumulate(*embeddings_, ops::embedding_backward(inputs[0], output_grads[0], input_dim_));
  return {Tensor()};
}

Json EmbeddingLayer::options_config() const { return {{"input_dim", input_dim_}, {"output_dim", output_dim_}}; }

LayerPtr EmbeddingLayer::from_config(const Json& config) {
  return std::make_shared<EmbeddingLayer>(detail::json_integer(config.at("input_dim"), "input_dim"),
                                          detail::json_integer(config.at("output_dim"), "output_dim"));
}

// ------------------------------------------------------------------ PositionEmbedding

PositionEmbeddingLayer::PositionEmbeddingLayer() : Layer("PositionEmbedding") {}

std::vector<Shape> PositionEmbeddingLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  const Shape& x = input_shapes[0];
  ATTNKIT_CHECK(x.size() == 2 && x[0] > 0 && x[1] > 0, label(), ": needs inputs [steps, features] with both known, got ",
                shape_str(x));
  return {x};
}

void PositionEmbeddingLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  embeddings_ = &add_parameter("embeddings", Tensor::uniform(input_shapes[0], -0.05, 0.05, init));
}

// With the steps and features flattened, the position table is a bias over the batch.
Tensors PositionEmbeddingLayer::forward(const Tensors& inputs, const CallContext&, std::any&) {
  const Tensor& x = inputs[0];
  return {ops::bias_add(x.reshape({x.size(0), -1}), embeddings_->value.reshape({-1})).reshape(x.shape())};
}

Tensors PositionEmbeddingLayer::backward(const Tensors& inputs, const std::any&, const Tensors& output_grads,
                                         const std::vector<bool>& needs_grad) {
  const Tensor& dy = output_grads[0];
  if (embeddings_->trainable)
    accumulate(*embeddings_, ops::bias_add_backward(dy.reshape({dy.size(0), -1})).reshape(embeddings_->value.shape()));
  return {needs_grad[0] ? dy : Tensor()};
}

Json PositionEmbeddingLayer::options_config() const { return Json::object(); }

LayerPtr PositionEmbeddingLayer::from_config(const Json&) { return std::make_shared<PositionEmbeddingLayer>(); }

// ------------------------------------------------------------------ Dense

DenseLayer::DenseLayer(std::int64_t units, ops::Activation activation, bool use_bias)
    : Layer("Dense"), units_(units), activation_(activation), use_bias_(use_bias) {
  ATTNKIT_CHECK(units > 0, "Dense: units must be positive, got ", units);
}

std::vector<Shape> DenseLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  ATTNKIT_CHECK(!input_shapes[0].empty() && input_shapes[0].back() > 0, label(),
                ": needs inputs with a known last axis, got ", shape_str(input_shapes[0]));
  Shape out = input_shapes[0];
  out.back() = units_;
  return {out};
}

void DenseLayer::create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {
  kernel_ = &add_parameter("kernel", glorot_uniform({input_shapes[0].back(), units_}, init));
  if (use_bias_) bias_ = &add_parameter("bias", Tensor::zeros({units_}));
}

Tensors DenseLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  Tensor y = ops::activation(ops::linear(inputs[0], kernel_->value, use_bias_ ? bias_->value : Tensor()), activation_);
  cache = y;
  return {y};
}

Tensors DenseLayer::backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                             const std::vector<bool>& needs_grad) {
  const Tensor dz = ops::activation_backward(std::any_cast<const Tensor&>(cache), output_grads[0], activation_);
  const ops::LinearGrads g = ops::linear_backward(inputs[0], kernel_->value, dz, use_bias_, needs_grad[0]);
  if (kernel_->trainable) accumulate(*kernel_, g.dweight);
  if (use_bias_ && bias_->trainable) accumulate(*bias_, g.dbias);
  return {g.dx};
}

Json DenseLayer::options_config() const {
  return {{"units", units_}, {"activation", ops::activation_name(activation_)}, {"use_bias", use_bias_}};
}

LayerPtr DenseLayer::from_config(const Json& config) {
  return std::make_shared<DenseLayer>(detail::json_integer(config.at("units"), "units"),
                                      ops::parse_activation(config.at("activation").get<std::string>()),
                                      config.at("use_bias").get<bool>());
}

// ------------------------------------------------------------------ Dropout

DropoutLayer::DropoutLayer(double rate) : Layer("Dropout"), rate_(rate) {
  ATTNKIT_CHECK(rate >= 0 && rate < 1, "Dropout: rate must be in [0, 1), got ", rate);
}

std::vector<Shape> DropoutLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  return {input_shapes[0]};
}

Tensors DropoutLayer::forward(const Tensors& inputs, const CallContext& context, std::any& cache) {
  if (!context.training || rate_ == 0) {
    cache = Tensor();
    return {inputs[0]};
  }
  ATTNKIT_CHECK(context.generator != nullptr, label(), ": training needs a random generator");
  // The batch's numbers, of which this call's rows take their part (CallContext).
  const Tensor& x = inputs[0];
  const std::int64_t rows = x.dim() == 0 ? 1 : x.size(0), per_row = rows == 0 ? 0 : x.numel() / rows;
  const std::int64_t batch_rows = context.batch_rows > 0 ? context.batch_rows : rows;
  const std::uint64_t first_block = static_cast<std::uint64_t>(context.shard_begin * per_row / 4);
  const std::uint64_t offset = context.reserve(static_cast<std::uint64_t>(batch_rows * per_row)) + first_block;
  ops::DropoutResult r = ops::dropout(x, rate_, context.generator->seed(), offset);
  cache = r.mask;
  return {r.y};
}

Tensors DropoutLayer::backward(const Tensors&, const std::any& cache, const Tensors& output_grads,
                               const std::vector<bool>&) {
  const Tensor& mask = std::any_cast<const Tensor&>(cache);
  return {mask.defined() ? ops::dropout_backward(output_grads[0], mask, rate_) : output_grads[0]};
}

Json DropoutLayer::options_config() const { return {{"rate", rate_}}; }

LayerPtr DropoutLayer::from_config(const Json& config) {
  return std::make_shared<DropoutLayer>(config.at("rate").get<double>());
}

// ------------------------------------------------------------------ Flatten

FlattenLayer::FlattenLayer() : Layer("Flatten") {}

std::vector<Shape> FlattenLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  std::int64_t size = 1;
  for (const std::int64_t extent : input_shapes[0]) {
    ATTNKIT_CHECK(extent > 0, label(), ": needs inputs of known shape, got ", shape_str(input_shapes[0]));
    size *= extent;
  }
  return {{size}};
}

Tensors FlattenLayer::forward(const Tensors& inputs, const CallContext&, std::any&) {
  return {ops::flatten(inputs[0])};
}

Tensors FlattenLayer::backward(const Tensors& inputs, const std::any&, const Tensors& output_grads,
                               const std::vector<bool>&) {
  return {ops::flatten_backward(output_grads[0], inputs[0].shape())};
}

Json FlattenLayer::options_config() const { return Json::object(); }

LayerPtr FlattenLayer::from_config(const Json&) { return std::make_shared<FlattenLayer>(); }

// ------------------------------------------------------------------ Activation

ActivationLayer::ActivationLayer(ops::Activation activation) : Layer("Activation"), activation_(activation) {}

std::vector<Shape> ActivationLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  return {input_shapes[0]};
}

Tensors ActivationLayer::forward(const Tensors& inputs, const CallContext&, std::any& cache) {
  Tensor y = ops::activation(inputs[0], activation_);
  cache = y;
  return {y};
}

Tensors ActivationLayer::backward(const Tensors&, const std::any& cache, const Tensors& output_grads,
                                  const std::vector<bool>&) {
  return {ops::activation_backward(std::any_cast<const Tensor&>(cache), output_grads[0], activation_)};
}

Json ActivationLayer::options_config() const { return {{"activation", ops::activation_name(activation_)}}; }

LayerPtr ActivationLayer::from_config(const Json& config) {
  return std::make_shared<ActivationLayer>(ops::parse_activation(config.at("activation").get<std::string>()));
}

// ------------------------------------------------------------------ Concatenate

namespace {

// Keras's axis counts the batch axis: -1 is the last, 1 the first after the batch. Returns the
// axis among the axes without the batch.
std::int64_t axis_without_batch(const std::string& label, std::int64_t axis, std::int64_t rank) {
  const std::int64_t with_batch = axis < 0 ? axis + rank + 1 : axis;
  ATTNKIT_CHECK(with_batch >= 1 && with_batch <= rank, label, ": axis ", axis,
                " is not a non-batch axis of inputs with ", rank, " axes after the batch");
  return with_batch - 1;
}

}  // namespace

ConcatenateLayer::ConcatenateLayer(std::int64_t axis) : Layer("Concatenate"), axis_(axis) {}

std::vector<Shape> ConcatenateLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  ATTNKIT_CHECK(input_shapes.size() >= 2, label(), " needs at least 2 inputs, got ", input_shapes.size());
  const std::int64_t rank = static_cast<std::int64_t>(input_shapes[0].size());
  const std::int64_t a = axis_without_batch(label(), axis_, rank);
  Shape out = input_shapes[0];
  for (std::size_t i = 1; i < input_shapes.size(); ++i) {
    const Shape& s = input_shapes[i];
    bool ok = static_cast<std::int64_t>(s.size()) == rank;
    for (std::int64_t d = 0; ok && d < rank; ++d) ok = d == a || s[d] == out[d];
    ATTNKIT_CHECK(ok, label(), ": input ", i, " ", shape_str(s), " does not match input 0 ",
                  shape_str(input_shapes[0]), " outside axis ", axis_);
    out[a] = (out[a] < 0 || s[a] < 0) ? -1 : out[a] + s[a];
  }
  return {out};
}

Tensors ConcatenateLayer::forward(const Tensors& inputs, const CallContext&, std::any&) {
  return {ops::concat(inputs, axis_)};  // tensors carry the batch axis, as Keras counts it
}

Tensors ConcatenateLayer::backward(const Tensors& inputs, const std::any&, const Tensors& output_grads,
                                   const std::vector<bool>& needs_grad) {
  const std::int64_t a = axis_ < 0 ? axis_ + inputs[0].dim() : axis_;
  std::vector<std::int64_t> extents;
  for (const Tensor& x : inputs) extents.push_back(x.size(a));
  Tensors grads = ops::concat_backward(output_grads[0], extents, a);
  for (std::size_t i = 0; i < grads.size(); ++i)
    if (!needs_grad[i]) grads[i] = Tensor();
  return grads;
}

Json ConcatenateLayer::options_config() const { return {{"axis", axis_}}; }

LayerPtr ConcatenateLayer::from_config(const Json& config) {
  return std::make_shared<ConcatenateLayer>(detail::json_integer(config.at("axis"), "axis"));
}

// ------------------------------------------------------------------ Multiply and Add

MergeLayer::MergeLayer(bool multiply) : Layer(multiply ? "Multiply" : "Add"), multiply_(multiply) {}

std::vector<Shape> MergeLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  ATTNKIT_CHECK(input_shapes.size() >= 2, label(), " needs at least 2 inputs, got ", input_shapes.size());
  for (std::size_t i = 1; i < input_shapes.size(); ++i)
    ATTNKIT_CHECK(input_shapes[i] == input_shapes[0], label(), ": input ", i, " ", shape_str(input_shapes[i]),
                  " differs from input 0 ", shape_str(input_shapes[0]));
  return {input_shapes[0]};
}

Tensors MergeLayer::forward(const Tensors& inputs, const CallContext&, std::any&) {
  Tensor y = inputs[0];
  for (std::size_t i = 1; i < inputs.size(); ++i) y = multiply_ ? ops::multiply(y, inputs[i]) : ops::add(y, inputs[i]);
  return {y};
}

Tensors MergeLayer::backward(const Tensors& inputs, const std::any&, const Tensors& output_grads,
                             const std::vector<bool>& needs_grad) {
  Tensors grads(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!needs_grad[i]) continue;
    if (!multiply_) {
      grads[i] = output_grads[0];
      continue;
    }
    // d(x_0 ... x_n)/dx_i = the product of the others.
    Tensor g = output_grads[0];
    for (std::size_t j = 0; j < inputs.size(); ++j)
      if (j != i) g = ops::multiply(g, inputs[j]);
    grads[i] = g;
  }
  return grads;
}

Json MergeLayer::options_config() const { return Json::object(); }

LayerPtr MergeLayer::from_config(const Json&, bool multiply) { return std::make_shared<MergeLayer>(multiply); }

// ------------------------------------------------------------------ PaddingMask

PaddingMaskLayer::PaddingMaskLayer() : Layer("PaddingMask") {}

std::vector<Shape> PaddingMaskLayer::output_shapes(const std::vector<Shape>& input_shapes) const {
  expect_inputs(input_shapes, 1, 1);
  return {input_shapes[0]};
}

std::vector<DType> PaddingMaskLayer::output_dtypes(const std::vector<DType>& input_dtypes) const {
  ATTNKIT_CHECK(input_dtypes.size() == 1 && input_dtypes[0] == DType::i32, label(), ": token ids must be i32");
  return {DType::u8};
}

Tensors PaddingMaskLayer::forward(const Tensors& inputs, const CallContext&, std::any&) {
  // Made on the host from a copy of the ids (a few bytes a row), then put beside them.
  const Tensor ids = inputs[0].to(Device::cpu());
  Tensor mask = Tensor::empty(ids.shape(), DType::u8);
  const std::int32_t* id = ids.data<std::int32_t>();
  std::uint8_t* keep = mask.data<std::uint8_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i) keep[i] = id[i] != 0 ? 1 : 0;
  return {mask.to(inputs[0].device())};
}

Tensors PaddingMaskLayer::backward(const Tensors&, const std::any&, const Tensors&, const std::vector<bool>&) {
  return {Tensor()};
}

Json PaddingMaskLayer::options_config() const { return Json::object(); }

LayerPtr PaddingMaskLayer::from_config(const Json&) { return std::make_shared<PaddingMaskLayer>(); }

// ------------------------------------------------------------------ factories

LayerRef Embedding(std::int64_t input_dim, std::int64_t output_dim) {
  return LayerRef(std::make_shared<EmbeddingLayer>(input_dim, output_dim));
}
LayerRef PositionEmbedding() { return LayerRef(std::make_shared<PositionEmbeddingLayer>()); }
LayerRef Dense(std::int64_t units, const std::string& activation, bool use_bias) {
  return LayerRef(std::make_shared<DenseLayer>(units, ops::parse_activation(activation), use_bias));
}
LayerRef Dropout(double rate) { return LayerRef(std::make_shared<DropoutLayer>(rate)); }
LayerRef Flatten() { return LayerRef(std::make_shared<FlattenLayer>()); }
LayerRef Activation(const std::string& activation) {
  return LayerRef(std::make_shared<ActivationLayer>(ops::parse_activation(activation)));
}
LayerRef Concatenate(std::int64_t axis) { return LayerRef(std::make_shared<ConcatenateLayer>(axis)); }
LayerRef Multiply() { return LayerRef(std::make_shared<MergeLayer>(true)); }
LayerRef Add() { return LayerRef(std::make_shared<MergeLayer>(false)); }
LayerRef PaddingMask() { return LayerRef(std::make_shared<PaddingMaskLayer>()); }

}  // namespace attnkit::layers
