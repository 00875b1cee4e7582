// UTF-8 decoding, encoding and validation.
#include "attnkit/utf8.h"

#include "attnkit/error.h"

namespace attnkit::utf8 {
namespace {

// Decodes the sequence at `at`; returns its length, or 0 when it is not valid UTF-8.
std::size_t decode_one(const std::string& text, std::size_t at, char32_t* out) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  std::size_t length;
  char32_t value;
  if (lead < 0x80) {
    *out = lead;
    return 1;
  } else if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, value = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, value = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, value = lead & 0x07;
  } else {
    return 0;  // a continuation byte, or a lead that can only make overlong or out-of-range forms
  }
  if (at + length > text.size()) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xc0) != 0x80) return 0;
    value = (value << 6) | (byte(at + i) & 0x3f);
  }
  const bool overlong = (length == 3 && value < 0x800) || (length == 4 && value < 0x10000);
  const bool surrogate = value >= 0xd800 && value <= 0xdfff;
  if (overlong || surrogate || value > 0x10ffff) return 0;
  *out = value;
  return length;
}

}  // namespace

std::size_t find_invalid(const std::string& text) {
  char32_t ignored;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = decode_one(text, at, &ignored);
    if (length == 0) return at;
    at += length;
  }
  return std::string::npos;
}

std::u32string decode(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    char32_t c;
    const std::size_t length = decode_one(text, at, &c);
    ATTNKIT_CHECK(length != 0, "invalid UTF-8 at byte ", at);
    out.push_back(c);
    at += length;
  }
  return out;
}

std::string encode(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
  return out;
}

std::string encode(const std::u32string& code_points) {
  std::string out;
  out.reserve(code_points.size() * 3);
  for (const char32_t c : code_points) out += encode(c);
  return out;
}

}  // namespace attnkit::utf8
