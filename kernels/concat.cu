// Concatenation kernels, float32: one launch per piece, each copying a block of columns
// between the piece and the whole with one thread per element (grid-stride loops). A launch per
// piece keeps the piece pointers as plain kernel arguments.
#include "kernels/concat.h"

#include "attnkit/error.h"
#include "kernels/dialect.h"

namespace attnkit::ATTNKIT_KERNEL_NAMESPACE {
namespace {

constexpr int kThreads = 256;


// destination[r, destination_column + c] = source[r, source_column + c] for r < rows,
// c < columns; the rows of source and destination are source_stride and destination_stride long.
__global__ void copy_columns_kernel(const float* source, std::int64_t source_stride, std::int64_t source_column,
                                    float* destination, std::int64_t destination_stride,
                                    std::int64_t destination_column, std::int64_t rows, std::int64_t columns) {
  const std::int64_t total = rows * columns;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(blockDim.x) * gridDim.x) {
    const std::int64_t row = i / columns, column = i % columns;
    destination[row * destination_stride + destination_column + column] =
        source[row * source_stride + source_column + column];
  }
}

// The total of the columns, after checking them against the pieces.
std::int64_t total_columns(const char* launcher, std::size_t pieces, const std::vector<std::int64_t>& columns,
                           std::int64_t rows) {
  ATTNKIT_CHECK(pieces == columns.size(), launcher, ": ", pieces, " pieces but ", columns.size(), " column counts");
  ATTNKIT_CHECK(rows >= 0, launcher, ": negative rows ", rows);
  std::int64_t total = 0;
  for (const std::int64_t c : columns) {
    ATTNKIT_CHECK(c >= 0, launcher, ": negative column count ", c);
    total += c;
  }
  return total;
}

}  // namespace

void concat_forward(const std::vector<const float*>& parts, const std::vector<std::int64_t>& columns, float* y,
                    std::int64_t rows, void* stream) {
  const std::int64_t width = total_columns("concat_forward", parts.size(), columns, rows);
  std::int64_t first_column = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::int64_t elements = rows * columns[i];
    if (elements > 0)
      AK_LAUNCH(copy_columns_kernel, ak::grid_stride_blocks(elements, kThreads), kThreads, 0, ak::as_stream(stream), parts[i], columns[i],
                std::int64_t{0}, y, width, first_column, rows, columns[i]);
    first_column += columns[i];
  }
}

void concat_backward(const float* dy, const std::vector<float*>& grads, const std::vector<std::int64_t>& columns,
                     std::int64_t rows, void* stream) {
  const std::int64_t width = total_columns("concat_backward", grads.size(), columns, rows);
  std::int64_t first_column = 0;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const std::int64_t elements = rows * columns[i];
    if (elements > 0)
      AK_LAUNCH(copy_columns_kernel, ak::grid_stride_blocks(elements, kThreads), kThreads, 0, ak::as_stream(stream), dy, width, first_column,
                grads[i], columns[i], std::int64_t{0}, rows, columns[i]);
    first_column += columns[i];
  }
}

}  // namespace attnkit::ATTNKIT_KERNEL_NAMESPACE
