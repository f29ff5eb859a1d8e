#include "data/table.h"

#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/error.h"

namespace lldl {

namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// The whole decompressed file. zlib reports a truncated or corrupt gzip
// stream through gzerror, which is checked once reading stops.
std::string read_all(const std::string& path) {
  errno = 0;
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f)
    throw ValueError("read_table: cannot open '" + path + "': " +
                     (errno ? std::strerror(errno) : "out of memory"));
  std::string text;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(f.get(), buf, sizeof buf);
    if (n > 0) text.append(buf, static_cast<size_t>(n));
    if (n < static_cast<int>(sizeof buf)) break;
  }
  int err = Z_OK;
  const char* msg = gzerror(f.get(), &err);
  if (err != Z_OK && err != Z_STREAM_END) {
    // gzerror's text starts with the path again; keep only the reason.
    std::string why = msg ? msg : "unknown error";
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
    throw ValueError("read_table: '" + path + "' is truncated or corrupt (zlib: " + why + ")");
  }
  return text;
}

bool is_sep(char c) { return c == ' ' || c == '\t' || c == ',' || c == '\r'; }

}  // namespace

NumericTable read_table(const std::string& path, int64_t expected_cols) {
  const std::string text = read_all(path);
  if (text.find('\0') != std::string::npos)
    throw ValueError("read_table: '" + path + "' holds binary data, not a text table");
  NumericTable t;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    int64_t cols = 0;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_sep(line[i])) ++i;
      if (i == line.size()) break;
      size_t j = i;
      while (j < line.size() && !is_sep(line[j])) ++j;
      std::string_view field = line.substr(i, j - i);
      float v = 0;
      auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
      if (ec != std::errc() || p != field.data() + field.size() || !std::isfinite(v))
        throw ValueError("read_table: '" + path + "' line " + std::to_string(line_no) +
                         ", column " + std::to_string(cols + 1) + ": '" + std::string(field) +
                         "' is not a finite number");
      t.values.push_back(v);
      ++cols;
      i = j;
    }
    if (cols == 0) continue;  // blank line
    int64_t want = t.rows ? t.cols : expected_cols;
    if (want > 0 && cols != want)
      throw ValueError("read_table: '" + path + "' line " + std::to_string(line_no) + " has " +
                       std::to_string(cols) + " columns, expected " + std::to_string(want));
    t.cols = cols;
    ++t.rows;
  }
  if (t.rows == 0) throw ValueError("read_table: '" + path + "' holds no rows");
  return t;
}

}  // namespace lldl
