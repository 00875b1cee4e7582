// The attention ops of attnkit, fused against unfused, on the same inputs in the same run:
//
//   sdpa_train/ENGINE/hH/wW          the training regime: batch 32, length 20, H heads over width
//                                    W, float32; forward plus backward of the op, per call
//   sdpa_FWD|BWD/ENGINE/DTYPE/dD/tT[/causal]
//                                    the long regime: 16 heads of dim D, length T, batch 16384 / T
//                                    (at most 16); f16 and bf16 (fused), f32 (both engines, T <= 2048)
//   sdpa_variant/fused/DTYPE/dD/tT/bias|gqa4|dropout
//                                    the long regime's forward plus backward with an additive bias
//                                    [1, 16, T, T] in the dtype (bias), 4 key heads for the 16
//                                    query heads (gqa4), or dropout 0.1 of the probabilities
//                                    (dropout); f16 and bf16, on a GPU
//   sdpa_varlen/fused/DTYPE/dD/tT/packed|padded
//                                    forward plus backward of sequences of varied lengths (from T / 8
//                                    to T, 16 heads of dim D, batch 16384 / T): packed without
//                                    padding (varlen_attention), or padded to T with key lengths;
//                                    TFLOP counts the sequences' own work in both, so padding shows
//                                    as a lower rate
//   sdpa_decode/fused/DTYPE/d128/cC/kvK/splits0|splits1
//                                    one decoding step (decode_attention): batch 8, 32 query heads,
//                                    K key heads, one query each, against caches of C steps (the
//                                    last one appended in place by the call); split over the steps
//                                    as the op chooses (splits0) or not at all (splits1); GB counts
//                                    the caches read once, which bounds the step from below
//   additive/ENGINE/small|large, gating_features/..., gating_time/...: forward plus backward
//
// ENGINE is fused or unfused (ops::AttentionKernel; on the cpu, "cpu": its one op). Counters,
// as rates: TFLOP for SDPA (forward 4 B H Tq Tk d, backward 2.5 times that, causal half of
// either; the training regime's forward plus backward is 3.5 times the forward) and GB for the
// others (the bytes that must move once: inputs read, outputs written); on cuda also the fraction
// of the ceiling this program measures first on the same GPU (bench/ceilings.cu: the mma.sync
// rate of the dtype, the copy bandwidth), and the launch floor in the JSON context. On the cpu
// the times are CPU figures.
//   build/bench/attnkit_bench_attention [--device=cuda|cpu|sim] [--benchmark_filter=...]
//                                       [--benchmark_format=json]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <tuple>
#include <vector>

#include <attnkit/attnkit.h>
#include <attnkit/config.h>

#include "bench/device_flag.h"

#if ATTNKIT_WITH_CUDA
#include "bench/ceilings.h"
#endif

namespace {

using namespace attnkit;
using ops::AttentionKernel;

Device device = Device::cpu();  // --device
double mma_f16_tflops = 0, mma_bf16_tflops = 0, bandwidth_gbs = 0;

// On the cpu both engines are the CPU op: its benchmarks are named "cpu".
std::string engine_name(AttentionKernel kernel) {
  if (device.is_cpu()) return "cpu";
  return kernel == AttentionKernel::fused ? "fused" : "unfused";
}

Tensor random_on_device(const Shape& shape, DType dtype, Generator& gen) {
  return Tensor::uniform(shape, -1.0, 1.0, gen, DType::f32).to(dtype).to(device);
}

// Times `call` per invocation: `repeats` calls, then waiting for the device, per iteration.
template <typename F>
void time_calls(benchmark::State& state, int repeats, F&& call) {
  call();  // warm-up: the allocator's cache, first launches
  if (device.is_cuda()) cuda_synchronize(device.index);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r) call();
    if (device.is_cuda()) cuda_synchronize(device.index);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeats);
  }
}

