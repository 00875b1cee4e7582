// Model::compile, fit, evaluate and predict: the training loop, its losses (weighted per sample or
// not) and metrics. fit runs in named steps (Model::FitLoop): the validation split, each epoch's
// batches, and the end of each epoch.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <numeric>
#include <optional>

#include "attnkit/ops/elementwise.h"
#include "attnkit/ops/loss.h"
#include "attnkit/ops/shape.h"
#include "batch_shards.h"
#include "cpu/parallel.h"
#include "model_graph.h"
#include "sha256.h"
#include "progress_bar.h"
#include "training_state.h"

namespace attnkit {

// ------------------------------------------------------------------ compile

void Model::compile(const CompileOptions& options) {
  auto compiled = std::make_unique<Compiled>();
  compiled->optimizer = options.optimizer() ? options.optimizer() : Adam();
  if (options.loss() == "categorical_crossentropy")
    compiled->loss = LossKind::categorical_crossentropy;
  else if (options.loss() == "binary_crossentropy")
    compiled->loss = LossKind::binary_crossentropy;
  else
    ATTNKIT_FAIL("compile: unknown loss '", options.loss(),
                 "' (expected categorical_crossentropy or binary_crossentropy)");
  compiled->accuracy = false;
  for (const std::string& metric : options.metrics()) {
    ATTNKIT_CHECK(metric == "accuracy" || metric == "acc", "compile: unknown metric '", metric,
                  "' (expected accuracy)");
    compiled->accuracy = true;
  }
  compiled_ = std::move(compiled);
}

Optimizer& Model::optimizer() const {
  ATTNKIT_CHECK(compiled_ != nullptr, "model '", name_, "' is not compiled: call compile() first");
  return *compiled_->optimizer;
}

// ------------------------------------------------------------------ losses and metrics

namespace {

struct LossValue {
  double loss = 0;
  Tensor grad;  // d loss / d prediction
};

// The weights a loss op takes for one output (see ops/loss.h): one per sample for the binary loss;
// for the categorical loss one per row of the class axis, a sequence output's rows repeating
// their sample's weight. In the output's dtype, on its device; undefined when unweighted.
Tensor loss_weights(LossKind kind, const Tensor& pred, const std::vector<double>& sample_weights) {
  if (sample_weights.empty()) return Tensor();
  const std::int64_t rows_per_sample =
      kind == LossKind::categorical_crossentropy ? pred.numel() / pred.size(-1) / pred.size(0) : 1;
  std::vector<double> weights;
  for (const double weight : sample_weights)
    weights.insert(weights.end(), static_cast<std::size_t>(rows_per_sample), weight);
  return Tensor::from_vector(weights, {static_cast<std::int64_t>(weights.size())})
      .to(pred.dtype())
      .to(pred.device());
}

// The loss of one output against its targets, as Keras reduces it ("sum_over_batch_size"):
// categorical over the rows of the class axis (every time step of a sequence output is a row),
// binary over all elements; each weighted by its sample's weight when there are weights.
// `share`: the part of the batch that pred holds (a shard's rows over the batch's), by which its
// mean loss and gradient count in the batch's.
LossValue loss_of(LossKind kind, const Tensor& pred, const Tensor& target, const std::vector<double>& sample_weights,
                  bool with_grad, double share = 1.0) {
  LossValue v;
  const Tensor weights = loss_weights(kind, pred, sample_weights);
  if (kind == LossKind::categorical_crossentropy) {
    const std::int64_t classes = pred.size(-1);
    const Tensor p = pred.reshape({-1, classes}), t = target.reshape({-1, classes});
    v.loss = ops::categorical_crossentropy(p, t, false, weights).to(Device::cpu()).item();
    if (with_grad) v.grad = ops::categorical_crossentropy_backward(p, t, false, share, weights).reshape(pred.shape());
  } else {
    v.loss = ops::binary_crossentropy(pred, target, false, weights).to(Device::cpu()).item();
    if (with_grad) v.grad = ops::binary_crossentropy_backward(pred, target, false, share, weights);
  }
  v.loss *= share;
  return v;
}

// Keras's accuracy for the loss: the arg-max class matches (categorical, per row), or the
// prediction and the target fall on the same side of 0.5 (binary, per element). Unweighted, as
// Keras 3 computes the metrics given to compile(metrics=...).
double accuracy_of(LossKind kind, const Tensor& pred, const Tensor& target) {
  const std::vector<float> p = pred.to_vector<float>(), t = target.to_vector<float>();
  std::int64_t correct = 0, total = 0;
  if (kind == LossKind::categorical_crossentropy) {
    const std::size_t classes = static_cast<std::size_t>(pred.size(-1));
    for (std::size_t row = 0; row * classes < p.size(); ++row, ++total) {
      const auto pb = p.begin() + static_cast<std::ptrdiff_t>(row * classes);
      const auto tb = t.begin() + static_cast<std::ptrdiff_t>(row * classes);
      correct += std::max_element(pb, pb + static_cast<std::ptrdiff_t>(classes)) - pb ==
                 std::max_element(tb, tb + static_cast<std::ptrdiff_t>(classes)) - tb;
    }
  } else {
    for (std::size_t i = 0; i < p.size(); ++i, ++total) correct += (p[i] > 0.5f) == (t[i] > 0.5f);
  }
  return total == 0 ? 0.0 : double(correct) / double(total);
}

// Rows `order[begin, end)` of x, copied into a new tensor.
Tensor take_rows(const Tensor& x, const std::vector<std::int64_t>& order, std::size_t begin, std::size_t end) {
  Shape shape = x.shape();
  shape[0] = static_cast<std::int64_t>(end - begin);
  Tensor out = Tensor::empty(shape, x.dtype());
  const std::size_t row_bytes = x.size(0) == 0 ? 0 : x.nbytes() / static_cast<std::size_t>(x.size(0));
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (std::size_t i = begin; i < end; ++i)
    std::memcpy(dst + (i - begin) * row_bytes, src + static_cast<std::size_t>(order[i]) * row_bytes, row_bytes);
  return out;
}

// Weights `order[begin, end)`; none when there are none.
std::vector<double> take_weights(const std::vector<double>& weights, const std::vector<std::int64_t>& order,
                                 std::size_t begin, std::size_t end) {
  std::vector<double> taken;
  if (weights.empty()) return taken;
  for (std::size_t i = begin; i < end; ++i) taken.push_back(weights[static_cast<std::size_t>(order[i])]);
  return taken;
}

// Checks that x and y fit the model and share their sample count; returns it.
std::int64_t sample_count(const std::string& model, const Tensors& x, const Tensors* y, std::size_t inputs,
                          std::size_t outputs) {
  ATTNKIT_CHECK(x.size() == inputs, "model '", model, "' takes ", inputs, " inputs, got ", x.size());
  if (y != nullptr)
    ATTNKIT_CHECK(y->size() == outputs, "model '", model, "' has ", outputs, " outputs, got ", y->size(), " targets");
  ATTNKIT_CHECK(x[0].defined() && x[0].dim() >= 1, "model '", model, "': input 0 is ", x[0].describe());
  const std::int64_t n = x[0].size(0);
  auto check = [&](const Tensor& t, const char* what, std::size_t i) {
    ATTNKIT_CHECK(t.defined() && t.dim() >= 1 && t.size(0) == n, "model '", model, "': ", what, " ", i, " ",
                  t.describe(), " does not have the ", n, " samples of input 0");
  };
  for (std::size_t i = 0; i < x.size(); ++i) check(x[i], "input", i);
  if (y != nullptr)
    for (std::size_t i = 0; i < y->size(); ++i) check((*y)[i], "target", i);
  return n;
}

// sample_weight's values, checked: one finite, non-negative weight per sample. None when it is
// undefined.
std::vector<double> sample_weights_of(const char* caller, const Tensor& sample_weight, std::int64_t samples) {
  if (!sample_weight.defined()) return {};
  ATTNKIT_CHECK(sample_weight.dim() == 1 && sample_weight.size(0) == samples, caller,
                ": sample_weight must hold one weight per sample, [", samples, "], got ", sample_weight.describe());
  const std::vector<double> weights = sample_weight.to_vector<double>();
  for (std::size_t i = 0; i < weights.size(); ++i)
    ATTNKIT_CHECK(std::isfinite(weights[i]) && weights[i] >= 0, caller, ": sample_weight[", i, "] is ", weights[i],
                  ": a weight must be finite and non-negative");
  return weights;
}

// Keras's class_weight turned into one weight per sample: the weight of the sample's class, which
// is the arg-max of its target row (one-hot or categorical), or the rounded value of a single
// (binary) target column.
std::vector<double> class_sample_weights(const ClassWeights& class_weight, const Tensor& target) {
  for (const auto& [label, weight] : class_weight)
    ATTNKIT_CHECK(std::isfinite(weight) && weight >= 0, "fit: class_weight[", label, "] is ", weight,
                  ": a weight must be finite and non-negative");
  ATTNKIT_CHECK(target.dim() == 2, "fit: class_weight needs targets [samples, classes] (or [samples, 1] for a binary "
                "target), got ", target.describe());
  const std::size_t columns = static_cast<std::size_t>(target.size(1));
  const std::vector<double> y = target.to_vector<double>();
  std::vector<double> weights(static_cast<std::size_t>(target.size(0)));
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double* row = y.data() + i * columns;
    ATTNKIT_CHECK(std::isfinite(row[0]), "fit: the target of training sample ", i, " is ", row[0]);
    // std::nearbyint rounds halves to even, as numpy's round in Keras does.
    const std::int64_t label = columns == 1 ? static_cast<std::int64_t>(std::nearbyint(row[0]))
                                            : std::max_element(row, row + columns) - row;
    const auto found = class_weight.find(label);
    ATTNKIT_CHECK(found != class_weight.end(), "fit: class_weight has no weight for class ", label,
                  " (the class of training sample ", i, ")");
    weights[i] = found->second;
  }
  return weights;
}

// "nan", "inf" or "-inf" (a printed NaN may carry a sign).
std::string non_finite(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

}  // namespace

std::string Model::accuracy_key(std::size_t output) const {
  return outputs_.size() == 1 ? "accuracy" : outputs_[output].node()->layer->name() + "_accuracy";
}

// ------------------------------------------------------------------ one batch

// What rows of a batch gave: the outputs, and the loss and each output's accuracy, each times the
// rows' share of the batch.
struct Model::RowsResult {
  Tensors outputs;
  double loss = 0;
  std::vector<double> accuracies;
};

Tensors Model::run_batch(const Tensors& x_given, const Tensors* y_given, const std::vector<double>& sample_weights,
                         bool training, Generator* generator, Logs* logs) {
  // The batch moves to the model's device (a no-op when it is there).
  Tensors x, y;
  for (const Tensor& t : x_given) x.push_back(t.to(device_));
  if (y_given != nullptr)
    for (const Tensor& t : *y_given) y.push_back(t.to(device_));
  CallContext context;
  context.training = training;
  context.generator = generator;
  if (y_given == nullptr) return forward(x, context);
  const RowsResult r = runs_in_shards(x, &y) ? run_shards(x, y, sample_weights, context)
                                             : run_rows(graph_->last_pass, x, y, sample_weights, 1.0, context);
  for (std::size_t k = 0; k < r.accuracies.size(); ++k) (*logs)[accuracy_key(k)] = r.accuracies[k];
  (*logs)["loss"] = r.loss;
  if (!std::isfinite(r.loss)) return r.outputs;  // no update: the caller says where, and stops
  if (training) compiled_->optimizer->step(graph_->parameters);
  return r.outputs;
}

// The forward pass of rows of a batch, their loss against the targets y and, when training with a
// finite loss, the backward pass, whose parameter gradients Layer::accumulate puts where it does
// on this thread. `share`: the rows' part of the batch, by which their loss counts in its mean.
Model::RowsResult Model::run_rows(Pass& pass, const Tensors& x, const Tensors& y,
                                  const std::vector<double>& sample_weights, double share, const CallContext& context) {
  RowsResult r;
  r.outputs = forward_pass(pass, x, context);
  ATTNKIT_CHECK(compiled_ != nullptr, "model '", name_, "' is not compiled: call compile() first");
  Tensors grads;
  for (std::size_t k = 0; k < r.outputs.size(); ++k) {
    const Tensor &output = r.outputs[k], &target = y[k];
    ATTNKIT_CHECK(target.shape() == output.shape() && target.dtype() == output.dtype(), "model '", name_,
                  "': target ", k, " must match output ", k, " ", output.describe(), ", got ", target.describe());
    const LossValue v = loss_of(compiled_->loss, output, target, sample_weights, context.training, share);
    r.loss += v.loss;
    grads.push_back(v.grad);
    if (compiled_->accuracy) r.accuracies.push_back(share * accuracy_of(compiled_->loss, output, target));
  }
  if (context.training && std::isfinite(r.loss)) backward_pass(pass, grads);
  return r;
}

// ------------------------------------------------------------------ one batch in shards

namespace {

// The fewest rows a shard is given: below this a thread's share of the graph is too little work.
constexpr std::int64_t kMinimumShardRows = 8;

}  // namespace

// A batch with targets on the CPU runs as two shards of rows, each on a thread of its own when
// attnkit has two (batch_shards.h); with one thread the shards run in turn, so that training
// gives the same numbers with any number of threads. Batches that the checks of run_rows would
// refuse stay whole, so that its errors name the batch's shapes.
bool Model::runs_in_shards(const Tensors& x, const Tensors* y) const {
  if (y == nullptr || !device_.is_cpu() || compiled_ == nullptr || x.empty() || x[0].dim() == 0 ||
      x[0].size(0) < 2 * kMinimumShardRows || y->size() != outputs_.size())
    return false;
  const std::int64_t rows = x[0].size(0);
  for (const Tensor& t : x)
    if (t.dim() == 0 || t.size(0) != rows) return false;
  for (std::size_t k = 0; k < outputs_.size(); ++k) {
    const Tensor& target = (*y)[k];
    const Shape& expected = outputs_[k].shape();
    if (target.dtype() != outputs_[k].dtype() || target.dim() != 1 + static_cast<std::int64_t>(expected.size()) ||
        target.size(0) != rows)
      return false;
    for (std::size_t d = 0; d < expected.size(); ++d)
      if (expected[d] >= 0 && target.size(static_cast<std::int64_t>(d) + 1) != expected[d]) return false;
  }
  return true;
}

Model::RowsResult Model::run_shards(const Tensors& x, const Tensors& y, const std::vector<double>& sample_weights,
                                    const CallContext& context) {
  const std::int64_t rows = x[0].size(0);
  struct Shard {
    std::int64_t begin, end;
    Pass pass;
    ShardGradients grads;
    RowsResult result;
  };
  // The second shard starts at a multiple of 4 rows (CallContext).
  Shard shards[2];
  shards[0].begin = 0;
  shards[0].end = shards[1].begin = rows / 2 / 4 * 4;
  shards[1].end = rows;
  std::optional<ShardDraws> draws;
  if (context.generator != nullptr) draws.emplace(*context.generator);

  auto run = [&](Shard& shard) {
    Tensors xs, ys;
    for (const Tensor& t : x) xs.push_back(t.slice(shard.begin, shard.end));
    for (const Tensor& t : y) ys.push_back(t.slice(shard.begin, shard.end));
    const std::vector<double> weights =
        sample_weights.empty() ? sample_weights
                               : std::vector<double>(sample_weights.begin() + shard.begin, sample_weights.begin() + shard.end);
    CallContext shard_context = context;
    shard_context.shard_begin = shard.begin;
    shard_context.batch_rows = rows;
    shard_context.draws = draws ? &*draws : nullptr;
    const GradientSink sink(shard.grads);
    shard.result = run_rows(shard.pass, xs, ys, weights, double(shard.end - shard.begin) / double(rows), shard_context);
  };
  cpu::run_both([&] { run(shards[0]); }, [&] { run(shards[1]); });

  RowsResult r;
  r.loss = shards[0].result.loss + shards[1].result.loss;
  for (std::size_t k = 0; k < shards[0].result.outputs.size(); ++k)
    r.outputs.push_back(ops::concat({shards[0].result.outputs[k], shards[1].result.outputs[k]}, 0));
  for (std::size_t k = 0; k < shards[0].result.accuracies.size(); ++k)
    r.accuracies.push_back(shards[0].result.accuracies[k] + shards[1].result.accuracies[k]);
  if (!std::isfinite(r.loss)) return r;
  // The shards' gradients, added in shard order.
  for (Parameter* p : graph_->parameters) {
    Tensor sum;
    for (Shard& shard : shards) {
      const auto found = shard.grads.find(p);
      if (found != shard.grads.end()) sum = sum.defined() ? ops::add(sum, found->second) : found->second;
    }
    if (sum.defined()) p->grad = p->grad.defined() ? ops::add(p->grad, sum) : sum;
  }
  return r;
}

// ------------------------------------------------------------------ fit, in steps

// One call of fit: the data split for validation, what runs through the epochs (the generator of
// shuffles and dropout, the history, the checkpoint), and the steps of an epoch. As a class nested
// in Model it reaches run_batch and the compiled loss.
class Model::FitLoop {
 public:
  FitLoop(Model& model, const Tensors& x, const Tensors& y, const FitOptions& options);
  History run();

