// Internal: the pool of CPU threads behind cpu::parallel_for and cpu::run_both (parallel.h).
#pragma once

namespace attnkit::cpu {

using PartTask = void (*)(void* context, int part);

// The threads the pool has, the calling thread included (attnkit::num_threads()).
int pool_threads();

// Runs task(context, part) for every part in [0, parts): part 0 on the calling thread, part p on
// worker p, and returns when all have ended. An exception thrown by a part is rethrown here (the
// first, when several throw) after every part has ended. The parts run one after another on the
// calling thread instead when there are more parts than threads, when the caller is itself a
// part (nested loops stay on their thread), or when another thread of the process is using the
// pool at that moment.
void run_parts(int parts, PartTask task, void* context);

}  // namespace attnkit::cpu
