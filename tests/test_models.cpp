// Models and training: the zoo's parameter totals against MODELS.md, Keras's summary layout,
// the optimizers' update rules, fit's semantics (learning, validation split, progress lines,
// callbacks, determinism), and saving and loading.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>

#include "attnkit/layers.h"
#include "attnkit/model.h"
#include "attnkit/safetensors.h"
#include "attnkit/zoo.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;

// ------------------------------------------------------------------ the zoo

struct Totals {
  const char* name;
  std::int64_t total, trainable;
};

// MODELS.md's table of Keras parameter counts.
const Totals kModelsMd[] = {
    {"mlp", 356610, 356610},           {"cnn", 277794, 277794},
    {"rnn", 194146, 194146},           {"lstm", 200386, 200386},
    {"gru", 198402, 198402},           {"cnn-lstm", 220066, 220066},
    {"bilstm", 258434, 258434},        {"textcnn", 206306, 14306},
    {"attention", 197730, 5730},       {"bilstm-attention", 406934, 214934},
    {"bigru-attention", 215058, 23058}, {"attention3", 199618, 7618},
};

TEST(Zoo, ParameterTotalsEqualModelsMd) {
  for (const Totals& t : kModelsMd) {
    const auto model = zoo::build(t.name);
    EXPECT_EQ(model->count_params(), t.total) << t.name;
    EXPECT_EQ(model->count_trainable_params(), t.trainable) << t.name;
    const auto trainable = zoo::build(std::string(t.name) + "-trainable");
    EXPECT_EQ(trainable->count_params(), t.total) << t.name << "-trainable";
    EXPECT_EQ(trainable->count_trainable_params(), t.total) << t.name << "-trainable";
    // The summary ends with the same totals, as Keras prints them.
    const std::string summary = model->summary();
    EXPECT_NE(summary.find("Non-trainable params: "), std::string::npos) << t.name;
  }
  EXPECT_EQ(zoo::models().size(), 12u);
  // The twelve, the trainable twins of the five frozen ones, the transformer.
  const std::vector<std::string> names = zoo::model_names();
  EXPECT_EQ(names.size(), 18u);
  EXPECT_EQ(std::count(names.begin(), names.end(), "attention3-trainable"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "mlp-trainable"), 0);
  EXPECT_EQ(zoo::build("mlp-trainable")->count_params(), zoo::build("mlp")->count_params());
  EXPECT_ATTNKIT_ERROR(zoo::build("transformerx"), "unknown model 'transformerx' (known: mlp, cnn");
}

TEST(Zoo, ModelsRunOnABatch) {
  Generator gen(1);
  const Tensor ids = random_ids({3, 20}, 6000, gen);
  for (const std::string& name : zoo::model_names()) {
    const auto model = zoo::build(name);
    const Tensor probs = model->predict(ids);
    ASSERT_EQ(probs.shape(), (Shape{3, 2})) << name;
    for (int row = 0; row < 3; ++row) EXPECT_NEAR(probs.item(2 * row) + probs.item(2 * row + 1), 1.0, 1e-5) << name;
  }
}

TEST(Model, SummaryHasKerasLayout) {
  const std::string expected =
      "Model: \"mlp\"\n"
      "_________________________________________________________________\n"
      "Layer (type)                 Output Shape              Param #   \n"
      "=================================================================\n"
      "embedding (Embedding)        (None, 20, 32)            192000    \n"
      "_________________________________________________________________\n"
      "dropout (Dropout)            (None, 20, 32)            0         \n"
      "_________________________________________________________________\n"
      "flatten (Flatten)            (None, 640)               0         \n"
      "_________________________________________________________________\n"
      "dense (Dense)                (None, 256)               164096    \n"
      "_________________________________________________________________\n"
      "dropout_1 (Dropout)          (None, 256)               0         \n"
      "_________________________________________________________________\n"
      "dense_1 (Dense)              (None, 2)                 514       \n"
      "=================================================================\n"
      "Total params: 356,610\n"
      "Trainable params: 356,610\n"
      "Non-trainable params: 0\n"
      "_________________________________________________________________\n";
  EXPECT_EQ(zoo::build("mlp")->summary(), expected);
  // A graph with branches lists the inputs and what each layer is connected to.
  const std::string textcnn = zoo::build("textcnn")->summary();
  EXPECT_NE(textcnn.find("Connected to"), std::string::npos);
  EXPECT_NE(textcnn.find("inputs (InputLayer)             [(None, 20)]         0           []"), std::string::npos);
  EXPECT_NE(textcnn.find("['max_pooling1d[0][0]',"), std::string::npos);
  EXPECT_NE(textcnn.find("'max_pooling1d_2[0][0]']"), std::string::npos);
}