 private:
  using Clock = std::chrono::steady_clock;
  void split_validation(const Tensors& x, const Tensors& y);
  void weigh_samples();
  void choose_checkpoint();
  int resume_from_checkpoint();
  bool train_epoch(int epoch, detail::ProgressBar& bar, Logs& logs);
  void end_epoch(int epoch, detail::ProgressBar& bar, Logs& logs, Clock::time_point start);

  Model& model_;
  const FitOptions& options_;
  std::int64_t samples_ = 0, train_samples_ = 0, steps_ = 0;
  Tensors x_train_, y_train_, x_val_, y_val_;
  std::vector<double> train_weights_, val_weights_;  // per sample; empty: unweighted
  std::vector<std::int64_t> order_;                   // the training samples in this epoch's order
  Generator generator_;
  std::vector<std::string> train_keys_, all_keys_;  // the logs the progress line shows
  std::ostream& out_;
  bool terminal_;
  std::string checkpoint_;  // the folder of the state of training; empty: none
  bool resume_ = false;
  detail::TrainingState state_;
  History history_;
};

Model::FitLoop::FitLoop(Model& model, const Tensors& x, const Tensors& y, const FitOptions& options)
    : model_(model), options_(options), generator_(options.seed()),
      out_(options.output() != nullptr ? *options.output() : std::cout),
      terminal_(options.output() == nullptr && isatty(STDOUT_FILENO)) {
  ATTNKIT_CHECK(model.compiled_ != nullptr, "model '", model.name_, "' is not compiled: call compile() first");
  samples_ = sample_count(model.name_, x, &y, model.inputs_.size(), model.outputs_.size());
  ATTNKIT_CHECK(options.batch_size() > 0, "fit: batch_size must be positive, got ", options.batch_size());
  ATTNKIT_CHECK(options.epochs() >= 0, "fit: epochs must not be negative, got ", options.epochs());
  split_validation(x, y);
  weigh_samples();
  order_.resize(static_cast<std::size_t>(train_samples_));
  steps_ = (train_samples_ + options.batch_size() - 1) / options.batch_size();
  train_keys_ = {"loss"};
  if (model.compiled_->accuracy)
    for (std::size_t k = 0; k < model.outputs_.size(); ++k) train_keys_.push_back(model.accuracy_key(k));
  all_keys_ = train_keys_;
  for (const std::string& key : train_keys_) all_keys_.push_back("val_" + key);
  choose_checkpoint();
  // The run a checkpoint belongs to: a resumed fit must repeat it exactly.
  state_.run = {{"model", model.name_},
                {"samples", samples_},
                {"batch_size", options.batch_size()},
                {"validation_split", options.validation_split()},
                {"shuffle", options.shuffle()},
                {"seed", options.seed()}};
  if (!train_weights_.empty() || !val_weights_.empty()) {
    std::vector<double> weights = train_weights_;
    weights.insert(weights.end(), val_weights_.begin(), val_weights_.end());
    state_.run["sample_weights_sha256"] = sha256_hex(weights.data(), weights.size() * sizeof(double));
  }
}

// Keras: the last part of the data, as given, is the validation set.
void Model::FitLoop::split_validation(const Tensors& x, const Tensors& y) {
  const double split = options_.validation_split();
  ATTNKIT_CHECK(split >= 0 && split < 1, "fit: validation_split must be in [0, 1), got ", split);
  train_samples_ = split > 0 ? static_cast<std::int64_t>(double(samples_) * (1.0 - split)) : samples_;
  ATTNKIT_CHECK(train_samples_ > 0 && (split == 0 || train_samples_ < samples_), "fit: validation_split ", split,
                " of ", samples_, " samples leaves ", train_samples_, " for training and ", samples_ - train_samples_,
                " for validation");
  for (const Tensor& t : x) {
    x_train_.push_back(t.slice(0, train_samples_));
    x_val_.push_back(t.slice(train_samples_, samples_));
  }
  for (const Tensor& t : y) {
    y_train_.push_back(t.slice(0, train_samples_));
    y_val_.push_back(t.slice(train_samples_, samples_));
  }
}

// The weights of the training and validation samples, as Keras gives them: sample_weight is
// split with x and y; class_weight weighs the training samples only.
void Model::FitLoop::weigh_samples() {
  ATTNKIT_CHECK(options_.class_weight().empty() || !options_.sample_weight().defined(),
                "fit: give class_weight or sample_weight, not both");
  const std::vector<double> weights = sample_weights_of("fit", options_.sample_weight(), samples_);
  if (!weights.empty()) {
    train_weights_.assign(weights.begin(), weights.begin() + train_samples_);
    val_weights_.assign(weights.begin() + train_samples_, weights.end());
  }
  if (!options_.class_weight().empty()) {
    ATTNKIT_CHECK(y_train_.size() == 1, "fit: class_weight needs a model with one output, model '", model_.name_,
                  "' has ", y_train_.size(), " (give sample_weight instead)");
    train_weights_ = class_sample_weights(options_.class_weight(), y_train_[0]);
  }
}

// The folder of the state of training: FitOptions::checkpoint, or a BackupAndRestore callback's
// (which always resumes).
void Model::FitLoop::choose_checkpoint() {
  checkpoint_ = options_.checkpoint();
  resume_ = options_.resume();
  for (const auto& callback : options_.callbacks()) {
    const auto* backup = dynamic_cast<const detail::BackupAndRestoreCallback*>(callback.get());
    if (backup == nullptr) continue;
    ATTNKIT_CHECK(checkpoint_.empty(), "fit: the state of training would go to '", checkpoint_, "' and to '",
                  backup->backup_dir(), "': give FitOptions::checkpoint or one BackupAndRestore callback");
    checkpoint_ = backup->backup_dir();
    resume_ = true;
  }
}

// The epoch to start from: 0, or the first one a checkpoint did not complete (whose state,
// weights and callbacks it restores).
int Model::FitLoop::resume_from_checkpoint() {
  if (checkpoint_.empty() || !resume_ || !detail::load_training_state(checkpoint_, model_, options_, state_)) return 0;
  history_ = state_.history;
  generator_.set_offset(state_.generator_offset);
  model_.stop_training = state_.stopped;
  return state_.epochs_completed;
}

History Model::FitLoop::run() {
  model_.stop_training = false;
  for (const auto& callback : options_.callbacks()) callback->on_train_begin(model_);
  for (int epoch = resume_from_checkpoint(); epoch < options_.epochs() && !model_.stop_training; ++epoch) {
    const Clock::time_point start = Clock::now();
    for (const auto& callback : options_.callbacks()) callback->on_epoch_begin(model_, epoch);
    if (options_.verbose() > 0) out_ << "Epoch " << epoch + 1 << "/" << options_.epochs() << "\n" << std::flush;
    detail::ProgressBar bar(out_, terminal_, steps_);
    Logs logs;
    if (!train_epoch(epoch, bar, logs)) break;
    end_epoch(epoch, bar, logs, start);
  }
  for (const auto& callback : options_.callbacks()) callback->on_train_end(model_);
  return history_;
}

// The epoch's batches, in a fresh shuffle; `logs` receives the running averages over the samples
// seen, each batch counting by its size. A callback that sets stop_training ends the epoch after
// its batch, as in Keras. A batch whose loss is not finite updates nothing; unless a callback
// (TerminateOnNaN) stopped training on it, which ends the epoch at once and unrecorded (false),
// it is an error.
bool Model::FitLoop::train_epoch(int epoch, detail::ProgressBar& bar, Logs& logs) {
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle())
    for (std::size_t i = order_.size(); i > 1; --i)  // Fisher-Yates
      std::swap(order_[i - 1], order_[generator_.uniform_int(i)]);
  const std::size_t batch = static_cast<std::size_t>(options_.batch_size());
  Logs sums;
  for (std::int64_t step = 0; step < steps_; ++step) {
    const std::size_t begin = static_cast<std::size_t>(step) * batch;
    const std::size_t end = std::min(order_.size(), begin + batch);
    Tensors xb, yb;
    for (const Tensor& t : x_train_) xb.push_back(take_rows(t, order_, begin, end));
    for (const Tensor& t : y_train_) yb.push_back(take_rows(t, order_, begin, end));
    Logs batch_logs;
    model_.run_batch(xb, &yb, take_weights(train_weights_, order_, begin, end), true, &generator_, &batch_logs);
    for (const auto& callback : options_.callbacks()) callback->on_train_batch_end(model_, epoch, step, batch_logs);
    const double loss = batch_logs.at("loss");
    if (!std::isfinite(loss)) {
      ATTNKIT_CHECK(model_.stop_training, "model '", model_.name_, "': the loss is ", non_finite(loss), " at epoch ",
                    epoch + 1, ", batch ", step + 1, " of ", steps_, ": training stopped",
                    checkpoint_.empty()
                        ? std::string()
                        : " (the checkpoint holds the state after epoch " + std::to_string(epoch) + ")");
      return false;
    }
    for (const auto& [key, value] : batch_logs) sums[key] += value * double(end - begin);
    for (const auto& [key, value] : sums) logs[key] = value / double(end);
    if (options_.verbose() > 0) bar.update(step + 1, logs, train_keys_);
    if (model_.stop_training) break;
  }
  return true;
}

