// Generator: host-side draws that are not tensor fills.
#include "attnkit/random.h"

#include "attnkit/error.h"

namespace attnkit {

std::uint64_t Generator::uniform_int(std::uint64_t bound) {
  ATTNKIT_CHECK(bound > 0, "Generator::uniform_int: the bound must be positive");
  const Philox4x32 block = philox_block(seed_, reserve(4));
  const std::uint64_t word = (static_cast<std::uint64_t>(block.word[0]) << 32) | block.word[1];
  // The high half of the 128-bit product maps the 64-bit word onto [0, bound) (Lemire's
  // multiply-shift); its bias is below bound / 2^64.
  __extension__ using uint128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<uint128>(word) * bound) >> 64);
}

}  // namespace attnkit