TEST(Model, NamesAreUniqueAndFollowKeras) {
  using namespace layers;
  SymbolicTensor x = Input({4});
  SymbolicTensor y = Dense(3).named("first")(x);
  y = Dense(3)(y);
  y = Dense(3)(y);
  Model model(x, y);
  std::vector<std::string> names;
  for (const auto& layer : model.layers()) names.push_back(layer->name());
  EXPECT_EQ(names, (std::vector<std::string>{"input", "first", "dense", "dense_1"}));
  EXPECT_EQ(model.get_layer("dense_1")->type(), "Dense");
  EXPECT_ATTNKIT_ERROR(model.get_layer("dense_9"), "has no layer named 'dense_9'");
  SymbolicTensor a = Input({4});
  EXPECT_ATTNKIT_ERROR(Model(a, Add()({Dense(4).named("twin")(a), Dense(4).named("twin")(a)})),
                       "two layers are named 'twin'");
  SymbolicTensor other = Input({4});
  EXPECT_ATTNKIT_ERROR(Model(a, Add()({a, other})), "that is not among its inputs");
}

// ------------------------------------------------------------------ optimizers

// One Dense(2, softmax) layer: for categorical cross-entropy the kernel's gradient is
// x^T (p - y) / N and the bias's is the column mean of p - y (a closed form, not the code).
struct SoftmaxRegression {
  std::unique_ptr<Model> model;
  Tensor x, y;
  std::vector<double> kernel_grad, bias_grad, kernel, bias;

  explicit SoftmaxRegression(std::shared_ptr<Optimizer> optimizer) {
    Generator gen(11);
    SymbolicTensor in = Input({3});
    model = std::make_unique<Model>(in, layers::Dense(2, "softmax")(in));
    model->compile(CompileOptions().optimizer(optimizer));
    x = random_tensor({5, 3}, gen, -1, 1, DType::f32);
    y = Tensor::from_vector<float>({1, 0, 0, 1, 1, 0, 0, 1, 0, 1}, {5, 2});
    kernel = values(model->named_parameters()[0].second->value);
    bias = values(model->named_parameters()[1].second->value);
    const std::vector<double> p = values(model->predict(x)), vx = values(x), vy = values(y);
    kernel_grad.assign(6, 0.0);
    bias_grad.assign(2, 0.0);
    for (int n = 0; n < 5; ++n)
      for (int c = 0; c < 2; ++c) {
        const double d = (p[n * 2 + c] - vy[n * 2 + c]) / 5;
        bias_grad[c] += d;
        for (int i = 0; i < 3; ++i) kernel_grad[i * 2 + c] += vx[n * 3 + i] * d;
      }
  }
  void one_step() { model->fit(x, y, FitOptions().epochs(1).batch_size(5).shuffle(false).verbose(0)); }
};

TEST(Optimizers, SgdStepsAgainstTheGradient) {
  SoftmaxRegression r(SGD(0.5));
  r.one_step();
  const auto kernel = values(r.model->named_parameters()[0].second->value);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(kernel[i], r.kernel[i] - 0.5 * r.kernel_grad[i], 1e-6);
  const auto bias = values(r.model->named_parameters()[1].second->value);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(bias[i], r.bias[i] - 0.5 * r.bias_grad[i], 1e-6);
}

