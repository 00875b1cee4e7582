// attnkit/model.h: models (a functional graph of layers, or a Sequential stack) and their
// training loop, in the manner of Keras.
//
//   SymbolicTensor ids = Input({20}, DType::i32, "inputs");
//   SymbolicTensor x = layers::Embedding(6000, 32)(ids);
//   x = layers::Dropout(0.25)(x);
//   SymbolicTensor y = layers::Dense(2, "softmax")(layers::LSTM(32)(x));
//   Model model(ids, y);
//   model.compile(CompileOptions().optimizer(Adam()).loss("categorical_crossentropy"));
//   History history = model.fit(x_train, y_train, FitOptions().epochs(4).validation_split(0.2));
//
// Inputs and targets are tensors whose first axis is the sample; a model with several inputs
// or outputs takes them in the order they were given to the constructor.
//
// fit() follows Keras: the last validation_split of the samples (unshuffled) is held out for
// validation; the rest is shuffled every epoch (with `seed`) and split into batches; the loss of
// several outputs is their sum; the reported training loss and metrics are averages over the
// epoch's samples (each batch counting by its size), measured while training (dropout on). A
// progress line per epoch updates in place on a terminal and is printed once per epoch otherwise.
//
// Weighted samples, as in Keras 3: with sample_weight (or class_weight, turned into one weight
// per sample) the loss of a batch of n samples is sum_i w_i loss_i / n (Keras's reduction
// "sum_over_batch_size": divided by the number of samples, not by the sum of the weights), and the
// gradients are those of that loss. Accuracy stays unweighted, as Keras 3 computes the metrics of
// compile(metrics=...) (only its weighted_metrics, which attnkit does not have, are weighted).
// Weights of 1 train bit for bit as no weights.
//
// A batch whose loss is not finite updates nothing. With a TerminateOnNaN callback, fit then ends
// at once, without an error, returning the history of the epochs completed; without one, it stops
// with an error naming the epoch and the batch, so that a NaN never trains on silently. A callback
// that sets stop_training after a batch ends that epoch there (its end-of-epoch work runs on the
// batches done) and then fit, as in Keras.
#pragma once

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "attnkit/callbacks.h"
#include "attnkit/layer.h"
#include "attnkit/optimizers.h"

namespace attnkit {

struct CompileOptions {
  // Adam() unless given.
  ATTNKIT_ARG(std::shared_ptr<Optimizer>, optimizer);
  // "categorical_crossentropy" or "binary_crossentropy", for every output.
  ATTNKIT_ARG(std::string, loss) = "categorical_crossentropy";
  // "accuracy" (categorical or binary, after the loss), or none.
  ATTNKIT_ARG(std::vector<std::string>, metrics) = std::vector<std::string>{"accuracy"};
};

using OutputStream = std::ostream*;
// Keras's class_weight: a weight for each class index.
using ClassWeights = std::map<std::int64_t, double>;

struct FitOptions {
  ATTNKIT_ARG(std::int64_t, batch_size) = 32;
  ATTNKIT_ARG(int, epochs) = 1;
  ATTNKIT_ARG(double, validation_split) = 0.0;
  ATTNKIT_ARG(bool, shuffle) = true;
  // Seeds the shuffles and dropout: the same seed gives the same training.
  ATTNKIT_ARG(std::uint64_t, seed) = 0;
  // 0: silent; 1: a progress line per epoch.
  ATTNKIT_ARG(int, verbose) = 1;
  ATTNKIT_ARG(std::vector<std::shared_ptr<Callback>>, callbacks);
  // Where progress goes; standard output unless given.
  ATTNKIT_ARG(OutputStream, output) = nullptr;
  // Keras's sample_weight: a tensor [samples] (any dtype) of finite, non-negative weights, one
  // for every sample of x and y; undefined: none. validation_split splits it with x and y, and
  // the validation loss ("val_loss") is weighted by the held-out weights.
  ATTNKIT_ARG(Tensor, sample_weight);
  // Keras's class_weight, for a model with one output: every training sample weighs as its
  // class, the arg-max of its target row (one-hot or categorical) or, for a target [samples, 1],
  // its value rounded (0 or 1 for a binary target). Every class found must have a weight, each
  // finite and non-negative. It weighs the training batches only, never the validation loss.
  // Giving both class_weight and sample_weight is an error, as in Keras.
  ATTNKIT_ARG(ClassWeights, class_weight);
  // A folder where fit keeps the state of training after every epoch, written atomically
  // (training_state.safetensors: the weights, the optimizer's slots and step count, the
  // generator of shuffles and dropout, the history and the callbacks' state); empty: none.
  // The BackupAndRestore callback (callbacks.h) is the same mechanism under Keras's name.
  ATTNKIT_ARG(std::string, checkpoint);
  // With a checkpoint that holds a state: continue from it (the epochs it completed are not run
  // again, and the run ends as an uninterrupted one would); without one, start from the top.
  // The state must come from a fit of the same model on the same samples, batch size,
  // validation split, shuffling, seed and sample weights (an error lists what differs).
  ATTNKIT_ARG(bool, resume) = false;
};

// The file in which fit keeps the state of training in a checkpoint folder.
std::string training_state_path(const std::string& checkpoint_folder);

// Per-epoch logs: "loss", "accuracy", "val_loss", "val_accuracy", "lr"; and each epoch's time.
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<double> epoch_seconds;
  int epochs() const { return static_cast<int>(epoch_seconds.size()); }
};

