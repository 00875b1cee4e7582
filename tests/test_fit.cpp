// Model::fit with Keras 3's sample_weight and class_weight, and the callbacks CSVLogger,
// LearningRateScheduler, TerminateOnNaN and BackupAndRestore. References: the weighted loss
// written out in double from the model's predictions (sum_i w_i loss_i / n), central finite
// differences in double of that loss for the gradient fit follows, sample weights computed by a
// plain loop from the targets, Python's csv module for the CSV file, and uninterrupted fits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "attnkit/attnkit.h"
#include "support.h"

namespace attnkit {
namespace {

using namespace testing;
namespace fs = std::filesystem;

struct Data {
  Tensor x, y;
};

// n samples of 5 features in [-1, 1); the class (of 3) follows the features, one-hot rows, so that
// a model can learn and every class occurs.
Data three_classes(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  Data d{Tensor::uniform({n, 5}, -1.0, 1.0, gen), Tensor()};
  std::vector<float> y;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = d.x.data<float>() + i * 5;
    const int label = row[0] + row[1] > 0.3f ? 0 : row[2] > 0 ? 1 : 2;
    for (int c = 0; c < 3; ++c) y.push_back(c == label ? 1.0f : 0.0f);
  }
  d.y = Tensor::from_vector(y, {n, 3});
  return d;
}

// The same features with a binary target [n, 1]: 1 where the first two features sum above 0.
Data two_classes(std::int64_t n, std::uint64_t seed) {
  Data d = three_classes(n, seed);
  std::vector<float> y;
  for (std::int64_t i = 0; i < n; ++i) y.push_back(d.x.data<float>()[i * 5] + d.x.data<float>()[i * 5 + 1] > 0);
  d.y = Tensor::from_vector(y, {n, 1});
  return d;
}

// Dense layers with dropout between them (so that the generator matters), softmax over 3 classes.
std::unique_ptr<Model> softmax_model(std::shared_ptr<Optimizer> optimizer = Adam(0.01), bool dropout = true,
                                     DType input_dtype = DType::f32) {
  auto model = std::make_unique<Sequential>(Shape{5}, input_dtype, "weighted", 17);
  model->add(layers::Dense(7, "tanh"));
  if (dropout) model->add(layers::Dropout(0.2));
  model->add(layers::Dense(3, "softmax"));
  model->compile(CompileOptions().optimizer(optimizer));
  return model;
}

// A sigmoid output of `units` per sample with the binary cross-entropy.
std::unique_ptr<Model> sigmoid_model(std::int64_t units, std::shared_ptr<Optimizer> optimizer = Adam(0.01),
                                     DType input_dtype = DType::f32) {
  auto model = std::make_unique<Sequential>(Shape{5}, input_dtype, "binary", 19);
  model->add(layers::Dense(6, "relu")).add(layers::Dense(units, "sigmoid"));
  model->compile(CompileOptions().optimizer(optimizer).loss("binary_crossentropy"));
  return model;
}

Tensor random_weights(std::int64_t n, Generator& gen, double low = 0.0, double high = 3.0) {
  return Tensor::uniform({n}, low, high, gen);
}

// Keras's losses per sample, in double, from predictions and targets [n, ..., C] or [n, ...]:
// categorical: -sum_c y log(p / sum p), each row of the class axis, averaged over a sample's rows;
// binary: -(y log(p + eps) + (1 - y) log(1 - p + eps)) averaged over a sample's elements. The
// batch's loss is then sum_i w_i loss_i / n.
double weighted_loss(const Tensor& pred, const Tensor& target, const std::vector<double>& w, bool binary) {
  const std::vector<double> p = values(pred), y = values(target);
  const std::size_t n = static_cast<std::size_t>(pred.size(0)), per_sample = p.size() / n;
  const std::size_t classes = binary ? 1 : static_cast<std::size_t>(pred.size(-1));
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double sample = 0;
    for (std::size_t row = 0; row < per_sample / classes; ++row) {
      const std::size_t at = i * per_sample + row * classes;
      if (binary) {
        sample -= y[at] * std::log(p[at] + 1e-7) + (1 - y[at]) * std::log(1 - p[at] + 1e-7);
      } else {
        double sum = 0;
        for (std::size_t c = 0; c < classes; ++c) sum += p[at + c];
        for (std::size_t c = 0; c < classes; ++c) sample -= y[at + c] * std::log(p[at + c] / sum);
      }
    }
    total += (w.empty() ? 1.0 : w[i]) * sample / double(per_sample / classes);
  }
  return total / double(n);
}

