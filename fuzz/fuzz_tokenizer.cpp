// Keras's Tokenizer on any bytes: as the JSON of a saved tokenizer (from_json), and as lines of
// text to fit on, turn into sequences and pad.
#include <cstdlib>
#include <sstream>

#include "attnkit/data.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = attnkit::fuzz::text_of(data, size);
  attnkit::fuzz::expecting_clear_errors([&] {
    const attnkit::data::Tokenizer tokenizer = attnkit::data::Tokenizer::from_json(text);
    // What it writes, it reads back the same.
    if (attnkit::data::Tokenizer::from_json(tokenizer.to_json()).to_json() != tokenizer.to_json()) std::abort();
  });
  attnkit::fuzz::expecting_clear_errors([&] {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    attnkit::data::Tokenizer tokenizer(50);
    tokenizer.fit_on_texts(lines);
    const auto sequences = tokenizer.texts_to_sequences(lines);
    for (const auto& sequence : sequences)
      for (const std::int32_t id : sequence)
        if (id < 1 || id >= 50) std::abort();
    attnkit::data::pad_sequences(sequences, 7);
  });
  return 0;
}
