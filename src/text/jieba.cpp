// Chinese word segmentation with the same output as jieba 0.42.1's jieba.lcut(text, HMM=...),
// from the dictionary (dict.txt) and HMM tables (finalseg/prob_*.py) that jieba ships.
//
// The text is split into blocks of "word" characters (CJK U+4E00..U+9FD5, ASCII letters and
// digits, + # & . _ % -) and the rest. Within a word block each position's candidate words come
// from a prefix trie of the dictionary, and the route of maximum summed log(freq) - log(total) is
// found right to left. With the HMM on, runs of single-character words that do not form a
// dictionary word are re-cut by a B/M/E/S Viterbi decoder (CJK) and a letters-digits-decimal
// pattern (the rest); with it off, runs of single ASCII letters and digits are joined. Ties and
// floating-point sums follow jieba's Python expressions term for term, so equal scores break the
// same way.
#include "attnkit/jieba.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <utility>

#include "attnkit/error.h"
#include "attnkit/utf8.h"

namespace attnkit::jieba {
namespace {

constexpr char32_t kFirstHan = 0x4E00, kLastHan = 0x9FD5;
// finalseg's MIN_FLOAT: the log probability of an emission or transition missing from the tables.
constexpr double kMinFloat = -3.14e100;

// The HMM states, numbered in the order of their letters: jieba breaks ties between equal
// probabilities by the larger letter, which is then the larger number.
enum State : int { B = 0, E = 1, M = 2, S = 3 };
constexpr int kStates = 4;
constexpr char kStateLetters[] = "BEMS";
// finalseg's PrevStatus: the states that may precede each state.
constexpr std::array<std::array<int, 2>, kStates> kPrevious = {{{E, S}, {B, M}, {M, B}, {S, E}}};

bool is_han(char32_t c) { return c >= kFirstHan && c <= kLastHan; }
bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_ascii_alnum(char32_t c) {
  return is_ascii_digit(c) || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
}
// The character class of jieba's re_han_default.
bool is_word_char(char32_t c) {
  switch (c) {
    case U'+': case U'#': case U'&': case U'.': case U'_': case U'%': case U'-': return true;
    default: return is_han(c) || is_ascii_alnum(c);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ATTNKIT_CHECK(in, "jieba: cannot read '", path, "': ", std::strerror(errno));
  std::ostringstream contents;
  contents << in.rdbuf();
  ATTNKIT_CHECK(!in.bad(), "jieba: error while reading '", path, "'");
  return contents.str();
}

// The dictionary's prefixes as a trie. The edges (parent, character) -> child live in one
// open-addressing hash table, so walking the candidate words from a position costs one probe per
// character and builds no substrings.
class PrefixTrie {
 public:
  static constexpr std::uint32_t kRoot = 0;
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  PrefixTrie() : frequency_(1, 0) { rehash(1u << 16); }

  std::uint32_t child(std::uint32_t node, char32_t c) const {
    const std::uint64_t key = edge_key(node, c);
    for (std::size_t slot = slot_of(key);; slot = (slot + 1) & mask_) {
      if (keys_[slot] == key) return children_[slot];
      if (keys_[slot] == kEmptyKey) return kNone;
    }
  }

  std::uint32_t child_or_new(std::uint32_t node, char32_t c) {
    const std::uint64_t key = edge_key(node, c);
    std::size_t slot = slot_of(key);
    for (; keys_[slot] != kEmptyKey; slot = (slot + 1) & mask_)
      if (keys_[slot] == key) return children_[slot];
    const auto added = static_cast<std::uint32_t>(frequency_.size());
    ATTNKIT_CHECK(added != kNone, "jieba: the dictionary has too many prefixes");
    keys_[slot] = key;
    children_[slot] = added;
    frequency_.push_back(0);
    if (2 * (frequency_.size() - 1) > keys_.size()) rehash(2 * keys_.size());  // load <= 1/2
    return added;
  }

  std::uint64_t& frequency(std::uint32_t node) { return frequency_[node]; }
  const std::vector<std::uint64_t>& frequencies() const { return frequency_; }

 private:
  // Edge keys are below 2^53 (a 32-bit node, a 21-bit code point), so all ones marks a free slot.
  static constexpr std::uint64_t kEmptyKey = std::numeric_limits<std::uint64_t>::max();

  static std::uint64_t edge_key(std::uint32_t node, char32_t c) {
    return (std::uint64_t{node} << 21) | c;
  }
  std::size_t slot_of(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }

  void rehash(std::size_t capacity) {
    const auto old_keys = std::exchange(keys_, std::vector<std::uint64_t>(capacity, kEmptyKey));
    const auto old_children = std::exchange(children_, std::vector<std::uint32_t>(capacity));
    mask_ = capacity - 1;
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    for (std::size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] == kEmptyKey) continue;
      std::size_t slot = slot_of(old_keys[i]);
      while (keys_[slot] != kEmptyKey) slot = (slot + 1) & mask_;
      keys_[slot] = old_keys[i];
      children_[slot] = old_children[i];
    }
  }

