// The RFC 4180 reader (data::parse_csv) on any bytes: a table whose rows all have the header's
// fields, or an error.
#include <cstdlib>

#include "attnkit/data.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  attnkit::fuzz::expecting_clear_errors([&] {
    const attnkit::data::CsvTable table = attnkit::data::parse_csv(attnkit::fuzz::text_of(data, size), "fuzz.csv");
    for (const auto& row : table.rows)
      if (row.size() != table.header.size()) std::abort();
    if (table.rows.size() != table.row_lines.size()) std::abort();
  });
  return 0;
}
