// attnkit/threads.h: how many CPU threads attnkit's CPU ops share their work between.
//
// attnkit runs its parallel loops on a pool of its own: the calling thread and num_threads() - 1
// workers. A thread that has nothing to do spins for up to about 250 microseconds (a training
// step hands out many small loops in a row) and then sleeps in the kernel; while the machine has
// more runnable threads than processors it sleeps at once. So a waiting thread never holds a core
// that other work on the machine could use.
//
// A model's training and evaluation batches on the CPU (16 rows or more, with targets) run as two
// shards of rows, each on a thread of its own when there are two: a batch of the sentiment
// models is too little work to share op by op. Training gives the same numbers with any count.
//
// The count, unless set: the environment variable ATTNKIT_NUM_THREADS (a whole number from 1 to
// 1024; anything else is an error naming the variable), else the CPUs this process may run on
// (sched_getaffinity, so that a container limited to 2 CPUs of 64 starts 2 threads, not 64).
// ATTNKIT_SPIN_CHECKS (0 to 10^7, default 10000) sets how many times a waiting thread looks for
// work, a pause instruction apart, before it sleeps (bench/NOTES.md has the measurements behind
// the default).
#pragma once

namespace attnkit {

int num_threads();
// Sets the count for the whole process (1 to 1024); 0 returns to the default above. Must not be
// called while attnkit's ops run on other threads of the process.
void set_num_threads(int threads);

}  // namespace attnkit
