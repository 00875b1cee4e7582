// Internal: integers read from JSON configs. nlohmann's get<int>() of a JSON number with a
// fraction or an exponent casts it, which is undefined behaviour when the value lies outside the
// type (a fuzzed config found 1.9e23 as a node index); these accept JSON integers only.
#pragma once

#include <cstdint>
#include <limits>

#include "attnkit/error.h"
#include "attnkit/layer.h"

namespace attnkit::detail {

inline std::int64_t json_integer(const Json& value, const char* what) {
  const bool fits = value.is_number_integer() &&
                    (!value.is_number_unsigned() ||
                     value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
  ATTNKIT_CHECK(fits, what, " must be an integer of 64 bits, got ", value.dump());
  return value.get<std::int64_t>();
}

inline Shape json_shape(const Json& value, const char* what) {
  ATTNKIT_CHECK(value.is_array(), what, " must be an array of integers, got ", value.dump());
  Shape shape;
  for (const Json& extent : value) shape.push_back(json_integer(extent, what));
  return shape;
}

}  // namespace attnkit::detail
