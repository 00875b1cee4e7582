// UTF-8 validation and jieba segmentation on any bytes: valid text is cut into pieces that join
// back to it (with and without the HMM), invalid text is an error.
#include <cstdlib>

#include "attnkit/jieba.h"
#include "attnkit/utf8.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const attnkit::jieba::Segmenter segmenter;  // python3-jieba's dictionary and tables
  const std::string text = attnkit::fuzz::text_of(data, size);
  const bool valid = attnkit::utf8::find_invalid(text) == std::string::npos;
  if (valid && attnkit::utf8::encode(attnkit::utf8::decode(text)) != text) std::abort();
  for (const bool hmm : {true, false})
    attnkit::fuzz::expecting_clear_errors([&] {
      std::string joined;
      for (const std::string& piece : segmenter.cut(text, hmm)) joined += piece;
      if (!valid || joined != text) std::abort();  // invalid text must have been refused
    });
  return 0;
}
