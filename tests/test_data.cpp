// The data pipeline: the CSV reader on edge cases and on the real reviews (against Python's csv
// module), stopwords, the Tokenizer against a Python re-implementation of Keras 2
// (keras_text_reference.py) on the whole data set and on every code point it lower-cases,
// pad_sequences, the stratified split, take and one_hot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "attnkit/data.h"
#include "attnkit/utf8.h"
#include "support.h"

namespace attnkit::data {
namespace {

using testing::values;

// A path in the temporary folder, apart for each test process (ctest runs tests in parallel).
std::string temp_path(const std::string& name) {
  const std::string unique = "attnkit_data_" + std::to_string(::getpid()) + "_" + name;
  return (std::filesystem::temp_directory_path() / unique).string();
}

// Writes `bytes` to a temporary file and returns its path.
std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs a command and returns what it prints; a failure is reported and gives "".
std::string run_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string output;
  char buffer[1 << 16];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  if (pclose(pipe) != 0) {
    ADD_FAILURE() << command << " failed";
    return "";
  }
  return output;
}

std::string data_file(const std::string& name) { return std::string(ATTNKIT_TEST_DATA_DIR) + "/" + name; }

// Every review's label and text, or nothing (and the test skips) where the data is absent.
#define READ_REVIEWS_OR_SKIP(reviews)                                                                 \
  const std::string csv_path = data_file("waimai_10k.csv");                                           \
  if (!std::filesystem::exists(csv_path)) GTEST_SKIP() << csv_path << " is absent (ATTNKIT_DATA_DIR)"; \
  const LabelledTexts reviews = read_labelled_csv(csv_path)

// Expects equal lists, reporting the first few that differ.
template <typename T>
void expect_same_lists(const std::vector<T>& actual, const std::vector<T>& expected, const std::string& what,
                       const std::vector<std::string>& inputs = {}) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < actual.size() && reported < 5; ++i) {
    if (actual[i] == expected[i]) continue;
    ++reported;
    const std::string input = i < inputs.size() ? " (input " + nlohmann::json(inputs[i]).dump() + ")" : "";
    ADD_FAILURE() << what << " " << i << " differs" << input << ": got " << nlohmann::json(actual[i]).dump()
                  << ", Python " << nlohmann::json(expected[i]).dump();
  }
}

// ------------------------------------------------------------------ CSV

TEST(Csv, ReadsQuotedFieldsEmbeddedLineBreaksAndEmptyFields) {
  const std::string path = write_temp("quoted.csv",
                                      "\"id\",\"text\"\r\n"
                                      "1,\"a, b\"\r\n"
                                      "2,\"say \"\"hi\"\"\"\r\n"
                                      "3,\"crlf\r\ninside\"\r\n"
                                      "4,\"lf\ninside\"\n"
                                      "5,\r\n"
                                      "6,\"\"\n"
                                      "7,5\"2\n"
                                      ",last");
  const CsvTable table = read_csv(path);
  EXPECT_EQ(table.header, (std::vector<std::string>{"id", "text"}));
  const std::vector<std::vector<std::string>> rows = {{"1", "a, b"},          {"2", "say \"hi\""},
                                                      {"3", "crlf\r\ninside"}, {"4", "lf\ninside"},
                                                      {"5", ""},              {"6", ""},
                                                      {"7", "5\"2"},          {"", "last"}};
  EXPECT_EQ(table.rows, rows);
  EXPECT_EQ(table.row_lines, (std::vector<std::int64_t>{2, 3, 4, 6, 8, 9, 10, 11}));
  std::filesystem::remove(path);
}

TEST(Csv, SkipsTheByteOrderMarkAndReadsLfAndCrlf) {
  const std::string path = write_temp("bom.csv", "\xEF\xBB\xBFlabel,review\n1,\xE5\xA5\xBD\r\n0,\"\xE5\xB7\xAE\"\n");
  const CsvTable table = read_csv(path);
  EXPECT_EQ(table.header, (std::vector<std::string>{"label", "review"}));
  EXPECT_EQ(table.rows, (std::vector<std::vector<std::string>>{{"1", "好"}, {"0", "差"}}));
  const std::string header_only = write_temp("header_only.csv", "a,b\r\n");
  EXPECT_TRUE(read_csv(header_only).rows.empty());
  std::filesystem::remove(path);
  std::filesystem::remove(header_only);
}

