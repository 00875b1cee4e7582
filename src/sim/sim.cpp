// The sim executor: fibers for the threads of a block, the schedules, the checks, and the
// guarded memory that stands for device memory. See sim.h.
#include "sim/sim.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>

#include "attnkit/error.h"

// AddressSanitizer keeps one stack per thread; the fibers tell it which one is running.
#if defined(__SANITIZE_ADDRESS__)
#define ATTNKIT_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTNKIT_SIM_ASAN 1
#endif
#endif
#if defined(ATTNKIT_SIM_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace attnkit::sim {

ThreadIndices* current = nullptr;

const char* to_string(Schedule schedule) {
  switch (schedule) {
    case Schedule::forward: return "forward";
    case Schedule::reverse: return "reverse";
    case Schedule::shuffled: return "shuffled";
  }
  return "?";
}

Options& options() {
  static Options instance;
  return instance;
}

namespace {

constexpr unsigned kWarpSize = 32;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr std::size_t kMaxSharedBytes = 227 * 1024;  // an H100 block's opt-in maximum
constexpr std::size_t kStackBytes = 256 * 1024;
constexpr std::size_t kMaxExchangeBytes = 64;
constexpr std::size_t kFrontCanaryBytes = 64;
constexpr unsigned char kCanary = 0xCD;
constexpr unsigned char kPoison = 0xFF;  // NaN in every floating type

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}
std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// ---------------------------------------------------------------- guarded memory

struct Allocation {
  char* mapping;
  std::size_t mapping_bytes;
  char* data;
  std::size_t bytes;
  std::size_t padded_bytes;  // bytes rounded up to 16: data + padded_bytes is the guard page
  char* guard() const { return data + padded_bytes; }
};

std::map<char*, Allocation>& allocations() {
  static std::map<char*, Allocation> instance;
  return instance;
}

// What the SIGSEGV handler needs to name the culprit.
struct FaultContext {
  const char* kernel = nullptr;
  Dim3 block_idx;
};
FaultContext fault_context;

struct StackRange {
  char* guard;
  std::size_t guard_bytes;
};
std::vector<StackRange>& stack_guards() {
  static std::vector<StackRange> instance;
  return instance;
}

void write_stderr(const char* text) {
  const std::size_t length = std::strlen(text);
  std::size_t written = 0;
  while (written < length) {
    const ssize_t n = ::write(STDERR_FILENO, text + written, length - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
}

void on_segmentation_fault(int signal_number, siginfo_t* info, void*) {
  char* address = static_cast<char*>(info->si_addr);
  char message[512];
  const ThreadIndices* t = current;
  const char* kernel = fault_context.kernel != nullptr ? fault_context.kernel : "(no kernel running)";
  for (const auto& [start, a] : allocations()) {
    if (address >= a.guard() && address < a.guard() + page_size()) {
      std::snprintf(message, sizeof message,
                    "sim: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): out-of-bounds access %zu bytes past "
                    "the end of a buffer of %zu bytes\n",
                    kernel, fault_context.block_idx.x, fault_context.block_idx.y, fault_context.block_idx.z,
                    t ? t->thread_idx.x : 0, t ? t->thread_idx.y : 0, t ? t->thread_idx.z : 0,
                    static_cast<std::size_t>(address - (a.data + a.bytes)), a.bytes);
      write_stderr(message);
      _exit(70);
    }
  }
  for (const StackRange& s : stack_guards()) {
    if (address >= s.guard && address < s.guard + s.guard_bytes) {
      std::snprintf(message, sizeof message, "sim: kernel %s: a thread overflowed its %zu-byte stack\n", kernel,
                    kStackBytes);
      write_stderr(message);
      _exit(70);
    }
  }
  // Not ours: the default action, on return the access faults again.
  signal(signal_number, SIG_DFL);
}

void install_fault_handler() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  static std::vector<char> alternate_stack(64 * 1024);
  stack_t stack{};
  stack.ss_sp = alternate_stack.data();
  stack.ss_size = alternate_stack.size();
  sigaltstack(&stack, nullptr);
  struct sigaction action {};
  action.sa_sigaction = on_segmentation_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, nullptr);
  sigaction(SIGBUS, &action, nullptr);
}

