// The ceilings that the attention benchmarks are measured against, measured on the GPU they run
// on (bench/ceilings.cu): the rate of mma.sync m16n8k16 with f32 accumulation in f16 and in
// bf16, the bandwidth of a copy through device memory, and the time of one kernel launch.
#pragma once

namespace attnkit::bench {

struct Ceilings {
  double mma_f16_tflops = 0, mma_bf16_tflops = 0;  // dense FLOPs per second / 1e12
  double copy_gbytes_per_second = 0;               // bytes read plus bytes written, / 1e9
  double launch_microseconds = 0;                  // an empty kernel, launched back to back
};

// Measures them on the current GPU (a second or so); CUDA errors are attnkit::Error.
Ceilings measure_ceilings();

}  // namespace attnkit::bench