class Model {
 public:
  // A model from its inputs to its outputs. The parameters of layers not yet built are created
  // here, drawn from a generator seeded with `seed`.
  Model(const std::vector<SymbolicTensor>& inputs, const std::vector<SymbolicTensor>& outputs,
        const std::string& name = "model", std::uint64_t seed = 0);
  Model(const SymbolicTensor& input, const SymbolicTensor& output, const std::string& name = "model",
        std::uint64_t seed = 0);
  virtual ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // ---- structure
  const std::string& name() const { return name_; }
  const std::vector<SymbolicTensor>& inputs() const { return inputs_; }
  const std::vector<SymbolicTensor>& outputs() const { return outputs_; }
  // The layers in the order they run (inputs first), each once.
  std::vector<LayerPtr> layers() const;
  LayerPtr get_layer(const std::string& name) const;
  // The inputs and outputs of a layer's first call in this model (Keras's layer.input and
  // layer.output), to build models that read the inside of this one.
  std::vector<SymbolicTensor> layer_inputs(const std::string& name) const;
  std::vector<SymbolicTensor> layer_outputs(const std::string& name) const;
  // Every parameter, named "<layer>/<parameter>" (the names of saved weights).
  std::vector<std::pair<std::string, Parameter*>> named_parameters() const;
  std::int64_t count_params() const;
  std::int64_t count_trainable_params() const;
  // Keras's summary: layers, output shapes, parameter counts, and the totals.
  std::string summary() const;

  // Which path (ops/attention.h) each attention op of the model takes on `device` for batches of
  // `batch_size` rows: (layer name, support), from the layers' attention_support.
  std::vector<std::pair<std::string, ops::AttentionSupport>> attention_paths(Device device,
                                                                             std::int64_t batch_size) const;
  // Copies of all parameter values, and putting them back (as Keras's get/set_weights).
  Tensors get_weights() const;
  void set_weights(const Tensors& weights);

  // ---- where it runs
  // Moves every parameter (and the optimizer's slots) to `device`; fit, evaluate and predict then
  // run there, taking their inputs from any device (predict returns cpu tensors). A model
  // starts on the cpu.
  void to(Device device);
  Device device() const { return device_; }

  // ---- running the graph
  // Computes the outputs and keeps what backward() needs.
  Tensors forward(const Tensors& inputs, const CallContext& context);
  // Backpropagates gradients of the outputs of the last forward(); adds parameter gradients.
  void backward(const Tensors& output_grads);