void expect_same_training(const Model& a, const History& ha, const Model& b, const History& hb) {
  const Tensors wa = a.get_weights(), wb = b.get_weights();
  ASSERT_EQ(wa.size(), wb.size());
  for (std::size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(all_close(wb[i], wa[i], 0)) << "weight " << i;
  EXPECT_EQ(hb.history, ha.history);
}

bool same_weights(const Model& a, const Model& b) {
  const Tensors wa = a.get_weights(), wb = b.get_weights();
  for (std::size_t i = 0; i < wa.size(); ++i)
    if (values(wa[i]) != values(wb[i])) return false;
  return true;
}

FitOptions quiet(int epochs, std::int64_t batch_size) {
  return FitOptions().epochs(epochs).batch_size(batch_size).seed(3).verbose(0);
}

// A folder of its own for each test and process (runs of the suite may overlap), made empty.
std::string fresh_folder(const std::string& name) {
  const fs::path folder = fs::temp_directory_path() / ("attnkit_test_fit_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder.string();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string contents_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, separator);) fields.push_back(field);
  return fields;
}

// What standard output receives while it lives.
class CaptureStdout {
 public:
  CaptureStdout() : saved_(std::cout.rdbuf(captured_.rdbuf())) {}
  ~CaptureStdout() { std::cout.rdbuf(saved_); }
  std::string text() const { return captured_.str(); }

 private:
  std::ostringstream captured_;
  std::streambuf* saved_;
};

// ------------------------------------------------------------------ the weighted loss

TEST(FitWeights, TheLossOfABatchIsTheWeightedSumOverTheBatchSize) {
  Generator gen(1);
  const Data d = three_classes(13, 2);
  const Tensor w = random_weights(13, gen);
  const std::vector<double> vw = values(w);
  auto model = softmax_model();
  const double expected = weighted_loss(model->predict(d.x), d.y, vw, false);
  // Divided by the number of samples, not by the sum of the weights: far from the plain mean.
  ASSERT_GT(std::abs(expected - weighted_loss(model->predict(d.x), d.y, {}, false)), 0.05);
  EXPECT_NEAR(model->evaluate(d.x, d.y, 13, w).at("loss"), expected, 1e-6 * expected);
  // Batches of 5, 5 and 3, each counting by its size, give the same.
  EXPECT_NEAR(model->evaluate(d.x, d.y, 5, w).at("loss"), expected, 1e-6 * expected);
  // Accuracy stays unweighted, as Keras 3 computes compile's metrics.
  EXPECT_EQ(model->evaluate(d.x, d.y, 13, w).at("accuracy"), model->evaluate(d.x, d.y, 13).at("accuracy"));

  // Binary, two elements per sample: a sample's weight covers both.
  const Data b = two_classes(11, 3);
  const Tensor wide_target = Tensor::uniform({11, 2}, 0.0, 1.0, gen);
  const Tensor bw = random_weights(11, gen);
  auto binary = sigmoid_model(2);
  const double binary_expected = weighted_loss(binary->predict(b.x), wide_target, values(bw), true);
  EXPECT_NEAR(binary->evaluate(b.x, wide_target, 4, bw).at("loss"), binary_expected, 1e-6 * binary_expected);

  // A sequence output [n, 4, 3]: each time step of a sample carries the sample's weight.
  const SymbolicTensor steps = Input({4, 5});
  Model sequence(steps, layers::Dense(3, "softmax")(steps), "sequence", 5);
  sequence.compile();
  const Tensor sx = Tensor::uniform({9, 4, 5}, -1.0, 1.0, gen);
  std::vector<float> sy(9 * 4 * 3, 0.0f);
  for (std::size_t row = 0; row < 9 * 4; ++row) sy[row * 3 + gen.uniform_int(3)] = 1.0f;
  const Tensor sequence_y = Tensor::from_vector(sy, {9, 4, 3}), sw = random_weights(9, gen);
  const double sequence_expected = weighted_loss(sequence.predict(sx), sequence_y, values(sw), false);
  EXPECT_NEAR(sequence.evaluate(sx, sequence_y, 9, sw).at("loss"), sequence_expected, 1e-6 * sequence_expected);
}

// One step of SGD with a rate of 1 moves the weights by minus the gradient that fit computed;
// central differences in double of the weighted loss (written out from the predictions of the
// same weights in float64) must agree with it.
TEST(FitWeights, TheGradientIsThatOfTheWeightedLoss) {
  for (const bool binary : {false, true}) {
    SCOPED_TRACE(binary ? "binary" : "categorical");
    Generator gen(4);
    const Data d = binary ? two_classes(11, 5) : three_classes(11, 5);
    const Tensor target = binary ? Tensor::uniform({11, 2}, 0.0, 1.0, gen) : d.y;
    const Tensor w = random_weights(11, gen);
    auto model = binary ? sigmoid_model(2, SGD(1.0)) : softmax_model(SGD(1.0), false);
    const Tensors before = model->get_weights();
    model->fit(d.x, target, quiet(1, 11).shuffle(false).sample_weight(w));
    const Tensors after = model->get_weights();

    // The same model in float64, at the weights before the step.
    auto twin = binary ? sigmoid_model(2, SGD(1.0), DType::f64) : softmax_model(SGD(1.0), false, DType::f64);
    const auto named = twin->named_parameters();
    ASSERT_EQ(named.size(), before.size());
    for (std::size_t k = 0; k < named.size(); ++k) named[k].second->value = before[k].to(DType::f64);
    const Tensor x64 = d.x.to(DType::f64);
    const auto loss = [&]() {
      const Tensor pred = twin->forward({x64}, CallContext())[0];
      return weighted_loss(pred, target, values(w), binary);
    };
    const double h = 1e-6;
    int checked = 0;
    for (std::size_t k = 0; k < named.size(); ++k) {
      const std::vector<double> b = values(before[k]), a = values(after[k]);
      double* value = named[k].second->value.data<double>();
      for (std::size_t i = 0; i < b.size(); ++i, ++checked) {
        value[i] = b[i] + h;
        const double plus = loss();
        value[i] = b[i] - h;
        const double minus = loss();
        value[i] = b[i];
        const double numeric = (plus - minus) / (2 * h), analytic = b[i] - a[i];
        EXPECT_NEAR(analytic, numeric, 2e-5 * std::max(1.0, std::abs(numeric)))
            << named[k].first << " element " << i;
      }
    }
    EXPECT_GT(checked, 30);
  }
}

// ------------------------------------------------------------------ class_weight and sample_weight

TEST(FitWeights, ClassWeightTrainsAsTheSampleWeightItImplies) {
  // Categorical: the class of a sample is the arg-max of its one-hot row.
  const Data d = three_classes(61, 6);
  const ClassWeights class_weight{{0, 0.5}, {1, 2.0}, {2, 1.25}};
  std::vector<double> implied;
  const std::vector<double> y = values(d.y);
  for (std::size_t i = 0; i < 61; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      if (y[i * 3 + c] == 1.0) implied.push_back(class_weight.at(static_cast<std::int64_t>(c)));
  auto by_class = softmax_model(), by_sample = softmax_model(), unweighted = softmax_model();
  const History hc = by_class->fit(d.x, d.y, quiet(3, 8).class_weight(class_weight));
  const History hs = by_sample->fit(d.x, d.y, quiet(3, 8).sample_weight(Tensor::from_vector(implied, {61})));
  expect_same_training(*by_class, hc, *by_sample, hs);
  unweighted->fit(d.x, d.y, quiet(3, 8));
  EXPECT_FALSE(same_weights(*by_class, *unweighted)) << "class_weight changed nothing";

  // Binary: the class is the 0/1 value of the target.
  const Data b = two_classes(47, 7);
  const ClassWeights binary_weight{{0, 3.0}, {1, 0.25}};
  std::vector<double> binary_implied;
  for (const double label : values(b.y)) binary_implied.push_back(label == 1.0 ? 0.25 : 3.0);
  auto binary_by_class = sigmoid_model(1), binary_by_sample = sigmoid_model(1);
  const History hbc = binary_by_class->fit(b.x, b.y, quiet(2, 10).class_weight(binary_weight));
  const History hbs =
      binary_by_sample->fit(b.x, b.y, quiet(2, 10).sample_weight(Tensor::from_vector(binary_implied, {47})));
  expect_same_training(*binary_by_class, hbc, *binary_by_sample, hbs);
}

TEST(FitWeights, WeightsOfOneTrainAsNoWeights) {
  const Data d = three_classes(53, 8);
  auto plain = softmax_model(), ones = softmax_model(), class_ones = softmax_model();
  const FitOptions options = quiet(3, 7).validation_split(0.25);
  const History hp = plain->fit(d.x, d.y, options);
  const History ho = ones->fit(d.x, d.y, FitOptions(options).sample_weight(Tensor::full({53}, 1.0)));
  expect_same_training(*plain, hp, *ones, ho);
  const History hc = class_ones->fit(d.x, d.y, FitOptions(options).class_weight({{0, 1.0}, {1, 1.0}, {2, 1.0}}));
  expect_same_training(*plain, hp, *class_ones, hc);
}

// validation_split holds out the last samples with their weights: val_loss is the held-out
// weighted loss; class_weight weighs training only, so its val_loss is the plain one.
TEST(FitWeights, TheValidationLossIsWeightedByTheHeldOutWeights) {
  Generator gen(9);
  const Data d = three_classes(50, 10);
  const Tensor w = random_weights(50, gen);
  const std::vector<double> vw = values(w);
  const Tensor x_val = d.x.slice(35, 50), y_val = d.y.slice(35, 50);  // 30% of 50
  auto model = softmax_model();
  const History h = model->fit(d.x, d.y, quiet(2, 8).validation_split(0.3).sample_weight(w));
  const double expected = weighted_loss(model->predict(x_val), y_val, {vw.begin() + 35, vw.end()}, false);
  EXPECT_NEAR(h.history.at("val_loss").back(), expected, 1e-6 * expected);

  auto by_class = softmax_model();
  const History hc =
      by_class->fit(d.x, d.y, quiet(2, 8).validation_split(0.3).class_weight({{0, 4.0}, {1, 0.1}, {2, 1.0}}));
  const double plain = weighted_loss(by_class->predict(x_val), y_val, {}, false);
  EXPECT_NEAR(hc.history.at("val_loss").back(), plain, 1e-6 * plain);
}

TEST(FitWeights, BadWeightsAreErrorsNamingTheProblem) {
  const Data d = three_classes(60, 11);
  auto model = softmax_model();
  const Tensor ones = Tensor::full({60}, 1.0);
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).sample_weight(ones).class_weight({{0, 1.0}})),
                       "fit: give class_weight or sample_weight, not both");
  // The first sample of class 2, found by a loop of its own.
  const std::vector<double> y = values(d.y);
  std::size_t first_of_class_2 = 0;
  while (y[first_of_class_2 * 3 + 2] != 1.0) ++first_of_class_2;
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).class_weight({{0, 1.0}, {1, 2.0}})),
                       "fit: class_weight has no weight for class 2 (the class of training sample " +
                           std::to_string(first_of_class_2) + ")");
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).class_weight({{0, 1.0}, {1, -2.0}, {2, 1.0}})),
                       "fit: class_weight[1] is -2: a weight must be finite and non-negative");
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).sample_weight(Tensor::full({59}, 1.0))),
                       "fit: sample_weight must hold one weight per sample, [60], got f32[59]");
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).sample_weight(Tensor::full({60, 1}, 1.0))),
                       "fit: sample_weight must hold one weight per sample, [60], got f32[60, 1]");
  Tensor negative = ones.clone();
  negative.data<float>()[7] = -0.5f;
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).sample_weight(negative)),
                       "fit: sample_weight[7] is -0.5: a weight must be finite and non-negative");
  Tensor not_a_number = ones.clone();
  not_a_number.data<float>()[41] = NAN;
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).sample_weight(not_a_number)), "fit: sample_weight[41] is ");
  EXPECT_ATTNKIT_ERROR(model->evaluate(d.x, d.y, 8, Tensor::full({61}, 1.0)),
                       "evaluate: sample_weight must hold one weight per sample, [60], got f32[61]");
  Tensor infinite = ones.clone();
  infinite.data<float>()[0] = INFINITY;
  EXPECT_ATTNKIT_ERROR(model->evaluate(d.x, d.y, 8, infinite), "evaluate: sample_weight[0] is inf");

  // class_weight needs one output.
  const SymbolicTensor input = Input({5});
  Model two_outputs({input}, {layers::Dense(3, "softmax")(input), layers::Dense(3, "softmax")(input)}, "two");
  two_outputs.compile();
  EXPECT_ATTNKIT_ERROR(two_outputs.fit({d.x}, {d.y, d.y}, quiet(1, 8).class_weight({{0, 1.0}, {1, 1.0}, {2, 1.0}})),
                       "fit: class_weight needs a model with one output, model 'two' has 2");
}