TEST(Optimizers, AdamFirstStepFollowsKerasRule) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-7;
  SoftmaxRegression r(Adam(lr, b1, b2, eps));
  r.one_step();
  const auto kernel = values(r.model->named_parameters()[0].second->value);
  for (int i = 0; i < 6; ++i) {
    const double g = r.kernel_grad[i];
    const double m = (1 - b1) * g, v = (1 - b2) * g * g;
    const double step = lr * std::sqrt(1 - b2) / (1 - b1);
    EXPECT_NEAR(kernel[i], r.kernel[i] - step * m / (std::sqrt(v) + eps), 1e-6);
  }
  EXPECT_EQ(r.model->optimizer().iterations(), 1);
  EXPECT_ATTNKIT_ERROR(Adam(-1.0), "learning rate must be positive");
  EXPECT_ATTNKIT_ERROR(Adam(1e-3, 1.5), "beta_1 and beta_2 must be in [0, 1)");
}

// ------------------------------------------------------------------ fit

// Sequences of 10 tokens from 30; the label is 1 when token 7 occurs (learnable by an LSTM).
struct MarkerData {
  Tensor x, y;
  MarkerData(std::int64_t n, std::uint64_t seed) {
    Generator gen(seed);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n * 10));
    std::vector<float> onehot(static_cast<std::size_t>(n * 2), 0.0f);
    for (std::int64_t i = 0; i < n; ++i) {
      const int label = static_cast<int>(gen.uniform_int(2));
      for (int t = 0; t < 10; ++t) {
        std::int32_t token;
        do token = static_cast<std::int32_t>(1 + gen.uniform_int(29)); while (token == 7);
        ids[static_cast<std::size_t>(i * 10 + t)] = token;
      }
      if (label) ids[static_cast<std::size_t>(i * 10 + static_cast<std::int64_t>(gen.uniform_int(10)))] = 7;
      onehot[static_cast<std::size_t>(i * 2 + label)] = 1.0f;
    }
    x = Tensor::from_vector(ids, {n, 10});
    y = Tensor::from_vector(onehot, {n, 2});
  }
};

std::unique_ptr<Model> marker_model(std::uint64_t seed = 0) {
  using namespace layers;
  SymbolicTensor ids = Input({10}, DType::i32);
  SymbolicTensor h = Dropout(0.1)(Embedding(30, 8)(ids));
  auto model = std::make_unique<Model>(ids, Dense(2, "softmax")(LSTM(16)(h)), "marker", seed);
  model->compile(CompileOptions().optimizer(Adam(0.01)));
  return model;
}

TEST(Fit, LearnsASyntheticTask) {
  const MarkerData train(1200, 1), test(400, 2);
  auto model = marker_model();
  const double before = model->evaluate(test.x, test.y).at("loss");
  const History h = model->fit(train.x, train.y, FitOptions().epochs(4).verbose(0));
  ASSERT_EQ(h.epochs(), 4);
  EXPECT_LT(h.history.at("loss").back(), 0.5 * h.history.at("loss").front());
  const Logs after = model->evaluate(test.x, test.y);
  EXPECT_LT(after.at("loss"), 0.3 * before);
  EXPECT_GT(after.at("accuracy"), 0.95);
}

TEST(Fit, ValidationIsTheLastPartUnshuffled) {
  const MarkerData data(250, 3);
  auto model = marker_model();
  const History h = model->fit(data.x, data.y, FitOptions().epochs(2).validation_split(0.2).verbose(0));
  // Keras: int(250 * 0.8) = 200 training samples; the validation set is samples 200..249, and
  // after fit its loss is what the last epoch reported.
  const Logs val = model->evaluate(data.x.slice(200, 250), data.y.slice(200, 250));
  EXPECT_DOUBLE_EQ(h.history.at("val_loss").back(), val.at("loss"));
  EXPECT_DOUBLE_EQ(h.history.at("val_accuracy").back(), val.at("accuracy"));
  EXPECT_EQ(h.history.at("lr"), (std::vector<double>{0.01, 0.01}));
  EXPECT_ATTNKIT_ERROR(model->fit(data.x, data.y, FitOptions().validation_split(1.0)), "validation_split must be in [0, 1)");
}

TEST(Fit, SameSeedGivesBitIdenticalWeights) {
  const MarkerData data(300, 4);
  auto train = [&](std::uint64_t fit_seed) {
    auto model = marker_model(/*init seed*/ 5);
    model->fit(data.x, data.y, FitOptions().epochs(2).seed(fit_seed).verbose(0));
    std::vector<std::vector<float>> weights;
    for (const Tensor& w : model->get_weights()) weights.push_back(w.to_vector<float>());
    return weights;
  };
  const auto a = train(9), b = train(9), c = train(10);
  EXPECT_EQ(a, b);  // bit for bit
  EXPECT_NE(a, c);
}

