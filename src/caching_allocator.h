// Internal: the caching allocator behind tensors on a GPU, and behind the large tensors of the
// host.
//
// A training step allocates and frees the same sizes every batch. On a GPU cudaMalloc and
// cudaFree are slow (cudaFree waits for the whole device); on the host the C library maps a
// large block afresh and unmaps it when it is freed, so that every batch pays page faults and
// the kernel's zeroing of the pages. So a freed block is kept in a cache by its size class and
// handed to the next request of that class. Every op of a device runs on one stream
// (cuda/runtime.h), so a block reused by a later op is only touched after the earlier ops that
// used it: stream order makes the reuse safe without events.
//
// The class knows nothing of CUDA: it is given the raw allocate and release functions.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "attnkit/device.h"

namespace attnkit {

class CachingAllocator {
 public:
  // raw_allocate returns nullptr when the memory is not there (and throws on other errors);
  // raw_release frees what it returned.
  CachingAllocator(std::function<void*(std::size_t)> raw_allocate, std::function<void(void*)> raw_release);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes`; nullptr when even an emptied cache leaves too little memory.
  void* allocate(std::size_t bytes);
  // Returns a block from allocate() to the cache; nullptr is ignored.
  void release(void* block);
  // Gives every cached block back through raw_release.
  void empty_cache();
  MemoryStats stats() const;

  // The size class of a request: multiples of 512 bytes up to 1 MiB, of 2 MiB above.
  static std::size_t size_class(std::size_t bytes);

 private:
  void empty_cache_locked();

  std::function<void*(std::size_t)> raw_allocate_;
  std::function<void(void*)> raw_release_;
  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks_;  // by size class
  std::unordered_map<void*, std::size_t> live_blocks_;               // block -> size class
  MemoryStats stats_;
};

}  // namespace attnkit
