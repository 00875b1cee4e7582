// attnkit/layer.h: layers, their parameters, and the symbolic tensors that wire them into a graph.
//
// As in Keras's functional API, calling a layer on symbolic tensors records a node of a graph
// and returns the symbolic outputs; a Model (model.h) is then made of inputs and outputs:
//
//   SymbolicTensor ids = Input({20}, DType::i32);
//   SymbolicTensor x = layers::Embedding(6000, 32)(ids);
//   SymbolicTensor y = layers::Dense(2, "softmax")(layers::Flatten()(x));
//   Model model(ids, y);
//
// Shapes of symbolic tensors leave out the batch axis (Keras's "None"); -1 marks another axis of
// unknown extent. A layer creates its parameters once, when the model that holds it is built,
// from the shapes of its first call; calling it again shares them.
//
// Gradient rule (see ops/linear.h): backward() returns the gradients of the inputs that need one
// and ADDS the parameter gradients into Parameter::grad, so a layer called twice accumulates.
#pragma once

#include <any>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attnkit/mixed_precision.h"
#include "attnkit/ops/attention.h"
#include "attnkit/random.h"
#include "attnkit/tensor.h"

namespace attnkit {

using Tensors = std::vector<Tensor>;
using Json = nlohmann::json;

// A named weight of a layer and its gradient. Non-trainable parameters (a frozen embedding,
// batch-norm statistics) are saved and loaded but never receive gradients.
struct Parameter {
  std::string name;  // within its layer: "kernel", "bias", "forward_lstm/kernel"
  Tensor value;
  Tensor grad;  // undefined until a backward adds to it
  bool trainable = true;
};

class ShardDraws;

// What a forward pass knows about its circumstances.
struct CallContext {
  bool training = false;
  Generator* generator = nullptr;  // randomness of training (dropout); set when training

  // A model may split a batch into shards of rows that run at once, one per CPU thread (see
  // Model::fit). A call then sees rows [shard_begin, shard_begin + its rows) of a batch of
  // batch_rows; shard_begin is a multiple of 4. batch_rows 0: the call sees the whole batch.
  std::int64_t shard_begin = 0, batch_rows = 0;
  ShardDraws* draws = nullptr;  // shared by the shards of a batch

  // The offset (Generator::reserve) of a draw of `count` random numbers for the whole batch, so
  // that a shard draws its rows' part of the numbers the unsplit batch would draw. The shards of
  // a batch make the same draws in the same order; the first to ask for a draw takes it from the
  // generator and the others are given the same offset.
  std::uint64_t reserve(std::uint64_t count) const;
  mutable std::size_t draws_made = 0;  // through reserve(), by the calls of this context
};

class Layer;
struct Node;
using LayerPtr = std::shared_ptr<Layer>;

// An output of a layer call in a graph: its shape (without batch), dtype and origin.
class SymbolicTensor {
 public:
  SymbolicTensor() = default;
  SymbolicTensor(std::shared_ptr<Node> node, int index);
  const Shape& shape() const;
  DType dtype() const;
  const std::shared_ptr<Node>& node() const { return node_; }
  int index() const { return index_; }
  bool defined() const { return node_ != nullptr; }
  // "(None, 20, 32)", as Keras prints shapes.
  std::string shape_str() const;

 private:
  std::shared_ptr<Node> node_;
  int index_ = 0;
};

// One call of a layer: its inputs and the shapes and dtypes of its outputs.
struct Node {
  std::shared_ptr<Layer> layer;
  std::vector<SymbolicTensor> inputs;
  std::vector<Shape> output_shapes;
  std::vector<DType> output_dtypes;
};

// A model input of the given shape (without the batch axis) and dtype: token ids are i32.
SymbolicTensor Input(const Shape& shape, DType dtype = DType::f32, const std::string& name = "");

class Layer : public std::enable_shared_from_this<Layer> {
 public:
  explicit Layer(std::string type, std::string name = "");
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  // The class, as Keras names it ("Dense"), and this layer's name ("dense_1").
  const std::string& type() const { return type_; }
  const std::string& name() const { return name_; }
  void set_name(const std::string& name) { name_ = name; }
  // "Dense layer 'dense_1'", for messages.
  std::string label() const;

  // ---- symbolic calls (graph construction)
  // Records a call on `inputs` and returns its outputs.
  std::vector<SymbolicTensor> call(const std::vector<SymbolicTensor>& inputs);
  // A call with one output (an error for layers that return several).
  SymbolicTensor operator()(const SymbolicTensor& input);
  SymbolicTensor operator()(const std::vector<SymbolicTensor>& inputs);

  // ---- shapes (without the batch axis)
  // Checks the inputs and gives the shapes of the outputs; errors name the layer.
  virtual std::vector<Shape> output_shapes(const std::vector<Shape>& input_shapes) const = 0;
  // The dtypes of the outputs; by default, that of input 0, which must be floating point.
  virtual std::vector<DType> output_dtypes(const std::vector<DType>& input_dtypes) const;

