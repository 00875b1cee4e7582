// Layer, SymbolicTensor and Input: the graph-building side of layers.
#include "attnkit/layer.h"

#include "attnkit/ops/elementwise.h"
#include "batch_shards.h"
#include "layers/layer_classes.h"

namespace attnkit {

// ------------------------------------------------------------------ symbolic tensors

SymbolicTensor::SymbolicTensor(std::shared_ptr<Node> node, int index)
    : node_(std::move(node)), index_(index) {}

const Shape& SymbolicTensor::shape() const {
  ATTNKIT_CHECK(defined(), "an undefined symbolic tensor has no shape");
  return node_->output_shapes[static_cast<std::size_t>(index_)];
}

DType SymbolicTensor::dtype() const {
  ATTNKIT_CHECK(defined(), "an undefined symbolic tensor has no dtype");
  return node_->output_dtypes[static_cast<std::size_t>(index_)];
}

std::string SymbolicTensor::shape_str() const {
  std::string text = "(None";
  for (const std::int64_t extent : shape()) text += ", " + (extent < 0 ? std::string("None") : std::to_string(extent));
  return text + ")";
}

SymbolicTensor Input(const Shape& shape, DType dtype, const std::string& name) {
  return std::make_shared<layers::InputLayer>(shape, dtype, name)->call({})[0];
}

// ------------------------------------------------------------------ layers

Layer::Layer(std::string type, std::string name)
    : type_(std::move(type)), name_(std::move(name)), dtype_policy_(mixed_precision::global_policy()) {}

std::vector<SymbolicTensor> Layer::call(const std::vector<SymbolicTensor>& inputs) {
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ATTNKIT_CHECK(inputs[i].defined(), label(), ": input ", i, " is undefined");
    shapes.push_back(inputs[i].shape());
    dtypes.push_back(inputs[i].dtype());
  }
  auto node = std::make_shared<Node>();
  node->layer = shared_from_this();
  node->inputs = inputs;
  node->output_shapes = output_shapes(shapes);
  node->output_dtypes = output_dtypes(dtypes);
  node->output_dtypes.resize(node->output_shapes.size(), node->output_dtypes.empty() ? DType::f32
                                                                                     : node->output_dtypes.back());
  std::vector<SymbolicTensor> outputs;
  for (std::size_t i = 0; i < node->output_shapes.size(); ++i) outputs.emplace_back(node, static_cast<int>(i));
  return outputs;
}

SymbolicTensor Layer::operator()(const SymbolicTensor& input) { return (*this)(std::vector<SymbolicTensor>{input}); }

SymbolicTensor Layer::operator()(const std::vector<SymbolicTensor>& inputs) {
  std::vector<SymbolicTensor> outputs = call(inputs);
  ATTNKIT_CHECK(outputs.size() == 1, label(), " returns ", outputs.size(),
                " outputs here: use call() to receive them all");
  return outputs[0];
}

std::vector<DType> Layer::output_dtypes(const std::vector<DType>& input_dtypes) const {
  ATTNKIT_CHECK(!input_dtypes.empty() && is_floating(input_dtypes[0]), label(),
                ": input 0 must be floating point, got ", (input_dtypes.empty() ? "nothing" : dtype_name(input_dtypes[0])));
  return {input_dtypes[0]};
}

void Layer::build(const std::vector<Shape>& input_shapes, Generator& init) {
  if (built_) return;
  create_parameters(input_shapes, init);
  built_ = true;
}

std::vector<std::pair<std::string, Parameter*>> Layer::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> named;
  for (Parameter& p : parameters_) named.emplace_back(p.name, &p);
  // A child without a name lends its parameters under their own names (AdditiveAttention's form).
  for (Layer* child : children())
    for (auto& [name, p] : child->named_parameters())
      named.emplace_back(child->name().empty() ? name : child->name() + "/" + name, p);
  return named;
}

std::vector<Parameter*> Layer::parameters() {
  std::vector<Parameter*> all;
  for (auto& named : named_parameters()) all.push_back(named.second);
  return all;
}

std::int64_t Layer::count_params() const {
  std::int64_t count = 0;
  for (const Parameter& p : parameters_) count += p.value.numel();
  for (const Layer* child : children()) count += child->count_params();
  return count;
}

std::int64_t Layer::count_trainable_params() const {
  std::int64_t count = 0;
  for (const Parameter& p : parameters_) count += p.trainable ? p.value.numel() : 0;
  for (const Layer* child : children()) count += child->count_trainable_params();
  return count;
}

void Layer::set_trainable(bool trainable) {
  trainable_ = trainable;
  for (std::size_t i = 0; i < parameters_.size(); ++i) parameters_[i].trainable = trainable && can_train_[i];
  for (Layer* child : children()) child->set_trainable(trainable);
}

void Layer::set_dtype_policy(const mixed_precision::Policy& policy) {
  dtype_policy_ = policy;
  for (Layer* child : children()) child->set_dtype_policy(policy);
}

std::vector<ops::AttentionSupport> Layer::attention_support(const std::vector<Shape>&, const std::vector<DType>&,
                                                            Device) const {
  return {};
}

Json Layer::config() const {
  Json config = options_config();
  config["dtype_policy"] = dtype_policy_.name();
  return config;
}

Parameter& Layer::add_parameter(const std::string& name, Tensor value, bool trainable) {
  parameters_.push_back(Parameter{name, std::move(value), Tensor(), trainable && trainable_});
  can_train_.push_back(trainable);
  return parameters_.back();
}

namespace {
thread_local ShardGradients* shard_gradients = nullptr;  // see GradientSink
}  // namespace

GradientSink::GradientSink(ShardGradients& grads) : previous_(shard_gradients) { shard_gradients = &grads; }
GradientSink::~GradientSink() { shard_gradients = previous_; }

std::uint64_t CallContext::reserve(std::uint64_t count) const {
  ATTNKIT_CHECK(generator != nullptr, "a random draw in a call without a generator");
  return draws == nullptr ? generator->reserve(count) : draws->reserve(draws_made++, count);
}

void Layer::accumulate(Parameter& parameter, const Tensor& grad) {
  ATTNKIT_CHECK(parameter.trainable, "a gradient was computed for the frozen parameter '",
                parameter.name, "'");
  ATTNKIT_CHECK(grad.shape() == parameter.value.shape(), "the gradient ", grad.describe(),
                " does not fit the parameter '", parameter.name, "' ", parameter.value.describe());
  // The first gradient is taken as it is (ops return fresh tensors); a second call adds.
  Tensor& sum = shard_gradients != nullptr ? (*shard_gradients)[&parameter] : parameter.grad;
  sum = sum.defined() ? ops::add(sum, grad) : grad;
}

std::string Layer::label() const {
  return type_ + " layer" + (name_.empty() ? "" : " '" + name_ + "'");
}

void Layer::expect_inputs(const std::vector<Shape>& input_shapes, std::size_t min_count,
                          std::size_t max_count) const {
  ATTNKIT_CHECK(input_shapes.size() >= min_count && input_shapes.size() <= max_count, label(),
                " takes ",
                (min_count == max_count ? std::to_string(min_count)
                                        : std::to_string(min_count) + " to " + std::to_string(max_count)),
                " inputs, got ", input_shapes.size());
}

}  // namespace attnkit