char* map_pages(std::size_t bytes, const char* what) {
  void* mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ATTNKIT_CHECK(mapping != MAP_FAILED, "sim: cannot map ", bytes, " bytes for ", what);
  return static_cast<char*>(mapping);
}

// Throws if a write landed in the canaries around any buffer.
void check_canaries(const char* kernel) {
  for (const auto& [start, a] : allocations()) {
    for (std::size_t i = 0; i < kFrontCanaryBytes; ++i)
      ATTNKIT_CHECK(static_cast<unsigned char>(a.data[-static_cast<std::ptrdiff_t>(kFrontCanaryBytes) +
                                                      static_cast<std::ptrdiff_t>(i)]) == kCanary,
                    "sim: kernel ", kernel, " wrote ", kFrontCanaryBytes - i, " bytes before the start of a buffer of ",
                    a.bytes, " bytes");
    for (std::size_t i = a.bytes; i < a.padded_bytes; ++i)
      ATTNKIT_CHECK(static_cast<unsigned char>(a.data[i]) == kCanary, "sim: kernel ", kernel, " wrote ",
                    i - a.bytes, " bytes past the end of a buffer of ", a.bytes, " bytes");
  }
}

// ---------------------------------------------------------------- fibers

enum class State { runnable, at_barrier, at_warp, done, failed };

struct PendingCopy {
  void* destination;
  const void* source;
  std::size_t bytes, source_bytes;
};

struct Fiber {
  ucontext_t context{};
  char* stack = nullptr;  // kStackBytes above a guard page
  ThreadIndices indices;
  State state = State::runnable;
  const char* file = nullptr;  // where it waits at a barrier
  int line = 0;
  std::uint32_t warp_mask = 0;
  const char* warp_op = nullptr;
  std::size_t exchange_bytes = 0;
  unsigned char deposit[kMaxExchangeBytes];
  unsigned char received[kWarpSize * kMaxExchangeBytes];
  void* fake_stack = nullptr;                         // AddressSanitizer's state of this stack
  std::vector<std::vector<PendingCopy>> copy_groups;  // committed, oldest first
  std::vector<PendingCopy> open_copies;               // issued, not yet committed
};

struct BlockRun {
  const char* kernel = nullptr;
  const std::function<void()>* body = nullptr;
  Dim3 grid, block, block_idx;
  std::vector<std::unique_ptr<Fiber>> fibers;  // kept (with their stacks) across blocks and launches
  unsigned threads = 0;
  Fiber* running = nullptr;
  ucontext_t scheduler{};
  std::string failure;
  std::vector<unsigned char> shared = std::vector<unsigned char>(kMaxSharedBytes);
  std::map<const void*, std::size_t> shared_sites;
  std::size_t static_shared_bytes = 0, dynamic_shared_bytes = 0;
};

BlockRun& run_state() {
  static BlockRun instance;
  return instance;
}

Fiber& running_fiber(const char* what) {
  BlockRun& b = run_state();
  ATTNKIT_CHECK(b.running != nullptr, "sim: ", what, " called outside a kernel");
  return *b.running;
}

// The scheduler's stack, as AddressSanitizer reports it when a fiber first starts.
const void* scheduler_stack_bottom = nullptr;
std::size_t scheduler_stack_size = 0;

// Before a switch from the running stack to another: `fake_stack` keeps the running one's
// AddressSanitizer state (null when the running fiber ends). Nothing without AddressSanitizer.
void leaving_stack(void** fake_stack, const void* bottom, std::size_t size) {
#if defined(ATTNKIT_SIM_ASAN)
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
  static_cast<void>(fake_stack), static_cast<void>(bottom), static_cast<void>(size);
#endif
}
// After a switch, on the stack that now runs; a fiber notes the scheduler's stack it came from.
void entered_stack(void* fake_stack, bool from_scheduler) {
#if defined(ATTNKIT_SIM_ASAN)
  if (from_scheduler)
    __sanitizer_finish_switch_fiber(fake_stack, &scheduler_stack_bottom, &scheduler_stack_size);
  else
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#else
  static_cast<void>(fake_stack), static_cast<void>(from_scheduler);
#endif
}

