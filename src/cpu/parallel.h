// Internal: spreading independent loop iterations over the CPU's cores (OpenMP).
//
// Threads are only started when the loop is big enough to pay for them: `cost_per_item` is a
// rough count of arithmetic operations in one iteration, and small loops (the common case in
// the sentiment models: batch 32, length 20, width 32) stay on one thread. The body must not
// throw (an exception cannot leave a parallel region): validate before the loop.
#pragma once

#include <cstdint>
#include <exception>

namespace attnkit::cpu {

// Below this much work (in operations), a parallel region costs more than it saves.
constexpr std::int64_t kParallelWorkThreshold = 1 << 15;

template <typename F>
void parallel_for(std::int64_t count, std::int64_t cost_per_item, F&& body) {
  const bool worth_it = count > 1 && count * cost_per_item >= kParallelWorkThreshold;
#pragma omp parallel for schedule(static) if (worth_it)
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

// Runs `first` and `second` at the same time, on two threads: two independent pieces of work
// too small to split further (the two directions of a bidirectional recurrent layer). Loops of
// parallel_for inside them run on their thread alone. Either may throw: the first exception is
// rethrown when both have ended.
template <typename F, typename G>
void run_both(F&& first, G&& second) {
  std::exception_ptr errors[2];
#pragma omp parallel sections num_threads(2)
  {
#pragma omp section
    {
      try {
        first();
      } catch (...) {
        errors[0] = std::current_exception();
      }
    }
#pragma omp section
    {
      try {
        second();
      } catch (...) {
        errors[1] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace attnkit::cpu