// Writes `bytes` to a file and expects reading it to fail naming the file and `fragment`.
void expect_csv_error(const std::string& bytes, const std::string& fragment) {
  const std::string path = write_temp("bad.csv", bytes);
  EXPECT_ATTNKIT_ERROR(read_csv(path), "'" + path + "'" + fragment);
  std::filesystem::remove(path);
}

TEST(Csv, ErrorsNameTheFileAndLine) {
  expect_csv_error("", " is empty: a CSV starts with its header row");
  expect_csv_error("\xEF\xBB\xBF", " is empty");
  expect_csv_error("a,b\n1,\"open\nstill open\n", ", line 2, field 2: unterminated quote");
  expect_csv_error("a,b\n1,2\n3\n", ", line 3: the row has 1 field, the header has 2");
  expect_csv_error("a,b\n1,\"two\nlines\"\n1,2,3\n", ", line 4: the row has 3 fields, the header has 2");
  expect_csv_error("a,b\n1,\"x\ny\"z\n", ", line 3, field 2: text after a closing quote");
  expect_csv_error("a,b\n1,ok\n2,\"two\nlines \xFF\"\n", ", line 4, field 2: invalid UTF-8 (byte 0xff)");
  expect_csv_error("a,\xC3\n", ", line 1, field 2: invalid UTF-8 (byte 0xc3)");
  expect_csv_error("a,b\r1,2\n", ", line 1: a carriage return that is not followed by a line feed");
  EXPECT_ATTNKIT_ERROR(read_csv(temp_path("no_such.csv")), "cannot open");
}

// Blank lines (trailing ones, as editors leave them, and ones between rows) are skipped when the
// header has several columns, as pandas.read_csv skips them; with one column a blank line is a
// row holding one empty field.
TEST(Csv, SkipsBlankLinesWhenTheHeaderHasSeveralColumns) {
  const std::string path = write_temp("blank.csv", "a,b\n1,2\n\n3,4\r\n\r\n\n");
  const CsvTable table = read_csv(path);
  EXPECT_EQ(table.rows, (std::vector<std::vector<std::string>>{{"1", "2"}, {"3", "4"}}));
  EXPECT_EQ(table.row_lines, (std::vector<std::int64_t>{2, 4}));
  const std::string single = write_temp("blank_single.csv", "a\nx\n\ny\n");
  EXPECT_EQ(read_csv(single).rows, (std::vector<std::vector<std::string>>{{"x"}, {""}, {"y"}}));
  expect_csv_error("a,b\n1,2\n\n3\n", ", line 4: the row has 1 field, the header has 2");
  std::filesystem::remove(path);
  std::filesystem::remove(single);
}

TEST(Csv, ReadsLabelledColumnsInAnyOrder) {
  const std::string path = write_temp("labelled.csv", "review,id,label\n\"nice, fast\",1,1\nslow,2,0\n");
  const LabelledTexts read = read_labelled_csv(path);
  EXPECT_EQ(read.labels, (std::vector<int>{1, 0}));
  EXPECT_EQ(read.texts, (std::vector<std::string>{"nice, fast", "slow"}));
  EXPECT_EQ(read_labelled_csv(write_temp("labelled.csv", "label,review\n2,x\n"), 3).labels, (std::vector<int>{2}));
  // Header names in any case; two columns that differ only in case are ambiguous.
  EXPECT_EQ(read_labelled_csv(write_temp("labelled.csv", "Label,REVIEW\n1,x\n")).texts, (std::vector<std::string>{"x"}));
  EXPECT_ATTNKIT_ERROR(read_labelled_csv(write_temp("labelled.csv", "label,Label,review\n1,1,x\n")),
                       "has two columns 'label' (label, Label, review)");
  std::filesystem::remove(path);
}

