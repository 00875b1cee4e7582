// OpenBLAS's thread count inside attnkit (see blas.h).
#include <cblas.h>

#include <cstdlib>

namespace attnkit::cpu {
namespace {

// Runs when the library loads: one OpenBLAS thread unless the user asked for more.
const bool kOpenBlasSingleThreaded = [] {
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) openblas_set_num_threads(1);
  return true;
}();

}  // namespace
}  // namespace attnkit::cpu
