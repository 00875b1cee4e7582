// jieba segmentation: the same words as Python's jieba 0.42.1 (jieba.lcut with and without the
// HMM) on every review of the waimai_10k data set and on hand-made text, and errors that name the
// file and line of a missing or malformed table.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "attnkit/jieba.h"
#include "support.h"

namespace attnkit {
namespace {

namespace fs = std::filesystem;
using Words = std::vector<std::string>;

// Tests against Debian's python3-jieba tables; they skip where it is not installed.
class Jieba : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(jieba::default_directory() + "/dict.txt"))
      GTEST_SKIP() << "no jieba tables in " << jieba::default_directory()
                   << " (install python3-jieba or set ATTNKIT_JIEBA_DIR)";
  }

  // Loaded once for all tests.
  static const jieba::Segmenter& segmenter() {
    static const jieba::Segmenter loaded;
    return loaded;
  }

  // `hmm_words` and `plain_words` are what jieba.lcut(text) and jieba.lcut(text, HMM=False) give.
  static void expect_cut(const std::string& text, const Words& hmm_words, const Words& plain_words) {
    EXPECT_EQ(segmenter().cut(text, true), hmm_words) << "with the HMM: " << nlohmann::json(text).dump();
    EXPECT_EQ(segmenter().cut(text, false), plain_words)
        << "without the HMM: " << nlohmann::json(text).dump();
  }
};

struct ReferenceCut {
  std::string text;
  Words hmm_words, plain_words;
};

// jieba's words for every review, from one run of tests/jieba_reference.py; `skip_reason` or
// `failure` say why there are none.
struct ReferenceRun {
  std::string skip_reason, failure;
  std::vector<ReferenceCut> reviews;
};

ReferenceRun run_reference_script() {
  ReferenceRun run;
  const std::string csv_path = std::string(ATTNKIT_TEST_DATA_DIR) + "/waimai_10k.csv";
  if (!fs::exists(csv_path)) {
    run.skip_reason = csv_path + " is absent (ATTNKIT_DATA_DIR)";
    return run;
  }
  const std::string output_path =
      (fs::temp_directory_path() / ("attnkit_jieba_reference_" + std::to_string(::getpid()) + ".jsonl"))
          .string();
  const auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
  const std::string command = quoted(ATTNKIT_TEST_PYTHON) + " " +
                              quoted(std::string(ATTNKIT_TEST_SOURCE_DIR) + "/jieba_reference.py") + " " +
                              quoted(csv_path) + " " + quoted(output_path) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    run.failure = "cannot run " + command;
    return run;
  }
  std::string messages;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) messages += buffer;
  if (pclose(pipe) != 0) {
    run.failure = command + " failed: " + messages;
    fs::remove(output_path);
    return run;
  }
  std::ifstream in(output_path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line);
    run.reviews.push_back({record.at("text").get<std::string>(), record.at("hmm").get<Words>(),
                           record.at("no_hmm").get<Words>()});
  }
  fs::remove(output_path);
  return run;
}

const ReferenceRun& reference_run() {
  static const ReferenceRun run = run_reference_script();
  return run;
}

