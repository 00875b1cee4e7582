// attnkit/data.h: from a CSV of labelled reviews to the tensors a model trains on, with the
// preprocessing of the Keras blog post (MODELS.md): stopwords, Keras's Tokenizer, pad_sequences,
// a stratified split and one-hot labels.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "attnkit/tensor.h"

namespace attnkit::data {

// ---------------------------------------------------------------- CSV (RFC 4180)

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::int64_t> row_lines;  // the (1-based) line where each row starts
};

// Reads a CSV file: fields separated by commas; a field may be quoted with double quotes, and
// then hold commas, line breaks and doubled quotes (""); lines end in LF or CRLF; a UTF-8 byte
// order mark at the start is skipped; the first row is the header; the line end after the last
// row is optional. A blank line (nothing between two line ends) is skipped when the header has
// several columns, as pandas.read_csv does, and is otherwise a row of one empty field. Every
// field must be valid UTF-8. Errors (attnkit::Error) name the file and line: an unterminated quote, a row with
// more or fewer fields than the header, text after a closing quote, invalid UTF-8, a carriage
// return outside quotes without its line feed, an empty file.
CsvTable read_csv(const std::string& path);
// The same from the bytes of a CSV; errors name it `name`.
CsvTable parse_csv(const std::string& text, const std::string& name);
// The index of the column called `name` (lower case; the header's names are compared in lower
// case, ASCII letters only); an error, naming `path` and the columns, when there is none or more
// than one.
std::size_t column_of(const CsvTable& table, const std::string& path, const std::string& name);

// ---------------------------------------------------------------- labelled reviews

struct LabelledTexts {
  std::vector<int> labels;
  std::vector<std::string> texts;
};

// The columns `label` and `review` of a CSV (in any order, names matched without regard to the
// case of ASCII letters; other columns are ignored). Labels must be integers in [0, classes); an
// error names the line and the value.
LabelledTexts read_labelled_csv(const std::string& path, int classes = 2);

// ---------------------------------------------------------------- stopwords

// One word per line (LF or CRLF); blank lines are skipped. Words are kept as written, spaces
// included, as the blog's pandas.read_csv(sep="\t", quoting=3) reads them.
std::set<std::string> read_stopwords(const std::string& path);
// The words not in `stopwords`, joined with single spaces (the blog's txt_cut).
std::string join_without_stopwords(const std::vector<std::string>& words, const std::set<std::string>& stopwords);

// ---------------------------------------------------------------- Keras's Tokenizer

// Keras's default filters: !"#$%&()*+,-./:;<=>?@[\]^_`{|}~ tab and newline.
extern const char* const kKerasFilters;

// keras.preprocessing.text.text_to_word_sequence: lower-case (Python's str.lower), every filter
// character replaced by a space, split on spaces, empty pieces dropped. The lower-casing is
// Python's for U+0000-U+052F (Latin, Greek, Cyrillic), the Roman numerals, the circled letters
// and the full-width forms (Ａ-Ｚ); other capitals are kept (see text_pipeline.cpp).
// The text must be valid UTF-8.
std::vector<std::string> text_to_word_sequence(const std::string& text, const std::string& filters = kKerasFilters);

class Tokenizer {
 public:
  // num_words: only indices below it are kept by texts_to_sequences (0: keep all).
  explicit Tokenizer(std::int64_t num_words = 0, std::string filters = kKerasFilters);
  // Counts words; ranks them by descending count, ties in order of first appearance; word
  // indices start at 1. A second call adds to the counts and ranks again, as in Keras.
  void fit_on_texts(const std::vector<std::string>& texts);
  // Each text's words as indices, skipping unknown words and indices >= num_words.
  std::vector<std::vector<std::int32_t>> texts_to_sequences(const std::vector<std::string>& texts) const;

  std::int64_t num_words() const { return num_words_; }
  std::int64_t document_count() const { return document_count_; }
  // The words in index order: words()[i - 1] has index i.
  const std::vector<std::string>& words() const { return words_; }
  const std::vector<std::int64_t>& counts() const { return counts_; }  // aligned with words()
  // The words texts_to_sequences gives indices: words().size(), or fewer below num_words.
  std::int64_t vocabulary_size() const {
    const auto all = static_cast<std::int64_t>(words_.size());
    return num_words_ > 0 && num_words_ - 1 < all ? num_words_ - 1 : all;
  }
  // 0 when the word is unknown.
  std::int32_t index_of(const std::string& word) const;

  // The tokenizer as JSON text, and back (for predicting from saved models). The format is
  // Keras's tokenizer.to_json(), so keras.preprocessing.text.tokenizer_from_json reads it, and
  // from_json reads Keras's (lower=True, split=" ", char_level=False and no oov_token only).
  std::string to_json() const;
  static Tokenizer from_json(const std::string& json);

 private:
  std::int64_t num_words_;
  std::string filters_;
  std::int64_t document_count_ = 0;
  std::vector<std::string> words_;
  std::vector<std::int64_t> counts_;
  std::vector<std::int64_t> document_counts_;  // aligned with words(): the texts that hold each word
  std::vector<std::int32_t> first_seen_;       // the indices in order of first appearance
  std::map<std::string, std::int32_t> index_;
};

// ---------------------------------------------------------------- padding, split, labels

// keras pad_sequences: every sequence cut or padded to maxlen; "pre" truncation keeps the last
// maxlen ids, "pre" padding puts `value` in front. Returns i32 [N, maxlen].
Tensor pad_sequences(const std::vector<std::vector<std::int32_t>>& sequences, std::int64_t maxlen,
                     const std::string& padding = "pre", const std::string& truncating = "pre",
                     std::int32_t value = 0);

struct Split {
  std::vector<std::int64_t> train, test;  // sample indices, each list in a shuffled order
};
// scikit-learn's train_test_split(stratify=labels, test_size=test_fraction, random_state=seed),
// index for index: ceil(test_fraction * N) test samples, each class's share by sklearn's
// approximate mode, drawn with numpy's RandomState(seed); both lists come back shuffled, so that a
// Keras validation_split from the end of the training set is not one class. seed < 2^32.
Split stratified_split(const std::vector<int>& labels, double test_fraction, std::uint64_t seed);

// Rows `indices` of a [N, ...] tensor.
Tensor take(const Tensor& x, const std::vector<std::int64_t>& indices);
// labels -> f32 [N, classes] with a 1 in each label's column.
Tensor one_hot(const std::vector<int>& labels, int classes);

}  // namespace attnkit::data
