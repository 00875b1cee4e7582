// From reviews to tensors (see data.h): stopwords, Keras 2's text_to_word_sequence and
// Tokenizer, pad_sequences, the stratified split, take and one_hot.
//
// Lower-casing follows Python's str.lower, which Keras calls, for the blocks where the letters
// of Chinese reviews come from: U+0000-U+052F (ASCII, Latin-1, Latin Extended-A and -B with the
// pinyin vowels, IPA, Greek, Cyrillic), the Roman numerals (U+2150-U+218F), the circled letters
// (U+2460-U+24FF) and the full-width forms (U+FF00-U+FFEF). That includes Unicode's two context
// rules: U+0130 (İ) becomes "i" and a combining dot above, and Σ becomes ς at the end of a word.
// Capitals elsewhere (Latin Extended Additional, Armenian, Georgian, Cherokee, ...) are left as
// they are. tests/test_data.cpp checks every code point of these blocks against Python.
#include <algorithm>
#include <bitset>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "attnkit/data.h"
#include "attnkit/error.h"
#include "attnkit/safetensors.h"
#include "attnkit/utf8.h"
#include "json_integers.h"

namespace attnkit::data {

const char* const kKerasFilters = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

namespace {

// ------------------------------------------------------------------ lower-casing

// Capitals first..last (every `step`-th code point from first) become code point + delta.
struct LowerRange {
  char32_t first, last;
  std::int32_t delta;
  char32_t step;
};

// Python 3.11's str.lower on the blocks named at the top of this file, as ranges.
constexpr LowerRange kLowerRanges[] = {
    {0x0041, 0x005A, 32, 1}, {0x00C0, 0x00D6, 32, 1}, {0x00D8, 0x00DE, 32, 1}, {0x0100, 0x012E, 1, 2},
    {0x0132, 0x0136, 1, 2}, {0x0139, 0x0147, 1, 2}, {0x014A, 0x0176, 1, 2}, {0x0178, 0x0178, -121, 1},
    {0x0179, 0x017D, 1, 2}, {0x0181, 0x0181, 210, 1}, {0x0182, 0x0184, 1, 2}, {0x0186, 0x0186, 206, 1},
    {0x0187, 0x0187, 1, 1}, {0x0189, 0x018A, 205, 1}, {0x018B, 0x018B, 1, 1}, {0x018E, 0x018E, 79, 1},
    {0x018F, 0x018F, 202, 1}, {0x0190, 0x0190, 203, 1}, {0x0191, 0x0191, 1, 1}, {0x0193, 0x0193, 205, 1},
    {0x0194, 0x0194, 207, 1}, {0x0196, 0x0196, 211, 1}, {0x0197, 0x0197, 209, 1}, {0x0198, 0x0198, 1, 1},
    {0x019C, 0x019C, 211, 1}, {0x019D, 0x019D, 213, 1}, {0x019F, 0x019F, 214, 1}, {0x01A0, 0x01A4, 1, 2},
    {0x01A6, 0x01A6, 218, 1}, {0x01A7, 0x01A7, 1, 1}, {0x01A9, 0x01A9, 218, 1}, {0x01AC, 0x01AC, 1, 1},
    {0x01AE, 0x01AE, 218, 1}, {0x01AF, 0x01AF, 1, 1}, {0x01B1, 0x01B2, 217, 1}, {0x01B3, 0x01B5, 1, 2},
    {0x01B7, 0x01B7, 219, 1}, {0x01B8, 0x01B8, 1, 1}, {0x01BC, 0x01BC, 1, 1}, {0x01C4, 0x01C4, 2, 1},
    {0x01C5, 0x01C5, 1, 1}, {0x01C7, 0x01C7, 2, 1}, {0x01C8, 0x01C8, 1, 1}, {0x01CA, 0x01CA, 2, 1},
    {0x01CB, 0x01DB, 1, 2}, {0x01DE, 0x01EE, 1, 2}, {0x01F1, 0x01F1, 2, 1}, {0x01F2, 0x01F4, 1, 2},
    {0x01F6, 0x01F6, -97, 1}, {0x01F7, 0x01F7, -56, 1}, {0x01F8, 0x021E, 1, 2}, {0x0220, 0x0220, -130, 1},
    {0x0222, 0x0232, 1, 2}, {0x023A, 0x023A, 10795, 1}, {0x023B, 0x023B, 1, 1}, {0x023D, 0x023D, -163, 1},
    {0x023E, 0x023E, 10792, 1}, {0x0241, 0x0241, 1, 1}, {0x0243, 0x0243, -195, 1}, {0x0244, 0x0244, 69, 1},
    {0x0245, 0x0245, 71, 1}, {0x0246, 0x024E, 1, 2}, {0x0370, 0x0372, 1, 2}, {0x0376, 0x0376, 1, 1},
    {0x037F, 0x037F, 116, 1}, {0x0386, 0x0386, 38, 1}, {0x0388, 0x038A, 37, 1}, {0x038C, 0x038C, 64, 1},
    {0x038E, 0x038F, 63, 1}, {0x0391, 0x03A1, 32, 1}, {0x03A3, 0x03AB, 32, 1}, {0x03CF, 0x03CF, 8, 1},
    {0x03D8, 0x03EE, 1, 2}, {0x03F4, 0x03F4, -60, 1}, {0x03F7, 0x03F7, 1, 1}, {0x03F9, 0x03F9, -7, 1},
    {0x03FA, 0x03FA, 1, 1}, {0x03FD, 0x03FF, -130, 1}, {0x0400, 0x040F, 80, 1}, {0x0410, 0x042F, 32, 1},
    {0x0460, 0x0480, 1, 2}, {0x048A, 0x04BE, 1, 2}, {0x04C0, 0x04C0, 15, 1}, {0x04C1, 0x04CD, 1, 2},
    {0x04D0, 0x052E, 1, 2}, {0x2160, 0x216F, 16, 1}, {0x2183, 0x2183, 1, 1}, {0x24B6, 0x24CF, 26, 1},
    {0xFF21, 0xFF3A, 32, 1},
};

// What the final-sigma rule asks of the code points around a Σ: Unicode's Cased and
// Case_Ignorable properties, the latter winning where both hold (as in CPython).
enum CaseClass { kOther, kCased, kIgnorable };

struct CaseClassRange {
  char32_t first, last;
  CaseClass case_class;
};

// Over the lower-cased blocks, the combining marks (U+0300-U+036F), general punctuation
// (U+2000-U+206F) and CJK symbols and kana (U+3000-U+30FF); code points not listed are kOther.
constexpr CaseClassRange kCaseClassRanges[] = {
    {0x0027, 0x0027, kIgnorable}, {0x002E, 0x002E, kIgnorable}, {0x003A, 0x003A, kIgnorable},
    {0x0041, 0x005A, kCased}, {0x005E, 0x005E, kIgnorable}, {0x0060, 0x0060, kIgnorable},
    {0x0061, 0x007A, kCased}, {0x00A8, 0x00A8, kIgnorable}, {0x00AA, 0x00AA, kCased},
    {0x00AD, 0x00AD, kIgnorable}, {0x00AF, 0x00AF, kIgnorable}, {0x00B4, 0x00B4, kIgnorable},
    {0x00B5, 0x00B5, kCased}, {0x00B7, 0x00B8, kIgnorable}, {0x00BA, 0x00BA, kCased},
    {0x00C0, 0x00D6, kCased}, {0x00D8, 0x00F6, kCased}, {0x00F8, 0x01BA, kCased}, {0x01BC, 0x01BF, kCased},
    {0x01C4, 0x0293, kCased}, {0x0295, 0x02AF, kCased}, {0x02B0, 0x036F, kIgnorable},
    {0x0370, 0x0373, kCased}, {0x0374, 0x0375, kIgnorable}, {0x0376, 0x0377, kCased},
    {0x037A, 0x037A, kIgnorable}, {0x037B, 0x037D, kCased}, {0x037F, 0x037F, kCased},
    {0x0384, 0x0385, kIgnorable}, {0x0386, 0x0386, kCased}, {0x0387, 0x0387, kIgnorable},
    {0x0388, 0x038A, kCased}, {0x038C, 0x038C, kCased}, {0x038E, 0x03A1, kCased}, {0x03A3, 0x03F5, kCased},
    {0x03F7, 0x0481, kCased}, {0x0483, 0x0489, kIgnorable}, {0x048A, 0x052F, kCased},
    {0x200B, 0x200F, kIgnorable}, {0x2018, 0x2019, kIgnorable}, {0x2024, 0x2024, kIgnorable},
    {0x2027, 0x2027, kIgnorable}, {0x202A, 0x202E, kIgnorable}, {0x2060, 0x2064, kIgnorable},
    {0x2066, 0x206F, kIgnorable}, {0x2160, 0x217F, kCased}, {0x2183, 0x2184, kCased},
    {0x24B6, 0x24E9, kCased}, {0x3005, 0x3005, kIgnorable}, {0x302A, 0x302D, kIgnorable},
    {0x3031, 0x3035, kIgnorable}, {0x303B, 0x303B, kIgnorable}, {0x3099, 0x309E, kIgnorable},
    {0x30FC, 0x30FE, kIgnorable}, {0xFF07, 0xFF07, kIgnorable}, {0xFF0E, 0xFF0E, kIgnorable},
    {0xFF1A, 0xFF1A, kIgnorable}, {0xFF21, 0xFF3A, kCased}, {0xFF3E, 0xFF3E, kIgnorable},
    {0xFF40, 0xFF40, kIgnorable}, {0xFF41, 0xFF5A, kCased}, {0xFF70, 0xFF70, kIgnorable},
    {0xFF9E, 0xFF9F, kIgnorable}, {0xFFE3, 0xFFE3, kIgnorable},
};

// The range of a sorted, disjoint table that holds c, or nullptr.
template <typename Range, std::size_t N>
const Range* find_range(const Range (&table)[N], char32_t c) {
  const Range* range = std::lower_bound(table, table + N, c, [](const Range& r, char32_t x) { return r.last < x; });
  return range != table + N && range->first <= c ? range : nullptr;
}

CaseClass case_class(char32_t c) {
  const CaseClassRange* range = find_range(kCaseClassRanges, c);
  return range != nullptr ? range->case_class : kOther;
}

char32_t lower_one(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
  const LowerRange* range = find_range(kLowerRanges, c);
  if (range == nullptr || (c - range->first) % range->step != 0) return c;
  return static_cast<char32_t>(static_cast<std::int64_t>(c) + range->delta);
}

// Unicode's Final_Sigma: a cased letter before the Σ and none after it, skipping case-ignorable
// code points on both sides.
bool is_final_sigma(const std::u32string& text, std::size_t at) {
  std::size_t before = at;
  while (before > 0 && case_class(text[before - 1]) == kIgnorable) --before;
  if (before == 0 || case_class(text[before - 1]) != kCased) return false;
  std::size_t after = at + 1;
  while (after < text.size() && case_class(text[after]) == kIgnorable) ++after;
  return after == text.size() || case_class(text[after]) != kCased;
}

std::u32string lower_case(const std::u32string& text) {
  std::u32string lower;
  lower.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == 0x0130) {
      lower += U"i\u0307";
    } else if (text[i] == 0x03A3) {
      lower += is_final_sigma(text, i) ? U'\u03C2' : U'\u03C3';
    } else {
      lower += lower_one(text[i]);
    }
  }
  return lower;
}