// ------------------------------------------------------------------ CSVLogger

// A double as a Python expression that gives it exactly.
std::string python_float(double value) {
  if (std::isnan(value)) return "float('nan')";
  if (std::isinf(value)) return value > 0 ? "float('inf')" : "float('-inf')";
  char hex[64];
  std::snprintf(hex, sizeof hex, "%a", value);
  return "float.fromhex('" + std::string(hex) + "')";
}

// Runs Python's csv module on `rows` (an epoch, then numbers), written with `separator` and "\n"
// line ends, after the header `header`: what Keras's CSVLogger writes.
std::string python_csv(const std::string& header, const std::vector<std::vector<double>>& rows, char separator) {
  std::string script = "import csv, sys\nw = csv.writer(sys.stdout, delimiter='" + std::string(1, separator) +
                       "', lineterminator='\\n')\nw.writerow('" + header + "'.split('" + std::string(1, separator) +
                       "'))\n";
  for (const auto& row : rows) {
    script += "w.writerow([" + std::to_string(static_cast<int>(row[0]));
    for (std::size_t i = 1; i < row.size(); ++i) script += ", " + python_float(row[i]);
    script += "])\n";
  }
  const std::string path =
      (fs::temp_directory_path() / ("attnkit_test_fit_csv_" + std::to_string(getpid()) + ".py")).string();
  std::ofstream(path) << script;
  FILE* pipe = popen((std::string(ATTNKIT_TEST_PYTHON) + " " + path).c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (pipe != nullptr && std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  EXPECT_EQ(pipe == nullptr ? -1 : pclose(pipe), 0) << script;
  fs::remove(path);
  return output;
}

// A callback that reads the CSV file at each epoch's end: each row must be there already.
class CountLines : public Callback {
 public:
  explicit CountLines(std::string path) : path_(std::move(path)) {}
  void on_epoch_end(Model&, int, Logs&) override { counts.push_back(lines_of(path_).size()); }
  std::vector<std::size_t> counts;

 private:
  std::string path_;
};

TEST(CSVLogger, WritesTheSortedKeysAndOneRowPerEpochAsKerasDoes) {
  const std::string folder = fresh_folder("csv");
  const std::string path = folder + "/log.csv";
  const Data d = three_classes(40, 12);
  auto model = softmax_model(Adam(2.5e-5));  // a rate Python writes as 2.5e-05
  auto counter = std::make_shared<CountLines>(path);
  const History h =
      model->fit(d.x, d.y, quiet(3, 8).validation_split(0.2).callbacks({CSVLogger(path), counter}));
  const std::string header = "epoch,accuracy,loss,lr,val_accuracy,val_loss";
  std::vector<std::vector<double>> rows;
  for (int epoch = 0; epoch < 3; ++epoch) {
    rows.push_back({double(epoch)});
    for (const char* key : {"accuracy", "loss", "lr", "val_accuracy", "val_loss"})
      rows.back().push_back(h.history.at(key)[static_cast<std::size_t>(epoch)]);
  }
  const std::string written = contents_of(path);
  EXPECT_EQ(written, python_csv(header, rows, ','));
  // Parsed back, the numbers are the history's, bit for bit.
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], header);
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    const std::vector<std::string> fields = split(lines[epoch + 1], ',');
    ASSERT_EQ(fields.size(), 6u);
    EXPECT_EQ(fields[0], std::to_string(epoch));
    EXPECT_EQ(std::strtod(fields[2].c_str(), nullptr), h.history.at("loss")[epoch]);
    EXPECT_EQ(fields[3], "2.5e-05");
  }
  EXPECT_EQ(counter->counts, (std::vector<std::size_t>{2, 3, 4}));  // flushed row by row

  // append: the rows of a second fit follow, under the one header.
  model->fit(d.x, d.y, quiet(2, 8).validation_split(0.2).callbacks({CSVLogger(path, ",", true)}));
  const std::vector<std::string> appended = lines_of(path);
  ASSERT_EQ(appended.size(), 6u);
  EXPECT_EQ(std::count(appended.begin(), appended.end(), header), 1);
  EXPECT_EQ(appended[4].substr(0, 2), "0,");
  EXPECT_EQ(appended[5].substr(0, 2), "1,");
  // Without append the file starts again; another separator; no validation: no val_ columns.
  model->fit(d.x, d.y, quiet(1, 8).callbacks({CSVLogger(path, ";")}));
  const std::vector<std::string> restarted = lines_of(path);
  ASSERT_EQ(restarted.size(), 2u);
  EXPECT_EQ(restarted[0], "epoch;accuracy;loss;lr");
  EXPECT_EQ(split(restarted[1], ';').size(), 4u);
  fs::remove_all(folder);
}

