// The callbacks of callbacks.h: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger,
// LearningRateScheduler, TerminateOnNaN and BackupAndRestore (whose work fit does, see
// training_state.h).
#include "attnkit/callbacks.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>

#include "attnkit/model.h"
#include "training_state.h"

namespace attnkit {

Monitor::Monitor(std::string monitor, std::string mode, double min_delta)
    : monitor_(std::move(monitor)), min_delta_(std::abs(min_delta)) {
  ATTNKIT_CHECK(mode == "auto" || mode == "min" || mode == "max", "callback mode must be auto, min or max, got '",
                mode, "'");
  maximise_ = mode == "max" || (mode == "auto" && monitor_.find("acc") != std::string::npos);
  best_ = maximise_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

double Monitor::value(const Logs& logs) const {
  const auto found = logs.find(monitor_);
  if (found == logs.end()) {
    std::string available;
    for (const auto& entry : logs) available += (available.empty() ? "" : ", ") + entry.first;
    ATTNKIT_FAIL("callback monitors '", monitor_, "', which the logs do not have (they have: ", available,
                 "); val_ entries need validation_split");
  }
  return found->second;
}

bool Monitor::improves(double value) const {
  return maximise_ ? value - min_delta_ > best_ : value + min_delta_ < best_;
}

namespace {

// A monitor's best value in a checkpoint: JSON has no infinities (a monitor starts at one).
Json best_to_json(double best) { return std::isfinite(best) ? Json(best) : Json(best > 0 ? "inf" : "-inf"); }
double best_from_json(const Json& value) {
  if (value.is_string()) return value.get<std::string>() == "inf" ? std::numeric_limits<double>::infinity()
                                                                   : -std::numeric_limits<double>::infinity();
  return value.get<double>();
}

class EarlyStoppingCallback : public Callback {
 public:
  EarlyStoppingCallback(const std::string& monitor, int patience, double min_delta, bool restore, const std::string& mode)
      : monitor_(monitor, mode, min_delta), initial_(monitor_), patience_(patience), restore_(restore) {
    ATTNKIT_CHECK(patience >= 0, "EarlyStopping: patience must not be negative");
  }
  void on_train_begin(Model&) override {
    monitor_ = initial_;
    wait_ = 0;
    best_weights_.clear();
  }
  void on_epoch_end(Model& model, int epoch, Logs& logs) override {
    const double current = monitor_.value(logs);
    if (restore_ && best_weights_.empty()) best_weights_ = model.get_weights();
    if (monitor_.improves(current)) {
      monitor_.set_best(current);
      wait_ = 0;
      if (restore_) best_weights_ = model.get_weights();
      return;
    }
    if (++wait_ >= patience_ && epoch > 0) model.stop_training = true;
  }
  void on_train_end(Model& model) override {
    if (restore_ && !best_weights_.empty()) model.set_weights(best_weights_);
  }
  CallbackState state() const override {
    return {{{"best", best_to_json(monitor_.best())}, {"wait", wait_}}, best_weights_};
  }
  void restore(const CallbackState& state) override {
    monitor_.set_best(best_from_json(state.values.at("best")));
    wait_ = state.values.at("wait").get<int>();
    best_weights_ = state.tensors;
  }

 private:
  Monitor monitor_, initial_;
  int patience_;
  bool restore_;
  int wait_ = 0;
  Tensors best_weights_;
};

class ModelCheckpointCallback : public Callback {
 public:
  ModelCheckpointCallback(std::string prefix, const std::string& monitor, bool best_only, const std::string& mode)
      : prefix_(std::move(prefix)), monitor_(monitor, mode, 0.0), initial_(monitor_), best_only_(best_only) {}
  void on_train_begin(Model&) override { monitor_ = initial_; }
  void on_epoch_end(Model& model, int, Logs& logs) override {
    if (best_only_) {
      const double current = monitor_.value(logs);
      if (!monitor_.improves(current)) return;
      monitor_.set_best(current);
    }
    model.save(prefix_);
  }
  CallbackState state() const override { return {{{"best", best_to_json(monitor_.best())}}, {}}; }
  void restore(const CallbackState& state) override { monitor_.set_best(best_from_json(state.values.at("best"))); }

 private:
  std::string prefix_;
  Monitor monitor_, initial_;
  bool best_only_;
};

class ReduceLROnPlateauCallback : public Callback {
 public:
  ReduceLROnPlateauCallback(const std::string& monitor, double factor, int patience, double min_delta, int cooldown,
                            double min_lr, const std::string& mode)
      : monitor_(monitor, mode, min_delta), initial_(monitor_), factor_(factor), patience_(patience),
        cooldown_(cooldown), min_lr_(min_lr) {
    ATTNKIT_CHECK(factor > 0 && factor < 1, "ReduceLROnPlateau: factor must be in (0, 1), got ", factor);
    ATTNKIT_CHECK(patience >= 0 && cooldown >= 0 && min_lr >= 0,
                  "ReduceLROnPlateau: patience, cooldown and min_lr must not be negative");
  }
  void on_train_begin(Model&) override {
    monitor_ = initial_;
    wait_ = 0;
    cooldown_counter_ = 0;
  }
  void on_epoch_end(Model& model, int, Logs& logs) override {
    const double current = monitor_.value(logs);
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      wait_ = 0;
    }
    if (monitor_.improves(current)) {
      monitor_.set_best(current);
      wait_ = 0;
    } else if (cooldown_counter_ == 0 && ++wait_ >= patience_) {
      Optimizer& optimizer = model.optimizer();
      if (optimizer.learning_rate() > min_lr_) {
        optimizer.set_learning_rate(std::max(optimizer.learning_rate() * factor_, min_lr_));
        cooldown_counter_ = cooldown_;
        wait_ = 0;
      }
    }
  }
  CallbackState state() const override {
    return {{{"best", best_to_json(monitor_.best())}, {"wait", wait_}, {"cooldown", cooldown_counter_}}, {}};
  }
  void restore(const CallbackState& state) override {
    monitor_.set_best(best_from_json(state.values.at("best")));
    wait_ = state.values.at("wait").get<int>();
    cooldown_counter_ = state.values.at("cooldown").get<int>();
  }

 private:
  Monitor monitor_, initial_;
  double factor_;
  int patience_, cooldown_;
  double min_lr_;
  int wait_ = 0, cooldown_counter_ = 0;
};

// A number as Python's repr writes it, which is what Keras's CSV rows and messages show: the
// shortest digits that read back to the same double; positional for decimal exponents from -4
// to 15 (a whole number ends in ".0"), else like 1e-05 or 1.5e+16; nan, inf, -inf.
std::string python_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[32];
  const std::to_chars_result written =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  const std::string scientific(buffer, written.ptr);  // "-1.2345e-05"
  const std::size_t e = scientific.find('e');
  const int exponent = std::stoi(scientific.substr(e + 1));
  if (exponent < -4 || exponent >= 16) return scientific;
  const bool negative = scientific[0] == '-';
  std::string digits = scientific.substr(negative ? 1 : 0, e - (negative ? 1 : 0));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int before_point = exponent + 1;  // digits left of the decimal point
  std::string text;
  if (before_point <= 0)
    text = "0." + std::string(static_cast<std::size_t>(-before_point), '0') + digits;
  else if (static_cast<std::size_t>(before_point) >= digits.size())
    text = digits + std::string(static_cast<std::size_t>(before_point) - digits.size(), '0') + ".0";
  else
    text = digits.substr(0, static_cast<std::size_t>(before_point)) + "." +
           digits.substr(static_cast<std::size_t>(before_point));
  return negative ? "-" + text : text;
}

class CSVLoggerCallback : public Callback {
 public:
  CSVLoggerCallback(std::string filename, std::string separator, bool append)
      : filename_(std::move(filename)), separator_(std::move(separator)), append_(append) {
    ATTNKIT_CHECK(separator_.size() == 1 && separator_ != "\"" && separator_ != "\n" && separator_ != "\r",
                  "CSVLogger: separator must be one character other than a quote or a line break, got '", separator_,
                  "'");
  }
  void on_train_begin(Model&) override {
    columns_.clear();
    existing_header_.clear();
    if (append_) {  // a file that has a first line keeps it as its header
      std::ifstream existing(filename_);
      if (existing && std::getline(existing, existing_header_) && !existing_header_.empty() &&
          existing_header_.back() == '\r')
        existing_header_.pop_back();
    }
    file_.close();
    file_.clear();
    file_.open(filename_, append_ ? std::ios::app : std::ios::trunc);
    ATTNKIT_CHECK(file_.is_open(), "CSVLogger: cannot open '", filename_, "' for writing: ", std::strerror(errno));
  }
  void on_epoch_end(Model&, int epoch, Logs& logs) override {
    if (columns_.empty()) {
      for (const auto& entry : logs) columns_.push_back(entry.first);  // a map: sorted, as Keras sorts them
      std::string header = "epoch";
      for (const std::string& column : columns_) header += separator_ + field(column);
      if (existing_header_.empty())
        file_ << header << "\n";
      else
        ATTNKIT_CHECK(existing_header_ == header, "CSVLogger: '", filename_, "' has the columns '", existing_header_,
                      "', this fit logs '", header, "'");
    }
    std::string row = std::to_string(epoch);
    for (const std::string& column : columns_) {
      const auto found = logs.find(column);
      row += separator_ + (found == logs.end() ? "NA" : python_repr(found->second));
    }
    for (const auto& entry : logs)
      ATTNKIT_CHECK(std::binary_search(columns_.begin(), columns_.end(), entry.first), "CSVLogger: epoch ", epoch,
                    " logs '", entry.first, "', which is not a column of '", filename_, "'");
    file_ << row << "\n" << std::flush;
    ATTNKIT_CHECK(file_.good(), "CSVLogger: cannot write to '", filename_, "'");
  }
  void on_train_end(Model&) override { file_.close(); }

