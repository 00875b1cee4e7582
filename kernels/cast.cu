// Conversion between float formats: one thread per element, grid-stride loops. Every element
// goes through f32, which holds f16 and bf16 values exactly, so one rounding is made at most.
#include "kernels/cast.h"

#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;

// One source and one target element type, as one template argument (a launch macro's argument
// cannot hold the comma between two).
template <typename From, typename To>
struct Conversion {
  using Source = From;
  using Target = To;
};

template <typename C>
__global__ void cast_kernel(const typename C::Source* x, typename C::Target* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x)
    y[i] = ak::from_float<typename C::Target>(ak::to_float(x[i]));
}

template <typename From, typename To>
void launch(const void* x, void* y, std::int64_t n, void* stream) {
  using C = Conversion<From, To>;
  AK_LAUNCH(cast_kernel<C>, ak::grid_stride_blocks(n, kThreads), kThreads, 0, ak::as_stream(stream),
            static_cast<const From*>(x), static_cast<To*>(y), n);
}

// Calls f with a value of the element type of `format`.
template <typename F>
void with_element_type(FloatFormat format, F&& f) {
  switch (format) {
    case FloatFormat::f32: return f(float{});
    case FloatFormat::f16: return f(ak::half{});
    case FloatFormat::bf16: return f(ak::bfloat16{});
  }
}

}  // namespace

void cast(const void* x, FloatFormat from, void* y, FloatFormat to, std::int64_t n, void* stream) {
  if (n == 0) return;
  with_element_type(from, [&](auto from_tag) {
    with_element_type(to, [&](auto to_tag) { launch<decltype(from_tag), decltype(to_tag)>(x, y, n, stream); });
  });
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