TEST(Csv, LabelErrorsNameTheLineAndValue) {
  const auto expect_label_error = [](const std::string& bytes, const std::string& fragment) {
    const std::string path = write_temp("bad_label.csv", bytes);
    EXPECT_ATTNKIT_ERROR(read_labelled_csv(path), "'" + path + "'" + fragment);
    std::filesystem::remove(path);
  };
  expect_label_error("label,review\n1,ok\n2,bad\n", ", line 3: the label '2' is not an integer in [0, 2)");
  expect_label_error("label,review\n-1,x\n", ", line 2: the label '-1' is not an integer in [0, 2)");
  expect_label_error("label,review\n1.0,x\n", ", line 2: the label '1.0' is not");
  expect_label_error("label,review\n,x\n", ", line 2: the label '' is not");
  expect_label_error("label,review\n\"a\nb\",x\n1,\" 1\"\n", ", line 2: the label 'a\nb' is not");
  expect_label_error("label,text\n1,x\n", " has no column 'review' (its columns: label, text)");
  expect_label_error("label,review,label\n1,x,1\n", " has two columns 'label'");
}

TEST(Csv, ReadsTheReviewsAsPythonsCsvModuleDoes) {
  READ_REVIEWS_OR_SKIP(reviews);
  ASSERT_EQ(reviews.labels.size(), 11987u);
  EXPECT_EQ(std::count(reviews.labels.begin(), reviews.labels.end(), 1), 4000);
  EXPECT_EQ(std::count(reviews.labels.begin(), reviews.labels.end(), 0), 7987);

  const std::string program =
      "import csv, json, sys; "
      "json.dump(list(csv.reader(open(sys.argv[1], encoding=\"utf-8-sig\", newline=\"\"))), sys.stdout)";
  const std::string output =
      run_command(std::string(ATTNKIT_TEST_PYTHON) + " -c " + shell_quote(program) + " " + shell_quote(csv_path));
  ASSERT_FALSE(output.empty());
  const auto python_rows = nlohmann::json::parse(output).get<std::vector<std::vector<std::string>>>();
  const CsvTable table = read_csv(csv_path);
  ASSERT_EQ(python_rows.size(), table.rows.size() + 1);
  EXPECT_EQ(table.header, python_rows[0]);
  std::vector<std::string> python_reviews;
  for (std::size_t r = 1; r < python_rows.size(); ++r) python_reviews.push_back(python_rows[r].at(1));
  expect_same_lists(reviews.texts, python_reviews, "review");
  EXPECT_GT(std::count_if(reviews.texts.begin(), reviews.texts.end(),
                          [](const std::string& text) { return text.find(',') != std::string::npos; }),
            1000)
      << "the data should hold quoted reviews with commas";
}

// ------------------------------------------------------------------ stopwords

TEST(DataStopwords, AreReadOnePerLineAndDroppedWhenJoining) {
  const std::string path = write_temp("stopwords.txt", "的\n了\r\n\n℃ \nok");
  const std::set<std::string> stopwords = read_stopwords(path);
  EXPECT_EQ(stopwords, (std::set<std::string>{"的", "了", "℃ ", "ok"}));
  EXPECT_EQ(join_without_stopwords({"我", "的", "饭", "了", "ok", "好"}, stopwords), "我 饭 好");
  EXPECT_EQ(join_without_stopwords({"的", "了"}, stopwords), "");
  EXPECT_EQ(join_without_stopwords({}, stopwords), "");
  std::filesystem::remove(path);
  EXPECT_ATTNKIT_ERROR(read_stopwords(write_temp("stopwords.txt", "ok\n\xFF\n")), "line 2: invalid UTF-8");
  std::filesystem::remove(temp_path("stopwords.txt"));

  const std::string hit = data_file("hit_stopwords.txt");
  if (!std::filesystem::exists(hit)) GTEST_SKIP() << hit << " is absent (ATTNKIT_DATA_DIR)";
  const std::set<std::string> hit_words = read_stopwords(hit);
  EXPECT_GT(hit_words.size(), 700u);
  EXPECT_EQ(hit_words.count("的"), 1u);
  EXPECT_EQ(hit_words.count(""), 0u);
}

// ------------------------------------------------------------------ Tokenizer

// Keras's answer from keras_text_reference.py for `texts`.
nlohmann::json keras_reference(const std::vector<std::string>& texts, std::int64_t num_words, std::int64_t maxlen,
                               const std::string& filters) {
  const nlohmann::json fields = {{"texts", texts}, {"num_words", num_words}, {"maxlen", maxlen}, {"filters", filters}};
  const std::string request = write_temp("keras_request.json", fields.dump());
  const std::string script = std::string(ATTNKIT_TEST_SOURCE_DIR) + "/keras_text_reference.py";
  const std::string output =
      run_command(std::string(ATTNKIT_TEST_PYTHON) + " " + shell_quote(script) + " " + shell_quote(request));
  std::filesystem::remove(request);
  return output.empty() ? nlohmann::json() : nlohmann::json::parse(output);
}

