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
//   CSVLogger           streams the epochs' logs to a CSV file: a header "epoch" + the logs'
//                       keys sorted, then one row per epoch (epoch counted from 0; numbers as
//                       Python's repr writes them: 0.6931471805599453, 1e-05), flushed row by
//                       row; a key missing from an epoch's logs is written NA. With append, rows
//                       go on the end of an existing file, whose header must be the one this fit
//                       would write (no second header). Lines end in "\n" (Keras's, through
//                       Python's csv module, in "\r\n"), and unlike Keras no "val_" columns are
//                       invented for a fit without validation. An unwritable file is an error
//                       naming it.
//   LearningRateScheduler  at the beginning of each epoch sets the optimizer's learning rate to
//                       schedule(epoch, current learning rate), epoch counted from 0; a result
//                       that is not finite and positive is an error naming the epoch. verbose > 0
//                       prints "Epoch N: LearningRateScheduler setting learning rate to LR." The
//                       epoch's logs hold the rate under "lr".
//   TerminateOnNaN      on a batch whose loss is NaN or infinite prints "Batch N: Invalid loss,
//                       terminating training" (N counted from 0 within the epoch) and stops
//                       training at once: fit applies no update from that batch, runs no
//                       end-of-epoch work for it, and returns the history of the epochs completed,
//                       without an error. (Without it, fit stops with an error on such a loss.)
//   BackupAndRestore    Keras's name for FitOptions::checkpoint with resume: fit keeps the state
//                       of training in backup_dir after every epoch and, when the folder holds a
//                       state, resumes from it; when fit ends without an exception, the state is
//                       deleted if delete_checkpoint (and the folder with it when nothing else is
//                       in it: Keras removes the whole folder, attnkit only what it wrote).
// Messages (LearningRateScheduler, TerminateOnNaN) go to standard output, where Keras prints them.
#pragma once

#include <functional>
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
  // Before each epoch's first batch; `epoch` counts from 0.
  virtual void on_epoch_begin(Model& model, int epoch) {}
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
// `separator`: one character, not a quote or a line break.
std::shared_ptr<Callback> CSVLogger(const std::string& filename, const std::string& separator = ",",
                                    bool append = false);
// schedule(epoch, learning_rate) -> the epoch's learning rate.
using EpochLearningRate = std::function<double(int epoch, double learning_rate)>;
std::shared_ptr<Callback> LearningRateScheduler(EpochLearningRate schedule, int verbose = 0);
std::shared_ptr<Callback> TerminateOnNaN();
std::shared_ptr<Callback> BackupAndRestore(const std::string& backup_dir, bool delete_checkpoint = true);

}  // namespace attnkit
