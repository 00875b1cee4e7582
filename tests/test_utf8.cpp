// UTF-8: round trips over the whole code space, and every kind of invalid sequence rejected.
#include <gtest/gtest.h>

#include "attnkit/utf8.h"
#include "support.h"

namespace attnkit {
namespace {

TEST(Utf8, RoundTripsEveryScalarValue) {
  std::u32string all;
  for (char32_t c = 0; c <= 0x10ffff; ++c)
    if (c < 0xd800 || c > 0xdfff) all.push_back(c);
  const std::string encoded = utf8::encode(all);
  EXPECT_EQ(utf8::find_invalid(encoded), std::string::npos);
  EXPECT_EQ(utf8::decode(encoded), all);
  EXPECT_EQ(utf8::encode(U'好'), "\xe5\xa5\xbd");
  EXPECT_EQ(utf8::encode(U'\U0001F600'), "\xf0\x9f\x98\x80");
}

TEST(Utf8, RejectsInvalidSequences) {
  const std::pair<std::string, std::size_t> cases[] = {
      {"ab\x80", 2},                // a lone continuation byte
      {"\xc0\xaf", 0},              // an overlong '/'
      {"\xe0\x80\xaf", 0},          // overlong in three bytes
      {"\xed\xa0\x80", 0},          // a surrogate
      {"\xf4\x90\x80\x80", 0},      // above U+10FFFF
      {"ok\xe5\xa5", 2},            // truncated at the end
      {"\xe5\x41\xbd", 0},          // a broken continuation
      {"\xff", 0},
  };
  for (const auto& [text, offset] : cases) {
    EXPECT_EQ(utf8::find_invalid(text), offset) << ::testing::PrintToString(text);
    EXPECT_ATTNKIT_ERROR(utf8::decode(text), "invalid UTF-8 at byte " + std::to_string(offset));
  }
}

}  // namespace
}  // namespace attnkit