// Numbers as Python's repr writes them, checked against Python itself; a key missing from an
// epoch's logs is NA; names holding the separator are quoted.
TEST(CSVLogger, WritesNumbersAsPythonDoes) {
  const std::string folder = fresh_folder("csv_numbers");
  const std::string path = folder + "/numbers.csv";
  auto model = softmax_model();
  const std::vector<double> numbers{1e16,  1e15,    0.0001, 1e-05,  -0.0, 123.0,     1.0 / 3,
                                    -2.5e-300, 6.02e23, NAN,    INFINITY, 0.1 + 0.2, 1234.5678};
  Logs logs;
  std::string header = "epoch";
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    const std::string key = "k" + std::string(1, static_cast<char>('a' + i));
    logs[key] = numbers[i];
    header += "," + key;
  }
  auto logger = CSVLogger(path);
  logger->on_train_begin(*model);
  logger->on_epoch_end(*model, 0, logs);
  std::vector<double> row{0.0};
  row.insert(row.end(), numbers.begin(), numbers.end());
  logs.erase("kc");
  logger->on_epoch_end(*model, 1, logs);
  logger->on_train_end(*model);
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 3u);
  const std::string python = python_csv(header, {row}, ',');
  EXPECT_EQ(lines[0] + "\n" + lines[1] + "\n", python);
  EXPECT_EQ(split(lines[2], ',')[3], "NA");

  Logs odd{{"a,b", 1.0}, {"q\"uote", 2.0}};
  logger->on_train_begin(*model);
  logger->on_epoch_end(*model, 0, odd);
  logger->on_train_end(*model);
  EXPECT_EQ(lines_of(path)[0], "epoch,\"a,b\",\"q\"\"uote\"");
  fs::remove_all(folder);
}

