// Faults during training: a loss that is not finite stops fit with the epoch and batch; the
// state of training is checkpointed after every epoch, and a fit killed with SIGKILL in the
// middle of an epoch and then resumed ends with the same weights and history as one that was
// never interrupted (on the cpu, where training is deterministic); a checkpoint of another run
// is refused with what differs.
#include <gtest/gtest.h>

#include <csignal>
#include <cmath>
#include <filesystem>
#include <memory>

#include "attnkit/attnkit.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;
namespace fs = std::filesystem;

struct Data {
  Tensor x, y;
};

// 150 samples of 6 features; the label is the sign of the first, as one-hot rows.
Data make_data(std::uint64_t seed) {
  Generator gen(seed);
  Data d{Tensor::uniform({150, 6}, -1.0, 1.0, gen), Tensor()};
  std::vector<float> y;
  for (std::int64_t i = 0; i < 150; ++i) {
    const bool positive = d.x.data<float>()[i * 6] > 0;
    y.push_back(positive ? 1.0f : 0.0f);
    y.push_back(positive ? 0.0f : 1.0f);
  }
  d.y = Tensor::from_vector(y, {150, 2});
  return d;
}

// Dense layers with dropout between them: the checkpoint must carry the dropout's generator.
std::unique_ptr<Model> make_model() {
  auto model = std::make_unique<Sequential>(Shape{6}, DType::f32, "faults", 11);
  model->add(layers::Dense(16, "relu")).add(layers::Dropout(0.3)).add(layers::Dense(2, "softmax"));
  model->compile(CompileOptions().optimizer(Adam(0.01)));
  return model;
}

// Callbacks with state of their own; `kill_at` (epoch, batch) sends SIGKILL to this process
// after that batch, when `armed`.
class KillAt : public Callback {
 public:
  KillAt(int epoch, std::int64_t batch, bool armed) : epoch_(epoch), batch_(batch), armed_(armed) {}
  void on_train_batch_end(Model&, int epoch, std::int64_t batch, const Logs&) override {
    if (armed_ && epoch == epoch_ && batch == batch_) std::raise(SIGKILL);
  }

 private:
  int epoch_;
  std::int64_t batch_;
  bool armed_;
};
std::vector<std::shared_ptr<Callback>> callbacks(bool armed) {
  return {EarlyStopping("val_loss", 10, 0.0, true), ReduceLROnPlateau("val_loss", 0.5, 1),
          std::make_shared<KillAt>(2, 2, armed)};
}

FitOptions fit_options(int epochs, const std::string& checkpoint, bool armed) {
  return FitOptions()
      .epochs(epochs)
      .batch_size(16)
      .validation_split(0.2)
      .seed(5)
      .verbose(0)
      .callbacks(callbacks(armed))
      .checkpoint(checkpoint)
      .resume(!checkpoint.empty());
}

// A folder named after the test alone: the child of a death test runs the test again from its
// start, in a process of its own, and must find the same folder.
std::string fresh_folder(const std::string& name) {
  const fs::path folder = fs::temp_directory_path() / ("attnkit_training_faults_" + name);
  fs::remove_all(folder);
  return folder.string();
}

void expect_same_training(const Model& a, const History& ha, const Model& b, const History& hb) {
  const Tensors wa = a.get_weights(), wb = b.get_weights();
  ASSERT_EQ(wa.size(), wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(all_close(wb[i], wa[i], 0)) << "weight " << i;
  EXPECT_EQ(hb.history, ha.history);
  EXPECT_EQ(hb.epochs(), ha.epochs());
}

TEST(TrainingFaults, ANonFiniteLossNamesTheEpochAndTheBatch) {
  Data d = make_data(1);
  d.x.data<float>()[70 * 6 + 3] = NAN;  // sample 70: batch 5 of 10 without shuffling
  auto model = make_model();
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, FitOptions().epochs(2).batch_size(16).shuffle(false).verbose(0)),
                       "the loss is nan at epoch 1, batch 5 of 10: training stopped");
  Data v = make_data(1);
  v.x.data<float>()[140 * 6] = INFINITY;  // in the validation part
  model = make_model();
  EXPECT_ATTNKIT_ERROR(model->fit(v.x, v.y, FitOptions().epochs(2).validation_split(0.2).verbose(0)),
                       "the validation loss is nan after epoch 1: training stopped");
}

TEST(TrainingFaults, AResumedFitEndsAsAnUninterruptedOne) {
  const Data d = make_data(2);
  auto whole = make_model();
  const History whole_history = whole->fit(d.x, d.y, fit_options(5, "", false));
  const std::string folder = fresh_folder("resume");
  auto first = make_model();
  first->fit(d.x, d.y, fit_options(2, folder, false));  // stops after 2 of the 5 epochs
  auto resumed = make_model();                         // new initial weights, replaced by the state
  const History resumed_history = resumed->fit(d.x, d.y, fit_options(5, folder, false));
  expect_same_training(*whole, whole_history, *resumed, resumed_history);
  fs::remove_all(folder);
}

TEST(TrainingFaults, AFitKilledInTheMiddleOfAnEpochResumesToTheSameWeights) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child starts afresh: threads and fork do not mix
  const Data d = make_data(3);
  auto whole = make_model();
  const History whole_history = whole->fit(d.x, d.y, fit_options(5, "", false));
  const std::string folder = fresh_folder("kill");
  EXPECT_EXIT(
      {
        auto doomed = make_model();
        doomed->fit(d.x, d.y, fit_options(5, folder, true));  // killed after batch 3 of epoch 3
      },
      ::testing::KilledBySignal(SIGKILL), "");
  // The checkpoint holds the two epochs before the kill.
  const SafetensorsFile state = read_safetensors(training_state_path(folder));
  EXPECT_NE(state.metadata.at("state").find("\"epochs_completed\":2"), std::string::npos);
  auto resumed = make_model();
  const History resumed_history = resumed->fit(d.x, d.y, fit_options(5, folder, false));
  expect_same_training(*whole, whole_history, *resumed, resumed_history);
  fs::remove_all(folder);
}

TEST(TrainingFaults, ACheckpointOfAnotherRunIsRefused) {
  const Data d = make_data(4);
  const std::string folder = fresh_folder("other");
  make_model()->fit(d.x, d.y, fit_options(1, folder, false));
  auto model = make_model();
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, fit_options(2, folder, false).batch_size(32).seed(6)),
                       "holds the state of another run: batch_size 16 in the checkpoint, 32 now; seed 5 in the "
                       "checkpoint, 6 now");
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, fit_options(2, folder, false).callbacks({})),
                       "holds the state of 3 callbacks, this fit has 0");
  auto wider = std::make_unique<Sequential>(Shape{6}, DType::f32, "faults", 11);
  wider->add(layers::Dense(17, "relu")).add(layers::Dropout(0.3)).add(layers::Dense(2, "softmax"));
  wider->compile(CompileOptions().optimizer(Adam(0.01)));
  EXPECT_ATTNKIT_ERROR(wider->fit(d.x, d.y, fit_options(2, folder, false)), "is f32[6, 16] on cpu there but f32[6, 17] on cpu in the model");
  // A folder that cannot be made is a clear error too.
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, fit_options(1, "/proc/attnkit-checkpoint", false)),
                       "cannot make the checkpoint folder '/proc/attnkit-checkpoint'");
  fs::remove_all(folder);
}

}  // namespace
}  // namespace attnkit
