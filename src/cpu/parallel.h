// Internal: spreading independent loop iterations over the CPU's threads (thread_pool.h).
//
// Threads are only used when the loop is big enough to pay for them: `cost_per_item` is a rough
// count of arithmetic operations in one iteration, and small loops (the common case in the
// sentiment models: batch 32, length 20, width 32) stay on the calling thread. A loop inside
// another's body runs on its thread alone. If the body throws, the first exception is rethrown
// once every thread has finished its share.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <type_traits>

#include "cpu/thread_pool.h"

namespace attnkit::cpu {

// Below this much work (in operations), handing a loop to other threads costs more than it saves.
constexpr std::int64_t kParallelWorkThreshold = 1 << 15;

// body(i) for i in [0, count), in contiguous ranges, one range per thread.
template <typename F>
void parallel_for(std::int64_t count, std::int64_t cost_per_item, F&& body) {
  const int threads = pool_threads();
  if (threads < 2 || count < 2 || count * cost_per_item < kParallelWorkThreshold) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  struct Loop {
    std::remove_reference_t<F>* body;
    std::int64_t count;
    int parts;
  } loop{&body, count, static_cast<int>(std::min<std::int64_t>(threads, count))};
  run_parts(loop.parts, [](void* context, int part) {
    const Loop& l = *static_cast<const Loop*>(context);
    const std::int64_t begin = l.count * part / l.parts, end = l.count * (part + 1) / l.parts;
    for (std::int64_t i = begin; i < end; ++i) (*l.body)(i);
  }, &loop);
}

// Runs `first` and `second` at the same time, on two threads when the pool has them: two
// independent pieces of work too small to split further (the two directions of a bidirectional
// recurrent layer). Loops of parallel_for inside them run on their thread alone. Either may
// throw: the first exception is rethrown when both have ended.
template <typename F, typename G>
void run_both(F&& first, G&& second) {
  struct Pair {
    std::remove_reference_t<F>* first;
    std::remove_reference_t<G>* second;
  } pair{&first, &second};
  run_parts(2, [](void* context, int part) {
    const Pair& p = *static_cast<const Pair*>(context);
    if (part == 0)
      (*p.first)();
    else
      (*p.second)();
  }, &pair);
}

}  // namespace attnkit::cpu