TEST(CSVLogger, ErrorsNameTheFileOrTheSeparator) {
  const std::string folder = fresh_folder("csv_errors");
  const Data d = three_classes(20, 13);
  auto model = softmax_model();
  const std::string missing = folder + "/no/such/folder/log.csv";
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(1, 8).callbacks({CSVLogger(missing)})),
                       "CSVLogger: cannot open '" + missing + "' for writing");
  EXPECT_ATTNKIT_ERROR(CSVLogger(folder + "/x.csv", ", "), "CSVLogger: separator must be one character");
  EXPECT_ATTNKIT_ERROR(CSVLogger(folder + "/x.csv", "\""), "CSVLogger: separator must be one character");
  // Appending to a file whose columns are others.
  const std::string other = folder + "/other.csv";
  std::ofstream(other) << "epoch,loss\n0,0.5\n";
  EXPECT_ATTNKIT_ERROR(
      model->fit(d.x, d.y, quiet(1, 8).callbacks({CSVLogger(other, ",", true)})),
      "CSVLogger: '" + other + "' has the columns 'epoch,loss', this fit logs 'epoch,accuracy,loss,lr'");
  fs::remove_all(folder);
}

// ------------------------------------------------------------------ LearningRateScheduler

// Records the schedule's arguments and the rate the optimizer has during each epoch's batches.
class RateProbe : public Callback {
 public:
  void on_train_batch_end(Model& model, int epoch, std::int64_t batch, const Logs&) override {
    if (batch == 0) rates.push_back({epoch, model.optimizer().learning_rate()});
  }
  std::vector<std::pair<int, double>> rates;
};