void yield_to_scheduler(Fiber& f) {
  leaving_stack(&f.fake_stack, scheduler_stack_bottom, scheduler_stack_size);
  swapcontext(&f.context, &run_state().scheduler);
  entered_stack(f.fake_stack, true);
}

std::string block_name(const BlockRun& b) {
  return detail::concat("kernel ", b.kernel, ", block (", b.block_idx.x, ",", b.block_idx.y, ",", b.block_idx.z, ")");
}
std::string thread_name(const Fiber& f) {
  return detail::concat("thread (", f.indices.thread_idx.x, ",", f.indices.thread_idx.y, ",", f.indices.thread_idx.z,
                        ")");
}

// A fiber that finds an error records it and never runs again.
[[noreturn]] void fail_fiber(Fiber& f, const std::string& message) {
  BlockRun& b = run_state();
  if (b.failure.empty()) b.failure = message;
  f.state = State::failed;
  yield_to_scheduler(f);
  std::abort();  // a failed fiber is never resumed
}

void fiber_entry() {
  BlockRun& b = run_state();
  Fiber& f = *b.running;
  entered_stack(nullptr, true);
  try {
    (*b.body)();
    f.state = State::done;
  } catch (const std::exception& e) {
    if (b.failure.empty()) b.failure = detail::concat(block_name(b), ", ", thread_name(f), ": ", e.what());
    f.state = State::failed;
  }
  leaving_stack(nullptr, scheduler_stack_bottom, scheduler_stack_size);
  // Returning resumes uc_link, the scheduler.
}

void prepare_fibers(BlockRun& b) {
  while (b.fibers.size() < b.threads) {
    auto f = std::make_unique<Fiber>();
    char* mapping = map_pages(kStackBytes + page_size(), "a thread's stack");
    mprotect(mapping, page_size(), PROT_NONE);
    stack_guards().push_back({mapping, page_size()});
    f->stack = mapping + page_size();
    b.fibers.push_back(std::move(f));
  }
  for (unsigned t = 0; t < b.threads; ++t) {
    Fiber& f = *b.fibers[t];
    f.state = State::runnable;
    f.copy_groups.clear();
    f.open_copies.clear();
    f.indices.block_idx = b.block_idx;
    f.indices.block_dim = b.block;
    f.indices.grid_dim = b.grid;
    f.indices.thread_idx = Dim3(t % b.block.x, (t / b.block.x) % b.block.y, t / (b.block.x * b.block.y));
    f.indices.linear_thread = t;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &b.scheduler;
    makecontext(&f.context, fiber_entry, 0);
  }
}

void resume(BlockRun& b, Fiber& f) {
  b.running = &f;
  current = &f.indices;
  void* scheduler_fake_stack = nullptr;
  leaving_stack(&scheduler_fake_stack, f.stack, kStackBytes);
  swapcontext(&b.scheduler, &f.context);
  entered_stack(scheduler_fake_stack, false);
  b.running = nullptr;
  current = nullptr;
}

std::uint32_t lanes_present(const BlockRun& b, unsigned warp) {
  const unsigned first = warp * kWarpSize;
  const unsigned count = std::min(kWarpSize, b.threads - first);
  return count == kWarpSize ? 0xFFFFFFFFu : ((1u << count) - 1u);
}