  // ---- parameters
  // Creates the parameters for inputs of these shapes, once; later calls do nothing.
  void build(const std::vector<Shape>& input_shapes, Generator& init);
  bool built() const { return built_; }
  // This layer's parameters and those of the layers it wraps, with their names within the
  // layer ("kernel", "forward_lstm/kernel").
  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<Parameter*> parameters();
  std::int64_t count_params() const;
  std::int64_t count_trainable_params() const;
  // Whether the parameters train; a frozen layer keeps them as they are (Keras's trainable).
  bool trainable() const { return trainable_; }
  void set_trainable(bool trainable);
  // The dtype policy (mixed_precision.h) this layer computes under: the global one when it was
  // made. The layers it wraps follow it.
  const mixed_precision::Policy& dtype_policy() const { return dtype_policy_; }
  void set_dtype_policy(const mixed_precision::Policy& policy);

  // ---- computation (concrete tensors with the batch axis)
  // Computes the outputs; `cache` keeps what backward() will need.
  virtual Tensors forward(const Tensors& inputs, const CallContext& context, std::any& cache) = 0;
  // Returns one gradient per input (undefined where `needs_grad` is false, and for integer
  // inputs); adds the parameter gradients into their Parameter::grad. Output gradients may be
  // undefined for outputs that did not reach the loss.
  virtual Tensors backward(const Tensors& inputs, const std::any& cache, const Tensors& output_grads,
                           const std::vector<bool>& needs_grad) = 0;

  // For a layer that calls an attention op: the path (ops/attention.h) that the op takes on
  // `device` for inputs of these shapes (batch axis first) and dtypes, as the op's own *_supports
  // says; empty for the other layers.
  virtual std::vector<ops::AttentionSupport> attention_support(const std::vector<Shape>& input_shapes,
                                                               const std::vector<DType>& input_dtypes,
                                                               Device device) const;

  // Enough to make this layer again (its class's from_config; Model::from_config): the options
  // of its class and its dtype policy, as "dtype_policy".
  Json config() const;

 protected:
  // The options of this layer's class, for config().
  virtual Json options_config() const { return Json::object(); }
  // Creates the parameters (called by build() once, with the shapes of the first call).
  virtual void create_parameters(const std::vector<Shape>& input_shapes, Generator& init) {}
  Parameter& add_parameter(const std::string& name, Tensor value, bool trainable = true);
  // Adds `grad` into the parameter's gradient (the parameter's value must not be frozen).
  static void accumulate(Parameter& parameter, const Tensor& grad);
  // Layers held by this one (Bidirectional's two directions); their parameters are listed too,
  // prefixed by their names (an unnamed child's are not). Their build and trainability follow this layer's.
  virtual std::vector<Layer*> children() const { return {}; }
  // Checks the number of inputs of a call.
  void expect_inputs(const std::vector<Shape>& input_shapes, std::size_t min_count,
                     std::size_t max_count) const;

 private:
  std::string type_;
  std::string name_;
  bool built_ = false;
  bool trainable_ = true;
  mixed_precision::Policy dtype_policy_;
  std::deque<Parameter> parameters_;  // a deque: adding never moves the ones already handed out
  std::deque<bool> can_train_;        // false for statistics such as batch norm's running mean
};

// A shared handle to a layer that is called like a Keras layer: dense(x), lstm.call({x, h, c}).
// named(), trainable() and dtype_policy() set the layer's name, trainability and dtype policy
// (Keras's dtype argument) and return the handle, so they chain after a factory:
// layers::Embedding(6000, 32).trainable(false).named("embedding").
class LayerRef {
 public:
  LayerRef(std::shared_ptr<Layer> layer) : layer_(std::move(layer)) {}
  SymbolicTensor operator()(const SymbolicTensor& input) const { return (*layer_)(input); }
  SymbolicTensor operator()(const std::vector<SymbolicTensor>& inputs) const { return (*layer_)(inputs); }
  std::vector<SymbolicTensor> call(const std::vector<SymbolicTensor>& inputs) const { return layer_->call(inputs); }
  const LayerRef& named(const std::string& name) const {
    layer_->set_name(name);
    return *this;
  }
  const LayerRef& trainable(bool trainable) const {
    layer_->set_trainable(trainable);
    return *this;
  }
  const LayerRef& dtype_policy(const std::string& policy) const {
    layer_->set_dtype_policy(mixed_precision::Policy(policy));
    return *this;
  }
  Layer* operator->() const { return layer_.get(); }
  Layer& operator*() const { return *layer_; }
  const LayerPtr& get() const { return layer_; }

 private:
  LayerPtr layer_;
};

// Fluent options in the style of libtorch: ATTNKIT_ARG(bool, return_sequences) = false; makes a
// field with a default, a getter o.return_sequences() and a chaining setter
// o.return_sequences(true).
#define ATTNKIT_ARG(T, name)                     \
 public:                                         \
  auto& name(const T& value) {                   \
    name##_ = value;                             \
    return *this;                                \
  }                                              \
  const T& name() const { return name##_; }      \
                                                 \
 private:                                        \
  T name##_

}  // namespace attnkit
