// The cost of calling an op, at sizes where the work is nearly nothing: scaled dot-product
// attention over [1, 4, 8], additive pooling of [1, 4, 8] and gating of [4, 8], forward, in
// float32 on the cpu. bench/python_ops.py calls the same ops on the same sizes from Python; the
// difference is what the bindings cost.
//   build/bench/attnkit_bench_call_overhead [--benchmark_format=json]
#include <benchmark/benchmark.h>

#include <attnkit/attnkit.h>

namespace {

using namespace attnkit;

Tensor random(const Shape& shape, Generator& gen) { return Tensor::uniform(shape, -1, 1, gen); }

void BM_call_sdpa(benchmark::State& state) {
  Generator gen(1);
  const Tensor x = random({1, 4, 8}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::scaled_dot_product_attention(x, x, x).out.raw_data());
}
BENCHMARK(BM_call_sdpa);

void BM_call_additive(benchmark::State& state) {
  Generator gen(2);
  const Tensor x = random({1, 4, 8}, gen), w = random({8}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::additive_attention(x, w, Tensor()).y.raw_data());
}
BENCHMARK(BM_call_additive);

void BM_call_gating(benchmark::State& state) {
  Generator gen(3);
  const Tensor x = random({4, 8}, gen), w = random({8, 8}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(ops::gating_attention(x, w, Tensor()).y.raw_data());
}
BENCHMARK(BM_call_gating);

}  // namespace

BENCHMARK_MAIN();