// Releases the groups of warp w whose lanes have all arrived at the same operation. Returns
// whether any was released; throws on lanes that cannot arrive or disagree.
bool release_warp(BlockRun& b, unsigned w) {
  bool released = false;
  Fiber* lanes[kWarpSize] = {};
  for (unsigned l = 0; l < kWarpSize && w * kWarpSize + l < b.threads; ++l) lanes[l] = b.fibers[w * kWarpSize + l].get();
  for (unsigned l = 0; l < kWarpSize; ++l) {
    Fiber* f = lanes[l];
    if (f == nullptr || f->state != State::at_warp) continue;
    const std::uint32_t mask = f->warp_mask;
    bool ready = true;
    for (unsigned m = 0; m < kWarpSize; ++m) {
      if (!(mask >> m & 1u)) continue;
      const Fiber* other = lanes[m];
      if (other->state == State::runnable) {
        ready = false;
        continue;
      }
      if (other->state != State::at_warp)
        ATTNKIT_FAIL("sim: ", block_name(b), ": ", f->warp_op, " by lane ", l, " of warp ", w, " waits for lane ", m,
                     ", which ", other->state == State::done ? "has exited" : "waits at a __syncthreads", " (",
                     thread_name(*f), ")");
      if (other->warp_mask != mask || std::strcmp(other->warp_op, f->warp_op) != 0)
        ATTNKIT_FAIL("sim: ", block_name(b), ": divergent warp operations in warp ", w, ": lane ", l, " at ",
                     f->warp_op, " with mask 0x", std::hex, mask, ", lane ", m, " at ", other->warp_op,
                     " with mask 0x", other->warp_mask, std::dec);
    }
    if (!ready) continue;
    const std::size_t bytes = f->exchange_bytes;
    for (unsigned m = 0; m < kWarpSize; ++m) {
      if (!(mask >> m & 1u)) continue;
      Fiber& receiver = *lanes[m];
      std::memset(receiver.received, 0, kWarpSize * bytes);
      for (unsigned s = 0; s < kWarpSize; ++s)
        if (mask >> s & 1u) std::memcpy(receiver.received + s * bytes, lanes[s]->deposit, bytes);
      receiver.state = State::runnable;
    }
    released = true;
  }
  return released;
}

unsigned warp_count(const BlockRun& b) { return (b.threads + kWarpSize - 1) / kWarpSize; }

// Releases every warp group whose lanes have all arrived (release_warp for each warp).
bool release_warp_groups(BlockRun& b) {
  bool released = false;
  for (unsigned w = 0; w < warp_count(b); ++w) released = release_warp(b, w) || released;
  return released;
}

// A warp whose lanes have all arrived at a warp operation goes on at once, as far as it can
// before a barrier, ahead of the warps that have not run yet: warps progress independently, as
// on a GPU, so a missing barrier between warps that meet only at warp operations still changes
// what a schedule leaves. Lanes run in the order of `order`.
void run_warp_ahead(BlockRun& b, unsigned w, const std::vector<unsigned>& order) {
  while (release_warp(b, w))
    for (const unsigned t : order) {
      if (t / kWarpSize != w) continue;
      Fiber& f = *b.fibers[t];
      if (f.state == State::runnable) resume(b, f);
      if (!b.failure.empty()) ATTNKIT_FAIL(b.failure);
    }
}

