// The CSV reader (RFC 4180, see data.h) and the labelled reviews read through it.
//
// One pass over the bytes of the file: a field is either quoted (it starts with '"' and ends at
// the next '"' that is not doubled) or unquoted (it runs to the next comma or line end; a '"'
// inside it is an ordinary character, as Python's csv module reads it). Lines are counted by
// their LF so that every error can name the line it is on; a CR outside quotes must begin a
// CRLF (a file with CR line ends is an error rather than one long row).
#include <algorithm>
#include <charconv>
#include <cstdio>

#include "attnkit/data.h"
#include "attnkit/error.h"
#include "attnkit/safetensors.h"
#include "attnkit/utf8.h"

namespace attnkit::data {
namespace {

std::string where(const std::string& path, std::int64_t line) {
  return "'" + path + "', line " + std::to_string(line);
}

class CsvParser {
 public:
  CsvParser(const std::string& path, const std::string& file) : path_(path), file_(file) {
    if (file_.compare(0, 3, "\xEF\xBB\xBF") == 0) at_ = 3;  // the UTF-8 byte order mark
  }

  bool at_end() const { return at_ == file_.size(); }
  std::int64_t line() const { return line_; }

  // Steps over blank lines (a lone LF or CRLF); true when it did.
  bool skip_blank_lines() {
    bool skipped = false;
    for (;;) {
      if (file_.compare(at_, 1, "\n") == 0) {
        at_ += 1;
      } else if (file_.compare(at_, 2, "\r\n") == 0) {
        at_ += 2;
      } else {
        return skipped;
      }
      ++line_;
      skipped = true;
    }
  }

  // The fields of the row that starts here; leaves the position after its line end.
  std::vector<std::string> read_row() {
    std::vector<std::string> row;
    for (;;) {
      row.push_back(read_field(row.size() + 1));
      if (at_end()) return row;
      if (file_[at_] == ',') {
        ++at_;
        continue;
      }
      at_ += file_[at_] == '\r' ? 2 : 1;  // read_field stops only at ',' or a whole LF or CRLF
      ++line_;
      return row;
    }
  }

 private:
  std::string read_field(std::size_t number) {
    const std::int64_t first_line = line_;
    std::string field = at_ < file_.size() && file_[at_] == '"' ? read_quoted(number) : read_unquoted();
    const std::size_t invalid = utf8::find_invalid(field);
    if (invalid != std::string::npos) {
      const auto newlines = std::count(field.begin(), field.begin() + static_cast<std::ptrdiff_t>(invalid), '\n');
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(field[invalid]));
      ATTNKIT_FAIL(where(path_, first_line + newlines), ", field ", number, ": invalid UTF-8 (byte ", byte, ")");
    }
    return field;
  }

  std::string read_unquoted() {
    std::size_t end = file_.find_first_of(",\r\n", at_);
    if (end == std::string::npos) end = file_.size();
    ATTNKIT_CHECK(file_[end] != '\r' || (end + 1 < file_.size() && file_[end + 1] == '\n'), where(path_, line_),
                  ": a carriage return that is not followed by a line feed (lines must end in LF or CRLF)");
    std::string field = file_.substr(at_, end - at_);
    at_ = end;
    return field;
  }

  std::string read_quoted(std::size_t number) {
    const std::int64_t opening_line = line_;
    std::string field;
    ++at_;  // the opening quote
    for (;;) {
      const std::size_t quote = file_.find('"', at_);
      ATTNKIT_CHECK(quote != std::string::npos, where(path_, opening_line), ", field ", number,
                    ": unterminated quote (the quoted field that opens here has no closing quote)");
      line_ += std::count(file_.begin() + static_cast<std::ptrdiff_t>(at_),
                          file_.begin() + static_cast<std::ptrdiff_t>(quote), '\n');
      field.append(file_, at_, quote - at_);
      at_ = quote + 1;
      if (at_ < file_.size() && file_[at_] == '"') {  // a doubled quote stands for one
        field += '"';
        ++at_;
        continue;
      }
      break;
    }
    const bool at_field_end = at_end() || file_[at_] == ',' || file_[at_] == '\n' ||
                              file_.compare(at_, 2, "\r\n") == 0;
    ATTNKIT_CHECK(at_field_end, where(path_, line_), ", field ", number,
                  ": text after a closing quote (a quote inside a quoted field must be doubled)");
    return field;
  }

  const std::string& path_;
  const std::string& file_;
  std::size_t at_ = 0;
  std::int64_t line_ = 1;
};

std::string ascii_lower(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

}  // namespace

std::size_t column_of(const CsvTable& table, const std::string& path, const std::string& name) {
  const auto named = [&](const std::string& column) { return ascii_lower(column) == name; };
  const auto found = std::find_if(table.header.begin(), table.header.end(), named);
  std::string columns;
  for (const std::string& column : table.header) columns += (columns.empty() ? "" : ", ") + column;
  ATTNKIT_CHECK(found != table.header.end(), "'", path, "' has no column '", name, "' (its columns: ", columns, ")");
  ATTNKIT_CHECK(std::find_if(found + 1, table.header.end(), named) == table.header.end(), "'", path,
                "' has two columns '", name, "' (", columns, ")");
  return static_cast<std::size_t>(found - table.header.begin());
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

CsvTable parse_csv(const std::string& file, const std::string& path) {
  CsvParser parser(path, file);
  ATTNKIT_CHECK(!parser.at_end(), "'", path, "' is empty: a CSV starts with its header row");
  CsvTable table;
  table.header = parser.read_row();
  const bool skip_blank = table.header.size() > 1;
  while (!parser.at_end()) {
    if (skip_blank && parser.skip_blank_lines()) continue;
    const std::int64_t line = parser.line();
    std::vector<std::string> row = parser.read_row();
    ATTNKIT_CHECK(row.size() == table.header.size(), where(path, line), ": the row has ", row.size(),
                  row.size() == 1 ? " field" : " fields", ", the header has ", table.header.size());
    table.rows.push_back(std::move(row));
    table.row_lines.push_back(line);
  }
  return table;
}

LabelledTexts read_labelled_csv(const std::string& path, int classes) {
  ATTNKIT_CHECK(classes >= 1, "read_labelled_csv: classes must be at least 1, got ", classes);
  CsvTable table = read_csv(path);
  const std::size_t label_column = column_of(table, path, "label");
  const std::size_t review_column = column_of(table, path, "review");
  LabelledTexts result;
  result.labels.reserve(table.rows.size());
  result.texts.reserve(table.rows.size());
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const std::string& text = table.rows[r][label_column];
    int label = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), label);
    ATTNKIT_CHECK(error == std::errc() && end == text.data() + text.size() && !text.empty() && label >= 0 &&
                      label < classes,
                  where(path, table.row_lines[r]), ": the label '", text, "' is not an integer in [0, ", classes, ")");
    result.labels.push_back(label);
    result.texts.push_back(std::move(table.rows[r][review_column]));
  }
  return result;
}

}  // namespace attnkit::data