  std::vector<std::uint64_t> keys_;
  std::vector<std::uint32_t> children_;
  std::vector<std::uint64_t> frequency_;  // by node; 0 for a prefix that is not itself a word
  std::size_t mask_ = 0;
  int shift_ = 64;
};

// Reads dict.txt as jieba's gen_pfdict does: lines split at '\n', ASCII whitespace stripped,
// "word freq [tag]"; a repeated word keeps its last frequency but every line counts in the total.
void load_dictionary(const std::string& path, PrefixTrie& trie, std::uint64_t& total) {
  const std::string contents = read_file(path);
  std::size_t line_begin = 0;
  for (int line_number = 1; line_begin < contents.size(); ++line_number) {
    std::size_t line_end = contents.find('\n', line_begin);
    if (line_end == std::string::npos) line_end = contents.size();
    const std::string raw = contents.substr(line_begin, line_end - line_begin);
    line_begin = line_end + 1;

    constexpr const char* kAsciiWhitespace = " \t\n\r\v\f";  // what bytes.strip() removes
    const std::size_t first = raw.find_first_not_of(kAsciiWhitespace);
    const std::string line = first == std::string::npos
                                 ? std::string()
                                 : raw.substr(first, raw.find_last_not_of(kAsciiWhitespace) + 1 - first);
    const auto where = [&] { return detail::concat("jieba: ", path, " line ", line_number, ": "); };
    ATTNKIT_CHECK(utf8::find_invalid(line) == std::string::npos, where(), "invalid UTF-8");
    const std::size_t word_end = line.find(' ');
    ATTNKIT_CHECK(word_end != std::string::npos, where(),
                  "expected 'word frequency [tag]', got '", line, "'");
    const std::size_t frequency_end = std::min(line.find(' ', word_end + 1), line.size());
    const std::string frequency_text = line.substr(word_end + 1, frequency_end - word_end - 1);
    std::uint64_t frequency = 0;
    const char* const text_end = frequency_text.data() + frequency_text.size();
    const auto [parsed_end, error] = std::from_chars(frequency_text.data(), text_end, frequency);
    ATTNKIT_CHECK(error == std::errc() && parsed_end == text_end && !frequency_text.empty(), where(),
                  "the frequency '", frequency_text, "' is not a non-negative 64-bit integer");
    ATTNKIT_CHECK(total <= std::numeric_limits<std::uint64_t>::max() - frequency, where(),
                  "the total frequency overflows 64 bits");

    std::uint32_t node = PrefixTrie::kRoot;
    for (const char32_t c : utf8::decode(line.substr(0, word_end))) node = trie.child_or_new(node, c);
    trie.frequency(node) = frequency;
    total += frequency;
  }
  ATTNKIT_CHECK(total > 0, "jieba: ", path, " has no word with a positive frequency");
}

// The tables of finalseg/prob_*.py are Python dict literals, "P={'B': {'\u4e00': -3.65, ...}, ...}",
// possibly after import lines. This reads the literal after the first '=' and reports each number
// with the keys that lead to it.
class DictLiteralReader {
 public:
  // Takes each number with its keys; returns what is wrong with the entry, or "" when nothing.
  using Visitor = std::function<std::string(const std::vector<std::u32string>& keys, double value)>;