TEST(Fit, ProgressLinesWhenNotATerminal) {
  const MarkerData data(100, 5);
  auto model = marker_model();
  std::ostringstream out;
  model->fit(data.x, data.y, FitOptions().epochs(2).batch_size(32).validation_split(0.2).output(&out));
  const std::regex line(
      "Epoch 1/2\n3/3 \\[==============================\\] - \\d+s \\d+[mu]?s/step - loss: \\d\\.\\d{4} - accuracy: "
      "\\d\\.\\d{4} - val_loss: \\d\\.\\d{4} - val_accuracy: \\d\\.\\d{4}\nEpoch 2/2\n3/3 .*\n");
  EXPECT_TRUE(std::regex_match(out.str(), line)) << out.str();
  std::ostringstream silent;
  model->fit(data.x, data.y, FitOptions().epochs(1).verbose(0).output(&silent));
  EXPECT_EQ(silent.str(), "");
}

TEST(Fit, BadDataIsReported) {
  const MarkerData data(50, 6);
  auto model = marker_model();
  EXPECT_ATTNKIT_ERROR(model->fit(data.x, data.y.slice(0, 40)), "does not have the 50 samples of input 0");
  EXPECT_ATTNKIT_ERROR(model->fit(data.x.reshape({50, 5, 2}), data.y), "must be i32 (None, 10)");
  EXPECT_ATTNKIT_ERROR(model->fit(data.x, Tensor::zeros({50, 3})), "target 0 must match output 0");
  SymbolicTensor x = Input({3});
  Model uncompiled(x, layers::Dense(2)(x));
  EXPECT_ATTNKIT_ERROR(uncompiled.fit(Tensor::zeros({4, 3}), Tensor::zeros({4, 2})), "is not compiled");
}

TEST(Fit, SequentialModelsTrainLikeFunctionalOnes) {
  using namespace layers;
  const MarkerData train(600, 12);
  Sequential model({10}, DType::i32, "stack");
  model.add(Embedding(30, 8)).add(LSTM(16)).add(Dense(2, "softmax"));
  EXPECT_EQ(model.count_params(), 30 * 8 + (4 * 16 * (8 + 16) + 64) + (16 * 2 + 2));
  EXPECT_EQ(model.summary().rfind("Model: \"stack\"\n", 0), 0u);
  EXPECT_EQ(model.summary().find("InputLayer"), std::string::npos);  // Keras leaves it out
  model.compile(CompileOptions().optimizer(Adam(0.01)));
  const History h = model.fit(train.x, train.y, FitOptions().epochs(3).verbose(0));
  EXPECT_LT(h.history.at("loss").back(), h.history.at("loss").front());
}

TEST(Fit, SeveralInputsAndOutputsSumTheirLosses) {
  using namespace layers;
  const MarkerData a(400, 13), b(400, 14);
  SymbolicTensor first = Input({10}, DType::i32, "first"), second = Input({10}, DType::i32, "second");
  LayerRef embedding = Embedding(30, 8);  // shared by both inputs
  SymbolicTensor ha = LSTM(8)(embedding(first)), hb = LSTM(8)(embedding(second));
  SymbolicTensor joint = Concatenate()({ha, hb});
  Model model({first, second}, {Dense(2, "softmax").named("out_a")(joint), Dense(2, "softmax").named("out_b")(joint)});
  model.compile(CompileOptions().optimizer(Adam(0.01)));
  const History h = model.fit({a.x, b.x}, {a.y, b.y}, FitOptions().epochs(3).verbose(0));
  EXPECT_EQ(h.history.count("out_a_accuracy") + h.history.count("out_b_accuracy"), 2u);
  // The loss is the sum of the two outputs' losses.
  model.compile(CompileOptions().optimizer(Adam(0.01)));
  const Logs logs = model.evaluate({a.x, b.x}, {a.y, b.y});
  SymbolicTensor only_a = model.outputs()[0];
  Model part_a(model.inputs(), {only_a});
  part_a.compile();
  Model part_b(model.inputs(), {model.outputs()[1]});
  part_b.compile();
  EXPECT_NEAR(logs.at("loss"),
              part_a.evaluate({a.x, b.x}, {a.y}).at("loss") + part_b.evaluate({a.x, b.x}, {b.y}).at("loss"), 1e-6);
  EXPECT_LT(h.history.at("loss").back(), h.history.at("loss").front());
}