  // ---- training
  void compile(const CompileOptions& options = {});
  History fit(const Tensors& x, const Tensors& y, const FitOptions& options = {});
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  // Loss and metrics over the data, in inference mode: {"loss": ..., "accuracy": ...}. The loss
  // is weighted by sample_weight ([samples], as in FitOptions) when given, the accuracy never.
  // Keras's evaluate takes sample_weight and no class_weight, and so does this one.
  Logs evaluate(const Tensors& x, const Tensors& y, std::int64_t batch_size = 32,
                const Tensor& sample_weight = Tensor());
  Logs evaluate(const Tensor& x, const Tensor& y, std::int64_t batch_size = 32,
                const Tensor& sample_weight = Tensor());
  Tensors predict(const Tensors& x, std::int64_t batch_size = 32);
  Tensor predict(const Tensor& x, std::int64_t batch_size = 32);
  Optimizer& optimizer() const;
  // Set by a callback to end fit(): after the current epoch, or after the current batch when set
  // in on_train_batch_end (see the top of this file).
  bool stop_training = false;

  // ---- saving (serialization.cpp)
  // The weights as safetensors, named as in named_parameters().
  void save_weights(const std::string& path) const;
  // Loads weights saved from a model of the same structure; names, shapes and dtypes must match.
  void load_weights(const std::string& path);
  // The structure as JSON: layers with their configs, and the graph.
  Json to_config() const;
  static std::unique_ptr<Model> from_config(const Json& config);
  // prefix.json (structure) and prefix.safetensors (weights), each written atomically.
  void save(const std::string& prefix) const;
  static std::unique_ptr<Model> load(const std::string& prefix);

 protected:
  Model(const std::string& name, std::uint64_t seed);
  // (Re)builds the graph from inputs to outputs, creating the parameters of new layers.
  void set_graph(const std::vector<SymbolicTensor>& inputs, const std::vector<SymbolicTensor>& outputs);

 private:
  struct Graph;
  struct Pass;
  struct Compiled;
  class FitLoop;  // one call of fit (training.cpp)
  // One batch: the outputs; with targets y also the loss (weighted by `sample_weights`, one per
  // sample, unless empty) and metrics into `logs`, and when training the update.
  Tensors run_batch(const Tensors& x, const Tensors* y, const std::vector<double>& sample_weights, bool training,
                    Generator* generator, Logs* logs);
  // The log of output k's accuracy: "accuracy", or "<layer>_accuracy" when there are several.
  std::string accuracy_key(std::size_t output) const;
  Logs evaluate_batches(const Tensors& x, const Tensors& y, std::int64_t batch_size,
                        const std::vector<double>& sample_weights);
  // forward() and backward() on a pass of their own (model.cpp).
  Tensors forward_pass(Pass& pass, const Tensors& inputs, const CallContext& context);
  void backward_pass(Pass& pass, const Tensors& output_grads);
  // run_batch's work on rows of a batch, and on a batch as two shards of rows, on two threads when
  // there are (training.cpp).
  struct RowsResult;
  RowsResult run_rows(Pass& pass, const Tensors& x, const Tensors& y, const std::vector<double>& sample_weights,
                      double share, const CallContext& context);
  bool runs_in_shards(const Tensors& x, const Tensors* y) const;
  RowsResult run_shards(const Tensors& x, const Tensors& y, const std::vector<double>& sample_weights,
                        const CallContext& context);

  std::string name_;
  std::uint64_t seed_;
  std::vector<SymbolicTensor> inputs_, outputs_;
  std::unique_ptr<Graph> graph_;
  std::unique_ptr<Compiled> compiled_;
  Device device_ = Device::cpu();
};

// A linear stack of layers from one input.
class Sequential : public Model {
 public:
  explicit Sequential(const Shape& input_shape, DType input_dtype = DType::f32,
                      const std::string& name = "sequential", std::uint64_t seed = 0);
  Sequential& add(const LayerRef& layer);
};

}  // namespace attnkit
