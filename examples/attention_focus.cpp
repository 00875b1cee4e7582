// attention_focus: the attention-focus experiment of MODELS.md (seed 003, attention_3d_block).
//
// Inputs x ~ N(0, 1) of shape [n, 20, 2] with labels y ~ Bernoulli(0.5), and x[:, 10, :] = y:
// step 10 carries the label. Two models learn it with binary cross-entropy and Adam:
//   before: TemporalGatingAttention -> LSTM(32) -> Dense(1, sigmoid)
//   after:  LSTM(32, return_sequences) -> TemporalGatingAttention -> Flatten -> Dense(1, sigmoid)
// The attention probabilities of 300 fresh samples are averaged over the features and the
// samples, and printed as one line per model:
//   attention before: w0 w1 ... w19
//   attention after: w0 w1 ... w19
//
// Options: --samples N (default 100000), --epochs E (1), --seed S (1337), --single-vector
// (SINGLE_ATTENTION_VECTOR), --device cpu|cuda[:N]|sim (where the models train; cpu by default),
// --check (exit 1 unless, before the LSTM, the weight of step 10 is the largest and more than
// twice the next largest). On --device cuda without a GPU it says so and exits with 77 (a test
// harness's "skipped").
#include <attnkit/attnkit.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace attnkit;

namespace {

constexpr std::int64_t kSteps = 20, kFeatures = 2, kAttentionColumn = 10;

struct Data {
  Tensor x, y;
};

Data make_data(std::int64_t n, Generator& gen) {
  Tensor x = Tensor::normal({n, kSteps, kFeatures}, 0.0, 1.0, gen);
  const std::vector<float> draws = Tensor::uniform({n}, 0.0, 1.0, gen).to_vector<float>();
  std::vector<float> labels(static_cast<std::size_t>(n));
  float* px = x.data<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    labels[static_cast<std::size_t>(i)] = draws[static_cast<std::size_t>(i)] < 0.5f ? 1.0f : 0.0f;
    for (std::int64_t f = 0; f < kFeatures; ++f)
      px[(i * kSteps + kAttentionColumn) * kFeatures + f] = labels[static_cast<std::size_t>(i)];
  }
  return {x, Tensor::from_vector(labels, {n, 1})};
}

// Trains one placement and returns its attention vector, averaged over features and samples.
std::vector<double> run(bool before_lstm, bool single_vector, const Data& train, const Data& probe, int epochs,
                        std::uint64_t seed, Device device) {
  using namespace layers;
  const SymbolicTensor inputs = Input({kSteps, kFeatures});
  const LayerRef attention = TemporalGatingAttention(single_vector, /*return_attention=*/true).named("attention_vec");
  std::vector<SymbolicTensor> attended;
  SymbolicTensor output;
  if (before_lstm) {
    attended = attention.call({inputs});
    output = Dense(1, "sigmoid")(LSTM(32)(attended[0]));
  } else {
    attended = attention.call({LSTM(32, RecurrentOptions().return_sequences(true))(inputs)});
    output = Dense(1, "sigmoid")(Flatten()(attended[0]));
  }
  Model model(inputs, output, before_lstm ? "attention_before_lstm" : "attention_after_lstm", seed);
  model.to(device);
  model.compile(CompileOptions().optimizer(Adam()).loss("binary_crossentropy"));
  std::printf("%s", model.summary().c_str());
  model.fit(train.x, train.y, FitOptions().epochs(epochs).batch_size(64).validation_split(0.1).seed(seed));

  // The same layers, read at the attention's probabilities (seed 003's get_activations).
  Model probe_model(inputs, attended[1], "attention_probe");
  probe_model.to(device);
  const std::vector<float> probs = probe_model.predict(probe.x).to_vector<float>();  // [300, 20, 2]
  const std::int64_t n = probe.x.size(0);
  std::vector<double> vector(kSteps, 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t t = 0; t < kSteps; ++t)
      for (std::int64_t f = 0; f < kFeatures; ++f)
        vector[static_cast<std::size_t>(t)] += probs[static_cast<std::size_t>((i * kSteps + t) * kFeatures + f)] /
                                               double(kFeatures * n);
  return vector;
}

void print_vector(const char* placement, const std::vector<double>& vector) {
  std::printf("attention %s:", placement);
  for (const double w : vector) std::printf(" %.4f", w);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t samples = 100000;
  int epochs = 1;
  std::uint64_t seed = 1337;
  bool single_vector = false, check = false;
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--samples" && has_value)
      samples = std::stoll(argv[++i]);
    else if (arg == "--epochs" && has_value)
      epochs = std::stoi(argv[++i]);
    else if (arg == "--seed" && has_value)
      seed = std::stoull(argv[++i]);
    else if (arg == "--device" && has_value)
      device_name = argv[++i];
    else if (arg == "--single-vector")
      single_vector = true;
    else if (arg == "--check")
      check = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--samples N] [--epochs E] [--seed S] [--single-vector] [--device D] [--check]\n",
                   argv[0]);
      return 2;
    }
  }
  if (samples < 20 || epochs < 1) {
    std::fprintf(stderr, "attention_focus: need at least 20 samples and 1 epoch\n");
    return 2;
  }
  try {
    const Device device = Device::parse(device_name);
    if (device.is_cuda() && cuda_device_count() <= device.index) {
      std::printf("attention_focus: no CUDA device %d (%s)\n", device.index, cuda_status().c_str());
      return 77;
    }
    std::printf("training on %s\n", device.str().c_str());
    Generator gen(seed);
    const Data train = make_data(samples, gen);
    const Data probe = make_data(300, gen);
    const std::vector<double> before = run(true, single_vector, train, probe, epochs, seed, device);
    const std::vector<double> after = run(false, single_vector, train, probe, epochs, seed, device);
    print_vector("before", before);
    print_vector("after", after);
    if (check) {
      double runner_up = 0;
      for (std::int64_t t = 0; t < kSteps; ++t)
        if (t != kAttentionColumn) runner_up = std::max(runner_up, before[static_cast<std::size_t>(t)]);
      const double focus = before[kAttentionColumn];
      std::printf("step %lld weighs %.4f, the next largest %.4f (ratio %.2f)\n",
                  static_cast<long long>(kAttentionColumn), focus, runner_up, focus / runner_up);
      if (!(focus > 2 * runner_up)) {
        std::printf("check failed: the weight of step %lld is not more than twice any other\n",
                    static_cast<long long>(kAttentionColumn));
        return 1;
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "attention_focus: %s\n", e.what());
    return 1;
  }
  return 0;
}