// Validation, the learning rate, the progress line's end, the callbacks, the history and the
// checkpoint.
void Model::FitLoop::end_epoch(int epoch, detail::ProgressBar& bar, Logs& logs, Clock::time_point start) {
  if (train_samples_ < samples_)
    for (const auto& [key, value] : model_.evaluate_batches(x_val_, y_val_, options_.batch_size(), val_weights_))
      logs["val_" + key] = value;
  ATTNKIT_CHECK(train_samples_ == samples_ || std::isfinite(logs["val_loss"]), "model '", model_.name_,
                "': the validation loss is ", non_finite(logs["val_loss"]), " after epoch ", epoch + 1,
                ": training stopped");
  logs["lr"] = model_.compiled_->optimizer->learning_rate();
  history_.epoch_seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  if (options_.verbose() > 0) bar.finish(logs, all_keys_);
  for (const auto& callback : options_.callbacks()) callback->on_epoch_end(model_, epoch, logs);
  for (const auto& [key, value] : logs) history_.history[key].push_back(value);
  if (!checkpoint_.empty()) {
    state_.epochs_completed = epoch + 1;
    state_.stopped = model_.stop_training;
    state_.generator_offset = generator_.offset();
    state_.history = history_;
    detail::save_training_state(checkpoint_, model_, options_, state_);
  }
}

