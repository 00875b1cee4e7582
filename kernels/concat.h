// Launchers of kernels/concat.cu: concatenation of float32 arrays [rows, columns_i] along their
// last axis, and its gradient (dy split back into the pieces), in device memory.
#pragma once

#include <cstdint>
#include <vector>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// y [rows, sum of columns] = [parts[0] | parts[1] | ...], parts[i] being [rows, columns[i]].
void concat_forward(const std::vector<const float*>& parts, const std::vector<std::int64_t>& columns, float* y,
                    std::int64_t rows, void* stream);
// grads[i] [rows, columns[i]] = the columns of dy [rows, sum of columns] that parts[i] filled.
void concat_backward(const float* dy, const std::vector<float*>& grads, const std::vector<std::int64_t>& columns,
                     std::int64_t rows, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