// A review with a space around every CJK character (and full-width form), and then the review
// as it is: words of one character with counts of all sizes, and phrases seen once, so that the
// vocabulary outgrows num_words and most ties are broken by first appearance.
std::string characters_and_review(const std::string& review) {
  std::u32string spaced;
  for (const char32_t c : utf8::decode(review)) {
    if (c >= 0x2E80) {
      spaced += U' ';
      spaced += c;
      spaced += U' ';
    } else {
      spaced += c;
    }
  }
  return utf8::encode(spaced) + " " + review;
}

TEST(Tokenizer, MatchesKerasOnTheWholeDataSet) {
  READ_REVIEWS_OR_SKIP(reviews);
  std::vector<std::string> texts;
  for (const std::string& review : reviews.texts) texts.push_back(characters_and_review(review));
  // The inputs exercise the lower-casing and the filters.
  const auto holds = [&](const char* characters) {
    return std::any_of(texts.begin(), texts.end(),
                       [&](const std::string& t) { return t.find_first_of(characters) != std::string::npos; });
  };
  ASSERT_TRUE(holds("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
  ASSERT_TRUE(holds("!,.~?"));

  const nlohmann::json keras = keras_reference(texts, 6000, 20, kKerasFilters);
  ASSERT_FALSE(keras.is_null());
  Tokenizer tokenizer(6000);
  tokenizer.fit_on_texts(texts);
  EXPECT_EQ(tokenizer.document_count(), keras.at("document_count").get<std::int64_t>());
  expect_same_lists(tokenizer.words(), keras.at("words").get<std::vector<std::string>>(), "word of index - 1");
  expect_same_lists(tokenizer.counts(), keras.at("counts").get<std::vector<std::int64_t>>(), "count of index - 1");
  EXPECT_GT(tokenizer.words().size(), 6000u) << "the vocabulary should outgrow num_words";

  const auto word_sequences = keras.at("word_sequences").get<std::vector<std::vector<std::string>>>();
  std::vector<std::vector<std::string>> ours;
  for (const std::string& text : texts) ours.push_back(text_to_word_sequence(text));
  expect_same_lists(ours, word_sequences, "text_to_word_sequence of text", texts);

  const auto sequences = tokenizer.texts_to_sequences(texts);
  expect_same_lists(sequences, keras.at("sequences").get<std::vector<std::vector<std::int32_t>>>(),
                    "sequence of text", texts);
  const Tensor padded = pad_sequences(sequences, 20);
  ASSERT_EQ(padded.shape(), (Shape{static_cast<std::int64_t>(texts.size()), 20}));
  std::vector<std::vector<std::int32_t>> rows;
  const std::vector<std::int32_t> flat = padded.to_vector<std::int32_t>();
  for (std::size_t r = 0; r < texts.size(); ++r)
    rows.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(r * 20),
                      flat.begin() + static_cast<std::ptrdiff_t>(r * 20 + 20));
  expect_same_lists(rows, keras.at("padded").get<std::vector<std::vector<std::int32_t>>>(), "padded row");
}

// Every code point of the blocks text_pipeline.cpp lower-cases or classifies for the final
// sigma, alone and on either side of a Σ, through text_to_word_sequence without filters.
TEST(Tokenizer, LowerCasesLikePythonOnEveryCoveredCodePoint) {
  const std::pair<char32_t, char32_t> blocks[] = {{0x0000, 0x052F}, {0x2000, 0x206F}, {0x2150, 0x218F},
                                                   {0x2460, 0x24FF}, {0x3000, 0x30FF}, {0xFF00, 0xFFEF}};
  std::vector<std::string> texts = {"ΟΔΥΣΣΕΥΣ ΣΑΣ. ΑΣ'Β ΑΣ.", "Σ ΣΣ Σ̈Α", "İSTANBUL", "ＡＢＣ ｄｅｆ",
                                    "ПРИВЕТ Мир ЁЖ", "Ⅻ Ⓐ ÀÉÎ Ÿ Ŋ ǅ Ǘ", "WiFi很好ＯＫ"};
  for (const auto& [first, last] : blocks) {
    for (char32_t c = first; c <= last; ++c) {
      const std::string s = utf8::encode(c);
      texts.push_back(s);
      texts.push_back("Α" + s + "Σ");
      texts.push_back("ΑΣ" + s);
    }
  }
  const nlohmann::json keras = keras_reference(texts, 0, 1, "");
  ASSERT_FALSE(keras.is_null());
  std::vector<std::vector<std::string>> ours;
  for (const std::string& text : texts) ours.push_back(text_to_word_sequence(text, ""));
  expect_same_lists(ours, keras.at("word_sequences").get<std::vector<std::vector<std::string>>>(),
                    "text_to_word_sequence of text", texts);
}

TEST(Tokenizer, SplitsOnFiltersAndSpacesAndLowerCases) {
  using Words = std::vector<std::string>;
  EXPECT_EQ(text_to_word_sequence("Hello, WORLD!! it's\tfine\n(ok)  a-b"),
            (Words{"hello", "world", "it's", "fine", "ok", "a", "b"}));
  // Only the space splits: a carriage return or an ideographic space stays inside a word.
  EXPECT_EQ(text_to_word_sequence("a\r\nb c\u3000d"), (Words{"a\r", "b", "c\u3000d"}));
  EXPECT_EQ(text_to_word_sequence("好，吃。极了", "，。"), (Words{"好", "吃", "极了"}));
  EXPECT_EQ(text_to_word_sequence("A.B", ""), (Words{"a.b"}));
  EXPECT_EQ(text_to_word_sequence("ABC XYZ ＡＢＺ ÀÖÞ ΑΒΓ ΔΣ АБЯ ЁЙ"),
            (Words{"abc", "xyz", "ａｂｚ", "àöþ", "αβγ", "δς", "абя", "ёй"}));
  EXPECT_EQ(text_to_word_sequence("ΣΑΣ"), (Words{"σας"}));
  EXPECT_TRUE(text_to_word_sequence(" !!! ").empty());
  EXPECT_ATTNKIT_ERROR(text_to_word_sequence("ok \xFF"), "not valid UTF-8 (at byte 3)");
}

TEST(Tokenizer, RanksByCountThenFirstAppearance) {
  Tokenizer tokenizer;
  tokenizer.fit_on_texts({"b a c", "A c", "d C!", "e"});
  EXPECT_EQ(tokenizer.document_count(), 4);
  EXPECT_EQ(tokenizer.words(), (std::vector<std::string>{"c", "a", "b", "d", "e"}));
  EXPECT_EQ(tokenizer.counts(), (std::vector<std::int64_t>{3, 2, 1, 1, 1}));
  EXPECT_EQ(tokenizer.index_of("c"), 1);
  EXPECT_EQ(tokenizer.index_of("e"), 5);
  EXPECT_EQ(tokenizer.index_of("C"), 0);
  EXPECT_EQ(tokenizer.index_of("unknown"), 0);
  EXPECT_EQ(tokenizer.texts_to_sequences({"e d c b a", "unknown c", ""}),
            (std::vector<std::vector<std::int32_t>>{{5, 4, 1, 3, 2}, {1}, {}}));
}

TEST(Tokenizer, KeepsOnlyIndicesBelowNumWords) {
  Tokenizer tokenizer(3);
  tokenizer.fit_on_texts({"x x x y y z w"});
  EXPECT_EQ(tokenizer.num_words(), 3);
  EXPECT_EQ(tokenizer.words().size(), 4u);  // the vocabulary keeps every word; sequences do not
  EXPECT_EQ(tokenizer.index_of("z"), 3);
  EXPECT_EQ(tokenizer.texts_to_sequences({"w z y x"}), (std::vector<std::vector<std::int32_t>>{{2, 1}}));
  EXPECT_ATTNKIT_ERROR(Tokenizer(-1), "num_words must be 0 (keep all) or positive");
}

TEST(Tokenizer, FittingAgainAddsCountsAndBreaksTiesByFirstAppearance) {
  // After "p q q", q ranks first; after "p" as well, p and q tie, and p was seen first.
  Tokenizer tokenizer;
  tokenizer.fit_on_texts({"p q q"});
  EXPECT_EQ(tokenizer.words(), (std::vector<std::string>{"q", "p"}));
  tokenizer.fit_on_texts({"p"});
  EXPECT_EQ(tokenizer.words(), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(tokenizer.counts(), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(tokenizer.document_count(), 2);
  // A text that fails leaves the tokenizer as it was.
  EXPECT_ATTNKIT_ERROR(tokenizer.fit_on_texts({"q q q", "\xFF"}), "not valid UTF-8");
  EXPECT_EQ(tokenizer.words(), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(tokenizer.document_count(), 2);
}

TEST(Tokenizer, JsonRoundTripInKerasFormat) {
  Tokenizer tokenizer(4, "!,");
  tokenizer.fit_on_texts({"好 吃 好", "\"quoted\" 好,吃!", "p q q"});
  const std::string json = tokenizer.to_json();
  const Tokenizer loaded = Tokenizer::from_json(json);
  EXPECT_EQ(loaded.num_words(), 4);
  EXPECT_EQ(loaded.document_count(), 3);
  EXPECT_EQ(loaded.words(), tokenizer.words());
  EXPECT_EQ(loaded.counts(), tokenizer.counts());
  const std::vector<std::string> texts = {"好 吃 \"quoted\" p q zzz", "吃,好"};
  EXPECT_EQ(loaded.texts_to_sequences(texts), tokenizer.texts_to_sequences(texts));

  // Keras's layout: the dictionaries are strings of JSON.
  const nlohmann::json parsed = nlohmann::json::parse(json);
  EXPECT_EQ(parsed.at("class_name"), "Tokenizer");
  const nlohmann::json& config = parsed.at("config");
  EXPECT_EQ(config.at("filters"), "!,");
  EXPECT_EQ(nlohmann::json::parse(config.at("word_index").get<std::string>()).at("好"), 1);
  EXPECT_EQ(nlohmann::json::parse(config.at("word_counts").get<std::string>()).at("q"), 2);
  EXPECT_EQ(nlohmann::json::parse(config.at("word_docs").get<std::string>()).at("好"), 2);
  EXPECT_EQ(nlohmann::json::parse(config.at("index_word").get<std::string>()).at("1"), "好");

  // The order of first appearance survives, so fitting a loaded tokenizer matches fitting on.
  Tokenizer refitted = Tokenizer::from_json(json);
  refitted.fit_on_texts({"p"});
  tokenizer.fit_on_texts({"p"});
  EXPECT_EQ(refitted.words(), tokenizer.words());
  EXPECT_EQ(refitted.to_json(), tokenizer.to_json());
  EXPECT_EQ(Tokenizer::from_json(Tokenizer().to_json()).num_words(), 0);
}

TEST(Tokenizer, ReadsKerasJson) {
  // As Keras 2's tokenizer.to_json() writes it (json.dumps escapes non-ASCII).
  const std::string keras_json =
      R"({"class_name": "Tokenizer", "config": {"num_words": 3, )"
      R"("filters": "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n", )"
      R"("lower": true, "split": " ", "char_level": false, "oov_token": null, "document_count": 2, )"
      R"("word_counts": "{\"ok\": 1, \"\\u597d\": 2, \"x\": 1}", )"
      R"("word_docs": "{\"\\u597d\": 2, \"ok\": 1, \"x\": 1}", )"
      R"("index_docs": "{\"1\": 2, \"2\": 1, \"3\": 1}", )"
      R"("index_word": "{\"1\": \"\\u597d\", \"2\": \"ok\", \"3\": \"x\"}", )"
      R"("word_index": "{\"\\u597d\": 1, \"ok\": 2, \"x\": 3}"}})";
  const Tokenizer tokenizer = Tokenizer::from_json(keras_json);
  EXPECT_EQ(tokenizer.num_words(), 3);
  EXPECT_EQ(tokenizer.document_count(), 2);
  EXPECT_EQ(tokenizer.words(), (std::vector<std::string>{"好", "ok", "x"}));
  EXPECT_EQ(tokenizer.counts(), (std::vector<std::int64_t>{2, 1, 1}));
  EXPECT_EQ(tokenizer.texts_to_sequences({"OK, 好! x"}), (std::vector<std::vector<std::int32_t>>{{2, 1}}));

  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json("{\"class_name\": "), "Tokenizer::from_json: ");
  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json("[1]"), "not a tokenizer");
  nlohmann::json with_oov = nlohmann::json::parse(keras_json);
  with_oov["config"]["oov_token"] = "<OOV>";
  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json(with_oov.dump()), "reads only lower=true");
  nlohmann::json repeated = nlohmann::json::parse(keras_json);
  repeated["config"]["word_index"] = R"({"\u597d": 1, "ok": 1, "x": 3})";
  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json(repeated.dump()), "is repeated or outside [1, 3]");
  nlohmann::json uncounted = nlohmann::json::parse(keras_json);
  uncounted["config"]["word_counts"] = R"({"ok": 1, "\u597d": 2, "y": 1})";
  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json(uncounted.dump()), "'x' has an index but no count");
  // Numbers that are not integers (casting 1e30 to an integer is undefined behaviour).
  nlohmann::json huge = nlohmann::json::parse(keras_json);
  huge["config"]["document_count"] = 1e30;
  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json(huge.dump()), "document_count must be an integer of 64 bits, got 1e+30");
  nlohmann::json fractional = nlohmann::json::parse(keras_json);
  fractional["config"]["word_index"] = R"({"\u597d": 1.5, "ok": 2, "x": 3})";
  EXPECT_ATTNKIT_ERROR(Tokenizer::from_json(fractional.dump()), "a word's index must be an integer of 64 bits, got 1.5");
}

