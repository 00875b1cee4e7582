// The CPU's matrix product (src/cpu/gemm.cpp) at the shapes of the zoo models' training steps,
// on one thread, beside OpenBLAS's cblas_sgemm on the same inputs when the build found OpenBLAS
// (Debian's libopenblas-dev; attnkit itself does not use it). The context line names the kernel
// OpenBLAS picked for this CPU: a BLAS older than the processor falls back to a generic one.
//   build/bench/attnkit_bench_gemm [--benchmark_format=json]
// Names: gemm/<library>/M/N/K/<op(A)><op(B)> with N (as stored) or T (transposed).
#include <benchmark/benchmark.h>
#include <attnkit/threads.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/gemm.h"

#ifdef ATTNKIT_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Shape {
  int m, n, k;
  bool transpose_a, transpose_b;
  const char* where;  // a product of the zoo with this shape
};

// batch 32 x 20 steps = 640 rows; widths of the embedding (32), the recurrent gates (128, 256)
// and the dense layers (256).
const Shape kShapes[] = {
    {640, 32, 32, false, false, "Dense 32 -> 32 per step (attention gates), forward"},
    {640, 32, 32, false, true, "the same, gradient of the input"},
    {32, 32, 640, true, false, "the same, gradient of the kernel"},
    {640, 128, 32, false, false, "LSTM 32 inputs, gates of 32 units, all steps at once"},
    {32, 256, 640, false, false, "MLP Dense 640 -> 256, forward"},
    {32, 640, 256, false, true, "MLP Dense 640 -> 256, gradient of the input"},
    {640, 256, 32, true, false, "MLP Dense 640 -> 256, gradient of the kernel"},
    {640, 256, 128, false, false, "BiLSTM+Attention Dense 128 -> 256 per step"},
    {32, 256, 64, false, true, "LSTM 64 units, one step's recurrent gradient"},
    {32, 256, 64, false, false, "LSTM 64 units, one step's recurrent product"},
    {32, 64, 256, false, false, "LSTM 64 units, one step's gradient of h through R^T"},
};

std::string name_of(const char* library, const Shape& s) {
  return std::string("gemm/") + library + "/" + std::to_string(s.m) + "/" + std::to_string(s.n) + "/" +
         std::to_string(s.k) + "/" + (s.transpose_a ? "T" : "N") + (s.transpose_b ? "T" : "N");
}

struct Operands {
  std::vector<float> a, b, c;
  int lda, ldb;
  explicit Operands(const Shape& s)
      : a(std::size_t(s.m) * s.k), b(std::size_t(s.k) * s.n), c(std::size_t(s.m) * s.n),
        lda(s.transpose_a ? s.m : s.k), ldb(s.transpose_b ? s.k : s.n) {
    std::mt19937 gen(5);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (float& x : a) x = uniform(gen);
    for (float& x : b) x = uniform(gen);
  }
};

template <typename Product>
void run(benchmark::State& state, const Shape& s, Product product) {
  Operands o(s);
  for (auto _ : state) {
    product(o);
    benchmark::DoNotOptimize(o.c.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * s.m * s.n * s.k, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.SetLabel(s.where);
}

const bool kRegistered = [] {
  for (const Shape& s : kShapes) {
    benchmark::RegisterBenchmark(name_of("attnkit", s).c_str(), [s](benchmark::State& state) {
      run(state, s, [&](Operands& o) {
        attnkit::cpu::gemm<float>(s.transpose_a, s.transpose_b, s.m, s.n, s.k, 1.0f, o.a.data(), o.lda, o.b.data(),
                                  o.ldb, 0.0f, o.c.data(), s.n);
      });
    });
#ifdef ATTNKIT_BENCH_OPENBLAS
    benchmark::RegisterBenchmark(name_of("openblas", s).c_str(), [s](benchmark::State& state) {
      run(state, s, [&](Operands& o) {
        cblas_sgemm(CblasRowMajor, s.transpose_a ? CblasTrans : CblasNoTrans, s.transpose_b ? CblasTrans : CblasNoTrans,
                    s.m, s.n, s.k, 1.0f, o.a.data(), o.lda, o.b.data(), o.ldb, 0.0f, o.c.data(), s.n);
      });
    });
#endif
  }
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  attnkit::set_num_threads(1);  // both libraries on one core: the kernels themselves compared
#ifdef ATTNKIT_BENCH_OPENBLAS
  openblas_set_num_threads(1);
  benchmark::AddCustomContext("openblas", std::string(openblas_get_config()) + ", kernel " + openblas_get_corename());
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