TEST(LearningRateScheduler, SetsTheRateAtTheBeginningOfEachEpoch) {
  const Data d = three_classes(40, 14);
  std::vector<std::pair<int, double>> asked;
  const EpochLearningRate halve_after_first = [&](int epoch, double rate) {
    asked.push_back({epoch, rate});
    return epoch == 0 ? rate : rate * 0.5;
  };
  auto probe = std::make_shared<RateProbe>();
  auto scheduled = softmax_model(SGD(0.2, 0.9), false);
  CaptureStdout captured;
  const History h = scheduled->fit(
      d.x, d.y, quiet(3, 8).shuffle(false).callbacks({LearningRateScheduler(halve_after_first, 1), probe}));
  const std::vector<std::pair<int, double>> expected{{0, 0.2}, {1, 0.1}, {2, 0.05}};
  EXPECT_EQ(probe->rates, expected);
  EXPECT_EQ(asked, (std::vector<std::pair<int, double>>{{0, 0.2}, {1, 0.2}, {2, 0.1}}));
  EXPECT_EQ(h.history.at("lr"), (std::vector<double>{0.2, 0.1, 0.05}));
  EXPECT_EQ(scheduled->optimizer().learning_rate(), 0.05);
  EXPECT_NE(captured.text().find("\nEpoch 2: LearningRateScheduler setting learning rate to 0.1.\n"),
            std::string::npos)
      << captured.text();

  // The rate is the one the updates use: three fits of one epoch at those rates end alike.
  auto by_hand = softmax_model(SGD(0.2, 0.9), false);
  for (const double rate : {0.2, 0.1, 0.05}) {
    by_hand->optimizer().set_learning_rate(rate);
    by_hand->fit(d.x, d.y, quiet(1, 8).shuffle(false));
  }
  EXPECT_TRUE(same_weights(*scheduled, *by_hand));
}

TEST(LearningRateScheduler, ARateThatIsNotPositiveAndFiniteNamesTheEpoch) {
  const Data d = three_classes(20, 15);
  auto model = softmax_model();
  EXPECT_ATTNKIT_ERROR(
      model->fit(d.x, d.y, quiet(3, 8).callbacks({LearningRateScheduler([](int epoch, double rate) {
        return epoch == 1 ? 0.0 : rate;
      })})),
      "LearningRateScheduler: the schedule gave 0 for epoch 1; a learning rate must be positive and finite");
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(3, 8).callbacks({LearningRateScheduler([](int, double) {
    return -1e-3;
  })})),
                       "the schedule gave -0.001 for epoch 0");
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(3, 8).callbacks({LearningRateScheduler([](int epoch, double rate) {
    return epoch == 2 ? std::nan("") : rate;
  })})),
                       "for epoch 2");
  EXPECT_ATTNKIT_ERROR(LearningRateScheduler(nullptr), "LearningRateScheduler: the schedule is empty");
}

