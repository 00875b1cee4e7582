// Internal: the caching allocator behind tensors on a GPU.
//
// cudaMalloc and cudaFree are slow (cudaFree waits for the whole device), and a training step
// allocates and frees the same sizes every batch. So a freed block is kept in a cache by its
// size class and handed to the next request of that class. Every op of a device runs on one
// stream (runtime.h), so a block reused by a later op is only touched after the earlier ops
// that used it: stream order makes the reuse safe without events.
//
// The class knows nothing of CUDA: it is given the raw allocate and release functions, so the
// cpu tests check its bookkeeping with host memory.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace attnkit::cuda {

struct CacheStats {
  std::size_t in_use_bytes = 0;        // blocks handed out and not yet released (size classes)
  std::size_t cached_bytes = 0;        // blocks kept for reuse
  std::size_t device_allocations = 0;  // calls of the raw allocate that succeeded
  std::size_t reuses = 0;              // requests served from the cache
};

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
  CacheStats stats() const;

  // The size class of a request: multiples of 512 bytes up to 1 MiB, of 2 MiB above.
  static std::size_t size_class(std::size_t bytes);

 private:
  void empty_cache_locked();

  std::function<void*(std::size_t)> raw_allocate_;
  std::function<void(void*)> raw_release_;
  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks_;  // by size class
  std::unordered_map<void*, std::size_t> live_blocks_;               // block -> size class
  CacheStats stats_;
};

}  // namespace attnkit::cuda
