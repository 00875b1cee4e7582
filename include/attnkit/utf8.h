// attnkit/utf8.h: UTF-8 decoding, encoding and validation (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace attnkit::utf8 {

// The byte offset of the first invalid sequence in `text`, or npos when it is valid UTF-8.
std::size_t find_invalid(const std::string& text);
// Decodes valid UTF-8 into code points; invalid input is an attnkit::Error naming the byte offset.
std::u32string decode(const std::string& text);
std::string encode(const std::u32string& code_points);
std::string encode(char32_t code_point);

}  // namespace attnkit::utf8
