// attnkit/random.h: the counter-based random generator (Philox4x32-10) behind every random
// number in attnkit: initial weights, dropout masks, shuffles.
//
// Philox is a pure function of a 128-bit counter and a 64-bit key (Salmon, Moraes, Dror and
// Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11). Element i of a random fill drawn
// at generator offset `o` is word i % 4 of philox(counter = o + i / 4, key = seed): every element
// can be computed on its own, so a GPU thread and a CPU loop produce the same numbers.
//
// The functions here are header-only and marked for host and device.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ATTNKIT_HOST_DEVICE __host__ __device__
#else
#define ATTNKIT_HOST_DEVICE
#endif

namespace attnkit {

struct Philox4x32 {
  std::uint32_t word[4];
};

// One round of Philox4x32 on counter (c0 lowest) with round key (k0, k1).
ATTNKIT_HOST_DEVICE inline void philox_round(std::uint32_t& c0, std::uint32_t& c1, std::uint32_t& c2,
                                             std::uint32_t& c3, std::uint32_t k0, std::uint32_t k1) {
  const std::uint64_t product0 = 0xD2511F53ull * c0;
  const std::uint64_t product1 = 0xCD9E8D57ull * c2;
  const std::uint32_t hi0 = static_cast<std::uint32_t>(product0 >> 32);
  const std::uint32_t lo0 = static_cast<std::uint32_t>(product0);
  const std::uint32_t hi1 = static_cast<std::uint32_t>(product1 >> 32);
  const std::uint32_t lo1 = static_cast<std::uint32_t>(product1);
  c0 = hi1 ^ c1 ^ k0;
  c1 = lo1;
  c2 = hi0 ^ c3 ^ k1;
  c3 = lo0;
}

// The Weyl sequence increments of the key schedule.
constexpr std::uint32_t kPhiloxKeyStep0 = 0x9E3779B9u, kPhiloxKeyStep1 = 0xBB67AE85u;

// Philox4x32 with 10 rounds: counter (c0 lowest) and key (k0 lowest).
ATTNKIT_HOST_DEVICE inline Philox4x32 philox4x32_10(std::uint32_t c0, std::uint32_t c1,
                                                     std::uint32_t c2, std::uint32_t c3,
                                                     std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round, k0 += kPhiloxKeyStep0, k1 += kPhiloxKeyStep1)
    philox_round(c0, c1, c2, c3, k0, k1);
  return {{c0, c1, c2, c3}};
}

// The four words of block `block` of the stream with key `seed`.
ATTNKIT_HOST_DEVICE inline Philox4x32 philox_block(std::uint64_t seed, std::uint64_t block) {
  return philox4x32_10(static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                       0u, 0u, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

// The words of blocks first, first + 1, ..., first + count - 1 of the stream with key `seed`
// (each block's four as philox_block gives them, in order: 4 * count words), computed eight
// blocks at a time round by round so that a CPU's vector units run the eight side by side.
inline void philox_blocks(std::uint64_t seed, std::uint64_t first, std::int64_t count, std::uint32_t* words) {
  constexpr int kLanes = 8;
  for (std::int64_t base = 0; base < count; base += kLanes) {
    std::uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    for (int lane = 0; lane < kLanes; ++lane) {
      const std::uint64_t block = first + static_cast<std::uint64_t>(base + lane);
      c0[lane] = static_cast<std::uint32_t>(block), c1[lane] = static_cast<std::uint32_t>(block >> 32);
      c2[lane] = 0, c3[lane] = 0;
    }
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round, k0 += kPhiloxKeyStep0, k1 += kPhiloxKeyStep1)
      for (int lane = 0; lane < kLanes; ++lane) philox_round(c0[lane], c1[lane], c2[lane], c3[lane], k0, k1);
    for (int lane = 0; lane < kLanes && base + lane < count; ++lane) {
      std::uint32_t* out = words + 4 * (base + lane);
      out[0] = c0[lane], out[1] = c1[lane], out[2] = c2[lane], out[3] = c3[lane];
    }
  }
}

// Word `index` of the stream that starts at block `offset`.
ATTNKIT_HOST_DEVICE inline std::uint32_t philox_word(std::uint64_t seed, std::uint64_t offset,
                                                     std::uint64_t index) {
  return philox_block(seed, offset + index / 4).word[index % 4];
}

// A 32-bit word -> float in [0, 1): its top 24 bits times 2^-24, exact in float.
ATTNKIT_HOST_DEVICE inline float uniform_from_word(std::uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Standard normal number `index` of the stream at `offset`: Box-Muller on the two words of its
// pair (cosine for even indices, sine for odd), computed in double so that host and device
// agree after rounding to float.
ATTNKIT_HOST_DEVICE inline double philox_normal(std::uint64_t seed, std::uint64_t offset,
                                                std::uint64_t index) {
  const Philox4x32 block = philox_block(seed, offset + index / 4);
  const unsigned pair = static_cast<unsigned>(index % 4) / 2;
  // u1 in (0, 1] so that the logarithm is finite.
  const double u1 = (static_cast<double>(block.word[2 * pair] >> 8) + 1.0) * (1.0 / 16777216.0);
  const double u2 = static_cast<double>(block.word[2 * pair + 1] >> 8) * (1.0 / 16777216.0);
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586476925286766559 * u2;
  return (index % 2 == 0) ? radius * cos(angle) : radius * sin(angle);
}

// A seed and a position in its stream. Each draw of n numbers takes ceil(n / 4) blocks and
// moves the position past them, so successive draws never overlap.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
  std::uint64_t seed() const { return seed_; }
  // The block at which the next draw starts.
  std::uint64_t offset() const { return offset_; }
  void set_offset(std::uint64_t offset) { offset_ = offset; }
  // Reserves the blocks for a draw of `count` numbers and returns the offset it starts at.
  std::uint64_t reserve(std::uint64_t count) {
    const std::uint64_t start = offset_;
    offset_ += (count + 3) / 4;
    return start;
  }
  // One uniform integer in [0, bound), for host-side choices such as shuffles.
  std::uint64_t uniform_int(std::uint64_t bound);

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

}  // namespace attnkit