// ------------------------------------------------------------------ callbacks

// Random labels on few samples: the validation loss gets worse as the model memorises.
struct NoiseData {
  Tensor x, y;
  NoiseData() {
    Generator gen(7);
    x = random_ids({120, 10}, 30, gen);
    std::vector<float> onehot(240, 0.0f);
    for (int i = 0; i < 120; ++i) onehot[static_cast<std::size_t>(i * 2 + static_cast<int>(gen.uniform_int(2)))] = 1;
    y = Tensor::from_vector(onehot, {120, 2});
  }
};

TEST(Callbacks, EarlyStoppingStopsAndRestoresTheBestWeights) {
  const NoiseData data;
  auto model = marker_model();
  const History h = model->fit(data.x, data.y,
                               FitOptions().epochs(40).batch_size(16).validation_split(0.25).verbose(0).callbacks(
                                   {EarlyStopping("val_loss", 2, 0.0, true)}));
  const std::vector<double>& val = h.history.at("val_loss");
  EXPECT_LT(h.epochs(), 40);
  const std::size_t best = static_cast<std::size_t>(std::min_element(val.begin(), val.end()) - val.begin());
  EXPECT_EQ(best + 3, val.size());  // stopped after `patience` epochs without improvement
  const double restored = model->evaluate(data.x.slice(90, 120), data.y.slice(90, 120), 16).at("loss");
  EXPECT_DOUBLE_EQ(restored, val[best]);
  EXPECT_ATTNKIT_ERROR(model->fit(data.x, data.y, FitOptions().epochs(1).verbose(0).callbacks({EarlyStopping()})),
                       "callback monitors 'val_loss', which the logs do not have");
}

TEST(Callbacks, ReduceLROnPlateauLowersTheRate) {
  const NoiseData data;
  auto model = marker_model();
  const History h = model->fit(data.x, data.y,
                               FitOptions().epochs(12).batch_size(16).validation_split(0.25).verbose(0).callbacks(
                                   {ReduceLROnPlateau("val_loss", 0.5, 1, 0.0, 0, 0.001)}));
  const std::vector<double>& lr = h.history.at("lr");
  const std::vector<double>& val = h.history.at("val_loss");
  // Replay the rule on the recorded losses: after an epoch without improvement the rate halves.
  double best = val[0], expected = 0.01;
  for (std::size_t e = 1; e < val.size(); ++e) {
    EXPECT_NEAR(lr[e], expected, 1e-12) << "epoch " << e;
    if (val[e] < best)
      best = val[e];
    else
      expected = std::max(expected * 0.5, 0.001);
  }
  EXPECT_LT(lr.back(), 0.01);
}

TEST(Callbacks, ModelCheckpointKeepsTheBestEpoch) {
  const NoiseData data;
  const std::string prefix = (std::filesystem::temp_directory_path() / "attnkit_checkpoint_test").string();
  auto model = marker_model();
  const History h = model->fit(data.x, data.y,
                               FitOptions().epochs(6).batch_size(16).validation_split(0.25).verbose(0).callbacks(
                                   {ModelCheckpoint(prefix, "val_loss", true)}));
  const std::vector<double>& val = h.history.at("val_loss");
  const double best = *std::min_element(val.begin(), val.end());
  auto restored = Model::load(prefix);
  restored->compile();
  EXPECT_DOUBLE_EQ(restored->evaluate(data.x.slice(90, 120), data.y.slice(90, 120), 16).at("loss"), best);
  std::filesystem::remove(prefix + ".json");
  std::filesystem::remove(prefix + ".safetensors");
}

// ------------------------------------------------------------------ saving and loading

