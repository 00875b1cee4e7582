// CPU ops at the sizes of the sentiment models (batch 32, length 20, width 32 to 128), forward
// plus backward, in float32. Reports time per call and, for the matrix-product-bound ops,
// GFLOP/s. Run: build/bench/attnkit_bench_cpu_ops [--benchmark_format=json]
#include <benchmark/benchmark.h>

#include <cmath>

#include <attnkit/attnkit.h>

namespace {

using namespace attnkit;

Tensor random(const Shape& shape, Generator& gen) { return Tensor::uniform(shape, -1, 1, gen); }

void BM_Linear(benchmark::State& state) {
  const std::int64_t rows = 32 * 20, in = state.range(0), out = state.range(1);
  Generator gen(1);
  Tensor x = random({rows, in}, gen), w = random({in, out}, gen), b = random({out}, gen);
  for (auto _ : state) {
    Tensor y = ops::linear(x, w, b);
    ops::LinearGrads g = ops::linear_backward(x, w, y);
    benchmark::DoNotOptimize(g.dx.raw_data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(6.0 * rows * in * out, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Linear)->Args({32, 64})->Args({640, 256})->Args({256, 256});

void BM_Recurrent(benchmark::State& state) {
  const auto cell = static_cast<ops::RecurrentCell>(state.range(0));
  const std::int64_t units = state.range(1), G = ops::recurrent_gate_count(cell);
  Generator gen(2);
  Tensor x = random({32, 20, 32}, gen), w = random({32, G * units}, gen), r = random({units, G * units}, gen);
  Tensor bias = cell == ops::RecurrentCell::gru ? random({2, G * units}, gen) : random({G * units}, gen);
  ops::RecurrentOptions options;
  options.return_sequences = true;
  for (auto _ : state) {
    ops::RecurrentResult f = ops::recurrent(cell, x, w, r, bias, Tensor(), Tensor(), options);
    ops::RecurrentGrads g = ops::recurrent_backward(cell, x, w, r, bias, Tensor(), Tensor(), f, f.y,
                                                    Tensor(), Tensor(), options);
    benchmark::DoNotOptimize(g.dx.raw_data());
  }
  state.SetLabel(ops::recurrent_cell_name(cell));
}
BENCHMARK(BM_Recurrent)->Args({0, 32})->Args({1, 32})->Args({1, 64})->Args({2, 32});

void BM_Conv1d(benchmark::State& state) {
  Generator gen(3);
  Tensor x = random({32, 20, 32}, gen), w = random({state.range(0), 32, 32}, gen), b = random({32}, gen);
  for (auto _ : state) {
    Tensor y = ops::conv1d(x, w, b);
    ops::Conv1dGrads g = ops::conv1d_backward(x, w, y);
    benchmark::DoNotOptimize(g.dx.raw_data());
  }
}
BENCHMARK(BM_Conv1d)->Arg(3)->Arg(5);

void BM_ScaledDotProductAttention(benchmark::State& state) {
  const std::int64_t steps = state.range(0), width = state.range(1), heads = state.range(2);
  Generator gen(4);
  Tensor q = random({32, steps, width}, gen), k = random({32, steps, width}, gen), v = random({32, steps, width}, gen);
  ops::AttentionOptions options;
  options.num_heads = heads;
  for (auto _ : state) {
    ops::AttentionResult f = ops::scaled_dot_product_attention(q, k, v, Tensor(), options);
    ops::AttentionGrads g = ops::scaled_dot_product_attention_backward(q, k, v, Tensor(), f, f.out, options);
    benchmark::DoNotOptimize(g.dq.raw_data());
  }
  // Forward 4 B T^2 d, backward 2.5 times that.
  state.counters["GFLOP/s"] = benchmark::Counter(3.5 * 4.0 * 32 * steps * steps * width,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_ScaledDotProductAttention)->Args({20, 64, 4})->Args({20, 256, 8})->Args({128, 128, 4});

void BM_AdditiveAttention(benchmark::State& state) {
  Generator gen(5);
  const std::int64_t width = state.range(0);
  Tensor x = random({32, 20, width}, gen), w = random({width}, gen), b = random({20}, gen);
  for (auto _ : state) {
    ops::AdditiveAttentionResult f = ops::additive_attention(x, w, b);
    ops::AdditiveAttentionGrads g = ops::additive_attention_backward(x, w, b, f.weights, f.y);
    benchmark::DoNotOptimize(g.dx.raw_data());
  }
}
BENCHMARK(BM_AdditiveAttention)->Arg(256);

// Softmax over the last axis of [640, n] (the gating attentions' 32 features per step, the
// classifier's 2 classes), forward plus backward.
void BM_Softmax(benchmark::State& state) {
  Generator gen(6);
  Tensor x = random({32 * 20, state.range(0)}, gen), dy = random({32 * 20, state.range(0)}, gen);
  for (auto _ : state) {
    Tensor y = ops::softmax(x, -1);
    Tensor dx = ops::softmax_backward(y, dy, -1);
    benchmark::DoNotOptimize(dx.raw_data());
  }
}
BENCHMARK(BM_Softmax)->Arg(2)->Arg(32);

}  // namespace

BENCHMARK_MAIN();