// Compares every review's cut with jieba's and reports the count of mismatches and the first few.
::testing::AssertionResult matches_reference(const jieba::Segmenter& segmenter,
                                             const std::vector<ReferenceCut>& reviews, bool hmm) {
  std::size_t mismatches = 0;
  std::ostringstream first;
  for (const ReferenceCut& review : reviews) {
    const Words got = segmenter.cut(review.text, hmm);
    const Words& expected = hmm ? review.hmm_words : review.plain_words;
    if (got == expected) continue;
    if (++mismatches <= 5)
      // As JSON, which shows the Chinese as it is and whitespace words escaped.
      first << "\n  text:     " << nlohmann::json(review.text).dump() << "\n  expected: "
            << nlohmann::json(expected).dump() << "\n  got:      " << nlohmann::json(got).dump();
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << reviews.size()
                                       << " reviews are cut differently; the first:" << first.str();
}

TEST_F(Jieba, MatchesPythonJiebaOnEveryReviewWithHmm) {
  const ReferenceRun& run = reference_run();
  if (!run.skip_reason.empty()) GTEST_SKIP() << run.skip_reason;
  ASSERT_TRUE(run.failure.empty()) << run.failure;
  ASSERT_EQ(run.reviews.size(), 11987u);
  EXPECT_TRUE(matches_reference(segmenter(), run.reviews, true));
}

TEST_F(Jieba, MatchesPythonJiebaOnEveryReviewWithoutHmm) {
  const ReferenceRun& run = reference_run();
  if (!run.skip_reason.empty()) GTEST_SKIP() << run.skip_reason;
  ASSERT_TRUE(run.failure.empty()) << run.failure;
  ASSERT_EQ(run.reviews.size(), 11987u);
  EXPECT_TRUE(matches_reference(segmenter(), run.reviews, false));
}

// The expected words below are python3-jieba 0.42.1's.

TEST_F(Jieba, HmmJoinsCharactersMissingFromTheDictionary) {
  expect_cut("他来到了网易杭研大厦", {"他", "来到", "了", "网易", "杭研", "大厦"},
             {"他", "来到", "了", "网易", "杭", "研", "大厦"});
  expect_cut("小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
             {"小明", "硕士", "毕业", "于", "中国科学院", "计算所", "，", "后", "在", "日本京都大学", "深造"},
             {"小", "明", "硕士", "毕业", "于", "中国科学院", "计算所", "，", "后", "在", "日本京都大学", "深造"});
  // The route of maximum frequency, not the first dictionary match: 北京大学 | 生 loses.
  expect_cut("北京大学生前来应聘", {"北京", "大学生", "前来", "应聘"}, {"北京", "大学生", "前来", "应聘"});
}

TEST_F(Jieba, TiesBreakAsPythonsTupleMax) {
  // 好好|好 and 好|好好 score the same; jieba's max over (score, end) takes the larger end.
  expect_cut("好好好", {"好好", "好"}, {"好好", "好"});
  // Characters in neither the dictionary nor the emission tables give every HMM state the same
  // probability (MIN_FLOAT absorbs the rest); ties go to the larger state letter, here S.
  expect_cut("我鼀鼁鼃鼄了", {"我", "鼀", "鼁", "鼃", "鼄", "了"}, {"我", "鼀", "鼁", "鼃", "鼄", "了"});
}

TEST_F(Jieba, NumbersDecimalsAndPercentages) {
  // With the HMM, a decimal or a percentage is one word; without it, the letters and digits on
  // either side of '.' and '%' are glued and the symbols stand alone.
  expect_cut("价格3.5元，打8.5折，涨了15%，v2.0版本",
             {"价格", "3.5", "元", "，", "打", "8.5", "折", "，", "涨", "了", "15%", "，", "v2.0", "版本"},
             {"价格", "3", ".", "5", "元", "，", "打", "8", ".", "5", "折", "，", "涨", "了", "15", "%", "，", "v2",
              ".", "0", "版本"});
  expect_cut("外卖送得很快abc123def4.56%好评", {"外卖", "送得", "很快", "abc123def4.56%", "好评"},
             {"外卖", "送", "得", "很快", "abc123def4", ".", "56", "%", "好评"});
  expect_cut("这家店的酸菜鱼太辣了10分钟就送到",
             {"这家", "店", "的", "酸菜鱼", "太辣", "了", "10", "分钟", "就", "送到"},
             {"这家", "店", "的", "酸菜鱼", "太", "辣", "了", "10", "分钟", "就", "送到"});
}

TEST_F(Jieba, EnglishWordsAndDictionarySymbols) {
  expect_cut("我爱北京天安门，I love Beijing!",
             {"我", "爱", "北京", "天安门", "，", "I", " ", "love", " ", "Beijing", "!"},
             {"我", "爱", "北京", "天安门", "，", "I", " ", "love", " ", "Beijing", "!"});
  // C++, c# and AT&T are dictionary words; '-' and '_' are in the blocks but in no word here.
  expect_cut("C++和c#都是AT&T的e-mail_test",
             {"C++", "和", "c#", "都", "是", "AT&T", "的", "e", "-", "mail", "_", "test"},
             {"C++", "和", "c#", "都", "是", "AT&T", "的", "e", "-", "mail", "_", "test"});
}

TEST_F(Jieba, WhitespaceComesOutOneCharacterAtATimeExceptCrLf) {
  const Words words = {"你好", " ", "世界", "\t", "再见", "\r\n", "明天", "\n", "\n", "好", "\r", "\r\n"};
  expect_cut("你好 世界\t再见\r\n明天\n\n好\r\r\n", words, words);
  // An ideographic space and a no-break space, as Unicode whitespace.
  const Words unicode_spaces = {"\u3000", "两个", "\u00a0", "空格", "\u3000"};
  expect_cut("\u3000两个\u00a0空格\u3000", unicode_spaces, unicode_spaces);
}

TEST_F(Jieba, CharactersOutsideTheBlocksStandAlone) {
  expect_cut("好吃😋😋！下次还点", {"好吃", "😋", "😋", "！", "下次", "还点"},
             {"好吃", "😋", "😋", "！", "下次", "还", "点"});
  // Full-width letters and digits are not ASCII, so jieba does not group them.
  expect_cut("ＡＢＣ１２３，全角字母。！？", {"Ａ", "Ｂ", "Ｃ", "１", "２", "３", "，", "全角字", "母", "。", "！", "？"},
             {"Ａ", "Ｂ", "Ｃ", "１", "２", "３", "，", "全角字", "母", "。", "！", "？"});
}

TEST_F(Jieba, EmptyTextAndSingleCharacters) {
  expect_cut("", {}, {});
  expect_cut("我", {"我"}, {"我"});
  expect_cut("a", {"a"}, {"a"});
}

TEST_F(Jieba, InvalidUtf8IsAnError) {
  EXPECT_ATTNKIT_ERROR(segmenter().cut("好\xe5\xa5"), "jieba: the text is not valid UTF-8 (at byte 3)");
  EXPECT_ATTNKIT_ERROR(segmenter().cut("\xff", false), "not valid UTF-8 (at byte 0)");
}

// A small jieba directory written by the test, so the file errors need no installed tables.
class JiebaTables : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = fs::temp_directory_path() / ("attnkit_jieba_tables_" + std::to_string(::getpid()));
    fs::create_directories(directory_ / "finalseg");
    write("dict.txt", "北京 10 ns\n大学 10 n\n北京大学 30 nt\n");
    write("finalseg/prob_start.py", "P={'B': -0.26, 'E': -3.14e+100, 'M': -3.14e+100, 'S': -1.47}\n");
    write("finalseg/prob_trans.py",
          "P={'B': {'E': -0.51, 'M': -0.92},\n 'E': {'B': -0.59, 'S': -0.81},\n"
          " 'M': {'E': -0.33, 'M': -1.26},\n 'S': {'B': -0.72, 'S': -0.67}}\n");
    write("finalseg/prob_emit.py",
          "from __future__ import unicode_literals\n\nP={'B': {'\\u5317': -3.0},\n 'E': {'\\u4eac': -3.5},\n"
          " 'M': {},\n 'S': {'\\u597d': -4.0}}\n");
  }
  void TearDown() override { fs::remove_all(directory_); }

  void write(const std::string& name, const std::string& contents) {
    std::ofstream(directory_ / name, std::ios::binary) << contents;
  }
  std::string path() const { return directory_.string(); }

  fs::path directory_;
};

