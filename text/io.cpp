#include "text/io.h"

#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace lldl {

std::string read_file(const std::string& path, const char* what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ValueError(std::string(what) + ": cannot read " + path + " (missing or unreadable)");
  std::string out;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, got);
  bool failed = std::ferror(f) != 0;  // e.g. EISDIR for a directory
  std::fclose(f);
  if (failed) throw ValueError(std::string(what) + ": error while reading " + path);
  return out;
}

void write_file(const std::string& path, const std::string& content, const char* what) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw ValueError(std::string(what) + ": cannot open " + path + " for writing");
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  f.close();
  if (!f) throw ValueError(std::string(what) + ": error while writing " + path);
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string byte_repr(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + char(c) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", unsigned(c));
  return buf;
}

}  // namespace lldl
