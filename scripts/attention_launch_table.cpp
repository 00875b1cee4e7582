// Prints, one JSON object a line, the threads and the dynamic shared memory of every fused
// attention kernel instance, from the kernels' own traits (kernels/flash_attention_traits.h):
// what scripts/sass_report.py needs for the occupancy column. The float32 kernels' shared memory
// depends on the head dims: each instance is given at the largest it takes (dk = dv = 32 kCols).
#include <cstdint>
#include <cstdio>
#include <initializer_list>

#include "kernels/flash_attention_traits.h"

namespace flash = attnkit::kernels::flash;

namespace {

// variant: "plain", or "modifiers" for the instances with score modifiers.
void print(const char* kernel, const char* variant, const char* dtype, int dim, int shared_bytes) {
  std::printf(
      "{\"kernel\": \"%s\", \"variant\": \"%s\", \"dtype\": \"%s\", \"dim\": %d, \"threads\": %d, "
      "\"shared_bytes\": %d}\n",
      kernel, variant, dtype, dim, flash::kThreads, shared_bytes);
}

template <int kDim, bool kModified>
void print_mma(const char* dtype) {
  using Element = std::uint16_t;  // f16 and bf16 alike: the layouts depend on the size only
  const char* variant = kModified ? "modifiers" : "plain";
  print("forward", variant, dtype, kDim, flash::ForwardTraits<Element, kDim, kModified>::kSharedBytes);
  print("dq", variant, dtype, kDim, flash::DqTraits<Element, kDim, kModified>::kSharedBytes);
  print("dkdv", variant, dtype, kDim, flash::DkdvTraits<Element, kDim, kModified>::kSharedBytes);
}

template <int kCols>
void print_f32() {
  using Traits = flash::F32Traits<kCols>;
  constexpr int dim = 32 * kCols;
  const int bytes = static_cast<int>(sizeof(float));
  for (const char* variant : {"plain", "modifiers"}) {  // the same layouts
    print("forward", variant, "f32", kCols, bytes * typename Traits::Forward(dim, dim).floats);
    print("dq", variant, "f32", kCols, bytes * typename Traits::Dq(dim, dim).floats);
    print("dkdv", variant, "f32", kCols, bytes * typename Traits::Dkdv(dim, dim).floats);
  }
}

}  // namespace

int main() {
  for (const char* dtype : {"f16", "bf16"}) {
    print_mma<32, false>(dtype);
    print_mma<64, false>(dtype);
    print_mma<128, false>(dtype);
    print_mma<32, true>(dtype);
    print_mma<64, true>(dtype);
    print_mma<128, true>(dtype);
  }
  print_f32<1>();
  print_f32<2>();
  print_f32<4>();
  print_f32<8>();
}
