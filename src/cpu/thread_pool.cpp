// The CPU thread pool (thread_pool.h, attnkit/threads.h).
//
// One job at a time: the caller publishes it by bumping `generation_`; every worker runs its part
// (or none) and counts itself off in `unfinished_`; the last one wakes the caller if it sleeps.
// Every worker acknowledges every job, so a job is never overwritten while a worker may still
// read it. A waiting thread spins for up to about 250 microseconds, then sleeps on a futex. A
// training step runs hundreds of small loops back to back, and on an idle machine a sleeping
// worker costs a wake-up of tens of microseconds per loop (twice the epoch time of some models),
// so spinning pays. On a machine with more runnable threads than processors a spinning thread
// only keeps the one it waits for off a core, so there the threads sleep at once. OpenMP's
// default (spin long, always) made epochs up to 40 times slower beside other work; its passive
// policy (never spin) made idle epochs twice as slow (bench/NOTES.md, "Waiting threads").
#include "cpu/thread_pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "attnkit/error.h"
#include "attnkit/threads.h"

namespace attnkit::cpu {
namespace {

constexpr int kMaxThreads = 1024;

// How many times a waiting thread checks its word, with a pause instruction between checks
// (about 25 ns each on the 2-core AMD EPYC of bench/NOTES.md), before it sleeps: the default
// kDefaultSpinChecks, or ATTNKIT_SPIN_CHECKS (0 to 10^7), read once. None while the machine has
// more runnable threads than processors, looked up at most every kLoadSampleInterval.
constexpr int kDefaultSpinChecks = 10000;
constexpr std::chrono::milliseconds kLoadSampleInterval{10};

// The whole number in environment variable `name`, from `least` to `most`; `otherwise` when it is
// unset or empty. Anything else is an error naming the variable.
int whole_number_from_environment(const char* name, int least, int most, int otherwise) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return otherwise;
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  ATTNKIT_CHECK(errno == 0 && *end == '\0' && value >= least && value <= most, name, " must be a whole number from ",
                least, " to ", most, ", got '", text, "'");
  return static_cast<int>(value);
}

using Word = std::atomic<std::uint32_t>;
static_assert(sizeof(Word) == sizeof(std::uint32_t) && Word::is_always_lock_free, "a futex word is 32 bits");

void futex_wait(Word& word, std::uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake_all(Word& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until `done()` holds, for at most `checks` checks; whether it holds.
template <typename Done>
bool spin_until(int checks, Done done) {
  for (int i = 0; i < checks; ++i) {
    if (done()) return true;
    cpu_relax();
  }
  return done();
}

// Whether the machine has more runnable threads than processors: the running count of
// /proc/loadavg ("0.50 0.40 0.30 3/245 1234") against the processors online. Spinning then only
// keeps the thread being waited for off a core (bench/NOTES.md, "Waiting threads").
bool machine_oversubscribed() {
  static const long processors = sysconf(_SC_NPROCESSORS_ONLN);
  const int file = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (file < 0) return false;
  char text[128];
  const ssize_t size = read(file, text, sizeof text - 1);
  close(file);
  if (size <= 0) return false;
  text[size] = '\0';
  long running = 0;
  return std::sscanf(text, "%*s %*s %*s %ld/", &running) == 1 && running > processors;
}

// True on the pool's workers, and on a caller while it runs its part.
thread_local bool in_part = false;

class Pool {
 public:
  explicit Pool(int threads)
      : threads_(threads),
        spin_checks_(whole_number_from_environment("ATTNKIT_SPIN_CHECKS", 0, 10000000, kDefaultSpinChecks)) {
    for (int index = 1; index < threads; ++index) workers_.emplace_back([this, index] { work(index); });
  }

  ~Pool() {
    stopping_.store(true);
    generation_.fetch_add(1);
    futex_wake_all(generation_);
    for (std::thread& worker : workers_) worker.join();
  }

  int threads() const { return threads_; }

  // Held by the thread whose job runs (run_parts tries it, and runs alone when it is taken).
  std::mutex busy;

  void run(int parts, PartTask task, void* context) {
    const auto now = std::chrono::steady_clock::now();
    if (now - load_sampled_ >= kLoadSampleInterval) {
      oversubscribed_.store(machine_oversubscribed(), std::memory_order_relaxed);
      load_sampled_ = now;
    }
    job_ = {task, context, parts};
    error_ = nullptr;
    unfinished_.store(threads_ - 1);
    generation_.fetch_add(1);
    if (sleeping_workers_.load() > 0) futex_wake_all(generation_);
    run_part(0);
    if (!spin_until(spin_checks(), [&] { return unfinished_.load(std::memory_order_acquire) == 0; })) {
      caller_sleeping_.store(true);
      for (;;) {
        const std::uint32_t seen = finished_.load();
        if (unfinished_.load() == 0) break;
        futex_wait(finished_, seen);
      }
      caller_sleeping_.store(false);
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  struct Job {
    PartTask task = nullptr;
    void* context = nullptr;
    int parts = 0;
  };

  void run_part(int part) {
    if (part >= job_.parts) return;
    try {
      job_.task(job_.context, part);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void work(int index) {
    in_part = true;
    std::uint32_t seen = 0;
    for (;;) {
      if (!spin_until(spin_checks(), [&] { return generation_.load(std::memory_order_acquire) != seen; })) {
        sleeping_workers_.fetch_add(1);
        while (generation_.load() == seen) futex_wait(generation_, seen);
        sleeping_workers_.fetch_sub(1);
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stopping_.load()) return;
      run_part(index);
      if (unfinished_.fetch_sub(1) == 1) {
        finished_.fetch_add(1);
        if (caller_sleeping_.load()) futex_wake_all(finished_);
      }
    }
  }

  int spin_checks() const { return oversubscribed_.load(std::memory_order_relaxed) ? 0 : spin_checks_; }

  const int threads_;
  const int spin_checks_;
  std::atomic<bool> oversubscribed_{false};
  std::chrono::steady_clock::time_point load_sampled_{};  // by the caller, who holds `busy`
  Job job_;
  std::exception_ptr error_;
  std::mutex error_mutex_;
  Word generation_{0};  // bumped to publish a job (or the stop)
  std::atomic<int> sleeping_workers_{0};
  std::atomic<int> unfinished_{0};  // workers yet to count themselves off the current job
  Word finished_{0};                // bumped when the last worker has
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
};

std::mutex pool_mutex;
std::atomic<Pool*> current_pool{nullptr};
int requested_threads = 0;  // set_num_threads's count; 0: the default

int default_threads() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int available = sched_getaffinity(0, sizeof cpus, &cpus) == 0
                            ? CPU_COUNT(&cpus)
                            : static_cast<int>(std::thread::hardware_concurrency());
  return whole_number_from_environment("ATTNKIT_NUM_THREADS", 1, kMaxThreads,
                                       std::max(1, std::min(kMaxThreads, available)));
}

// A forked child has none of the parent's workers: it makes a pool of its own when it needs one
// (the parent's is left behind, never touched again). The mutex is held across the fork so that
// the child's copy is not taken.
void lock_before_fork() { pool_mutex.lock(); }
void unlock_in_parent() { pool_mutex.unlock(); }
void forget_pool_in_child() {
  current_pool.store(nullptr);
  pool_mutex.unlock();
}

Pool& pool() {
  if (Pool* pool = current_pool.load(std::memory_order_acquire)) return *pool;
  static std::once_flag fork_handler;
  std::call_once(fork_handler, [] { pthread_atfork(lock_before_fork, unlock_in_parent, forget_pool_in_child); });
  const std::lock_guard<std::mutex> lock(pool_mutex);
  if (current_pool.load() == nullptr)
    current_pool.store(new Pool(requested_threads != 0 ? requested_threads : default_threads()));
  return *current_pool.load();
}

}  // namespace

int pool_threads() { return pool().threads(); }

void run_parts(int parts, PartTask task, void* context) {
  Pool& here = pool();
  std::unique_lock<std::mutex> own(here.busy, std::defer_lock);
  if (parts <= here.threads() && parts > 1 && !in_part && own.try_lock()) {
    in_part = true;
    try {
      here.run(parts, task, context);
    } catch (...) {
      in_part = false;
      throw;
    }
    in_part = false;
    return;
  }
  std::exception_ptr first_error;
  for (int part = 0; part < parts; ++part) {
    try {
      task(context, part);
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace attnkit::cpu

namespace attnkit {

int num_threads() { return cpu::pool_threads(); }

void set_num_threads(int threads) {
  ATTNKIT_CHECK(threads >= 0 && threads <= cpu::kMaxThreads, "set_num_threads: the count must be from 1 to ",
                cpu::kMaxThreads, " (or 0 for the default), got ", threads);
  const std::lock_guard<std::mutex> lock(cpu::pool_mutex);
  cpu::requested_threads = threads;
  if (cpu::Pool* old = cpu::current_pool.exchange(nullptr)) {
    { const std::lock_guard<std::mutex> idle(old->busy); }  // a job still running ends first
    delete old;
  }
}

}  // namespace attnkit
