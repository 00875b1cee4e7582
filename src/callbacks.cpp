// EarlyStopping, ModelCheckpoint and ReduceLROnPlateau (see callbacks.h).
#include "attnkit/callbacks.h"

#include <cmath>
#include <limits>

#include "attnkit/model.h"

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

}  // namespace attnkit