// ------------------------------------------------------------------ fit, evaluate, predict

History Model::fit(const Tensors& x, const Tensors& y, const FitOptions& options) {
  return FitLoop(*this, x, y, options).run();
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  return fit(Tensors{x}, Tensors{y}, options);
}

Logs Model::evaluate(const Tensors& x, const Tensors& y, std::int64_t batch_size, const Tensor& sample_weight) {
  const std::int64_t n = sample_count(name_, x, &y, inputs_.size(), outputs_.size());
  ATTNKIT_CHECK(batch_size > 0, "evaluate: batch_size must be positive, got ", batch_size);
  return evaluate_batches(x, y, batch_size, sample_weights_of("evaluate", sample_weight, n));
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, std::int64_t batch_size, const Tensor& sample_weight) {
  return evaluate(Tensors{x}, Tensors{y}, batch_size, sample_weight);
}

// The loss and metrics of each batch, averaged with the batch's size as its weight.
Logs Model::evaluate_batches(const Tensors& x, const Tensors& y, std::int64_t batch_size,
                             const std::vector<double>& sample_weights) {
  const std::int64_t n = x[0].size(0);
  Logs sums;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(n, begin + batch_size);
    Tensors xb, yb;
    for (const Tensor& t : x) xb.push_back(t.slice(begin, end));
    for (const Tensor& t : y) yb.push_back(t.slice(begin, end));
    const std::vector<double> wb = sample_weights.empty() ? std::vector<double>()
                                                          : std::vector<double>(sample_weights.begin() + begin,
                                                                                sample_weights.begin() + end);
    Logs batch_logs;
    run_batch(xb, &yb, wb, false, nullptr, &batch_logs);
    for (const auto& [key, value] : batch_logs) sums[key] += value * double(end - begin);
  }
  for (auto& entry : sums) entry.second /= double(n);
  return sums;
}

Tensors Model::predict(const Tensors& x, std::int64_t batch_size) {
  const std::int64_t n = sample_count(name_, x, nullptr, inputs_.size(), outputs_.size());
  ATTNKIT_CHECK(batch_size > 0, "predict: batch_size must be positive, got ", batch_size);
  std::vector<Tensors> pieces(outputs_.size());
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    Tensors xb;
    for (const Tensor& t : x) xb.push_back(t.slice(begin, std::min(n, begin + batch_size)));
    const Tensors out = run_batch(xb, nullptr, {}, false, nullptr, nullptr);
    for (std::size_t k = 0; k < out.size(); ++k) pieces[k].push_back(out[k].to(Device::cpu()));
  }
  Tensors outputs;
  for (Tensors& piece : pieces) outputs.push_back(piece.size() == 1 ? piece[0] : ops::concat(piece, 0));
  return outputs;
}

Tensor Model::predict(const Tensor& x, std::int64_t batch_size) {
  const Tensors out = predict(Tensors{x}, batch_size);
  ATTNKIT_CHECK(out.size() == 1, "model '", name_, "' has ", out.size(), " outputs: use predict(Tensors)");
  return out[0];
}

}  // namespace attnkit