void set_flops(benchmark::State& state, double flops, DType dtype) {
  state.counters["TFLOP"] = benchmark::Counter(flops / 1e12, benchmark::Counter::kIsIterationInvariantRate);
  const double ceiling = dtype == DType::bf16 ? mma_bf16_tflops : mma_f16_tflops;
  if (ceiling > 0 && dtype != DType::f32)
    state.counters["of_mma_ceiling"] =
        benchmark::Counter(flops / 1e12 / ceiling, benchmark::Counter::kIsIterationInvariantRate);
}

void set_bytes(benchmark::State& state, double bytes) {
  state.counters["GB"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  if (bandwidth_gbs > 0)
    state.counters["of_bandwidth"] =
        benchmark::Counter(bytes / 1e9 / bandwidth_gbs, benchmark::Counter::kIsIterationInvariantRate);
}

void sdpa_train(benchmark::State& state, AttentionKernel kernel, std::int64_t heads, std::int64_t width) {
  const std::int64_t B = 32, T = 20;
  Generator gen(1);
  const Tensor q = random_on_device({B, T, width}, DType::f32, gen), k = random_on_device({B, T, width}, DType::f32, gen);
  const Tensor v = random_on_device({B, T, width}, DType::f32, gen), dout = random_on_device({B, T, width}, DType::f32, gen);
  ops::AttentionOptions options;
  options.num_heads = heads;
  options.kernel = kernel;
  time_calls(state, 20, [&] {
    const ops::AttentionResult r = ops::scaled_dot_product_attention(q, k, v, Tensor(), options);
    benchmark::DoNotOptimize(ops::scaled_dot_product_attention_backward(q, k, v, Tensor(), r, dout, options).dq);
  });
  set_flops(state, 3.5 * 4.0 * B * heads * T * T * (width / heads), DType::f32);
}

void sdpa_long(benchmark::State& state, AttentionKernel kernel, DType dtype, std::int64_t dim, std::int64_t T,
               bool causal, bool backward) {
  const std::int64_t H = 16, B = std::min<std::int64_t>(16, std::max<std::int64_t>(1, 16384 / T));
  Generator gen(2);
  const Tensor q = random_on_device({B, T, H * dim}, dtype, gen), k = random_on_device({B, T, H * dim}, dtype, gen);
  const Tensor v = random_on_device({B, T, H * dim}, dtype, gen), dout = random_on_device({B, T, H * dim}, dtype, gen);
  ops::AttentionOptions options;
  options.num_heads = H;
  options.causal = causal;
  options.kernel = kernel;
  const ops::AttentionResult forward = ops::scaled_dot_product_attention(q, k, v, Tensor(), options);
  if (backward)
    time_calls(state, 3, [&] {
      benchmark::DoNotOptimize(ops::scaled_dot_product_attention_backward(q, k, v, Tensor(), forward, dout, options).dq);
    });
  else
    time_calls(state, 3, [&] { benchmark::DoNotOptimize(ops::scaled_dot_product_attention(q, k, v, Tensor(), options).out); });
  const double flops = 4.0 * B * H * T * T * dim * (backward ? 2.5 : 1.0) * (causal ? 0.5 : 1.0);
  set_flops(state, flops, dtype);
}

// The long regime's forward plus backward with a bias or dropout (the kernels' instances with
// modifiers), or grouped heads: variant "bias", "dropout" or "gqa4".
void sdpa_variant(benchmark::State& state, DType dtype, std::int64_t dim, std::int64_t T, const std::string& variant) {
  const std::int64_t H = 16, Hkv = variant == "gqa4" ? 4 : H;
  const std::int64_t B = std::min<std::int64_t>(16, std::max<std::int64_t>(1, 16384 / T));
  Generator gen(5);
  const Tensor q = random_on_device({B, T, H * dim}, dtype, gen), k = random_on_device({B, T, Hkv * dim}, dtype, gen);
  const Tensor v = random_on_device({B, T, Hkv * dim}, dtype, gen), dout = random_on_device({B, T, H * dim}, dtype, gen);
  ops::AttentionOptions options;
  options.num_heads = H;
  options.num_kv_heads = Hkv;
  if (variant == "bias") options.bias = random_on_device({1, H, T, T}, dtype, gen);
  if (variant == "dropout") options.dropout = 0.1, options.dropout_seed = 5;
  time_calls(state, 3, [&] {
    const ops::AttentionResult r = ops::scaled_dot_product_attention(q, k, v, Tensor(), options);
    benchmark::DoNotOptimize(ops::scaled_dot_product_attention_backward(q, k, v, Tensor(), r, dout, options).dq);
  });
  set_flops(state, 3.5 * 4.0 * B * H * T * T * dim, dtype);
}

// The lengths of sdpa_varlen's sequences: spread over [T / 8, T], the same on every run.
std::vector<std::int32_t> varlen_lengths(std::int64_t B, std::int64_t T) {
  std::vector<std::int32_t> lengths;
  for (std::int64_t b = 0; b < B; ++b) lengths.push_back(static_cast<std::int32_t>(T - (b * 7919) % (T - T / 8)));
  return lengths;
}

void sdpa_varlen(benchmark::State& state, DType dtype, std::int64_t dim, std::int64_t T, bool packed) {
  const std::int64_t H = 16, B = std::min<std::int64_t>(16, std::max<std::int64_t>(1, 16384 / T));
  const std::vector<std::int32_t> lengths = varlen_lengths(B, T);
  std::vector<std::int32_t> starts{0};
  double flops = 0;
  for (const std::int32_t n : lengths) {
    starts.push_back(starts.back() + n);
    flops += 3.5 * 4.0 * H * double(n) * double(n) * dim;
  }
  Generator gen(6);
  ops::AttentionOptions options;
  if (packed) {
    const std::int64_t total = starts.back();
    const Tensor q = random_on_device({total, H, dim}, dtype, gen), k = random_on_device({total, H, dim}, dtype, gen);
    const Tensor v = random_on_device({total, H, dim}, dtype, gen), dout = random_on_device({total, H, dim}, dtype, gen);
    const Tensor cu = Tensor::from_vector(starts, {B + 1}).to(device);
    time_calls(state, 3, [&] {
      const ops::AttentionResult r = ops::varlen_attention(q, k, v, cu, cu, options);
      benchmark::DoNotOptimize(ops::varlen_attention_backward(q, k, v, cu, cu, r, dout, options).dq);
    });
  } else {
    options.num_heads = H;
    const Tensor q = random_on_device({B, T, H * dim}, dtype, gen), k = random_on_device({B, T, H * dim}, dtype, gen);
    const Tensor v = random_on_device({B, T, H * dim}, dtype, gen), dout = random_on_device({B, T, H * dim}, dtype, gen);
    const Tensor key_lengths = Tensor::from_vector(lengths, {B}).to(device);
    time_calls(state, 3, [&] {
      const ops::AttentionResult r = ops::scaled_dot_product_attention(q, k, v, key_lengths, options);
      benchmark::DoNotOptimize(ops::scaled_dot_product_attention_backward(q, k, v, key_lengths, r, dout, options).dq);
    });
  }
  set_flops(state, flops, dtype);
}

void sdpa_decode(benchmark::State& state, DType dtype, std::int64_t dim, std::int64_t steps, std::int64_t kv_heads,
                 std::int64_t splits) {
  const std::int64_t B = 8, H = 32;
  Generator gen(7);
  const Tensor q = random_on_device({B, 1, H * dim}, dtype, gen);
  Tensor k_cache = random_on_device({B, steps, kv_heads * dim}, dtype, gen);
  Tensor v_cache = random_on_device({B, steps, kv_heads * dim}, dtype, gen);
  const Tensor k_new = random_on_device({B, 1, kv_heads * dim}, dtype, gen);
  const Tensor v_new = random_on_device({B, 1, kv_heads * dim}, dtype, gen);
  const Tensor lengths = Tensor::full({B}, static_cast<double>(steps - 1), DType::i32, device);
  ops::AttentionOptions options;
  options.num_heads = H, options.num_kv_heads = kv_heads, options.causal = true;
  time_calls(state, 20, [&] {
    benchmark::DoNotOptimize(ops::decode_attention(q, k_cache, v_cache, lengths, k_new, v_new, options, splits).out);
  });
  const double element = static_cast<double>(dtype_size(dtype));
  set_bytes(state, element * (2.0 * B * steps * kv_heads * dim + 2.0 * B * H * dim));
}

void additive(benchmark::State& state, AttentionKernel kernel, std::int64_t B, std::int64_t T, std::int64_t D) {
  Generator gen(3);
  const Tensor x = random_on_device({B, T, D}, DType::f32, gen), w = random_on_device({D}, DType::f32, gen);
  const Tensor b = random_on_device({T}, DType::f32, gen), dy = random_on_device({B, D}, DType::f32, gen);
  ops::AdditiveAttentionOptions options;
  options.kernel = kernel;
  time_calls(state, B * T * D < 1000000 ? 20 : 3, [&] {
    const ops::AdditiveAttentionResult r = ops::additive_attention(x, w, b, Tensor(), options);
    benchmark::DoNotOptimize(ops::additive_attention_backward(x, w, b, r.weights, dy, options).dx);
  });
  // Forward: x read, y and the weights written; backward: x, dy and the weights read, dx written.
  const double x_bytes = 4.0 * B * T * D;
  set_bytes(state, x_bytes + 4.0 * (B * D + B * T) + x_bytes + 4.0 * (B * D + B * T) + x_bytes);
}

void gating(benchmark::State& state, AttentionKernel kernel, bool over_time, std::int64_t B, std::int64_t T,
            std::int64_t D) {
  Generator gen(4);
  const std::int64_t n = over_time ? T : D;
  const Tensor x = random_on_device({B, T, D}, DType::f32, gen), dy = random_on_device({B, T, D}, DType::f32, gen);
  const Tensor weight = random_on_device({n, n}, DType::f32, gen), bias = random_on_device({n}, DType::f32, gen);
  time_calls(state, B * T * D < 1000000 ? 20 : 3, [&] {
    if (over_time) {
      benchmark::DoNotOptimize(ops::temporal_gating_attention(x, weight, bias, false, kernel).y);
      benchmark::DoNotOptimize(ops::temporal_gating_attention_backward(x, weight, bias, dy, false, kernel).dx);
    } else {
      const ops::GatingResult r = ops::gating_attention(x, weight, bias, kernel);
      benchmark::DoNotOptimize(ops::gating_attention_backward(x, weight, r.probs, dy, true, kernel).dx);
    }
  });
  // Forward: x read, y and probs written; backward: x, probs and dy read, dx written.
  set_bytes(state, 4.0 * B * T * D * 7);
}

void register_all() {
  const auto add = [](const std::string& name, auto&& body) {
    benchmark::RegisterBenchmark(name.c_str(), body)->UseManualTime()->Unit(benchmark::kMicrosecond);
  };
  for (const AttentionKernel kernel : {AttentionKernel::fused, AttentionKernel::unfused}) {
    if (device.is_cpu() && kernel == AttentionKernel::unfused) continue;
    const std::string engine = engine_name(kernel);
    for (const std::int64_t width : {32, 64, 128, 256})
      for (const std::int64_t heads : {1, 2, 4, 8})
        add("sdpa_train/" + engine + "/h" + std::to_string(heads) + "/w" + std::to_string(width),
            [=](benchmark::State& s) { sdpa_train(s, kernel, heads, width); });
    for (const auto& [size, B, T, D] : {std::tuple<const char*, int, int, int>{"small", 32, 20, 256},
                                        std::tuple<const char*, int, int, int>{"large", 256, 512, 512}})
      add("additive/" + engine + "/" + size, [=](benchmark::State& s) { additive(s, kernel, B, T, D); });
    for (const auto& [size, B, T, D] : {std::tuple<const char*, int, int, int>{"small", 32, 20, 32},
                                        std::tuple<const char*, int, int, int>{"large", 8192, 32, 64}}) {
      add("gating_features/" + engine + "/" + size, [=](benchmark::State& s) { gating(s, kernel, false, B, T, D); });
      add("gating_time/" + engine + "/" + size, [=](benchmark::State& s) { gating(s, kernel, true, B, T, D); });
    }
  }
  if (!device.is_cuda()) return;  // the long regime is for a GPU
  for (const bool backward : {false, true})
    for (const DType dtype : {DType::f16, DType::bf16, DType::f32})
      for (const std::int64_t dim : {64, 128})
        for (const std::int64_t T : {512, 1024, 2048, 4096, 8192})
          for (const bool causal : {false, true})
            for (const AttentionKernel kernel : {AttentionKernel::fused, AttentionKernel::unfused}) {
              // The unfused path is f32 only; f32 runs up to T = 2048 (its scores take B H T^2 floats).
              if ((kernel == AttentionKernel::unfused || dtype == DType::f32) && (dtype != DType::f32 || T > 2048))
                continue;
              add(std::string(backward ? "sdpa_bwd/" : "sdpa_fwd/") + engine_name(kernel) + "/" + dtype_name(dtype) +
                      "/d" + std::to_string(dim) + "/t" + std::to_string(T) + (causal ? "/causal" : ""),
                  [=](benchmark::State& s) { sdpa_long(s, kernel, dtype, dim, T, causal, backward); });
            }
  for (const DType dtype : {DType::f16, DType::bf16})
    for (const std::int64_t dim : {64, 128})
      for (const std::int64_t T : {1024, 4096})
        for (const std::string variant : {"bias", "gqa4", "dropout"})
          add(std::string("sdpa_variant/fused/") + dtype_name(dtype) + "/d" + std::to_string(dim) + "/t" +
                  std::to_string(T) + "/" + variant,
              [=](benchmark::State& s) { sdpa_variant(s, dtype, dim, T, variant); });
  for (const DType dtype : {DType::f16, DType::bf16})
    for (const std::int64_t dim : {64, 128})
      for (const std::int64_t T : {1024, 4096})
        for (const bool packed : {true, false})
          add(std::string("sdpa_varlen/fused/") + dtype_name(dtype) + "/d" + std::to_string(dim) + "/t" +
                  std::to_string(T) + (packed ? "/packed" : "/padded"),
              [=](benchmark::State& s) { sdpa_varlen(s, dtype, dim, T, packed); });
  for (const DType dtype : {DType::f16, DType::bf16})
    for (const std::int64_t steps : {1024, 8192, 32768})
      for (const std::int64_t kv_heads : {32, 8})
        for (const std::int64_t splits : {0, 1})
          add(std::string("sdpa_decode/fused/") + dtype_name(dtype) + "/d128/c" + std::to_string(steps) + "/kv" +
                  std::to_string(kv_heads) + "/splits" + std::to_string(splits),
              [=](benchmark::State& s) { sdpa_decode(s, dtype, 128, steps, kv_heads, splits); });
}

}  // namespace

int main(int argc, char** argv) {
  device = bench::take_device_flag(argc, argv);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("device", device.str());
#if ATTNKIT_WITH_CUDA
  if (device.is_cuda()) {
    const bench::Ceilings c = bench::measure_ceilings();
    mma_f16_tflops = c.mma_f16_tflops, mma_bf16_tflops = c.mma_bf16_tflops, bandwidth_gbs = c.copy_gbytes_per_second;
    benchmark::AddCustomContext("gpu", cuda_device_info(device.index).name);
    benchmark::AddCustomContext("ceiling_mma_f16_tflops", std::to_string(c.mma_f16_tflops));
    benchmark::AddCustomContext("ceiling_mma_bf16_tflops", std::to_string(c.mma_bf16_tflops));
    benchmark::AddCustomContext("ceiling_copy_gbytes_per_second", std::to_string(c.copy_gbytes_per_second));
    benchmark::AddCustomContext("launch_floor_microseconds", std::to_string(c.launch_microseconds));
  }
#endif
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
