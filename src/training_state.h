// Internal: the state of an interrupted fit (FitOptions::checkpoint, or the BackupAndRestore
// callback), saved after every epoch and read back by a resumed fit, in one safetensors file
// written atomically:
//   tensors   weights/<parameter>, optimizer/<parameter>/<slot>, callbacks/<i>/<tensor>
//   metadata  format = "attnkit-training-state", state = a JSON object: the run (samples, batch
//             size, validation split, shuffle, seed, and the SHA-256 of the sample weights of a
//             weighted fit: a resumed fit must match them), the epochs completed, whether a
//             callback stopped training, the generator's offset, the optimizer's step count and
//             learning rate, the history and each callback's values.
#pragma once

#include <string>

#include "attnkit/model.h"

namespace attnkit::detail {

struct TrainingState {
  Json run;                 // what a resumed fit must match
  int epochs_completed = 0;
  bool stopped = false;     // a callback ended training
  std::uint64_t generator_offset = 0;
  History history;
};

// Writes the state and the model's, its optimizer's and the callbacks' into the folder (made if
// absent).
void save_training_state(const std::string& folder, const Model& model, const FitOptions& options,
                         const TrainingState& state);

// Reads the folder's state into `state`, the model's parameters, its optimizer and the
// callbacks (which have had on_train_begin); false when the folder holds none. A state of
// another run (state.run differs) or of another model is an error naming the differences.
bool load_training_state(const std::string& folder, Model& model, const FitOptions& options, TrainingState& state);

// Deletes the folder's state, and the folder when nothing else is left in it.
void delete_training_state(const std::string& folder);

// The callback of BackupAndRestore (callbacks.h). fit finds it among its callbacks and keeps the
// state of training in backup_dir(), resuming from it, as for FitOptions::checkpoint with resume;
// the callback deletes the state when fit ends without an exception, if asked to.
class BackupAndRestoreCallback : public Callback {
 public:
  BackupAndRestoreCallback(std::string backup_dir, bool delete_checkpoint);
  const std::string& backup_dir() const { return backup_dir_; }
  void on_train_end(Model& model) override;

 private:
  std::string backup_dir_;
  bool delete_checkpoint_;
};

}  // namespace attnkit::detail