// ------------------------------------------------------------------ word splitting

// The code points that end a word: the filters and the space.
class Separators {
 public:
  explicit Separators(const std::string& filters) {
    ATTNKIT_CHECK(utf8::find_invalid(filters) == std::string::npos, "the tokenizer filters are not valid UTF-8");
    ascii_.set(' ');
    for (const char32_t c : utf8::decode(filters)) {
      if (c < 0x80) {
        ascii_.set(c);
      } else {
        others_ += c;
      }
    }
  }
  bool contains(char32_t c) const {
    return c < 0x80 ? ascii_.test(c) : others_.find(c) != std::u32string::npos;
  }

 private:
  std::bitset<0x80> ascii_;
  std::u32string others_;
};

std::vector<std::string> split_words(const std::string& text, const Separators& separators) {
  const std::size_t invalid = utf8::find_invalid(text);
  ATTNKIT_CHECK(invalid == std::string::npos, "text_to_word_sequence: the text is not valid UTF-8 (at byte ",
                invalid, ")");
  std::vector<std::string> words;
  std::u32string word;
  for (const char32_t c : lower_case(utf8::decode(text))) {
    if (!separators.contains(c)) {
      word += c;
    } else if (!word.empty()) {
      words.push_back(utf8::encode(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(utf8::encode(word));
  return words;
}

// ------------------------------------------------------------------ JSON

// A JSON object written key by key in the order given (nlohmann's ordered_json finds keys by a
// linear search, too slow for a vocabulary of tens of thousands of words).
class JsonObjectText {
 public:
  void add(const std::string& key, const nlohmann::json& value) {
    text_ += text_.empty() ? "{" : ", ";
    text_ += nlohmann::json(key).dump() + ": " + value.dump();
  }
  std::string str() const { return text_.empty() ? "{}" : text_ + "}"; }

 private:
  std::string text_;
};

// A JSON object held in a string (as Keras stores the tokenizer's dictionaries), and its keys in
// the order written.
nlohmann::json parse_inner_object(const nlohmann::json& config, const char* name, std::vector<std::string>* keys) {
  const nlohmann::json& text = config.at(name);
  ATTNKIT_CHECK(text.is_string(), "Tokenizer::from_json: config.", name, " must be a string holding a JSON object");
  nlohmann::json object = nlohmann::json::parse(
      text.get<std::string>(), [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (keys != nullptr && depth == 1 && event == nlohmann::json::parse_event_t::key)
          keys->push_back(parsed.get<std::string>());
        return true;
      });
  ATTNKIT_CHECK(object.is_object(), "Tokenizer::from_json: config.", name, " does not hold a JSON object");
  return object;
}

}  // namespace

// ------------------------------------------------------------------ stopwords

std::set<std::string> read_stopwords(const std::string& path) {
  const std::string file = read_file(path);
  std::set<std::string> stopwords;
  std::size_t at = file.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  for (std::int64_t line = 1; at < file.size(); ++line) {
    std::size_t end = file.find('\n', at);
    if (end == std::string::npos) end = file.size();
    std::string word = file.substr(at, end - at);
    if (!word.empty() && word.back() == '\r') word.pop_back();
    ATTNKIT_CHECK(utf8::find_invalid(word) == std::string::npos, "'", path, "', line ", line, ": invalid UTF-8");
    if (!word.empty()) stopwords.insert(std::move(word));
    at = end + 1;
  }
  return stopwords;
}

std::string join_without_stopwords(const std::vector<std::string>& words, const std::set<std::string>& stopwords) {
  std::string joined;
  bool first = true;
  for (const std::string& word : words) {
    if (stopwords.count(word) != 0) continue;
    if (!first) joined += ' ';
    joined += word;
    first = false;
  }
  return joined;
}

// ------------------------------------------------------------------ Tokenizer

std::vector<std::string> text_to_word_sequence(const std::string& text, const std::string& filters) {
  return split_words(text, Separators(filters));
}

Tokenizer::Tokenizer(std::int64_t num_words, std::string filters)
    : num_words_(num_words), filters_(std::move(filters)) {
  ATTNKIT_CHECK(num_words >= 0, "Tokenizer: num_words must be 0 (keep all) or positive, got ", num_words);
  const Separators checked(filters_);  // filters that are not UTF-8 fail here rather than at the first text
}

void Tokenizer::fit_on_texts(const std::vector<std::string>& texts) {
  // Keras keeps its counts in order of first appearance and ranks them with a stable sort, so
  // fitting again starts from that order. The members change only once every text has been
  // read, so that a text that is not UTF-8 leaves the tokenizer as it was.
  std::vector<std::string> words;
  std::vector<std::int64_t> counts, document_counts, last_document;
  std::unordered_map<std::string, std::size_t> position;
  for (const std::int32_t index : first_seen_) {
    const std::size_t i = static_cast<std::size_t>(index - 1);
    position.emplace(words_[i], words.size());
    words.push_back(words_[i]);
    counts.push_back(counts_[i]);
    document_counts.push_back(document_counts_[i]);
    last_document.push_back(-1);
  }
  const Separators separators(filters_);
  std::int64_t document_count = document_count_;
  for (const std::string& text : texts) {
    const std::int64_t document = document_count++;
    for (std::string& word : split_words(text, separators)) {
      const auto [found, inserted] = position.try_emplace(word, words.size());
      const std::size_t p = found->second;
      if (inserted) {
        words.push_back(std::move(word));
        counts.push_back(0);
        document_counts.push_back(0);
        last_document.push_back(-1);
      }
      ++counts[p];
      if (last_document[p] != document) ++document_counts[p];
      last_document[p] = document;
    }
  }
  ATTNKIT_CHECK(words.size() < static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()),
                "Tokenizer: more words than i32 indices can number");

  std::vector<std::size_t> ranked(words.size());
  for (std::size_t p = 0; p < ranked.size(); ++p) ranked[p] = p;
  std::stable_sort(ranked.begin(), ranked.end(), [&](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
  document_count_ = document_count;
  words_.assign(ranked.size(), "");
  counts_.assign(ranked.size(), 0);
  document_counts_.assign(ranked.size(), 0);
  first_seen_.assign(ranked.size(), 0);
  index_.clear();
  for (std::size_t r = 0; r < ranked.size(); ++r) {
    const std::size_t p = ranked[r];
    const auto index = static_cast<std::int32_t>(r + 1);
    words_[r] = std::move(words[p]);
    counts_[r] = counts[p];
    document_counts_[r] = document_counts[p];
    first_seen_[p] = index;
    index_.emplace(words_[r], index);
  }
}

std::vector<std::vector<std::int32_t>> Tokenizer::texts_to_sequences(const std::vector<std::string>& texts) const {
  const Separators separators(filters_);
  std::vector<std::vector<std::int32_t>> sequences;
  sequences.reserve(texts.size());
  for (const std::string& text : texts) {
    std::vector<std::int32_t> sequence;
    for (const std::string& word : split_words(text, separators)) {
      const std::int32_t index = index_of(word);
      if (index != 0 && (num_words_ == 0 || index < num_words_)) sequence.push_back(index);
    }
    sequences.push_back(std::move(sequence));
  }
  return sequences;
}

std::int32_t Tokenizer::index_of(const std::string& word) const {
  const auto found = index_.find(word);
  return found == index_.end() ? 0 : found->second;
}

// Keras's tokenizer_to_json: the configuration, and each dictionary as a string of JSON.
std::string Tokenizer::to_json() const {
  JsonObjectText word_counts, word_docs, index_docs, index_word, word_index;
  for (const std::int32_t index : first_seen_) {
    const std::size_t i = static_cast<std::size_t>(index - 1);
    word_counts.add(words_[i], counts_[i]);
    word_docs.add(words_[i], document_counts_[i]);
  }
  for (std::size_t i = 0; i < words_.size(); ++i) {
    const std::string index = std::to_string(i + 1);
    index_docs.add(index, document_counts_[i]);
    index_word.add(index, words_[i]);
    word_index.add(words_[i], i + 1);
  }
  nlohmann::ordered_json config;
  config["num_words"] = num_words_ == 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(num_words_);
  config["filters"] = filters_;
  config["lower"] = true;
  config["split"] = " ";
  config["char_level"] = false;
  config["oov_token"] = nullptr;
  config["document_count"] = document_count_;
  config["word_counts"] = word_counts.str();
  config["word_docs"] = word_docs.str();
  config["index_docs"] = index_docs.str();
  config["index_word"] = index_word.str();
  config["word_index"] = word_index.str();
  return nlohmann::ordered_json{{"class_name", "Tokenizer"}, {"config", config}}.dump();
}

Tokenizer Tokenizer::from_json(const std::string& json) {
  try {
    const nlohmann::json tokenizer = nlohmann::json::parse(json);
    ATTNKIT_CHECK(tokenizer.is_object() && tokenizer.value("class_name", "") == "Tokenizer" &&
                      tokenizer.contains("config"),
                  "Tokenizer::from_json: not a tokenizer (expected {\"class_name\": \"Tokenizer\", \"config\": ...})");
    const nlohmann::json& config = tokenizer.at("config");
    ATTNKIT_CHECK(config.value("lower", true) && config.value("split", " ") == " " &&
                      !config.value("char_level", false) && config.value("oov_token", nlohmann::json()).is_null(),
                  "Tokenizer::from_json: attnkit's Tokenizer reads only lower=true, split=' ', char_level=false "
                  "and no oov_token");
    const nlohmann::json& num_words = config.at("num_words");
    Tokenizer result(num_words.is_null() ? 0 : detail::json_integer(num_words, "Tokenizer::from_json: num_words"),
                     config.at("filters").get<std::string>());
    result.document_count_ = detail::json_integer(config.at("document_count"), "Tokenizer::from_json: document_count");

    std::vector<std::string> seen;
    const nlohmann::json word_counts = parse_inner_object(config, "word_counts", &seen);
    const nlohmann::json word_docs = parse_inner_object(config, "word_docs", nullptr);
    const nlohmann::json word_index = parse_inner_object(config, "word_index", nullptr);
    const std::size_t n = word_index.size();
    ATTNKIT_CHECK(seen.size() == n && word_counts.size() == n, "Tokenizer::from_json: word_index has ", n,
                  " words, word_counts ", seen.size());
    result.words_.assign(n, "");
    result.counts_.assign(n, 0);
    result.document_counts_.assign(n, 0);
    std::vector<bool> assigned(n, false);
    for (const auto& [word, index_json] : word_index.items()) {
      const std::int64_t index = detail::json_integer(index_json, "Tokenizer::from_json: a word's index");
      ATTNKIT_CHECK(index >= 1 && index <= static_cast<std::int64_t>(n) && !assigned[index - 1],
                    "Tokenizer::from_json: the index ", index, " of '", word, "' is repeated or outside [1, ", n, "]");
      ATTNKIT_CHECK(word_counts.contains(word), "Tokenizer::from_json: '", word, "' has an index but no count");
      const std::size_t i = static_cast<std::size_t>(index - 1);
      assigned[i] = true;
      result.words_[i] = word;
      result.counts_[i] = detail::json_integer(word_counts.at(word), "Tokenizer::from_json: a word's count");
      result.document_counts_[i] =
          word_docs.contains(word) ? detail::json_integer(word_docs.at(word), "Tokenizer::from_json: a word's docs") : 0;
      result.index_.emplace(word, static_cast<std::int32_t>(index));
    }
    for (const std::string& word : seen) result.first_seen_.push_back(result.index_.at(word));
    return result;
  } catch (const nlohmann::json::exception& e) {
    ATTNKIT_FAIL("Tokenizer::from_json: ", e.what());
  }
}

// ------------------------------------------------------------------ padding, split, labels

Tensor pad_sequences(const std::vector<std::vector<std::int32_t>>& sequences, std::int64_t maxlen,
                     const std::string& padding, const std::string& truncating, std::int32_t value) {
  ATTNKIT_CHECK(maxlen >= 1, "pad_sequences: maxlen must be positive, got ", maxlen);
  ATTNKIT_CHECK(padding == "pre" || padding == "post", "pad_sequences: padding must be \"pre\" or \"post\", got \"",
                padding, "\"");
  ATTNKIT_CHECK(truncating == "pre" || truncating == "post",
                "pad_sequences: truncating must be \"pre\" or \"post\", got \"", truncating, "\"");
  const auto rows = static_cast<std::int64_t>(sequences.size());
  Tensor padded = Tensor::empty({rows, maxlen}, DType::i32);
  std::int32_t* out = padded.data<std::int32_t>();  // [rows, maxlen]
  std::fill(out, out + rows * maxlen, value);
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::vector<std::int32_t>& sequence = sequences[static_cast<std::size_t>(r)];
    const std::int64_t kept = std::min<std::int64_t>(maxlen, static_cast<std::int64_t>(sequence.size()));
    const std::int32_t* from = sequence.data() + (truncating == "pre" ? sequence.size() - kept : 0);
    std::int32_t* to = out + r * maxlen + (padding == "pre" ? maxlen - kept : 0);
    std::copy(from, from + kept, to);
  }
  return padded;
}

namespace {

// numpy's legacy RandomState(seed): MT19937 seeded by init_genrand, as std::mt19937 is.
class NumpyRandomState {
 public:
  explicit NumpyRandomState(std::uint32_t seed) : engine_(seed) {}

  // RandomState's bounded integer in [0, max]: masked 32-bit draws, rejected above max.
  std::size_t interval(std::size_t max) {
    if (max == 0) return 0;
    std::uint32_t mask = static_cast<std::uint32_t>(max);
    for (int shift = 1; shift <= 16; shift *= 2) mask |= mask >> shift;
    std::uint32_t value = 0;
    do value = static_cast<std::uint32_t>(engine_()) & mask;
    while (value > max);
    return value;
  }
  // RandomState.shuffle: Fisher-Yates from the end.
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (std::size_t i = values.size(); i-- > 1;) std::swap(values[i], values[interval(i)]);
  }
  // RandomState.permutation(n).
  std::vector<std::size_t> permutation(std::size_t n) {
    std::vector<std::size_t> values(n);
    std::iota(values.begin(), values.end(), std::size_t{0});
    shuffle(values);
    return values;
  }

 private:
  std::mt19937 engine_;
};

// scikit-learn's _approximate_mode: each class's share of `draws` floored, the rest given to the
// largest remainders, ties broken by the generator.
std::vector<std::int64_t> approximate_mode(const std::vector<std::int64_t>& class_counts, std::int64_t draws,
                                           NumpyRandomState& random) {
  const double total = static_cast<double>(std::accumulate(class_counts.begin(), class_counts.end(), std::int64_t{0}));
  std::vector<double> remainder(class_counts.size());
  std::vector<std::int64_t> floored(class_counts.size());
  std::int64_t floored_sum = 0;
  for (std::size_t c = 0; c < class_counts.size(); ++c) {
    const double continuous = static_cast<double>(class_counts[c]) / total * static_cast<double>(draws);
    floored[c] = static_cast<std::int64_t>(std::floor(continuous));
    remainder[c] = continuous - std::floor(continuous);
    floored_sum += floored[c];
  }
  std::int64_t need_to_add = draws - floored_sum;
  std::vector<double> values = remainder;
  std::sort(values.begin(), values.end(), std::greater<>());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  for (std::size_t v = 0; v < values.size() && need_to_add > 0; ++v) {
    std::vector<std::size_t> tied;
    for (std::size_t c = 0; c < remainder.size(); ++c)
      if (remainder[c] == values[v]) tied.push_back(c);
    const std::size_t add_now = std::min(tied.size(), static_cast<std::size_t>(need_to_add));
    const std::vector<std::size_t> chosen = random.permutation(tied.size());  // RandomState.choice
    for (std::size_t k = 0; k < add_now; ++k) ++floored[tied[chosen[k]]];
    need_to_add -= static_cast<std::int64_t>(add_now);
  }
  return floored;
}

}  // namespace

Split stratified_split(const std::vector<int>& labels, double test_fraction, std::uint64_t seed) {
  ATTNKIT_CHECK(test_fraction > 0.0 && test_fraction < 1.0,
                "stratified_split: test_fraction must lie strictly between 0 and 1, got ", test_fraction);
  ATTNKIT_CHECK(seed <= std::numeric_limits<std::uint32_t>::max(),
                "stratified_split: the seed must fit in 32 bits (numpy's RandomState), got ", seed);
  const auto samples = static_cast<std::int64_t>(labels.size());
  const auto test_count = static_cast<std::int64_t>(std::ceil(test_fraction * static_cast<double>(samples)));
  const std::int64_t train_count = samples - test_count;

  std::map<int, std::vector<std::int64_t>> by_class;  // classes ascending, members in data order
  for (std::size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<std::int64_t>(i));
  std::vector<std::int64_t> class_counts;
  for (const auto& [label, members] : by_class) {
    ATTNKIT_CHECK(members.size() >= 2, "stratified_split: class ", label, " has ", members.size(),
                  " sample; each class needs at least 2");
    class_counts.push_back(static_cast<std::int64_t>(members.size()));
  }
  const auto classes = static_cast<std::int64_t>(class_counts.size());
  ATTNKIT_CHECK(train_count >= classes && test_count >= classes, "stratified_split: ", train_count,
                " training and ", test_count, " test samples cannot hold each of the ", classes, " classes");

  NumpyRandomState random(static_cast<std::uint32_t>(seed));
  const std::vector<std::int64_t> train_per_class = approximate_mode(class_counts, train_count, random);
  std::vector<std::int64_t> remaining(class_counts.size());
  for (std::size_t c = 0; c < class_counts.size(); ++c) remaining[c] = class_counts[c] - train_per_class[c];
  const std::vector<std::int64_t> test_per_class = approximate_mode(remaining, test_count, random);

  Split split;
  std::size_t c = 0;
  for (const auto& [label, members] : by_class) {
    const std::vector<std::size_t> order = random.permutation(members.size());
    const auto train_end = static_cast<std::size_t>(train_per_class[c]);
    const auto test_end = train_end + static_cast<std::size_t>(test_per_class[c]);
    for (std::size_t k = 0; k < train_end; ++k) split.train.push_back(members[order[k]]);
    for (std::size_t k = train_end; k < test_end; ++k) split.test.push_back(members[order[k]]);
    ++c;
  }
  random.shuffle(split.train);
  random.shuffle(split.test);
  return split;
}

Tensor take(const Tensor& x, const std::vector<std::int64_t>& indices) {
  ATTNKIT_CHECK(x.dim() >= 1, "take: x must have at least one axis, got ", x.describe());
  const Tensor host = x.to(Device::cpu());
  Shape shape = x.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor rows = Tensor::empty(shape, x.dtype());
  const std::size_t row_bytes = x.size(0) == 0 ? 0 : x.nbytes() / static_cast<std::size_t>(x.size(0));
  const char* from = static_cast<const char*>(host.raw_data());
  char* to = static_cast<char*>(rows.raw_data());
  for (std::size_t r = 0; r < indices.size(); ++r) {
    const std::int64_t index = indices[r];
    ATTNKIT_CHECK(index >= 0 && index < x.size(0), "take: index ", index, " (at position ", r, ") is outside [0, ",
                  x.size(0), ") for ", x.describe());
    std::memcpy(to + r * row_bytes, from + static_cast<std::size_t>(index) * row_bytes, row_bytes);
  }
  return rows.to(x.device());
}

Tensor one_hot(const std::vector<int>& labels, int classes) {
  ATTNKIT_CHECK(classes >= 1, "one_hot: classes must be at least 1, got ", classes);
  const auto rows = static_cast<std::int64_t>(labels.size());
  Tensor encoded = Tensor::zeros({rows, classes}, DType::f32);
  float* out = encoded.data<float>();  // [rows, classes]
  for (std::int64_t r = 0; r < rows; ++r) {
    const int label = labels[static_cast<std::size_t>(r)];
    ATTNKIT_CHECK(label >= 0 && label < classes, "one_hot: label ", label, " (at position ", r, ") is outside [0, ",
                  classes, ")");
    out[r * classes + label] = 1.0f;
  }
  return encoded;
}

}  // namespace attnkit::data
