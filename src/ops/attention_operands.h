// Internal: the operands of one scaled dot-product attention call (ops/attention.h, 4.), as the
// cpu loops, the unfused device path and the fused kernels all read them.
#pragma once

#include <cstdint>

#include "attnkit/tensor.h"

namespace attnkit::ops::detail {

// A run of heads inside a tensor: element c of head h at step t of batch element b lies at flat
// index offset + (b * steps + t) * row + h * dim + c. A [B, T, H d] tensor of its own has offset 0
// and row H d; q, k and v inside packed projections [B, T, 3 H d] share one tensor, with offsets
// 0, H d and 2 H d, and row 3 H d.
struct Heads {
  Tensor tensor;
  std::int64_t offset = 0, row = 0;
};

struct AttentionOperands {
  Heads q, k, v;
  std::int64_t batch = 0, heads = 0, queries = 0, keys = 0, qk_dim = 0, v_dim = 0;
  double scale = 1.0;
  bool causal = false;
  Tensor key_mask;     // u8 [batch, keys], or undefined
  Tensor key_lengths;  // i32 [batch], or undefined
};

}  // namespace attnkit::ops::detail