// ------------------------------------------------------------------ TerminateOnNaN

// Writes NaN into a feature of sample `sample` of x when epoch `epoch` begins, and keeps the
// weights after batch `batch` of that epoch.
class PoisonAt : public Callback {
 public:
  PoisonAt(Tensor x, int epoch, std::int64_t sample, std::int64_t batch)
      : x_(std::move(x)), epoch_(epoch), sample_(sample), batch_(batch) {}
  void on_epoch_begin(Model&, int epoch) override {
    if (epoch == epoch_) x_.data<float>()[sample_ * x_.size(1) + 2] = NAN;
  }
  void on_train_batch_end(Model& model, int epoch, std::int64_t batch, const Logs&) override {
    if (epoch == epoch_ && batch == batch_) weights = model.get_weights();
  }
  Tensors weights;

 private:
  Tensor x_;
  int epoch_;
  std::int64_t sample_, batch_;
};

TEST(TerminateOnNaN, StopsAtTheBadBatchWithoutAnUpdateOrAnError) {
  const Data clean = three_classes(150, 16);
  // Sample 70 is in batch 4 (from 0) of 10 without shuffling; it turns NaN in the second epoch.
  Data d{clean.x.clone(), clean.y};
  auto before_bad_batch = std::make_shared<PoisonAt>(d.x, 1, 70, 3);
  auto model = softmax_model();
  CaptureStdout captured;
  History h;
  const FitOptions options = quiet(3, 16).shuffle(false).callbacks({TerminateOnNaN(), before_bad_batch});
  EXPECT_NO_THROW(h = model->fit(d.x, d.y, options));
  EXPECT_NE(captured.text().find("Batch 4: Invalid loss, terminating training\n"), std::string::npos)
      << captured.text();
  EXPECT_EQ(h.epochs(), 1);
  EXPECT_EQ(h.history.at("loss").size(), 1u);
  const Tensors after = model->get_weights();
  ASSERT_EQ(after.size(), before_bad_batch->weights.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(all_close(after[i], before_bad_batch->weights[i], 0)) << "weight " << i;
    for (const double v : values(after[i])) ASSERT_TRUE(std::isfinite(v));
  }

  // Without TerminateOnNaN the same fit is an error naming the epoch and the batch.
  Data again{clean.x.clone(), clean.y};
  auto poison = std::make_shared<PoisonAt>(again.x, 1, 70, 3);
  auto unprotected = softmax_model();
  EXPECT_ATTNKIT_ERROR(unprotected->fit(again.x, again.y, quiet(3, 16).shuffle(false).callbacks({poison})),
                       "the loss is nan at epoch 2, batch 5 of 10: training stopped");
}

// A callback that stops training after a batch ends that epoch there, as Keras does: its logs
// average the batches done, validation and the epoch's callbacks run, and no epoch follows.
class StopAfter : public Callback {
 public:
  StopAfter(int epoch, std::int64_t batch) : epoch_(epoch), batch_(batch) {}
  void on_train_batch_end(Model& model, int epoch, std::int64_t batch, const Logs& logs) override {
    if (epoch == epoch_) losses.push_back(logs.at("loss"));
    if (epoch == epoch_ && batch == batch_) model.stop_training = true;
  }
  std::vector<double> losses;

 private:
  int epoch_;
  std::int64_t batch_;
};

TEST(Fit, AStopAfterABatchEndsItsEpochThere) {
  const Data d = three_classes(50, 17);
  auto stop = std::make_shared<StopAfter>(1, 2);
  auto model = softmax_model();
  const History h = model->fit(d.x, d.y, quiet(4, 8).validation_split(0.2).callbacks({stop}));
  EXPECT_EQ(h.epochs(), 2);
  ASSERT_EQ(stop->losses.size(), 3u);
  const double mean = (stop->losses[0] + stop->losses[1] + stop->losses[2]) / 3;  // three batches of 8
  EXPECT_NEAR(h.history.at("loss")[1], mean, 1e-12);
  EXPECT_EQ(h.history.at("val_loss").size(), 2u);
}

// ------------------------------------------------------------------ BackupAndRestore

// Throws in epoch `epoch` after batch `batch`, when armed: an interruption that is not a crash.
class ThrowAt : public Callback {
 public:
  ThrowAt(int epoch, std::int64_t batch, bool armed) : epoch_(epoch), batch_(batch), armed_(armed) {}
  void on_train_batch_end(Model&, int epoch, std::int64_t batch, const Logs&) override {
    if (armed_ && epoch == epoch_ && batch == batch_) ATTNKIT_FAIL("interrupted at epoch ", epoch, ", batch ", batch);
  }

