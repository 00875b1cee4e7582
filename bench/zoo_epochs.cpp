// One training epoch of every zoo model at the blog's protocol sizes, on synthetic data of the
// same shape: 9,589 training reviews (80% of 11,987) of which the last 20% validate, batch 32,
// 20 token ids below 6,000, Adam. Reports seconds per epoch, training samples per second and, on
// the CPU, the GFLOP of the epoch's matrix products (its floor: compare_zoo.sh divides them by the
// product rate that peak/gemm measures).
//   build/bench/attnkit_bench_zoo_epochs [--benchmark_filter=lstm] [--benchmark_format=json]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include <attnkit/text.h>
#include <attnkit/threads.h>

#include "bench/device_flag.h"
#include "cpu/gemm.h"

namespace {

using namespace attnkit;

constexpr std::int64_t kTrainReviews = 9589;

// Token ids with a Zipf-like skew (frequent words are the small ids) and random labels.
struct SyntheticReviews {
  Tensor ids, labels;
  SyntheticReviews() {
    Generator gen(7);
    const std::vector<float> u = Tensor::uniform({kTrainReviews * 20}, 0.0, 1.0, gen).to_vector<float>();
    std::vector<std::int32_t> id(u.size());
    for (std::size_t i = 0; i < u.size(); ++i) id[i] = 1 + static_cast<std::int32_t>(5998.0 * u[i] * u[i] * u[i]);
    std::vector<float> onehot(static_cast<std::size_t>(kTrainReviews * 2), 0.0f);
    for (std::int64_t i = 0; i < kTrainReviews; ++i) onehot[static_cast<std::size_t>(i * 2 + (id[i * 20] % 2))] = 1.0f;
    ids = Tensor::from_vector(id, {kTrainReviews, 20});
    labels = Tensor::from_vector(onehot, {kTrainReviews, 2});
  }
};

Device device = Device::cpu();  // --device

void BM_Epoch(benchmark::State& state, const std::string& name) {
  static const SyntheticReviews data;
  auto model = zoo::build(name);
  model->to(device);
  model->compile(CompileOptions().optimizer(Adam()));
  std::int64_t flops = 0;
  for (auto _ : state) {
    const std::int64_t flops_before = cpu::gemm_flops();
    const History h = model->fit(data.ids, data.labels, FitOptions().epochs(1).validation_split(0.2).verbose(0));
    state.SetIterationTime(h.epoch_seconds[0]);
    flops = cpu::gemm_flops() - flops_before;
  }
  if (device.is_cpu()) state.counters["GFLOP"] = double(flops) * 1e-9;
  const double train_samples = double(static_cast<std::int64_t>(kTrainReviews * 0.8));  // Keras: int(N * (1 - 0.2))
  state.counters["samples/s"] = benchmark::Counter(train_samples, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params"] = double(model->count_params());
}

// attnkit's best product rate on this CPU, on all of its threads: a product large enough to fill
// the threads, small enough that B stays in the L2 cache (the zoo's products are smaller still).
// The most an epoch's products could run at, which sets the epoch's floor.
void BM_PeakGemm(benchmark::State& state) {
  constexpr int kM = 1024, kN = 256, kK = 256;
  std::vector<float> a(kM * kK), b(kK * kN), c(kM * kN);
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& x : a) x = uniform(gen);
  for (float& x : b) x = uniform(gen);
  for (auto _ : state) {
    cpu::gemm<float>(false, false, kM, kN, kK, 1.0f, a.data(), kK, b.data(), kN, 0.0f, c.data(), kN);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kM * kN * kK, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = num_threads();
}

const bool kRegistered = [] {
  benchmark::RegisterBenchmark("peak/gemm/1024x256x256", BM_PeakGemm)->Unit(benchmark::kMillisecond);
  for (const std::string& name : zoo::model_names())
    benchmark::RegisterBenchmark(("epoch/" + name).c_str(), BM_Epoch, name)
        ->UseManualTime()
        ->Iterations(1)
        ->Unit(benchmark::kSecond);
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  // --device=NAME is ours; the rest are Google Benchmark's flags.
  device = bench::take_device_flag(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("device", device.str());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
