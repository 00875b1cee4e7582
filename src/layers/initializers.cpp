// Keras's initialisers (see initializers.h).
#include "layers/initializers.h"

#include <cmath>
#include <vector>

namespace attnkit::layers {

Tensor glorot_uniform(const Shape& shape, Generator& gen) {
  ATTNKIT_CHECK(!shape.empty(), "glorot_uniform: needs at least one axis");
  double fan_in = 0, fan_out = 0;
  if (shape.size() == 1) {
    fan_in = fan_out = double(shape[0]);
  } else {
    double receptive = 1;  // the kernel axes before the last two (Conv1D's k)
    for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive *= double(shape[i]);
    fan_in = receptive * double(shape[shape.size() - 2]);
    fan_out = receptive * double(shape.back());
  }
  const double limit = std::sqrt(6.0 / (fan_in + fan_out));
  return Tensor::uniform(shape, -limit, limit, gen);
}

Tensor orthogonal(std::int64_t rows, std::int64_t cols, Generator& gen) {
  // Orthonormalise the columns of a tall [n, m] normal matrix (n >= m), then transpose when the
  // wanted matrix is wide, as Keras does.
  const bool wide = rows < cols;
  const std::int64_t n = wide ? cols : rows, m = wide ? rows : cols;
  std::vector<double> a = Tensor::normal({n, m}, 0.0, 1.0, gen, DType::f64).to_vector<double>();
  auto at = [&](std::int64_t i, std::int64_t j) -> double& { return a[static_cast<std::size_t>(i * m + j)]; };
  for (std::int64_t j = 0; j < m; ++j) {  // modified Gram-Schmidt, twice for accuracy
    for (int pass = 0; pass < 2; ++pass)
      for (std::int64_t k = 0; k < j; ++k) {
        double dot = 0;
        for (std::int64_t i = 0; i < n; ++i) dot += at(i, k) * at(i, j);
        for (std::int64_t i = 0; i < n; ++i) at(i, j) -= dot * at(i, k);
      }
    double norm = 0;
    for (std::int64_t i = 0; i < n; ++i) norm += at(i, j) * at(i, j);
    norm = std::sqrt(norm);
    for (std::int64_t i = 0; i < n; ++i) at(i, j) /= norm;
  }
  Tensor q = Tensor::empty({rows, cols});
  float* out = q.data<float>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) out[r * cols + c] = static_cast<float>(wide ? at(c, r) : at(r, c));
  return q;
}

}  // namespace attnkit::layers
