// attnkit/jieba.h: Chinese word segmentation that gives the same words as the Python package
// jieba (jieba.lcut), from the dictionary and HMM tables jieba ships.
//
// The algorithm is jieba's: the text is split into blocks of Han characters, ASCII letters and
// digits, and a few symbols, and everything else; within a block, the dictionary gives a DAG of
// candidate words and the route of maximum total log frequency is taken; runs of single
// characters not in the dictionary go, with the HMM on, to a 4-state (B, M, E, S) Viterbi
// decoder. Text outside the blocks becomes one word per character, except that "\r\n" stays
// together.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace attnkit::jieba {

// Where jieba's files are: $ATTNKIT_JIEBA_DIR when set, else Debian's python3-jieba
// (/usr/lib/python3/dist-packages/jieba).
std::string default_directory();

class Segmenter {
 public:
  // Loads dict.txt and finalseg/prob_{start,trans,emit}.py from `directory`; a missing or
  // malformed file is an attnkit::Error naming the file (and the line).
  explicit Segmenter(const std::string& directory = default_directory());
  ~Segmenter();
  Segmenter(Segmenter&&) noexcept;
  Segmenter& operator=(Segmenter&&) noexcept;

  // jieba.lcut(text, HMM=hmm) for UTF-8 text; invalid UTF-8 is an attnkit::Error.
  std::vector<std::string> cut(const std::string& text, bool hmm = true) const;

 private:
  struct Tables;
  std::unique_ptr<Tables> tables_;
};

}  // namespace attnkit::jieba
