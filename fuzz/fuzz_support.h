// What every fuzz target shares: the input as a string, and the rule that bad input ends in an
// attnkit::Error (caught here) and in nothing else (any other exception escapes and aborts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "attnkit/error.h"

namespace attnkit::fuzz {

inline std::string text_of(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

template <typename F>
void expecting_clear_errors(F&& body) {
  try {
    body();
  } catch (const Error&) {
    // the answer to bad input
  }
}

}  // namespace attnkit::fuzz
