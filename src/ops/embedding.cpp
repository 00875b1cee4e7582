// Embedding lookup (gather) and its gradient (scatter-add) on the CPU.
#include "attnkit/ops/embedding.h"

#include <cstring>

#include "cpu/parallel.h"
#include "device_ops/dispatch.h"
#include "ops/op_common.h"

namespace attnkit::ops {
namespace {

// Throws on the first id outside [0, vocabulary), naming its flat position.
void check_ids(const char* op, const Tensor& ids, std::int64_t vocabulary) {
  ATTNKIT_CHECK(ids.defined() && ids.dtype() == DType::i32, op, ": ids must be an i32 tensor, got ",
                ids.describe());
  // Ids on a device are checked on a host copy: a bad id must not become a wild read there.
  const Tensor host = ids.to(Device::cpu());
  const std::int32_t* p = host.data<std::int32_t>();
  for (std::int64_t i = 0; i < ids.numel(); ++i)
    ATTNKIT_CHECK(p[i] >= 0 && p[i] < vocabulary, op, ": id ", p[i], " at position ", i,
                  " is outside the vocabulary [0, ", vocabulary, ")");
}

Shape with_features(const Shape& ids_shape, std::int64_t features) {
  Shape out = ids_shape;
  out.push_back(features);
  return out;
}

}  // namespace

Tensor embedding(const Tensor& ids, const Tensor& table) {
  detail::check_rank("embedding", "table", table, 2, "[V, E]");
  detail::check_float("embedding", "table", table);
  const Device device = detail::common_device("embedding", {{"ids", &ids}, {"table", &table}});
  check_ids("embedding", ids, table.size(0));
  if (!device.is_cpu()) {
    detail::require_device_f32("embedding", table);
    return ATTNKIT_DEVICE_OP(device, embedding(ids, table));
  }
  const std::int64_t features = table.size(1);
  Tensor y = Tensor::empty(with_features(ids.shape(), features), table.dtype());
  const std::int32_t* pid = ids.data<std::int32_t>();
  const std::size_t row_bytes = static_cast<std::size_t>(features) * dtype_size(table.dtype());
  const char* rows = static_cast<const char*>(table.raw_data());
  char* out = static_cast<char*>(y.raw_data());
  cpu::parallel_for(ids.numel(), features, [&](std::int64_t i) {
    std::memcpy(out + static_cast<std::size_t>(i) * row_bytes,
                rows + static_cast<std::size_t>(pid[i]) * row_bytes, row_bytes);
  });
  return y;
}

Tensor embedding_backward(const Tensor& ids, const Tensor& dy, std::int64_t vocabulary_size) {
  detail::check_float("embedding_backward", "dy", dy);
  ATTNKIT_CHECK(vocabulary_size > 0, "embedding_backward: vocabulary_size must be positive");
  ATTNKIT_CHECK(dy.dim() == ids.dim() + 1 &&
                    Shape(dy.shape().begin(), dy.shape().end() - 1) == ids.shape(),
                "embedding_backward: dy must be [..., E] over ids ", ids.describe(), ", got ",
                dy.describe());
  const Device device = detail::common_device("embedding_backward", {{"ids", &ids}, {"dy", &dy}});
  check_ids("embedding_backward", ids, vocabulary_size);
  if (!device.is_cpu()) {
    detail::require_device_f32("embedding_backward", dy);
    return ATTNKIT_DEVICE_OP(device, embedding_backward(ids, dy, vocabulary_size));
  }
  const std::int64_t features = dy.size(-1);
  Tensor dtable = Tensor::zeros({vocabulary_size, features}, dy.dtype());
  detail::dispatch_float(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int32_t* pid = ids.data<std::int32_t>();
    const T* pdy = dy.data<T>();
    T* pdt = dtable.data<T>();
    // Sequential: two positions with the same id add into the same row.
    for (std::int64_t i = 0; i < ids.numel(); ++i) {
      T* row = pdt + static_cast<std::int64_t>(pid[i]) * features;
      const T* grad = pdy + i * features;
      for (std::int64_t f = 0; f < features; ++f) row[f] += grad[f];
    }
  });
  return dtable;
}

}  // namespace attnkit::ops