TEST(Saving, SaveLoadPredictGiveIdenticalOutputs) {
  const std::string prefix = (std::filesystem::temp_directory_path() / "attnkit_save_test").string();
  Generator gen(8);
  const Tensor ids = random_ids({16, 20}, 6000, gen);
  for (const std::string name : {"bilstm-attention", "textcnn", "bigru-attention-trainable"}) {
    auto model = zoo::build(name, zoo::ZooOptions().seed(3));
    const std::vector<float> expected = model->predict(ids).to_vector<float>();
    model->save(prefix);
    auto loaded = Model::load(prefix);
    EXPECT_EQ(loaded->predict(ids).to_vector<float>(), expected) << name;
    EXPECT_EQ(loaded->summary(), model->summary()) << name;
    // The weights alone, into a fresh model of the same structure and another seed.
    auto fresh = zoo::build(name, zoo::ZooOptions().seed(4));
    EXPECT_NE(fresh->predict(ids).to_vector<float>(), expected) << name;
    fresh->load_weights(prefix + ".safetensors");
    EXPECT_EQ(fresh->predict(ids).to_vector<float>(), expected) << name;
  }
  auto other = zoo::build("lstm");
  EXPECT_ATTNKIT_ERROR(other->load_weights(prefix + ".safetensors"), "mismatches:");
  EXPECT_ATTNKIT_ERROR(other->load_weights(prefix + ".safetensors"), "'lstm/kernel' is missing from the file");
  EXPECT_ATTNKIT_ERROR(Model::load(prefix + "_nothing"), "cannot open");
  std::filesystem::remove(prefix + ".json");
  std::filesystem::remove(prefix + ".safetensors");
}

// A weights file cut short, with a broken header, or holding weights of other shapes or dtypes
// is refused by Model::load and load_weights with a message that names the file and the weight.
TEST(Saving, DamagedOrMismatchedWeightsAreClearErrors) {
  const std::string prefix = (std::filesystem::temp_directory_path() / "attnkit_damaged_test").string();
  auto model = zoo::build("lstm", zoo::ZooOptions().vocabulary(30).sequence_length(5));
  model->save(prefix);
  const std::string weights = prefix + ".safetensors";
  const std::string bytes = read_file(weights);
  write_file_atomically(weights, bytes.substr(0, bytes.size() - 100));
  EXPECT_ATTNKIT_ERROR(Model::load(prefix), "(truncated file?)");
  write_file_atomically(weights, bytes.substr(0, 8) + std::string(bytes.size() - 8, '{'));
  EXPECT_ATTNKIT_ERROR(Model::load(prefix), "corrupt safetensors header");
  // The same names with other shapes, and with another dtype.
  auto wider = zoo::build("lstm", zoo::ZooOptions().vocabulary(31).sequence_length(5));
  wider->save_weights(weights);
  EXPECT_ATTNKIT_ERROR(model->load_weights(weights), "'embedding/embeddings' is f32[31, 32] on cpu in the file but "
                                                     "f32[30, 32] on cpu in the model");
  std::vector<std::pair<std::string, Tensor>> doubles;
  for (const auto& [name, parameter] : model->named_parameters()) doubles.emplace_back(name, parameter->value.to(DType::f64));
  write_safetensors(weights, doubles);
  EXPECT_ATTNKIT_ERROR(model->load_weights(weights), "'lstm/kernel' is f64[32, 128] on cpu in the file but f32");
  std::filesystem::remove(prefix + ".json");
  std::filesystem::remove(weights);
}

// Configs whose integers are not integers: a node index of 1.9e23 (found by fuzz_model_config;
// casting it to an index was undefined behaviour), a unit count of 2.5.
TEST(Saving, ConfigNumbersThatAreNotIntegersAreRefused) {
  const Json config = zoo::build("mlp", zoo::ZooOptions().vocabulary(20).sequence_length(4))->to_config();
  Json far = config;
  far["nodes"][1]["inputs"][0][0] = 1.8888888888888889e23;
  EXPECT_ATTNKIT_ERROR(Model::from_config(far), "a node reference must be an integer of 64 bits, got 1.888888888888889e+23");
  Json fractional = config;
  for (Json& layer : fractional["layers"])
    if (layer["type"] == "Dense") layer["config"]["units"] = 2.5;
  EXPECT_ATTNKIT_ERROR(Model::from_config(fractional), "units must be an integer of 64 bits, got 2.5");
}

}  // namespace
}  // namespace attnkit
