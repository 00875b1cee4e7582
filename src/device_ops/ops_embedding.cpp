// Embedding lookup and its scatter-add gradient on a device, through kernels/embedding.cu.
#include "device_ops/common.h"
#include "kernels/embedding.h"

namespace attnkit::ATTNKIT_DEVICE_OPS {
namespace kern = ::attnkit::ATTNKIT_KERNEL_NAMESPACE;

Tensor embedding(const Tensor& ids, const Tensor& table) {
  Shape shape = ids.shape();
  shape.push_back(table.size(1));
  Tensor y = empty_on(shape, table.device());
  kern::embedding_forward(int32s(ids), floats(table), floats(y), ids.numel(), table.size(1), stream(table.device()));
  return y;
}

Tensor embedding_backward(const Tensor& ids, const Tensor& dy, std::int64_t vocabulary_size) {
  const std::int64_t features = dy.size(-1);
  Tensor dtable = empty_on({vocabulary_size, features}, dy.device());
  kern::embedding_backward(int32s(ids), floats(dy), floats(dtable), ids.numel(), vocabulary_size, features,
                           stream(dy.device()));
  return dtable;
}

}  // namespace attnkit::ATTNKIT_DEVICE_OPS
