// Internal: spreading independent loop iterations over the CPU's cores (OpenMP).
//
// Threads are only started when the loop is big enough to pay for them: `cost_per_item` is a
// rough count of arithmetic operations in one iteration, and small loops (the common case in
// the sentiment models: batch 32, length 20, width 32) stay on one thread. The body must not
// throw (an exception cannot leave a parallel region): validate before the loop.
#pragma once

#include <cstdint>

namespace attnkit::cpu {

// Below this much work (in operations), a parallel region costs more than it saves.
constexpr std::int64_t kParallelWorkThreshold = 1 << 15;

template <typename F>
void parallel_for(std::int64_t count, std::int64_t cost_per_item, F&& body) {
  const bool worth_it = count > 1 && count * cost_per_item >= kParallelWorkThreshold;
#pragma omp parallel for schedule(static) if (worth_it)
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

}  // namespace attnkit::cpu