// Runs one block to its end under `schedule`.
void run_block(BlockRun& b, Schedule schedule, std::mt19937_64& random) {
  std::memset(b.shared.data(), kPoison, b.shared.size());
  b.shared_sites.clear();
  b.static_shared_bytes = 0;
  prepare_fibers(b);
  std::vector<unsigned> order(b.threads);
  std::iota(order.begin(), order.end(), 0u);
  if (schedule == Schedule::reverse) std::reverse(order.begin(), order.end());
  for (;;) {
    if (schedule == Schedule::shuffled) std::shuffle(order.begin(), order.end(), random);
    for (const unsigned t : order) {
      Fiber& f = *b.fibers[t];
      if (f.state == State::runnable) resume(b, f);
      if (!b.failure.empty()) ATTNKIT_FAIL(b.failure);
      if (f.state == State::at_warp) run_warp_ahead(b, t / kWarpSize, order);
    }
    if (release_warp_groups(b)) continue;
    unsigned done = 0, at_barrier = 0, at_warp = 0;
    const Fiber* waiting = nullptr;
    const Fiber* exited = nullptr;
    for (unsigned t = 0; t < b.threads; ++t) {
      const Fiber& f = *b.fibers[t];
      if (f.state == State::done) ++done, exited = exited ? exited : &f;
      if (f.state == State::at_barrier) ++at_barrier, waiting = waiting ? waiting : &f;
      if (f.state == State::at_warp) ++at_warp;
    }
    if (done == b.threads) return;
    if (at_warp > 0)
      ATTNKIT_FAIL("sim: ", block_name(b), ": ", at_warp, " threads wait at warp operations whose lanes never arrive");
    if (done > 0)
      ATTNKIT_FAIL("sim: ", block_name(b), ": the barrier at ", waiting->file, ":", waiting->line, " is not reached by all ",
                   b.threads, " threads of the block: ", done, " exited without it (", thread_name(*exited),
                   " among them)");
    for (unsigned t = 0; t < b.threads; ++t) {
      const Fiber& f = *b.fibers[t];
      if (f.line != waiting->line || std::strcmp(f.file, waiting->file) != 0)
        ATTNKIT_FAIL("sim: ", block_name(b), ": divergent barriers: ", thread_name(*waiting), " waits at ",
                     waiting->file, ":", waiting->line, ", ", thread_name(f), " at ", f.file, ":", f.line);
    }
    for (unsigned t = 0; t < b.threads; ++t) b.fibers[t]->state = State::runnable;
  }
}

void run_grid(BlockRun& b, Schedule schedule) {
  std::mt19937_64 random(options().shuffle_seed);
  for (unsigned z = 0; z < b.grid.z; ++z)
    for (unsigned y = 0; y < b.grid.y; ++y)
      for (unsigned x = 0; x < b.grid.x; ++x) {
        b.block_idx = Dim3(x, y, z);
        fault_context.block_idx = b.block_idx;
        run_block(b, schedule, random);
      }
  check_canaries(b.kernel);
}

using Snapshot = std::vector<std::vector<char>>;  // every allocation's bytes, in registry order

Snapshot take_snapshot() {
  Snapshot s;
  for (const auto& [start, a] : allocations()) s.emplace_back(a.data, a.data + a.bytes);
  return s;
}
void restore(const Snapshot& s) {
  std::size_t i = 0;
  for (const auto& [start, a] : allocations()) {
    const std::vector<char>& bytes = s[i++];
    if (!bytes.empty()) std::memcpy(a.data, bytes.data(), bytes.size());  // an empty one has no data()
  }
}

// Throws when the memory now differs from `expected` (what schedule `first` left).
void compare_with(const Snapshot& expected, const char* kernel, Schedule first, Schedule second) {
  const double tolerance = options().float_tolerance;
  std::size_t i = 0;
  for (const auto& [start, a] : allocations()) {
    const std::vector<char>& want = expected[i++];
    if (a.bytes == 0 || std::memcmp(want.data(), a.data, a.bytes) == 0) continue;
    if (tolerance > 0 && a.bytes % sizeof(float) == 0) {
      bool close = true;
      std::size_t k = 0;
      for (; k < a.bytes / sizeof(float); ++k) {
        float x, y;
        std::memcpy(&x, want.data() + k * sizeof(float), sizeof x);
        std::memcpy(&y, a.data + k * sizeof(float), sizeof y);
        const bool same_nan = std::isnan(x) && std::isnan(y);
        if (!same_nan && !(std::fabs(x - y) <= tolerance * std::max(1.0f, std::max(std::fabs(x), std::fabs(y))))) {
          close = false;
          break;
        }
      }
      if (close) continue;
      ATTNKIT_FAIL("sim: kernel ", kernel, ": results differ between the ", to_string(first), " and ",
                   to_string(second), " schedules (a race: a missing barrier?): float ", k,
                   " of a buffer of ", a.bytes, " bytes");
    }
    std::size_t k = 0;
    while (want[k] == a.data[k]) ++k;
    ATTNKIT_FAIL("sim: kernel ", kernel, ": results differ between the ", to_string(first), " and ", to_string(second),
                 " schedules (a race: a missing barrier?): byte ", k, " of a buffer of ", a.bytes, " bytes");
  }
}

}  // namespace

