// Model::compile, fit, evaluate and predict: the training loop, losses, metrics and progress.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <numeric>

#include "attnkit/ops/loss.h"
#include "attnkit/ops/shape.h"
#include "model_graph.h"
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

// The loss of one output against its targets, as Keras averages it: categorical over the rows of
// the class axis (every time step of a sequence output is a row), binary over all elements.
LossValue loss_of(LossKind kind, const Tensor& pred, const Tensor& target, bool with_grad) {
  LossValue v;
  if (kind == LossKind::categorical_crossentropy) {
    const std::int64_t classes = pred.size(-1);
    const Tensor p = pred.reshape({-1, classes}), t = target.reshape({-1, classes});
    v.loss = ops::categorical_crossentropy(p, t).to(Device::cpu()).item();
    if (with_grad) v.grad = ops::categorical_crossentropy_backward(p, t).reshape(pred.shape());
  } else {
    v.loss = ops::binary_crossentropy(pred, target).to(Device::cpu()).item();
    if (with_grad) v.grad = ops::binary_crossentropy_backward(pred, target);
  }
  return v;
}

// Keras's accuracy for the loss: the arg-max class matches (categorical, per row), or the
// prediction and the target fall on the same side of 0.5 (binary, per element).
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

// "nan", "inf" or "-inf" (a printed NaN may carry a sign).
std::string non_finite(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

std::string format_value(double v) {
  char text[32];
  std::snprintf(text, sizeof text, (std::abs(v) < 1e-3 && v != 0) ? "%.4e" : "%.4f", v);
  return text;
}

std::string format_duration(double seconds) {
  if (seconds >= 3600) return std::to_string(int(seconds / 3600)) + ":" + (int(seconds) % 3600 / 60 < 10 ? "0" : "") +
                              std::to_string(int(seconds) % 3600 / 60) + ":" + (int(seconds) % 60 < 10 ? "0" : "") +
                              std::to_string(int(seconds) % 60);
  if (seconds >= 60) return std::to_string(int(seconds / 60)) + ":" + (int(seconds) % 60 < 10 ? "0" : "") +
                            std::to_string(int(seconds) % 60);
  return std::to_string(int(seconds)) + "s";
}

std::string format_step_time(double seconds) {
  if (seconds >= 1) return std::to_string(int(seconds)) + "s/step";
  if (seconds >= 1e-3) return std::to_string(int(seconds * 1e3)) + "ms/step";
  return std::to_string(int(seconds * 1e6)) + "us/step";
}

// Keras's progress line: "120/240 [==============>...............] - ETA: 1s - loss: 0.4512".
// On a terminal it is redrawn in place (at most every 0.1 s); otherwise only the final line of
// each epoch is printed.
class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool terminal, std::int64_t steps)
      : out_(out), terminal_(terminal), steps_(steps), start_(Clock::now()) {}

  void update(std::int64_t step, const Logs& logs, const std::vector<std::string>& keys) {
    if (!terminal_) return;
    const double elapsed = seconds_since(start_);
    if (step < steps_ && seconds_since(last_draw_) < 0.1 && step > 1) return;
    last_draw_ = Clock::now();
    const double eta = elapsed / double(step) * double(steps_ - step);
    out_ << "\r" << bar(step) << " - ETA: " << format_duration(eta) << values(logs, keys) << "\033[K" << std::flush;
  }

  void finish(const Logs& logs, const std::vector<std::string>& keys) {
    const double elapsed = seconds_since(start_);
    out_ << (terminal_ ? "\r" : "") << bar(steps_) << " - " << format_duration(elapsed) << " "
         << format_step_time(elapsed / double(std::max<std::int64_t>(steps_, 1))) << values(logs, keys)
         << (terminal_ ? "\033[K" : "") << "\n"
         << std::flush;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }
  std::string bar(std::int64_t step) const {
    const int width = 30;
    const std::string digits = std::to_string(steps_);
    std::string count = std::to_string(step);
    count = std::string(digits.size() - std::min(digits.size(), count.size()), ' ') + count + "/" + digits;
    const int filled = steps_ == 0 ? width : int(double(width) * double(step) / double(steps_));
    std::string body(static_cast<std::size_t>(width), '.');
    for (int i = 0; i < filled; ++i) body[static_cast<std::size_t>(i)] = '=';
    if (filled < width && filled > 0) body[static_cast<std::size_t>(filled - 1)] = '>';
    return count + " [" + body + "]";
  }
  static std::string values(const Logs& logs, const std::vector<std::string>& keys) {
    std::string text;
    for (const std::string& key : keys) {
      const auto found = logs.find(key);
      if (found != logs.end()) text += " - " + key + ": " + format_value(found->second);
    }
    return text;
  }

  std::ostream& out_;
  bool terminal_;
  std::int64_t steps_;
  Clock::time_point start_, last_draw_{};
};

}  // namespace

