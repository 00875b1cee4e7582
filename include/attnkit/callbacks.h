// attnkit/callbacks.h: hooks into Model::fit, with Keras's semantics.
//
// `monitor` names an entry of the epoch's logs ("val_loss", "val_accuracy", "loss", ...); with
// mode "auto" a name containing "acc" is maximised and any other minimised. An improvement is a
// move by more than min_delta in the good direction.
//   EarlyStopping       stops after `patience` epochs without improvement; with
//                       restore_best_weights, the best epoch's weights are put back at the end
//   ModelCheckpoint     saves the model (prefix.json + prefix.safetensors, written atomically)
//                       after every epoch, or only when the monitored value improves
//   ReduceLROnPlateau   multiplies the learning rate by `factor` after `patience` epochs
//                       without improvement, then waits `cooldown` epochs; never below min_lr
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "attnkit/layer.h"
#include "attnkit/tensor.h"

namespace attnkit {

class Model;
using Logs = std::map<std::string, double>;

// What a callback carries across an interrupted fit (FitOptions::checkpoint): its counters and
// best values, and tensors such as EarlyStopping's best weights.
struct CallbackState {
  Json values;
  Tensors tensors;
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(Model& model) {}
  // After each training batch; `epoch` and `batch` count from 0, `logs` holds the batch's loss
  // and metrics.
  virtual void on_train_batch_end(Model& model, int epoch, std::int64_t batch, const Logs& logs) {}
  // `epoch` counts from 0; `logs` holds the epoch's metrics (and "lr").
  virtual void on_epoch_end(Model& model, int epoch, Logs& logs) {}
  virtual void on_train_end(Model& model) {}
  // The state a resumed fit gives back through restore(), after on_train_begin.
  virtual CallbackState state() const { return {}; }
  virtual void restore(const CallbackState& state) {}
};

// Tracks the best value of one monitored quantity.
class Monitor {
 public:
  Monitor(std::string monitor, std::string mode, double min_delta);
  const std::string& name() const { return monitor_; }
  // The monitored value in the logs; an error names the missing entry.
  double value(const Logs& logs) const;
  bool improves(double value) const;
  double best() const { return best_; }
  void set_best(double value) { best_ = value; }

 private:
  std::string monitor_;
  bool maximise_;
  double min_delta_;
  double best_;
};

std::shared_ptr<Callback> EarlyStopping(const std::string& monitor = "val_loss", int patience = 0,
                                        double min_delta = 0.0, bool restore_best_weights = false,
                                        const std::string& mode = "auto");
std::shared_ptr<Callback> ModelCheckpoint(const std::string& path_prefix, const std::string& monitor = "val_loss",
                                          bool save_best_only = false, const std::string& mode = "auto");
std::shared_ptr<Callback> ReduceLROnPlateau(const std::string& monitor = "val_loss", double factor = 0.1,
                                            int patience = 10, double min_delta = 1e-4, int cooldown = 0,
                                            double min_lr = 0.0, const std::string& mode = "auto");

}  // namespace attnkit