// ------------------------------------------------------------------ pad_sequences

TEST(PadSequences, PadsAndTruncatesLikeKeras) {
  const std::vector<std::vector<std::int32_t>> sequences = {{1, 2, 3, 4, 5}, {6, 7}, {}, {8, 9, 10}};
  const Tensor pre = pad_sequences(sequences, 3);
  EXPECT_EQ(pre.dtype(), DType::i32);
  EXPECT_EQ(pre.shape(), (Shape{4, 3}));
  EXPECT_EQ(values(pre), (std::vector<double>{3, 4, 5, 0, 6, 7, 0, 0, 0, 8, 9, 10}));
  EXPECT_EQ(values(pad_sequences(sequences, 3, "post", "post")),
            (std::vector<double>{1, 2, 3, 6, 7, 0, 0, 0, 0, 8, 9, 10}));
  EXPECT_EQ(values(pad_sequences(sequences, 3, "pre", "post", -1)),
            (std::vector<double>{1, 2, 3, -1, 6, 7, -1, -1, -1, 8, 9, 10}));
  EXPECT_EQ(values(pad_sequences(sequences, 6, "post", "pre")),
            (std::vector<double>{1, 2, 3, 4, 5, 0, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 9, 10, 0, 0, 0}));
  EXPECT_EQ(pad_sequences({}, 4).shape(), (Shape{0, 4}));
  EXPECT_ATTNKIT_ERROR(pad_sequences(sequences, 0), "maxlen must be positive");
  EXPECT_ATTNKIT_ERROR(pad_sequences(sequences, 3, "middle"), "padding must be \"pre\" or \"post\"");
  EXPECT_ATTNKIT_ERROR(pad_sequences(sequences, 3, "pre", "both"), "truncating must be");
}

