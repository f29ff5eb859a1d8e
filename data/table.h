// Reading a numeric table from a text file, gzip-compressed or plain.
//
// One row per line, fields separated by spaces, tabs or commas; blank lines
// are skipped. Every field must be a finite number and every row must have
// the same number of columns. Failures raise ValueError naming the file, the
// line and what was wrong.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lldl {

struct NumericTable {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // row-major, rows x cols
};

// Reads `path` through zlib (a gzip file is decompressed; a plain text file
// is read as is). expected_cols > 0 makes any other column count an error.
NumericTable read_table(const std::string& path, int64_t expected_cols = 0);

}  // namespace lldl
