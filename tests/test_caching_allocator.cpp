// The caching allocator, with host memory standing for a device's: reuse by
// size class, the counts, giving the cache back when memory runs out, and bad releases.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "attnkit/device.h"
#include "attnkit/tensor.h"

#include "caching_allocator.h"
#include "support.h"

namespace attnkit {
namespace {

// A "device" with `capacity` bytes, counting its live blocks.
struct FakeDevice {
  explicit FakeDevice(std::size_t bytes) : capacity(bytes) {}
  std::size_t capacity = 0, used = 0;
  std::map<void*, std::size_t> live;  // block -> bytes

  CachingAllocator allocator() {
    return CachingAllocator(
        [this](std::size_t bytes) -> void* {
          if (used + bytes > capacity) return nullptr;
          used += bytes;
          void* block = std::malloc(bytes);
          live.emplace(block, bytes);
          return block;
        },
        [this](void* block) {
          used -= live.at(block);
          live.erase(block);
          std::free(block);
        });
  }
};

TEST(CachingAllocator, RoundsRequestsToSizeClasses) {
  EXPECT_EQ(CachingAllocator::size_class(0), 512u);
  EXPECT_EQ(CachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);
  EXPECT_EQ(CachingAllocator::size_class(1 << 20), 1u << 20);
  EXPECT_EQ(CachingAllocator::size_class((1 << 20) + 1), 2u << 20);
  EXPECT_EQ(CachingAllocator::size_class((5u << 20) + 7), 6u << 20);
}

TEST(CachingAllocator, ReusesFreedBlocksOfTheSameClass) {
  FakeDevice device{1 << 24};
  CachingAllocator cache = device.allocator();
  void* a = cache.allocate(1000);
  void* b = cache.allocate(3000);
  EXPECT_EQ(cache.stats().allocations, 2u);
  EXPECT_EQ(cache.stats().in_use_bytes, 1024u + 3072u);
  cache.release(a);
  EXPECT_EQ(cache.stats().cached_bytes, 1024u);
  EXPECT_EQ(cache.allocate(700), a);  // same class: the cached block
  EXPECT_EQ(cache.stats().reuses, 1u);
  void* c = cache.allocate(1000);  // the class's cache is empty again: a new block
  EXPECT_NE(c, a);
  EXPECT_EQ(cache.stats().allocations, 3u);
  cache.release(b);
  cache.release(c);
  cache.release(a);
  EXPECT_EQ(cache.stats().in_use_bytes, 0u);
  EXPECT_EQ(device.live.size(), 3u);  // kept for reuse
  cache.empty_cache();
  EXPECT_TRUE(device.live.empty());
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
}

TEST(CachingAllocator, GivesTheCacheBackWhenTheDeviceIsFull) {
  FakeDevice device{4096};
  CachingAllocator cache = device.allocator();
  void* small = cache.allocate(2048);
  cache.release(small);  // cached: the device has 2048 bytes left
  void* large = cache.allocate(4000);
  ASSERT_NE(large, nullptr) << "the cached block should have been freed to make room";
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
  EXPECT_EQ(cache.allocate(4096), nullptr);  // really full: the caller reports it
  cache.release(large);
}

TEST(CachingAllocator, RefusesABlockItDidNotAllocate) {
  FakeDevice device{4096};
  CachingAllocator cache = device.allocator();
  int stranger = 0;
  EXPECT_ATTNKIT_ERROR(cache.release(&stranger), "released a block it did not allocate");
  cache.release(nullptr);  // ignored
}

TEST(CachingAllocator, FreesEverythingWhenDestroyed) {
  FakeDevice device{1 << 20};
  {
    CachingAllocator cache = device.allocator();
    cache.release(cache.allocate(100));
    cache.release(cache.allocate(5000));
  }
  EXPECT_TRUE(device.live.empty());
}

TEST(CachingAllocator, LargeHostTensorsReuseTheirMemory) {
  host_empty_cache();
  const MemoryStats before = host_memory_stats();
  const std::int64_t large = kHostCacheMinimumBytes / sizeof(float) + 3;  // just over the limit
  const void* first = nullptr;
  {
    Tensor t = Tensor::full({large}, 1.0);
    first = t.raw_data();
    EXPECT_EQ(host_memory_stats().in_use_bytes, before.in_use_bytes + CachingAllocator::size_class(large * 4));
  }
  EXPECT_EQ(host_memory_stats().cached_bytes, CachingAllocator::size_class(large * 4));
  {
    Tensor again = Tensor::zeros({large});  // the same size class: the same block, zeroed
    EXPECT_EQ(again.raw_data(), first);
    EXPECT_EQ(host_memory_stats().reuses, before.reuses + 1);
    for (const float v : again.to_vector<float>()) ASSERT_EQ(v, 0.0f);
  }
  // Small tensors come from the C library, not from the cache.
  { Tensor small = Tensor::empty({kHostCacheMinimumBytes / sizeof(float) - 1}); }
  EXPECT_EQ(host_memory_stats().allocations, before.allocations + 1);
  host_empty_cache();
  EXPECT_EQ(host_memory_stats().cached_bytes, 0u);
}

}  // namespace
}  // namespace attnkit