// ------------------------------------------------------------------ stratified_split

// scikit-learn's train_test_split(range(N), stratify=labels, test_size, random_state=seed).
Split sklearn_split(const std::vector<int>& labels, double test_fraction, std::uint64_t seed) {
  const std::string request = write_temp("split_request.json", nlohmann::json(labels).dump());
  const std::string program =
      "import json, sys; from sklearn.model_selection import train_test_split; "
      "y = json.load(open(sys.argv[1])); "
      "tr, te = train_test_split(list(range(len(y))), stratify=y, test_size=float(sys.argv[2]), "
      "random_state=int(sys.argv[3])); json.dump([tr, te], sys.stdout)";
  const std::string output = run_command(std::string(ATTNKIT_TEST_PYTHON) + " -c " + shell_quote(program) + " " +
                                         shell_quote(request) + " " + std::to_string(test_fraction) + " " +
                                         std::to_string(seed));
  std::filesystem::remove(request);
  if (output.empty()) return {};
  const auto lists = nlohmann::json::parse(output);
  return Split{lists.at(0).get<std::vector<std::int64_t>>(), lists.at(1).get<std::vector<std::int64_t>>()};
}

TEST(Split, EqualsScikitLearnsTrainTestSplitIndexForIndex) {
  Generator generator(17);
  // The reviews' class sizes in data order; three classes whose shares tie in remainder (so the
  // generator breaks ties); an odd shuffled label list with a rare class.
  std::vector<int> reviews(7987, 0);
  reviews.insert(reviews.end(), 4000, 1);
  std::vector<int> tied;
  for (int c = 0; c < 3; ++c) tied.insert(tied.end(), 5, c);
  std::vector<int> mixed(1003);
  for (int& label : mixed) label = generator.uniform_int(10) == 0 ? 7 : static_cast<int>(generator.uniform_int(3));
  const struct { const char* name; const std::vector<int>& labels; double test_fraction; std::uint64_t seed; } cases[] = {
      {"reviews", reviews, 0.2, 0}, {"reviews", reviews, 0.2, 4294967295u}, {"tied", tied, 0.3, 5},
      {"tied", tied, 0.5, 11},      {"mixed", mixed, 0.37, 123456},
  };
  for (const auto& c : cases) {
    const Split ours = stratified_split(c.labels, c.test_fraction, c.seed);
    const Split expected = sklearn_split(c.labels, c.test_fraction, c.seed);
    ASSERT_FALSE(expected.train.empty()) << "scikit-learn (python3-sklearn) did not answer";
    EXPECT_EQ(ours.train, expected.train) << c.name << " seed " << c.seed;
    EXPECT_EQ(ours.test, expected.test) << c.name << " seed " << c.seed;
  }
  // The blog's split: 2,398 test reviews (ceil of 0.2 * 11,987), 800 of them positive.
  const Split split = stratified_split(reviews, 0.2, 0);
  EXPECT_EQ(split.test.size(), 2398u);
  EXPECT_EQ(std::count_if(split.test.begin(), split.test.end(), [](std::int64_t i) { return i >= 7987; }), 800);
}

