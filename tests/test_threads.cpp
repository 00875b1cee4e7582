// The CPU thread pool (src/cpu/thread_pool.cpp, attnkit/threads.h): every iteration runs once,
// exceptions and nesting, the thread count's sources, and that waiting threads sleep.
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "attnkit/error.h"
#include "attnkit/threads.h"
#include "cpu/parallel.h"

namespace attnkit {
namespace {

// Puts the default thread count back when a test ends.
struct ThreadCountReset {
  ~ThreadCountReset() { set_num_threads(0); }
};

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

TEST(ThreadPool, EveryIterationRunsExactlyOnce) {
  const ThreadCountReset reset;
  std::mt19937 gen(3);
  for (const int threads : {1, 2, 3, 7}) {
    set_num_threads(threads);
    EXPECT_EQ(num_threads(), threads);
    for (int trial = 0; trial < 200; ++trial) {
      const std::int64_t count = std::uniform_int_distribution<std::int64_t>(0, 3001)(gen);
      std::vector<std::atomic<int>> runs(static_cast<std::size_t>(count));
      std::set<std::thread::id> seen_threads;
      std::mutex seen_mutex;
      cpu::parallel_for(count, cpu::kParallelWorkThreshold, [&](std::int64_t i) {
        runs[static_cast<std::size_t>(i)].fetch_add(1);
        const std::lock_guard<std::mutex> lock(seen_mutex);
        seen_threads.insert(std::this_thread::get_id());
      });
      for (std::int64_t i = 0; i < count; ++i) ASSERT_EQ(runs[static_cast<std::size_t>(i)].load(), 1) << i;
      EXPECT_LE(seen_threads.size(), static_cast<std::size_t>(threads));
    }
  }
}

TEST(ThreadPool, LoopsUseSeveralThreadsOnlyWhenWorthIt) {
  const ThreadCountReset reset;
  set_num_threads(4);
  auto threads_used = [](std::int64_t count, std::int64_t cost) {
    std::set<std::thread::id> seen;
    std::mutex m;
    cpu::parallel_for(count, cost, [&](std::int64_t) {
      // Long enough that every thread of the pool takes its share before the others finish.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      const std::lock_guard<std::mutex> lock(m);
      seen.insert(std::this_thread::get_id());
    });
    return seen.size();
  };
  EXPECT_EQ(threads_used(8, 1), 1u);  // far below the threshold: the calling thread alone
  EXPECT_EQ(threads_used(8, cpu::kParallelWorkThreshold), 4u);
  EXPECT_EQ(threads_used(3, cpu::kParallelWorkThreshold), 3u);  // never more parts than iterations
}

TEST(ThreadPool, NestedLoopsRunOnTheirThread) {
  const ThreadCountReset reset;
  set_num_threads(3);
  std::vector<std::atomic<int>> runs(60 * 50);
  cpu::parallel_for(60, cpu::kParallelWorkThreshold, [&](std::int64_t outer) {
    const std::thread::id here = std::this_thread::get_id();
    cpu::parallel_for(50, cpu::kParallelWorkThreshold, [&](std::int64_t inner) {
      EXPECT_EQ(std::this_thread::get_id(), here);
      runs[static_cast<std::size_t>(outer * 50 + inner)].fetch_add(1);
    });
  });
  for (const auto& r : runs) ASSERT_EQ(r.load(), 1);
}

TEST(ThreadPool, ExceptionsReachTheCallerAfterEveryPartEnds) {
  const ThreadCountReset reset;
  for (const int threads : {1, 2, 4}) {
    set_num_threads(threads);
    std::atomic<int> finished{0};
    try {
      cpu::parallel_for(400, cpu::kParallelWorkThreshold, [&](std::int64_t i) {
        if (i == 399) throw std::runtime_error("iteration 399 failed");
        finished.fetch_add(1);
      });
      ADD_FAILURE() << "no exception with " << threads << " threads";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "iteration 399 failed");
    }
    EXPECT_EQ(finished.load(), 399) << threads << " threads";
    // The pool still works after a failed loop.
    std::atomic<std::int64_t> sum{0};
    cpu::parallel_for(1000, cpu::kParallelWorkThreshold, [&](std::int64_t i) { sum.fetch_add(i); });
    EXPECT_EQ(sum.load(), 999 * 1000 / 2);
  }
}

TEST(ThreadPool, RunBothRunsEachOnceAndRethrows) {
  const ThreadCountReset reset;
  for (const int threads : {1, 2}) {
    set_num_threads(threads);
    int first = 0, second = 0;
    cpu::run_both([&] { ++first; }, [&] { ++second; });
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 1);
    EXPECT_THROW(cpu::run_both([&] { ++first; }, [] { throw std::runtime_error("second failed"); }), std::runtime_error);
    EXPECT_EQ(first, 2);  // the other one still ran to its end
  }
}

TEST(ThreadPool, TwoCallingThreadsShareThePool) {
  const ThreadCountReset reset;
  set_num_threads(2);
  std::atomic<std::int64_t> totals[2] = {{0}, {0}};
  auto caller = [&](int which) {
    for (int round = 0; round < 300; ++round)
      cpu::parallel_for(257, cpu::kParallelWorkThreshold, [&](std::int64_t i) { totals[which].fetch_add(i + 1); });
  };
  std::thread a(caller, 0), b(caller, 1);
  a.join();
  b.join();
  EXPECT_EQ(totals[0].load(), 300 * 257 * 258 / 2);
  EXPECT_EQ(totals[1].load(), 300 * 257 * 258 / 2);
}

TEST(ThreadPool, WaitingWorkersSleep) {
  const ThreadCountReset reset;
  set_num_threads(4);
  std::atomic<std::int64_t> sum{0};
  cpu::parallel_for(64, cpu::kParallelWorkThreshold, [&](std::int64_t i) { sum.fetch_add(i); });
  // Three workers that spun while waiting would use all the cores' time in this second (at least
  // 1 s of CPU time here); sleeping, they use next to nothing (the bound leaves room for their
  // short spin and for the scheduler's accounting on a loaded machine).
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double used = process_cpu_seconds() - before;
  EXPECT_LT(used, 0.25) << "the idle pool used " << used << " s of CPU time in 1 s";
}

TEST(ThreadPool, CountFollowsTheEnvironmentThenTheAffinity) {
  const ThreadCountReset reset;
  const char* saved = getenv("ATTNKIT_NUM_THREADS");
  const std::string saved_value = saved == nullptr ? "" : saved;
  setenv("ATTNKIT_NUM_THREADS", "3", 1);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), 3);
  for (const char* bad : {"0", "-2", "two", "3x", "100000"}) {
    setenv("ATTNKIT_NUM_THREADS", bad, 1);
    set_num_threads(0);
    try {
      num_threads();
      ADD_FAILURE() << "ATTNKIT_NUM_THREADS=" << bad << " was taken";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("ATTNKIT_NUM_THREADS"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  unsetenv("ATTNKIT_NUM_THREADS");
  // Without the variable: the CPUs this thread may run on, here limited to one.
  cpu_set_t all, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), CPU_COUNT(&all));
  if (saved != nullptr) setenv("ATTNKIT_NUM_THREADS", saved_value.c_str(), 1);
  EXPECT_THROW(set_num_threads(-1), Error);
  EXPECT_THROW(set_num_threads(1025), Error);
}

}  // namespace
}  // namespace attnkit
