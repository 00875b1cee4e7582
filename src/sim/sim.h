// The sim executor: CUDA kernels written in the dialect of kernels/dialect.h, compiled as host
// C++ and run on the CPU.
//
// A launch runs the grid's blocks one at a time. The threads of a block are fibers on one OS
// thread; a fiber runs until it reaches __syncthreads, a warp operation (shuffle, vote, mma,
// ldmatrix, __syncwarp) or its end, and then the next one runs. The order in which the threads
// of a block run between two synchronisation points is the schedule: forward (thread 0 first),
// reverse, or shuffled. A warp whose lanes have all reached a warp operation goes on at once, up
// to a barrier, before the warps the schedule has not run yet: warps progress independently, as
// on a GPU, so warps that share memory with no barrier between them see each other's writes in
// an order that depends on the schedule. A launch runs under each schedule of options().schedules from the same
// starting memory and compares what they leave in every live buffer: a kernel that races (a
// missing barrier, a read of what another thread has not yet written) gives different results
// and the launch fails. Shared memory starts each block filled with 0xFF bytes (NaN for
// floating types), so a read before any write is seen.
//
// The executor reports, naming the kernel and the block: a barrier that some threads of the
// block never reach, threads waiting at different barriers, warp operations whose lanes do not
// all arrive or disagree, results that differ between schedules, and writes into the canary
// bytes around a buffer. A read or write past the end of a buffer from sim::allocate hits a
// guard page: the process ends with a message naming the kernel, the block, the thread and the
// buffer (a test checks it in a death test).
//
// Errors other than out-of-bounds accesses are thrown as attnkit::Error from the launch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace attnkit::sim {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr Dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr unsigned volume() const { return x * y * z; }
};

// What the running fiber sees as threadIdx, blockIdx, blockDim and gridDim.
struct ThreadIndices {
  Dim3 thread_idx, block_idx, block_dim, grid_dim;
  unsigned linear_thread = 0;  // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
};
extern ThreadIndices* current;

enum class Schedule { forward, reverse, shuffled };
const char* to_string(Schedule schedule);

struct Options {
  std::vector<Schedule> schedules{Schedule::forward, Schedule::reverse, Schedule::shuffled};
  // 0: the schedules must leave identical bytes. Above 0: buffers are compared as float32 with
  // this relative tolerance (kernels that add floats with atomics in an order that varies).
  double float_tolerance = 0.0;
  std::uint64_t shuffle_seed = 0x5eed;
};
// The options of every launch from now on (tests change them through ScopedOptions).
Options& options();

class ScopedOptions {
 public:
  explicit ScopedOptions(Options replacement) : saved_(options()) { options() = std::move(replacement); }
  ~ScopedOptions() { options() = saved_; }
  ScopedOptions(const ScopedOptions&) = delete;
  ScopedOptions& operator=(const ScopedOptions&) = delete;

 private:
  Options saved_;
};

// Runs `body` as kernel `name` over grid x block, with `dynamic_shared_bytes` of dynamic shared
// memory; returns when every block has run under every schedule.
void launch(const char* name, Dim3 grid, Dim3 block, std::size_t dynamic_shared_bytes,
            const std::function<void()>& body);

// ---------------------------------------------------------------- called from kernel code

void sync_threads(const char* file, int line);
// The block's copy of a static shared array declared at `site` (one per declaration).
void* block_shared(const void* site, std::size_t bytes);
void* dynamic_shared();
// __syncwarp(mask).
void sync_warp(std::uint32_t mask, const char* file, int line);
// Every lane of `mask` gives `bytes` (at most 64) at `mine`; `all` receives 32 slots of `bytes`,
// slot i holding lane i's (lanes outside the mask: zeros). `op` names the operation in errors.
void warp_exchange(std::uint32_t mask, const void* mine, void* all, std::size_t bytes, const char* op);
// Fails the launch, naming the kernel, the block, the thread and the address, unless `address`
// is a multiple of `alignment` (what the hardware requires of `what`).
void check_aligned(const void* address, std::size_t alignment, const char* what);
// cp.async: the copy happens when a later cp_async_wait retires its group. Both addresses must
// be aligned to the copy's size.
void cp_async(void* shared_destination, const void* global_source, std::size_t bytes, std::size_t source_bytes);
void cp_async_commit();
void cp_async_wait(int pending_groups_allowed);

// ---------------------------------------------------------------- memory

// Host memory standing for device memory: the end of the buffer sits against an inaccessible
// page (rounded to 16 bytes; the few bytes of rounding and 64 bytes before the start hold
// canaries checked after each launch). Registered, so launches can compare and restore it. It
// starts filled with 0xFF bytes (NaN), as device memory holds whatever was there before: a
// kernel that leaves an output element unwritten shows up as a NaN.
void* allocate(std::size_t bytes);
void release(void* pointer) noexcept;

// A typed buffer in sim memory, for tests.
template <typename T>
class Buffer {
 public:
  explicit Buffer(std::size_t count) : data_(static_cast<T*>(allocate(count * sizeof(T)))), count_(count) {}
  explicit Buffer(const std::vector<T>& values) : Buffer(values.size()) {
    for (std::size_t i = 0; i < count_; ++i) data_[i] = values[i];
  }
  ~Buffer() { release(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return count_; }
  std::vector<T> values() const { return std::vector<T>(data_, data_ + count_); }
  void fill(const T& value) {
    for (std::size_t i = 0; i < count_; ++i) data_[i] = value;
  }

 private:
  T* data_;
  std::size_t count_;
};

}  // namespace attnkit::sim