TEST(Split, RejectsWhatScikitLearnRejects) {
  EXPECT_ATTNKIT_ERROR(stratified_split({0, 1, 0, 1}, 1.5, 1), "test_fraction must lie strictly between 0 and 1");
  EXPECT_ATTNKIT_ERROR(stratified_split({0, 1, 0, 1}, 0.0, 1), "test_fraction must lie strictly between 0 and 1");
  EXPECT_ATTNKIT_ERROR(stratified_split({0, 1, 0, 0}, 0.5, 1), "class 1 has 1 sample; each class needs at least 2");
  EXPECT_ATTNKIT_ERROR(stratified_split({0, 1, 0, 1, 2, 2}, 0.1, 1), "cannot hold each of the 3 classes");
  EXPECT_ATTNKIT_ERROR(stratified_split({0, 1, 0, 1}, 0.5, std::uint64_t{1} << 32), "must fit in 32 bits");
}

// ------------------------------------------------------------------ take, one_hot

TEST(DataTake, GathersRows) {
  const Tensor x = Tensor::from_vector<std::int32_t>({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  const Tensor rows = take(x, {3, 0, 3});
  EXPECT_EQ(rows.shape(), (Shape{3, 2}));
  EXPECT_EQ(rows.dtype(), DType::i32);
  EXPECT_EQ(values(rows), (std::vector<double>{30, 31, 0, 1, 30, 31}));
  const Tensor cube = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  EXPECT_EQ(values(take(cube, {1})), (std::vector<double>{5, 6, 7, 8}));
  EXPECT_EQ(values(take(cube.slice(1, 2), {0, 0})), (std::vector<double>{5, 6, 7, 8, 5, 6, 7, 8}));
  EXPECT_EQ(take(x, {}).shape(), (Shape{0, 2}));
  EXPECT_ATTNKIT_ERROR(take(x, {1, 4}), "take: index 4 (at position 1) is outside [0, 4)");
  EXPECT_ATTNKIT_ERROR(take(Tensor::full({}, 1.0), {0}), "at least one axis");
}

TEST(DataOneHot, PutsAOneInEachLabelsColumn) {
  const Tensor y = one_hot({1, 0, 2}, 3);
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(y.shape(), (Shape{3, 3}));
  EXPECT_EQ(values(y), (std::vector<double>{0, 1, 0, 1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(one_hot({}, 2).shape(), (Shape{0, 2}));
  EXPECT_ATTNKIT_ERROR(one_hot({0, 2}, 2), "one_hot: label 2 (at position 1) is outside [0, 2)");
}

}  // namespace
}  // namespace attnkit::data