 private:
  int epoch_;
  std::int64_t batch_;
  bool armed_;
};

TEST(BackupAndRestore, AnInterruptedFitResumesToTheWeightsOfAnUninterruptedOne) {
  const Data d = three_classes(90, 18);
  const FitOptions options = quiet(5, 16).validation_split(0.2);
  auto whole = softmax_model();
  const History whole_history =
      whole->fit(d.x, d.y, FitOptions(options).callbacks({EarlyStopping("val_loss", 10, 0.0, true),
                                                          std::make_shared<ThrowAt>(2, 1, false)}));

  const std::string folder = fresh_folder("backup") + "/state";
  auto interrupted = softmax_model();
  EXPECT_ATTNKIT_ERROR(
      interrupted->fit(d.x, d.y, FitOptions(options).callbacks({EarlyStopping("val_loss", 10, 0.0, true),
                                                                BackupAndRestore(folder),
                                                                std::make_shared<ThrowAt>(2, 1, true)})),
      "interrupted at epoch 2, batch 1");
  // The backup holds the two epochs completed before the interruption.
  const SafetensorsFile state = read_safetensors(training_state_path(folder));
  EXPECT_NE(state.metadata.at("state").find("\"epochs_completed\":2"), std::string::npos);

  auto resumed = softmax_model();  // other initial weights would do: the backup replaces them
  const History resumed_history =
      resumed->fit(d.x, d.y, FitOptions(options).callbacks({EarlyStopping("val_loss", 10, 0.0, true),
                                                            BackupAndRestore(folder),
                                                            std::make_shared<ThrowAt>(2, 1, false)}));
  expect_same_training(*whole, whole_history, *resumed, resumed_history);
  EXPECT_FALSE(fs::exists(folder)) << "the backup outlived a fit that ended";
  fs::remove_all(fs::path(folder).parent_path());
}

TEST(BackupAndRestore, KeepsTheBackupWhenAskedAndOnlyDeletesWhatItWrote) {
  const Data d = three_classes(40, 19);
  const std::string folder = fresh_folder("backup_keep");
  auto model = softmax_model();
  model->fit(d.x, d.y, quiet(2, 8).callbacks({BackupAndRestore(folder, false)}));
  const SafetensorsFile state = read_safetensors(training_state_path(folder));
  EXPECT_NE(state.metadata.at("state").find("\"epochs_completed\":2"), std::string::npos);
  // A folder that holds something else keeps it, and loses the state.
  fs::remove(training_state_path(folder));
  std::ofstream(folder + "/notes.txt") << "mine\n";
  model->fit(d.x, d.y, quiet(1, 8).callbacks({BackupAndRestore(folder)}));
  EXPECT_FALSE(fs::exists(training_state_path(folder)));
  EXPECT_TRUE(fs::exists(folder + "/notes.txt"));
  fs::remove_all(folder);
}

TEST(BackupAndRestore, OnePlaceForTheStateOfTraining) {
  const Data d = three_classes(20, 20);
  const std::string folder = fresh_folder("backup_twice");
  auto model = softmax_model();
  EXPECT_ATTNKIT_ERROR(
      model->fit(d.x, d.y, quiet(1, 8).checkpoint(folder + "/a").callbacks({BackupAndRestore(folder + "/b")})),
      "fit: the state of training would go to '" + folder + "/a' and to '" + folder +
          "/b': give FitOptions::checkpoint or one BackupAndRestore callback");
  EXPECT_ATTNKIT_ERROR(
      model->fit(d.x, d.y, quiet(1, 8).callbacks({BackupAndRestore(folder + "/a"), BackupAndRestore(folder + "/b")})),
      "give FitOptions::checkpoint or one BackupAndRestore callback");
  EXPECT_ATTNKIT_ERROR(BackupAndRestore(""), "BackupAndRestore: backup_dir must not be empty");
  fs::remove_all(folder);
}

// A checkpoint of a weighted fit belongs to its weights: other weights are another run.
TEST(BackupAndRestore, TheWeightsArePartOfTheRun) {
  Generator gen(21);
  const Data d = three_classes(30, 21);
  const std::string folder = fresh_folder("backup_weights");
  auto model = softmax_model();
  model->fit(d.x, d.y, quiet(1, 8).sample_weight(random_weights(30, gen)).callbacks({BackupAndRestore(folder, false)}));
  EXPECT_ATTNKIT_ERROR(model->fit(d.x, d.y, quiet(2, 8).sample_weight(random_weights(30, gen)).callbacks(
                                                {BackupAndRestore(folder, false)})),
                       "holds the state of another run: sample_weights_sha256 ");
  fs::remove_all(folder);
}

}  // namespace
}  // namespace attnkit
