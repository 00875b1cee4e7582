// Internal: Philox blocks drawn 32 at a time, for the CPU's dropout. The 32 counters of a batch
// of consecutive blocks go through the rounds of random.h side by side in vector registers (the
// compiler does not find this for a loop over lanes: it unrolls the rounds and then computes each
// lane's products on their own). 32 rather than one register's worth: the rounds are a chain of
// dependent products, and four or more independent registers keep the multipliers busy while
// each product waits for the last (2.7 times as fast as 8 lanes on an AVX-512 Xeon).
#pragma once

#include <cstdint>

#include "attnkit/random.h"

namespace attnkit::cpu {

// The products of a Philox round on 32 words at once.
struct PhiloxWords32 {
  typedef std::uint32_t Word __attribute__((vector_size(128)));
  typedef std::uint64_t Wide __attribute__((vector_size(256)));
  static constexpr int kCount = 32;
  static void multiply(Word a, std::uint32_t m, Word& hi, Word& lo) {
    const Wide product = __builtin_convertvector(a, Wide) * static_cast<std::uint64_t>(m);
    hi = __builtin_convertvector(product >> 32, Word);
    lo = __builtin_convertvector(product, Word);
  }
};

// The words of blocks first, first + 1, ..., first + count - 1 of the stream with key `seed`:
// 4 * count words, each block's four as philox_block gives them.
inline void philox_blocks(std::uint64_t seed, std::uint64_t first, std::int64_t count, std::uint32_t* words) {
  using Word = PhiloxWords32::Word;
  constexpr int kCount = PhiloxWords32::kCount;
  for (std::int64_t base = 0; base < count; base += kCount) {
    Word c0, c1, c2 = {}, c3 = {};
    for (int lane = 0; lane < kCount; ++lane) {
      const std::uint64_t block = first + static_cast<std::uint64_t>(base + lane);
      c0[lane] = static_cast<std::uint32_t>(block);
      c1[lane] = static_cast<std::uint32_t>(block >> 32);
    }
    philox_rounds<PhiloxWords32>(c0, c1, c2, c3, static_cast<std::uint32_t>(seed),
                                static_cast<std::uint32_t>(seed >> 32));
    for (int lane = 0; lane < kCount && base + lane < count; ++lane) {
      std::uint32_t* out = words + 4 * (base + lane);
      out[0] = c0[lane], out[1] = c1[lane], out[2] = c2[lane], out[3] = c3[lane];
    }
  }
}

}  // namespace attnkit::cpu