// ------------------------------------------------------------------ one batch

Tensors Model::run_batch(const Tensors& x_given, const Tensors* y_given, bool training, Generator* generator,
                         Logs* logs) {
  // The batch moves to the model's device (a no-op when it is there).
  Tensors x, y_here;
  for (const Tensor& t : x_given) x.push_back(t.to(device_));
  if (y_given != nullptr)
    for (const Tensor& t : *y_given) y_here.push_back(t.to(device_));
  const Tensors* y = y_given == nullptr ? nullptr : &y_here;
  CallContext context;
  context.training = training;
  context.generator = generator;
  const Tensors outputs = forward(x, context);
  if (y == nullptr) return outputs;
  ATTNKIT_CHECK(compiled_ != nullptr, "model '", name_, "' is not compiled: call compile() first");
  Tensors grads;
  double loss = 0;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& target = (*y)[k];
    ATTNKIT_CHECK(target.shape() == outputs[k].shape() && target.dtype() == outputs[k].dtype(), "model '", name_,
                  "': target ", k, " must match output ", k, " ", outputs[k].describe(), ", got ", target.describe());
    LossValue v = loss_of(compiled_->loss, outputs[k], target, training);
    loss += v.loss;
    grads.push_back(v.grad);
    if (compiled_->accuracy) {
      const std::string key = outputs.size() == 1 ? "accuracy" : outputs_[k].node()->layer->name() + "_accuracy";
      (*logs)[key] = accuracy_of(compiled_->loss, outputs[k], target);
    }
  }
  (*logs)["loss"] = loss;
  if (!std::isfinite(loss)) return outputs;  // the caller says where, and stops
  if (training) {
    backward(grads);
    compiled_->optimizer->step(graph_->parameters);
  }
  return outputs;
}

// ------------------------------------------------------------------ fit, evaluate, predict