TEST_F(JiebaTables, HandWrittenTablesLoad) {
  jieba::Segmenter segmenter(path());
  EXPECT_EQ(segmenter.cut("北京大学"), Words({"北京大学"}));
  const jieba::Segmenter moved = std::move(segmenter);
  EXPECT_EQ(moved.cut("大学 北京", false), Words({"大学", " ", "北京"}));
}

TEST_F(JiebaTables, EnvironmentVariableNamesTheDefaultDirectory) {
  const char* configured = std::getenv("ATTNKIT_JIEBA_DIR");
  const std::string saved = configured != nullptr ? configured : "";
  ::setenv("ATTNKIT_JIEBA_DIR", path().c_str(), 1);
  EXPECT_EQ(jieba::default_directory(), path());
  EXPECT_EQ(jieba::Segmenter().cut("北京大学"), Words({"北京大学"}));
  if (configured != nullptr) {
    ::setenv("ATTNKIT_JIEBA_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("ATTNKIT_JIEBA_DIR");
    EXPECT_EQ(jieba::default_directory(), "/usr/lib/python3/dist-packages/jieba");
  }
}

TEST_F(JiebaTables, MissingFilesAreNamed) {
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter(path() + "/absent"), path() + "/absent/dict.txt");
  fs::remove(directory_ / "finalseg/prob_trans.py");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "finalseg/prob_trans.py");
}

TEST_F(JiebaTables, MalformedDictionaryLinesAreNamed) {
  write("dict.txt", "北京 10 ns\n大学 ten n\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "dict.txt line 2: the frequency 'ten' is not a non-negative 64-bit integer");
  write("dict.txt", "北京 10 ns\n\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "dict.txt line 2: expected 'word frequency [tag]'");
  write("dict.txt", "北京\xff 10 ns\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "dict.txt line 1: invalid UTF-8");
}

TEST_F(JiebaTables, MalformedHmmTablesAreNamed) {
  write("finalseg/prob_start.py", "P={'B': -0.26, 'E': -3.14e+100, 'M': -3.14e+100}\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "prob_start.py: no start probability for state S");
  write("finalseg/prob_start.py", "P={'B': -0.26,\n 'X': -1.0}\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "prob_start.py line 2: expected {state: log probability}");
  write("finalseg/prob_start.py", "P={'B': -0.26, 'E': -3.14e+100, 'M': -3.14e+100, 'S': -1.47}\n");
  write("finalseg/prob_emit.py", "P={'B': {'\\u5317': -3.0},\n 'E': {'\\u4e': -3.5}}\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "prob_emit.py line 2: malformed \\u escape");
  write("finalseg/prob_emit.py", "P={'B': {'\\u5317': -3.0},\n 'E': {'\\u4eac': high}}\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "prob_emit.py line 2: expected a number");
  write("finalseg/prob_emit.py", "P={'B': {'\\u5317': -3.0},\n 'E': {'\\u4eac': -3.5}\n");
  EXPECT_ATTNKIT_ERROR(jieba::Segmenter{path()}, "prob_emit.py line 3: expected '}'");
}

}  // namespace
}  // namespace attnkit
