// The caching allocator's bookkeeping (see caching_allocator.h).
#include "caching_allocator.h"

#include "attnkit/error.h"

namespace attnkit {

CachingAllocator::CachingAllocator(std::function<void*(std::size_t)> raw_allocate,
                                   std::function<void(void*)> raw_release)
    : raw_allocate_(std::move(raw_allocate)), raw_release_(std::move(raw_release)) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

std::size_t CachingAllocator::size_class(std::size_t bytes) {
  constexpr std::size_t kSmallUnit = 512, kSmallLimit = std::size_t(1) << 20, kLargeUnit = std::size_t(2) << 20;
  if (bytes == 0) return kSmallUnit;
  const std::size_t unit = bytes <= kSmallLimit ? kSmallUnit : kLargeUnit;
  return (bytes + unit - 1) / unit * unit;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* block = nullptr;
  auto cached = free_blocks_.find(size);
  if (cached != free_blocks_.end() && !cached->second.empty()) {
    block = cached->second.back();
    cached->second.pop_back();
    stats_.cached_bytes -= size;
    ++stats_.reuses;
  } else {
    block = raw_allocate_(size);
    if (block == nullptr && stats_.cached_bytes > 0) {  // the cache holds the memory: give it back, try again
      empty_cache_locked();
      block = raw_allocate_(size);
    }
    if (block == nullptr) return nullptr;
    ++stats_.allocations;
  }
  live_blocks_.emplace(block, size);
  stats_.in_use_bytes += size;
  return block;
}

void CachingAllocator::release(void* block) {
  if (block == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto live = live_blocks_.find(block);
  ATTNKIT_CHECK(live != live_blocks_.end(), "caching allocator: released a block it did not allocate");
  const std::size_t size = live->second;
  live_blocks_.erase(live);
  stats_.in_use_bytes -= size;
  free_blocks_[size].push_back(block);
  stats_.cached_bytes += size;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  for (auto& entry : free_blocks_)
    for (void* block : entry.second) raw_release_(block);
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace attnkit