 private:
  // A name as Python's csv module writes it: quoted (quotes doubled) when it holds the separator,
  // a quote or a line break.
  std::string field(const std::string& text) const {
    if (text.find_first_of(separator_ + "\"\r\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  }

  std::string filename_, separator_;
  bool append_;
  std::ofstream file_;
  std::vector<std::string> columns_;  // sorted; empty until the first epoch's end
  std::string existing_header_;       // of the file appended to; empty: write one
};

class LearningRateSchedulerCallback : public Callback {
 public:
  LearningRateSchedulerCallback(EpochLearningRate schedule, int verbose)
      : schedule_(std::move(schedule)), verbose_(verbose) {
    ATTNKIT_CHECK(static_cast<bool>(schedule_), "LearningRateScheduler: the schedule is empty");
  }
  void on_epoch_begin(Model& model, int epoch) override {
    Optimizer& optimizer = model.optimizer();
    const double learning_rate = schedule_(epoch, optimizer.learning_rate());
    ATTNKIT_CHECK(std::isfinite(learning_rate) && learning_rate > 0, "LearningRateScheduler: the schedule gave ",
                  learning_rate, " for epoch ", epoch, "; a learning rate must be positive and finite");
    optimizer.set_learning_rate(learning_rate);
    if (verbose_ > 0)
      std::cout << "\nEpoch " << epoch + 1 << ": LearningRateScheduler setting learning rate to "
                << python_repr(learning_rate) << ".\n"
                << std::flush;
  }

 private:
  EpochLearningRate schedule_;
  int verbose_;
};

class TerminateOnNaNCallback : public Callback {
 public:
  void on_train_batch_end(Model& model, int, std::int64_t batch, const Logs& logs) override {
    const auto loss = logs.find("loss");
    if (loss == logs.end() || std::isfinite(loss->second)) return;
    std::cout << "Batch " << batch << ": Invalid loss, terminating training\n" << std::flush;
    model.stop_training = true;
  }
};

}  // namespace

std::shared_ptr<Callback> EarlyStopping(const std::string& monitor, int patience, double min_delta,
                                        bool restore_best_weights, const std::string& mode) {
  return std::make_shared<EarlyStoppingCallback>(monitor, patience, min_delta, restore_best_weights, mode);
}

std::shared_ptr<Callback> ModelCheckpoint(const std::string& path_prefix, const std::string& monitor,
                                          bool save_best_only, const std::string& mode) {
  return std::make_shared<ModelCheckpointCallback>(path_prefix, monitor, save_best_only, mode);
}

std::shared_ptr<Callback> ReduceLROnPlateau(const std::string& monitor, double factor, int patience, double min_delta,
                                            int cooldown, double min_lr, const std::string& mode) {
  return std::make_shared<ReduceLROnPlateauCallback>(monitor, factor, patience, min_delta, cooldown, min_lr, mode);
}

std::shared_ptr<Callback> CSVLogger(const std::string& filename, const std::string& separator, bool append) {
  return std::make_shared<CSVLoggerCallback>(filename, separator, append);
}

std::shared_ptr<Callback> LearningRateScheduler(EpochLearningRate schedule, int verbose) {
  return std::make_shared<LearningRateSchedulerCallback>(std::move(schedule), verbose);
}

std::shared_ptr<Callback> TerminateOnNaN() { return std::make_shared<TerminateOnNaNCallback>(); }

std::shared_ptr<Callback> BackupAndRestore(const std::string& backup_dir, bool delete_checkpoint) {
  return std::make_shared<detail::BackupAndRestoreCallback>(backup_dir, delete_checkpoint);
}

}  // namespace attnkit
