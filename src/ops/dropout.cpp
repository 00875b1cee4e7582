// Inverted dropout on the CPU, with the Philox mask of random.h.
#include "attnkit/ops/dropout.h"

#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

void check_rate(const char* op, double rate) {
  ATTNKIT_CHECK(rate >= 0.0 && rate < 1.0, op, ": rate must be in [0, 1), got ", rate);
}

}  // namespace

DropoutResult dropout(const Tensor& x, double rate, Generator& generator) {
  detail::check_float("dropout", "x", x);
  check_rate("dropout", rate);
  const std::uint64_t seed = generator.seed();
  const std::uint64_t offset = generator.reserve(static_cast<std::uint64_t>(x.numel()));
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
    // One Philox block serves four consecutive elements.
    const std::int64_t blocks = (x.numel() + 3) / 4;
    cpu::parallel_for(blocks, 64, [&](std::int64_t block) {
      const Philox4x32 words = philox_block(seed, offset + static_cast<std::uint64_t>(block));
      for (std::int64_t j = 0; j < 4 && block * 4 + j < x.numel(); ++j) {
        const std::int64_t i = block * 4 + j;
        keep[i] = uniform_from_word(words.word[j]) >= threshold ? 1 : 0;
        py[i] = keep[i] ? px[i] * scale : T(0);
      }
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
    cpu::parallel_for(dy.numel(), 2, [&](std::int64_t i) { pdx[i] = keep[i] ? pdy[i] * scale : T(0); });
  });
  return dx;
}

}  // namespace attnkit::ops
