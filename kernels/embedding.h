// Launchers of kernels/embedding.cu: the embedding lookup (a gather of table rows by id) and
// its gradient (a scatter-add of dy rows into the rows of their ids), float32 in device memory.
#pragma once

#include <cstdint>

#ifndef ATTNKIT_KERNEL_NAMESPACE
#define ATTNKIT_KERNEL_NAMESPACE kernels
#endif

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {

// y [count, features] = table[ids[i], :] for ids [count] (i32, each in [0, V)) over table
// [V, features]. The ids are not checked here: src/ops validates them.
void embedding_forward(const std::int32_t* ids, const float* table, float* y, std::int64_t count,
                       std::int64_t features, void* stream);
// dtable [vocabulary_size, features] = zeros, then dtable[ids[i], :] += dy[i, :] for every i
// (an id that appears twice receives both rows; the order of the additions varies).
void embedding_backward(const std::int32_t* ids, const float* dy, float* dtable, std::int64_t count,
                        std::int64_t vocabulary_size, std::int64_t features, void* stream);

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