// ---------------------------------------------------------------- launch

void launch(const char* name, Dim3 grid, Dim3 block, std::size_t dynamic_shared_bytes,
            const std::function<void()>& body) {
  ATTNKIT_CHECK(run_state().running == nullptr, "sim: kernel ", name, " launched from inside a kernel");
  ATTNKIT_CHECK(block.volume() >= 1 && block.volume() <= kMaxThreadsPerBlock, "sim: kernel ", name, ": a block of (",
                block.x, ",", block.y, ",", block.z, ") threads; it must hold 1 to ", kMaxThreadsPerBlock);
  ATTNKIT_CHECK(grid.volume() >= 1, "sim: kernel ", name, ": an empty grid (", grid.x, ",", grid.y, ",", grid.z, ")");
  ATTNKIT_CHECK(dynamic_shared_bytes <= kMaxSharedBytes, "sim: kernel ", name, ": ", dynamic_shared_bytes,
                " bytes of dynamic shared memory, above the ", kMaxSharedBytes, " a block may have");
  ATTNKIT_CHECK(!options().schedules.empty(), "sim: no schedule to run kernel ", name, " under");
  install_fault_handler();
  BlockRun& b = run_state();
  b.kernel = name;
  b.body = &body;
  b.grid = grid;
  b.block = block;
  b.threads = block.volume();
  b.dynamic_shared_bytes = dynamic_shared_bytes;
  b.failure.clear();
  fault_context.kernel = name;
  struct Finish {
    ~Finish() {
      fault_context.kernel = nullptr;
      run_state().body = nullptr;
    }
  } finish;

  const std::vector<Schedule> schedules = options().schedules;
  if (schedules.size() == 1) return run_grid(b, schedules[0]);
  const Snapshot before = take_snapshot();
  run_grid(b, schedules[0]);
  const Snapshot first = take_snapshot();
  for (std::size_t s = 1; s < schedules.size(); ++s) {
    restore(before);
    run_grid(b, schedules[s]);
    compare_with(first, name, schedules[0], schedules[s]);
  }
}

// ---------------------------------------------------------------- kernel-side calls

void sync_threads(const char* file, int line) {
  Fiber& f = running_fiber("__syncthreads");
  f.state = State::at_barrier;
  f.file = file;
  f.line = line;
  yield_to_scheduler(f);
}

void* block_shared(const void* site, std::size_t bytes) {
  running_fiber("a __shared__ declaration");
  BlockRun& b = run_state();
  const auto found = b.shared_sites.find(site);
  if (found != b.shared_sites.end()) return b.shared.data() + found->second;
  const std::size_t offset = round_up(b.static_shared_bytes, 16);
  if (offset + bytes + b.dynamic_shared_bytes > kMaxSharedBytes) {
    const std::string message = detail::concat("sim: ", block_name(b), ": ", offset + bytes, " bytes of static and ",
                                               b.dynamic_shared_bytes, " of dynamic shared memory exceed the ",
                                               kMaxSharedBytes, " a block may have");
    fail_fiber(*b.running, message);
  }
  b.static_shared_bytes = offset + bytes;
  b.shared_sites.emplace(site, offset);
  return b.shared.data() + offset;
}

void* dynamic_shared() {
  running_fiber("dynamic shared memory");
  BlockRun& b = run_state();
  // Dynamic shared memory sits at the top of the arena, static arrays grow from the bottom.
  return b.shared.data() + (kMaxSharedBytes - round_up(b.dynamic_shared_bytes, 16));
}

