// The state of an interrupted fit, saved and restored (see training_state.h).
#include "training_state.h"

#include <filesystem>
#include <iostream>
#include <map>

#include "attnkit/safetensors.h"

namespace attnkit::detail {
namespace {

constexpr const char* kFormat = "attnkit-training-state";

std::string slot_name(const std::string& parameter, std::size_t slot) {
  return "optimizer/" + parameter + "/" + std::to_string(slot);
}
std::string callback_tensor_name(std::size_t callback, std::size_t tensor) {
  return "callbacks/" + std::to_string(callback) + "/" + std::to_string(tensor);
}

// "batch_size 32 in the checkpoint, 64 now; seed 1 in the checkpoint, 0 now".
std::string differences(const Json& saved, const Json& now) {
  std::string text;
  for (const auto& [key, value] : now.items()) {
    const Json before = saved.contains(key) ? saved.at(key) : Json();
    if (before == value) continue;
    text += (text.empty() ? "" : "; ") + key + " " + before.dump() + " in the checkpoint, " + value.dump() + " now";
  }
  return text;
}

}  // namespace

void save_training_state(const std::string& folder, const Model& model, const FitOptions& options,
                         const TrainingState& state) {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  ATTNKIT_CHECK(!error, "cannot make the checkpoint folder '", folder, "': ", error.message());
  const Optimizer& optimizer = model.optimizer();
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, parameter] : model.named_parameters()) {
    tensors.emplace_back("weights/" + name, parameter->value);
    const std::vector<Tensor> slots = optimizer.slots(*parameter);
    for (std::size_t k = 0; k < slots.size(); ++k) tensors.emplace_back(slot_name(name, k), slots[k]);
  }
  Json callbacks = Json::array();
  for (std::size_t i = 0; i < options.callbacks().size(); ++i) {
    const CallbackState s = options.callbacks()[i]->state();
    callbacks.push_back({{"values", s.values}, {"tensors", s.tensors.size()}});
    for (std::size_t k = 0; k < s.tensors.size(); ++k) tensors.emplace_back(callback_tensor_name(i, k), s.tensors[k]);
  }
  const Json json{{"run", state.run},
                  {"epochs_completed", state.epochs_completed},
                  {"stopped", state.stopped},
                  {"generator_offset", state.generator_offset},
                  {"optimizer",
                   {{"name", optimizer.name()},
                    {"iterations", optimizer.iterations()},
                    {"learning_rate", optimizer.learning_rate()}}},
                  {"history", state.history.history},
                  {"epoch_seconds", state.history.epoch_seconds},
                  {"callbacks", callbacks}};
  write_safetensors(training_state_path(folder), tensors, {{"format", kFormat}, {"state", json.dump()}});
}

bool load_training_state(const std::string& folder, Model& model, const FitOptions& options, TrainingState& state) {
  const std::string path = training_state_path(folder);
  if (!std::filesystem::exists(path)) return false;
  const SafetensorsFile file = read_safetensors(path);
  if (!file.verified)
    std::cerr << "attnkit: notice: '" << path << "' carries no SHA-256 digests (written before attnkit stored "
              << "them): the state of training is loaded unverified\n";
  const auto format = file.metadata.find("format");
  const auto text = file.metadata.find("state");
  ATTNKIT_CHECK(format != file.metadata.end() && format->second == kFormat && text != file.metadata.end(), "'", path,
                "' is not a training state written by attnkit");
  Json json;
  try {
    json = Json::parse(text->second);
    const std::string differ = differences(json.at("run"), state.run);
    ATTNKIT_CHECK(differ.empty(), "'", path, "' holds the state of another run: ", differ);
    std::map<std::string, Tensor> saved(file.tensors.begin(), file.tensors.end());
    const auto take = [&](const std::string& name) {
      const auto found = saved.find(name);
      ATTNKIT_CHECK(found != saved.end(), "'", path, "' has no tensor '", name, "'");
      Tensor t = found->second;
      saved.erase(found);
      return t;
    };
    Optimizer& optimizer = model.optimizer();
    ATTNKIT_CHECK(json.at("optimizer").at("name").get<std::string>() == optimizer.name(), "'", path,
                  "' holds the state of a ", json.at("optimizer").at("name").get<std::string>(),
                  " optimizer, the model has ", optimizer.name());
    for (const auto& [name, parameter] : model.named_parameters()) {
      const Tensor value = take("weights/" + name);
      ATTNKIT_CHECK(value.shape() == parameter->value.shape() && value.dtype() == parameter->value.dtype(), "'", path,
                    "': weight '", name, "' is ", value.describe(), " there but ", parameter->value.describe(),
                    " in the model");
      parameter->value.copy_from(value);
      std::vector<Tensor> slots;
      while (saved.count(slot_name(name, slots.size())) != 0) slots.push_back(take(slot_name(name, slots.size())));
      if (!slots.empty()) optimizer.set_slots(*parameter, std::move(slots));
    }
    optimizer.set_iterations(json.at("optimizer").at("iterations").get<std::int64_t>());
    // A schedule's rate follows from the step count; a constant one may have been changed (ReduceLROnPlateau).
    if (optimizer.learning_rate_schedule() == nullptr)
      optimizer.set_learning_rate(json.at("optimizer").at("learning_rate").get<double>());
    const Json& callbacks = json.at("callbacks");
    ATTNKIT_CHECK(callbacks.size() == options.callbacks().size(), "'", path, "' holds the state of ", callbacks.size(),
                  " callbacks, this fit has ", options.callbacks().size());
    for (std::size_t i = 0; i < callbacks.size(); ++i) {
      CallbackState s{callbacks[i].at("values"), {}};
      for (std::size_t k = 0; k < callbacks[i].at("tensors").get<std::size_t>(); ++k)
        s.tensors.push_back(take(callback_tensor_name(i, k)));
      options.callbacks()[i]->restore(s);
    }
    ATTNKIT_CHECK(saved.empty(), "'", path, "' holds tensors the model does not have, such as '", saved.begin()->first,
                  "'");
    state.epochs_completed = json.at("epochs_completed").get<int>();
    state.stopped = json.at("stopped").get<bool>();
    state.generator_offset = json.at("generator_offset").get<std::uint64_t>();
    state.history.history = json.at("history").get<std::map<std::string, std::vector<double>>>();
    state.history.epoch_seconds = json.at("epoch_seconds").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    ATTNKIT_FAIL("'", path, "' has a corrupt training state: ", e.what());
  }
  return true;
}

void delete_training_state(const std::string& folder) {
  std::error_code error;
  std::filesystem::remove(training_state_path(folder), error);
  ATTNKIT_CHECK(!error, "cannot delete '", training_state_path(folder), "': ", error.message());
  if (std::filesystem::is_empty(folder, error)) std::filesystem::remove(folder, error);
}

BackupAndRestoreCallback::BackupAndRestoreCallback(std::string backup_dir, bool delete_checkpoint)
    : backup_dir_(std::move(backup_dir)), delete_checkpoint_(delete_checkpoint) {
  ATTNKIT_CHECK(!backup_dir_.empty(), "BackupAndRestore: backup_dir must not be empty");
}

void BackupAndRestoreCallback::on_train_end(Model&) {
  if (delete_checkpoint_) delete_training_state(backup_dir_);
}

}  // namespace attnkit::detail

namespace attnkit {

std::string training_state_path(const std::string& folder) {
  return (std::filesystem::path(folder) / "training_state.safetensors").string();
}

}  // namespace attnkit
