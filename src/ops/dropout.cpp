// Inverted dropout on the CPU, with the Philox mask of random.h.
#include "attnkit/ops/dropout.h"

#include <algorithm>

#include "cpu/parallel.h"
#include "cpu/philox.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

void check_rate(const char* op, double rate) {
  ATTNKIT_CHECK(rate >= 0.0 && rate < 1.0, op, ": rate must be in [0, 1), got ", rate);
}

// y = keep ? x * scale : 0 with keep = (uniform of word i >= threshold), for n elements whose
// words lie in order in `words`. The arrays do not overlap (restrict), so the loop vectorizes.
template <typename T>
void apply_mask(const std::uint32_t* __restrict words, const T* __restrict x, T* __restrict y,
                std::uint8_t* __restrict keep, std::int64_t n, float threshold, T scale) {
  for (std::int64_t i = 0; i < n; ++i) {
    const bool kept = uniform_from_word(words[i]) >= threshold;
    keep[i] = kept ? 1 : 0;
    y[i] = kept ? x[i] * scale : T(0);
  }
}

// dx = keep ? dy * scale : 0 (restrict: the loop vectorizes).
template <typename T>
void scale_kept(const std::uint8_t* __restrict keep, const T* __restrict dy, T* __restrict dx, std::int64_t n, T scale) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = keep[i] ? dy[i] * scale : T(0);
}

}  // namespace

DropoutResult dropout(const Tensor& x, double rate, Generator& generator) {
  detail::check_float("dropout", "x", x);
  check_rate("dropout", rate);
  const std::uint64_t seed = generator.seed();
  return dropout(x, rate, seed, generator.reserve(static_cast<std::uint64_t>(x.numel())));
}

DropoutResult dropout(const Tensor& x, double rate, std::uint64_t seed, std::uint64_t offset) {
  detail::check_float("dropout", "x", x);
  check_rate("dropout", rate);
  if (!x.is_cpu()) {
    detail::require_device_f32("dropout", x);
    DropoutResult result;
    ATTNKIT_DEVICE_OP(x.device(), dropout(x, rate, seed, offset, result.y, result.mask));
    return result;
  }
  DropoutResult result{Tensor::empty_like(x), Tensor::empty(x.shape(), DType::u8)};
  // The comparison is made in float, as uniform_from_word produces it, on every device.
  const float threshold = static_cast<float>(rate);
  detail::dispatch_float(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = result.y.data<T>();
    std::uint8_t* keep = result.mask.data<std::uint8_t>();
    const T scale = static_cast<T>(1.0 / (1.0 - rate));
    // One Philox block serves four consecutive elements; a chunk draws its blocks together.
    constexpr std::int64_t kChunkBlocks = 256;
    const std::int64_t n = x.numel(), blocks = (n + 3) / 4;
    cpu::parallel_for((blocks + kChunkBlocks - 1) / kChunkBlocks, kChunkBlocks * 64, [&](std::int64_t chunk) {
      const std::int64_t first = chunk * kChunkBlocks, count = std::min(kChunkBlocks, blocks - first);
      std::uint32_t words[4 * kChunkBlocks];
      cpu::philox_blocks(seed, offset + static_cast<std::uint64_t>(first), count, words);
      const std::int64_t begin = first * 4, end = std::min(n, (first + count) * 4);
      apply_mask(words, px + begin, py + begin, keep + begin, end - begin, threshold, scale);
    });
  });
  return result;
}

Tensor dropout_backward(const Tensor& dy, const Tensor& mask, double rate) {
  detail::check_float("dropout_backward", "dy", dy);
  check_rate("dropout_backward", rate);
  ATTNKIT_CHECK(mask.defined() && mask.dtype() == DType::u8 && mask.shape() == dy.shape(),
                "dropout_backward: mask must be u8 with the shape of dy ", dy.describe(), ", got ",
                mask.describe());
  const Device device = detail::common_device("dropout_backward", {{"dy", &dy}, {"mask", &mask}});
  if (!device.is_cpu()) {
    detail::require_device_f32("dropout_backward", dy);
    return ATTNKIT_DEVICE_OP(device, dropout_backward(dy, mask, rate));
  }
  Tensor dx = Tensor::empty_like(dy);
  detail::dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    const std::uint8_t* keep = mask.data<std::uint8_t>();
    T* pdx = dx.data<T>();
    const T scale = static_cast<T>(1.0 / (1.0 - rate));
    constexpr std::int64_t kChunk = 4096;
    const std::int64_t n = dy.numel();
    cpu::parallel_for((n + kChunk - 1) / kChunk, kChunk * 2, [&](std::int64_t chunk) {
      const std::int64_t begin = chunk * kChunk;
      scale_kept(keep + begin, pdy + begin, pdx + begin, std::min(kChunk, n - begin), scale);
    });
  });
  return dx;
}

}  // namespace attnkit::ops