History Model::fit(const Tensors& x, const Tensors& y, const FitOptions& options) {
  ATTNKIT_CHECK(compiled_ != nullptr, "model '", name_, "' is not compiled: call compile() first");
  const std::int64_t n = sample_count(name_, x, &y, inputs_.size(), outputs_.size());
  ATTNKIT_CHECK(options.batch_size() > 0, "fit: batch_size must be positive, got ", options.batch_size());
  ATTNKIT_CHECK(options.epochs() >= 0, "fit: epochs must not be negative, got ", options.epochs());
  ATTNKIT_CHECK(options.validation_split() >= 0 && options.validation_split() < 1,
                "fit: validation_split must be in [0, 1), got ", options.validation_split());
  // Keras: the last part of the data, as given, is the validation set.
  const std::int64_t n_train = options.validation_split() > 0
                                   ? static_cast<std::int64_t>(double(n) * (1.0 - options.validation_split()))
                                   : n;
  ATTNKIT_CHECK(n_train > 0 && (options.validation_split() == 0 || n_train < n), "fit: validation_split ",
                options.validation_split(), " of ", n, " samples leaves ", n_train, " for training and ", n - n_train,
                " for validation");
  Tensors x_train, y_train, x_val, y_val;
  for (const Tensor& t : x) x_train.push_back(t.slice(0, n_train)), x_val.push_back(t.slice(n_train, n));
  for (const Tensor& t : y) y_train.push_back(t.slice(0, n_train)), y_val.push_back(t.slice(n_train, n));

  std::ostream& out = options.output() != nullptr ? *options.output() : std::cout;
  const bool terminal = options.output() == nullptr && isatty(STDOUT_FILENO);
  Generator generator(options.seed());
  std::vector<std::int64_t> order(static_cast<std::size_t>(n_train));
  const std::size_t batch = static_cast<std::size_t>(options.batch_size());
  const std::int64_t steps = (n_train + options.batch_size() - 1) / options.batch_size();
  std::vector<std::string> keys{"loss"};
  if (compiled_->accuracy)
    for (std::size_t k = 0; k < outputs_.size(); ++k)
      keys.push_back(outputs_.size() == 1 ? "accuracy" : outputs_[k].node()->layer->name() + "_accuracy");
  std::vector<std::string> all_keys = keys;
  for (const std::string& key : keys) all_keys.push_back("val_" + key);

  History history;
  stop_training = false;
  for (const auto& callback : options.callbacks()) callback->on_train_begin(*this);
  // The run a checkpoint belongs to: a resumed fit must repeat it exactly.
  detail::TrainingState state;
  state.run = {{"model", name_},        {"samples", n},       {"batch_size", options.batch_size()},
               {"validation_split", options.validation_split()}, {"shuffle", options.shuffle()},
               {"seed", options.seed()}};
  int first_epoch = 0;
  if (!options.checkpoint().empty() && options.resume() &&
      detail::load_training_state(options.checkpoint(), *this, options, state)) {
    first_epoch = state.epochs_completed;
    history = state.history;
    generator.set_offset(state.generator_offset);
    stop_training = state.stopped;
  }
  for (int epoch = first_epoch; epoch < options.epochs() && !stop_training; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), 0);
    if (options.shuffle())
      for (std::size_t i = order.size(); i > 1; --i)  // Fisher-Yates
        std::swap(order[i - 1], order[generator.uniform_int(i)]);
    if (options.verbose() > 0) out << "Epoch " << epoch + 1 << "/" << options.epochs() << "\n" << std::flush;
    ProgressBar bar(out, terminal, steps);
    Logs sums, logs;
    for (std::int64_t step = 0; step < steps; ++step) {
      const std::size_t begin = static_cast<std::size_t>(step) * batch;
      const std::size_t end = std::min(order.size(), begin + batch);
      Tensors xb, yb;
      for (const Tensor& t : x_train) xb.push_back(take_rows(t, order, begin, end));
      for (const Tensor& t : y_train) yb.push_back(take_rows(t, order, begin, end));
      Logs batch_logs;
      run_batch(xb, &yb, true, &generator, &batch_logs);
      ATTNKIT_CHECK(std::isfinite(batch_logs["loss"]), "model '", name_, "': the loss is ", non_finite(batch_logs["loss"]),
                    " at epoch ", epoch + 1, ", batch ", step + 1, " of ", steps, ": training stopped",
                    options.checkpoint().empty()
                        ? std::string()
                        : " (the checkpoint holds the state after epoch " + std::to_string(epoch) + ")");
      for (const auto& callback : options.callbacks()) callback->on_train_batch_end(*this, epoch, step, batch_logs);
      for (const auto& [key, value] : batch_logs) sums[key] += value * double(end - begin);
      for (const auto& [key, value] : sums) logs[key] = value / double(end);
      if (options.verbose() > 0) bar.update(step + 1, logs, keys);
    }
    if (n_train < n)
      for (const auto& [key, value] : evaluate(x_val, y_val, options.batch_size())) logs["val_" + key] = value;
    ATTNKIT_CHECK(n_train == n || std::isfinite(logs["val_loss"]), "model '", name_, "': the validation loss is ",
                  non_finite(logs["val_loss"]), " after epoch ", epoch + 1, ": training stopped");
    logs["lr"] = compiled_->optimizer->learning_rate();
    history.epoch_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (options.verbose() > 0) bar.finish(logs, all_keys);
    for (const auto& callback : options.callbacks()) callback->on_epoch_end(*this, epoch, logs);
    for (const auto& [key, value] : logs) history.history[key].push_back(value);
    if (!options.checkpoint().empty()) {
      state.epochs_completed = epoch + 1;
      state.stopped = stop_training;
      state.generator_offset = generator.offset();
      state.history = history;
      detail::save_training_state(options.checkpoint(), *this, options, state);
    }
  }
  for (const auto& callback : options.callbacks()) callback->on_train_end(*this);
  return history;
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  return fit(Tensors{x}, Tensors{y}, options);
}

Logs Model::evaluate(const Tensors& x, const Tensors& y, std::int64_t batch_size) {
  const std::int64_t n = sample_count(name_, x, &y, inputs_.size(), outputs_.size());
  ATTNKIT_CHECK(batch_size > 0, "evaluate: batch_size must be positive, got ", batch_size);
  Logs sums;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    const std::int64_t end = std::min(n, begin + batch_size);
    Tensors xb, yb;
    for (const Tensor& t : x) xb.push_back(t.slice(begin, end));
    for (const Tensor& t : y) yb.push_back(t.slice(begin, end));
    Logs batch_logs;
    run_batch(xb, &yb, false, nullptr, &batch_logs);
    for (const auto& [key, value] : batch_logs) sums[key] += value * double(end - begin);
  }
  for (auto& entry : sums) entry.second /= double(n);
  return sums;
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, std::int64_t batch_size) {
  return evaluate(Tensors{x}, Tensors{y}, batch_size);
}

Tensors Model::predict(const Tensors& x, std::int64_t batch_size) {
  const std::int64_t n = sample_count(name_, x, nullptr, inputs_.size(), outputs_.size());
  ATTNKIT_CHECK(batch_size > 0, "predict: batch_size must be positive, got ", batch_size);
  std::vector<Tensors> pieces(outputs_.size());
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    Tensors xb;
    for (const Tensor& t : x) xb.push_back(t.slice(begin, std::min(n, begin + batch_size)));
    const Tensors out = run_batch(xb, nullptr, false, nullptr, nullptr);
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
