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

void print(const char* kernel, const char* dtype, int dim, int shared_bytes) {
  std::printf("{\"kernel\": \"%s\", \"dtype\": \"%s\", \"dim\": %d, \"threads\": %d, \"shared_bytes\": %d}\n", kernel,
              dtype, dim, flash::kThreads, shared_bytes);
}

template <int kDim>
void print_mma(const char* dtype) {
  using Element = std::uint16_t;  // f16 and bf16 alike: the layouts depend on the size only
  print("forward", dtype, kDim, flash::ForwardTraits<Element, kDim>::kSharedBytes);
  print("dq", dtype, kDim, flash::DqTraits<Element, kDim>::kSharedBytes);
  print("dkdv", dtype, kDim, flash::DkdvTraits<Element, kDim>::kSharedBytes);
}

template <int kCols>
void print_f32() {
  using Traits = flash::F32Traits<kCols>;
  constexpr int dim = 32 * kCols;
  const int bytes = static_cast<int>(sizeof(float));
  print("forward", "f32", kCols, bytes * typename Traits::Forward(dim, dim).floats);
  print("dq", "f32", kCols, bytes * typename Traits::Dq(dim, dim).floats);
  print("dkdv", "f32", kCols, bytes * typename Traits::Dkdv(dim, dim).floats);
}

}  // namespace

int main() {
  for (const char* dtype : {"f16", "bf16"}) {
    print_mma<32>(dtype);
    print_mma<64>(dtype);
    print_mma<128>(dtype);
  }
  print_f32<1>();
  print_f32<2>();
  print_f32<4>();
  print_f32<8>();
}
