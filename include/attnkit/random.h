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

// The 32 x 32 -> 64-bit products of a Philox round, on one word. src/cpu/philox.h has the same
// for a vector of words, so that one round serves a single counter and several side by side.
struct PhiloxWord {
  using Word = std::uint32_t;
  ATTNKIT_HOST_DEVICE static void multiply(Word a, std::uint32_t m, Word& hi, Word& lo) {
    const std::uint64_t product = static_cast<std::uint64_t>(m) * a;
    hi = static_cast<Word>(product >> 32);
    lo = static_cast<Word>(product);
  }
};

// The 10 rounds of Philox4x32-10 on counter (c0 lowest) with key (k0 lowest), in place.
template <typename Words = PhiloxWord>
ATTNKIT_HOST_DEVICE inline void philox_rounds(typename Words::Word& c0, typename Words::Word& c1,
                                              typename Words::Word& c2, typename Words::Word& c3,
                                              std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    typename Words::Word hi0, lo0, hi1, lo1;
    Words::multiply(c0, 0xD2511F53u, hi0, lo0);
    Words::multiply(c2, 0xCD9E8D57u, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;  // the Weyl sequence of the key schedule
    k1 += 0xBB67AE85u;
  }
}

// Philox4x32 with 10 rounds: counter (c0 lowest) and key (k0 lowest).
ATTNKIT_HOST_DEVICE inline Philox4x32 philox4x32_10(std::uint32_t c0, std::uint32_t c1,
                                                     std::uint32_t c2, std::uint32_t c3,
                                                     std::uint32_t k0, std::uint32_t k1) {
  philox_rounds(c0, c1, c2, c3, k0, k1);
  return {{c0, c1, c2, c3}};
}

// The four words of block `block` of the stream with key `seed`.
ATTNKIT_HOST_DEVICE inline Philox4x32 philox_block(std::uint64_t seed, std::uint64_t block) {
  return philox4x32_10(static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                       0u, 0u, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
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

// Attention dropout (ops/attention.h, AttentionOptions::dropout) keeps or drops each probability
// of an attention by one 16-bit piece of the stream, laid out so that a tensor-core thread's
// elements of a score tile come whole from few blocks: the probabilities of row r (r = (b H + h)
// Tq + i for query i of head h of batch element b) take attention_dropout_row_blocks(Tk) blocks
// from block first + r * that, and key j lies in block attention_dropout_block(row's first, j),
// word (j % 32) / 8, its low 16 bits for even j and high for odd. The probability is kept when
// those bits are at least the threshold, round(rate * 65536): the rate is taken to a multiple of
// 2^-16, and the kept probabilities are scaled by 65536 / (65536 - threshold).
inline std::uint32_t attention_dropout_threshold(double rate) {
  return static_cast<std::uint32_t>(std::llround(rate * 65536));
}
inline double attention_dropout_scale(std::uint32_t threshold) { return 65536.0 / (65536.0 - threshold); }
ATTNKIT_HOST_DEVICE inline std::uint64_t attention_dropout_row_blocks(std::int64_t keys) {
  return static_cast<std::uint64_t>((keys + 31) / 32) * 4;
}
ATTNKIT_HOST_DEVICE inline std::uint64_t attention_dropout_block(std::uint64_t row_first_block, std::int64_t key) {
  return row_first_block + static_cast<std::uint64_t>(key / 32 * 4 + key % 8 / 2);
}
// Whether key j's probability is kept, given its block (the word picked without indexing, so that
// a device keeps the block in registers).
ATTNKIT_HOST_DEVICE inline bool attention_dropout_keeps(const Philox4x32& block, std::int64_t key,
                                                        std::uint32_t threshold) {
  const int w = static_cast<int>(key % 32 / 8);
  const std::uint32_t word = w == 0 ? block.word[0] : w == 1 ? block.word[1] : w == 2 ? block.word[2] : block.word[3];
  return (word >> (key % 2 * 16) & 0xFFFFu) >= threshold;
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