  DictLiteralReader(std::string path, std::string text)
      : path_(std::move(path)), text_(std::move(text)) {}

  void read(const Visitor& visit) {
    at_ = text_.find('=');
    if (at_ == std::string::npos) fail("no 'P=' assignment");
    ++at_;
    std::vector<std::u32string> keys;
    read_dict(keys, visit);
    skip_space();
    if (at_ != text_.size()) fail("unexpected text after the dict");
  }

 private:
  // Names the file and the line of the current position.
  [[noreturn]] void fail(const std::string& problem) const {
    const auto end = text_.begin() + static_cast<std::ptrdiff_t>(std::min(at_, text_.size()));
    const auto line = 1 + std::count(text_.begin(), end, '\n');
    ATTNKIT_FAIL("jieba: ", path_, " line ", line, ": ", problem);
  }

  void skip_space() {
    // ' ' or \t \n \v \f \r; not std::isspace, whose locale could take a UTF-8 byte for a space.
    const auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    while (at_ < text_.size() && is_space(text_[at_])) ++at_;
  }
  void expect(char c) {
    skip_space();
    if (at_ >= text_.size() || text_[at_] != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  bool next_is(char c) {
    skip_space();
    return at_ < text_.size() && text_[at_] == c;
  }

  void read_dict(std::vector<std::u32string>& keys, const Visitor& visit) {
    expect('{');
    while (!next_is('}')) {
      keys.push_back(read_string());
      expect(':');
      if (next_is('{')) {
        read_dict(keys, visit);
      } else {
        const std::string problem = visit(keys, read_number());
        if (!problem.empty()) fail(problem);
      }
      keys.pop_back();
      if (!next_is(',')) break;
      ++at_;
    }
    expect('}');
  }

  std::u32string read_string() {
    skip_space();
    if (at_ >= text_.size() || (text_[at_] != '\'' && text_[at_] != '"')) fail("expected a quoted key");
    const char quote = text_[at_++];
    std::string utf8_text;
    while (true) {
      if (at_ >= text_.size() || text_[at_] == '\n') fail("unterminated string");
      const char c = text_[at_++];
      if (c == quote) break;
      if (c != '\\') {
        utf8_text.push_back(c);
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated string");
      const char escape = text_[at_++];
      const int hex_digits = escape == 'u' ? 4 : escape == 'U' ? 8 : escape == 'x' ? 2 : 0;
      if (hex_digits == 0) {
        if (escape != '\\' && escape != '\'' && escape != '"')
          fail(std::string("unsupported escape '\\") + escape + "'");
        utf8_text.push_back(escape);
        continue;
      }
      const std::string digits = text_.substr(at_, static_cast<std::size_t>(hex_digits));
      if (digits.size() != static_cast<std::size_t>(hex_digits) ||
          digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        fail("malformed \\" + std::string(1, escape) + " escape");
      at_ += digits.size();
      const unsigned long code_point = std::stoul(digits, nullptr, 16);
      if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF))
        fail("escape \\" + std::string(1, escape) + digits + " is not a Unicode scalar value");
      utf8_text += utf8::encode(static_cast<char32_t>(code_point));
    }
    if (utf8::find_invalid(utf8_text) != std::string::npos) fail("invalid UTF-8 in a key");
    return utf8::decode(utf8_text);
  }

  double read_number() {
    skip_space();
    double value = 0;
    // from_chars rounds correctly, as Python's float literals do, so the tables are bit-identical.
    const auto [end, error] = std::from_chars(text_.data() + at_, text_.data() + text_.size(), value);
    if (error != std::errc()) fail("expected a number");
    at_ = static_cast<std::size_t>(end - text_.data());
    return value;
  }

  std::string path_;
  std::string text_;
  std::size_t at_ = 0;
};

// The state a table key names, or -1.
int state_of(const std::u32string& key) {
  for (int s = 0; s < kStates; ++s)
    if (key.size() == 1 && key[0] == static_cast<char32_t>(kStateLetters[s])) return s;
  return -1;
}

void read_table(const std::string& path, const DictLiteralReader::Visitor& visit) {
  DictLiteralReader(path, read_file(path)).read(visit);
}

// Everything the segmenter reads from jieba's files, in the form the cutting uses.
struct Model {
  PrefixTrie trie;
  // log(freq or 1) - log(total) by node: jieba's per-word term of a route's score.
  std::vector<double> word_score;
  double unknown_char_score = 0;  // the same term for a character that is no word

  std::array<double, kStates> start{};
  std::array<std::array<double, kStates>, kStates> transition{};  // [from][to]
  // Emission log probabilities by CJK character (the Viterbi decoder sees no other).
  std::vector<std::array<double, kStates>> emission;

  std::uint64_t frequency_of(const char32_t* chars, std::size_t length) const {
    std::uint32_t node = PrefixTrie::kRoot;
    for (std::size_t i = 0; i < length && node != PrefixTrie::kNone; ++i)
      node = trie.child(node, chars[i]);
    return node == PrefixTrie::kNone ? 0 : trie.frequencies()[node];
  }
};

void load_hmm_tables(const std::string& finalseg_directory, Model& model) {
  const std::string start_path = finalseg_directory + "/prob_start.py";
  std::array<bool, kStates> has_start{};
  read_table(start_path, [&](const std::vector<std::u32string>& keys, double value) -> std::string {
    const int s = keys.size() == 1 ? state_of(keys[0]) : -1;
    if (s < 0) return "expected {state: log probability} with states B, E, M, S";
    model.start[s] = value;
    has_start[s] = true;
    return "";
  });
  for (int s = 0; s < kStates; ++s)
    ATTNKIT_CHECK(has_start[s], "jieba: ", start_path, ": no start probability for state ",
                  kStateLetters[s]);

  // jieba looks transitions up with MIN_FLOAT as the default, though its table has all it uses.
  for (auto& row : model.transition) row.fill(kMinFloat);
  read_table(finalseg_directory + "/prob_trans.py",
             [&](const std::vector<std::u32string>& keys, double value) -> std::string {
               const int from = keys.size() == 2 ? state_of(keys[0]) : -1;
               const int to = keys.size() == 2 ? state_of(keys[1]) : -1;
               if (from < 0 || to < 0)
                 return "expected {state: {state: log probability}} with states B, E, M, S";
               model.transition[from][to] = value;
               return "";
             });

  std::array<double, kStates> unseen;
  unseen.fill(kMinFloat);
  model.emission.assign(kLastHan - kFirstHan + 1, unseen);
  read_table(finalseg_directory + "/prob_emit.py",
             [&](const std::vector<std::u32string>& keys, double value) -> std::string {
               const int s = keys.size() == 2 && keys[1].size() == 1 ? state_of(keys[0]) : -1;
               if (s < 0) return "expected {state: {character: log probability}} with states B, E, M, S";
               // The decoder only sees CJK characters: entries for others (the table has one)
               // never apply.
               if (is_han(keys[1][0])) model.emission[keys[1][0] - kFirstHan][s] = value;
               return "";
             });
}

Model load_model(const std::string& directory) {
  Model model;
  std::uint64_t total = 0;
  load_dictionary(directory + "/dict.txt", model.trie, total);
  // Python's math.log of an int converts it to the nearest double first, as here.
  const double log_total = std::log(static_cast<double>(total));
  model.word_score.reserve(model.trie.frequencies().size());
  for (const std::uint64_t frequency : model.trie.frequencies())
    model.word_score.push_back(std::log(static_cast<double>(frequency > 0 ? frequency : 1)) - log_total);
  model.unknown_char_score = std::log(1.0) - log_total;
  load_hmm_tables(directory + "/finalseg", model);
  return model;
}

// The work of one cut() call. Every word jieba yields is a slice of its input, so words are
// copied out of the UTF-8 text by code-point offsets rather than re-encoded.
class Cutter {
 public:
  Cutter(const Model& model, const std::string& text)
      : model_(model), text_(text), chars_(utf8::decode(text)) {
    byte_offset_.reserve(chars_.size() + 1);
    std::size_t offset = 0;
    for (const char32_t c : chars_) {
      byte_offset_.push_back(offset);
      offset += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    byte_offset_.push_back(offset);
  }

  std::vector<std::string> run(bool hmm) {
    const std::size_t n = chars_.size();
    for (std::size_t begin = 0; begin < n;) {
      const bool word_block = is_word_char(chars_[begin]);
      std::size_t end = begin + 1;
      while (end < n && is_word_char(chars_[end]) == word_block) ++end;
      if (word_block) {
        cut_word_block(begin, end, hmm);
      } else {
        cut_other_block(begin, end);
      }
      begin = end;
    }
    return std::move(words_);
  }

 private:
  void emit(std::size_t begin, std::size_t end) {
    words_.emplace_back(text_, byte_offset_[begin], byte_offset_[end] - byte_offset_[begin]);
  }

  // jieba splits the rest at "\r\n" and single whitespace characters, yields those, and yields
  // everything else one character at a time: together, each character alone except "\r\n".
  void cut_other_block(std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end;) {
      const std::size_t length = chars_[i] == U'\r' && i + 1 < end && chars_[i + 1] == U'\n' ? 2 : 1;
      emit(i, i + length);
      i += length;
    }
  }

  // Fills route_end_[i] (the last character of the word starting at i) on the route of maximum
  // score, computed right to left as jieba's calc does; on equal scores the longer word wins.
  void find_route(std::size_t begin, std::size_t end) {
    route_score_.assign(end - begin + 1, 0.0);
    route_end_.assign(end - begin, 0);
    for (std::size_t i = end; i-- > begin;) {
      double best_score = -std::numeric_limits<double>::infinity();
      std::size_t best_end = end;
      std::uint32_t node = model_.trie.child(PrefixTrie::kRoot, chars_[i]);
      for (std::size_t j = i; node != PrefixTrie::kNone;) {
        if (model_.trie.frequencies()[node] > 0) {
          const double score = model_.word_score[node] + route_score_[j + 1 - begin];
          if (best_end == end || score >= best_score) {
            best_score = score;
            best_end = j;
          }
        }
        if (++j == end) break;
        node = model_.trie.child(node, chars_[j]);
      }
      if (best_end == end) {  // no dictionary word starts here: the character alone
        best_score = model_.unknown_char_score + route_score_[i + 1 - begin];
        best_end = i;
      }
      route_score_[i - begin] = best_score;
      route_end_[i - begin] = best_end;
    }
  }

  void cut_word_block(std::size_t begin, std::size_t end, bool hmm) {
    find_route(begin, end);
    // Single-character words gather in [pending, i) until a longer word (or the end) comes.
    std::size_t pending = begin;
    for (std::size_t i = begin; i < end;) {
      const std::size_t next = route_end_[i - begin] + 1;
      const bool gathers = hmm ? next - i == 1 : next - i == 1 && is_ascii_alnum(chars_[i]);
      if (!gathers) {
        flush_single_chars(pending, i, hmm);
        emit(i, next);
        pending = next;
      }
      i = next;
    }
    flush_single_chars(pending, end, hmm);
  }

  // Without the HMM a run of single ASCII letters and digits is one word. With it, a run that is
  // not itself a dictionary word goes to finalseg; one that is stays single characters.
  void flush_single_chars(std::size_t begin, std::size_t end, bool hmm) {
    if (end - begin == 0) return;
    if (!hmm || end - begin == 1) {
      emit(begin, end);
    } else if (model_.frequency_of(chars_.data() + begin, end - begin) > 0) {
      for (std::size_t i = begin; i < end; ++i) emit(i, i + 1);
    } else {
      cut_unknown(begin, end);
    }
  }

  // finalseg.cut: CJK runs go to the Viterbi decoder; between them, runs of letters and digits
  // (with an optional ".digits" and "%") are words and the text between those is yielded whole.
  void cut_unknown(std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end;) {
      const bool han = is_han(chars_[i]);
      std::size_t run_end = i + 1;
      while (run_end < end && is_han(chars_[run_end]) == han) ++run_end;
      if (han) {
        decode_hmm(i, run_end);
      } else {
        cut_alnum_pieces(i, run_end);
      }
      i = run_end;
    }
  }

  void cut_alnum_pieces(std::size_t begin, std::size_t end) {
    std::size_t i = begin;
    while (i < end) {
      std::size_t match = i;
      while (match < end && !is_ascii_alnum(chars_[match])) ++match;
      if (match > i) emit(i, match);
      if (match == end) break;
      std::size_t match_end = match;
      while (match_end < end && is_ascii_alnum(chars_[match_end])) ++match_end;
      if (match_end + 1 < end && chars_[match_end] == U'.' && is_ascii_digit(chars_[match_end + 1])) {
        match_end += 2;
        while (match_end < end && is_ascii_digit(chars_[match_end])) ++match_end;
      }
      if (match_end < end && chars_[match_end] == U'%') ++match_end;
      emit(match, match_end);
      i = match_end;
    }
  }

  // finalseg's viterbi over B/M/E/S, then its reading of the state path into words.
  void decode_hmm(std::size_t begin, std::size_t end) {
    const std::size_t n = end - begin;
    const auto emission = [&](std::size_t i) -> const std::array<double, kStates>& {
      return model_.emission[chars_[begin + i] - kFirstHan];
    };
    std::array<double, kStates> score{};
    for (int s = 0; s < kStates; ++s) score[s] = model_.start[s] + emission(0)[s];
    previous_state_.assign(n * kStates, 0);
    for (std::size_t t = 1; t < n; ++t) {
      std::array<double, kStates> next{};
      for (int s = 0; s < kStates; ++s) {
        const double emit_score = emission(t)[s];
        // jieba takes the max of (probability, state) tuples: equal probabilities go to the
        // larger state letter.
        int best_state = -1;
        double best = 0;
        for (const int from : kPrevious[s]) {
          const double candidate = score[from] + model_.transition[from][s] + emit_score;
          if (best_state < 0 || candidate > best || (candidate == best && from > best_state)) {
            best = candidate;
            best_state = from;
          }
        }
        next[s] = best;
        previous_state_[t * kStates + s] = static_cast<std::uint8_t>(best_state);
      }
      score = next;
    }
    int state = score[S] >= score[E] ? S : E;  // the path must end a word; a tie goes to S
    states_.resize(n);
    for (std::size_t t = n; t-- > 0;) {
      states_[t] = static_cast<std::uint8_t>(state);
      state = previous_state_[t * kStates + state];
    }

    std::size_t word_begin = 0, next_unemitted = 0;
    for (std::size_t t = 0; t < n; ++t) {
      if (states_[t] == B) {
        word_begin = t;
      } else if (states_[t] == E) {
        emit(begin + word_begin, begin + t + 1);
        next_unemitted = t + 1;
      } else if (states_[t] == S) {
        emit(begin + t, begin + t + 1);
        next_unemitted = t + 1;
      }
    }
    if (next_unemitted < n) emit(begin + next_unemitted, end);
  }

  const Model& model_;
  const std::string& text_;
  std::u32string chars_;
  std::vector<std::size_t> byte_offset_;  // of each character, and the text's size at the end
  std::vector<std::string> words_;
  // Scratch reused across blocks.
  std::vector<double> route_score_;
  std::vector<std::size_t> route_end_;
  std::vector<std::uint8_t> previous_state_;
  std::vector<std::uint8_t> states_;
};

}  // namespace

struct Segmenter::Tables {
  Model model;
};

std::string default_directory() {
  const char* configured = std::getenv("ATTNKIT_JIEBA_DIR");
  return configured != nullptr && *configured != '\0' ? configured
                                                      : "/usr/lib/python3/dist-packages/jieba";
}

Segmenter::Segmenter(const std::string& directory)
    : tables_(std::make_unique<Tables>(Tables{load_model(directory)})) {}

Segmenter::~Segmenter() = default;
Segmenter::Segmenter(Segmenter&&) noexcept = default;
Segmenter& Segmenter::operator=(Segmenter&&) noexcept = default;

std::vector<std::string> Segmenter::cut(const std::string& text, bool hmm) const {
  const std::size_t invalid_at = utf8::find_invalid(text);
  ATTNKIT_CHECK(invalid_at == std::string::npos, "jieba: the text is not valid UTF-8 (at byte ",
                invalid_at, ")");
  return Cutter(tables_->model, text).run(hmm);
}

}  // namespace attnkit::jieba