void warp_exchange(std::uint32_t mask, const void* mine, void* all, std::size_t bytes, const char* op) {
  Fiber& f = running_fiber(op);
  BlockRun& b = run_state();
  const unsigned lane = f.indices.linear_thread % kWarpSize;
  const unsigned warp = f.indices.linear_thread / kWarpSize;
  if (bytes > kMaxExchangeBytes) fail_fiber(f, detail::concat("sim: ", op, " exchanges ", bytes, " bytes per lane"));
  if (!(mask >> lane & 1u))
    fail_fiber(f, detail::concat("sim: ", block_name(b), ", ", thread_name(f), ": ", op, " by lane ", lane,
                                 " with a mask 0x", std::hex, mask, std::dec, " that leaves it out"));
  if ((mask & ~lanes_present(b, warp)) != 0)
    fail_fiber(f, detail::concat("sim: ", block_name(b), ", ", thread_name(f), ": ", op, " with mask 0x", std::hex, mask,
                                 std::dec, " names lanes that warp ", warp, " of a block of ", b.threads,
                                 " threads does not have"));
  std::memcpy(f.deposit, mine, bytes);
  f.exchange_bytes = bytes;
  f.warp_mask = mask;
  f.warp_op = op;
  f.state = State::at_warp;
  yield_to_scheduler(f);
  if (all != nullptr) std::memcpy(all, f.received, kWarpSize * bytes);
}

void sync_warp(std::uint32_t mask, const char*, int) {
  const unsigned char nothing = 0;
  warp_exchange(mask, &nothing, nullptr, 1, "__syncwarp");
}

void check_aligned(const void* address, std::size_t alignment, const char* what) {
  running_fiber(what);
  // Thrown, so that the fiber's stack unwinds; fiber_entry records it with the kernel, block and
  // thread.
  if (reinterpret_cast<std::uintptr_t>(address) % alignment != 0)
    ATTNKIT_FAIL(what, " at address ", address, " is not ", alignment, "-byte aligned");
}

void cp_async(void* shared_destination, const void* global_source, std::size_t bytes, std::size_t source_bytes) {
  Fiber& f = running_fiber("cp.async");
  check_aligned(shared_destination, bytes, "cp.async's shared destination");
  check_aligned(global_source, bytes, "cp.async's global source");
  f.open_copies.push_back({shared_destination, global_source, bytes, std::min(bytes, source_bytes)});
}

void cp_async_commit() {
  Fiber& f = running_fiber("cp.async.commit_group");
  f.copy_groups.push_back(std::move(f.open_copies));
  f.open_copies.clear();
}

void cp_async_wait(int pending_groups_allowed) {
  Fiber& f = running_fiber("cp.async.wait_group");
  const std::size_t keep = static_cast<std::size_t>(std::max(0, pending_groups_allowed));
  while (f.copy_groups.size() > keep) {
    for (const PendingCopy& c : f.copy_groups.front()) {
      std::memcpy(c.destination, c.source, c.source_bytes);
      std::memset(static_cast<char*>(c.destination) + c.source_bytes, 0, c.bytes - c.source_bytes);
    }
    f.copy_groups.erase(f.copy_groups.begin());
  }
}

// ---------------------------------------------------------------- memory

void* allocate(std::size_t bytes) {
  install_fault_handler();
  const std::size_t padded = round_up(std::max<std::size_t>(bytes, 1), 16);
  const std::size_t usable = round_up(padded + kFrontCanaryBytes, page_size());
  const std::size_t mapping_bytes = usable + page_size();
  char* mapping = map_pages(mapping_bytes, "a sim buffer");
  char* guard = mapping + usable;
  mprotect(guard, page_size(), PROT_NONE);
  Allocation a{mapping, mapping_bytes, guard - padded, bytes, padded};
  std::memset(a.data - kFrontCanaryBytes, kCanary, kFrontCanaryBytes);
  std::memset(a.data, kPoison, bytes);
  std::memset(a.data + bytes, kCanary, padded - bytes);
  allocations().emplace(a.data, a);
  return a.data;
}

void release(void* pointer) noexcept {
  if (pointer == nullptr) return;
  auto& all = allocations();
  const auto found = all.find(static_cast<char*>(pointer));
  if (found == all.end()) return;
  munmap(found->second.mapping, found->second.mapping_bytes);
  all.erase(found);
}

}  // namespace attnkit::sim
