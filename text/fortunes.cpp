#include "text/fortunes.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <system_error>

#include "core/error.h"
#include "core/rng.h"
#include "text/io.h"

namespace lldl {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const char* suffix) {
  std::string_view x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

// Splits one fortune file on lines that hold just '%' (or "%\r").
void split_entries(const std::string& text, std::vector<std::string>& out) {
  std::string entry;
  size_t pos = 0;
  auto flush = [&] {
    // The newline that ends the entry's last line belongs to the separator.
    if (!entry.empty() && entry.back() == '\n') entry.pop_back();
    if (!entry.empty() && entry.back() == '\r') entry.pop_back();
    if (!entry.empty()) out.push_back(std::move(entry));
    entry.clear();
  };
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    std::string_view line(text.data() + pos, end - pos);
    std::string_view bare = line;
    while (!bare.empty() && (bare.back() == '\n' || bare.back() == '\r')) bare.remove_suffix(1);
    if (bare == "%")
      flush();
    else
      entry.append(line);
    pos = end;
  }
  flush();
}

}  // namespace

std::vector<std::string> load_fortunes(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw ValueError("load_fortunes: " + dir + " is not a directory (missing? on Debian install "
                     "the package fortunes-min or fortunes)");
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec);
  if (ec) throw ValueError("load_fortunes: cannot list " + dir + " (" + ec.message() + ")");
  for (const fs::directory_entry& e : it) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || ends_with(name, ".dat") || ends_with(name, ".u8")) continue;
    if (e.is_directory(ec)) continue;  // off/ and other subdirectories
    names.push_back(name);
  }
  if (names.empty()) throw ValueError("load_fortunes: no fortune files in " + dir);
  std::sort(names.begin(), names.end());
  std::vector<std::string> entries;
  for (const std::string& name : names) {
    std::string path = (fs::path(dir) / name).string();
    split_entries(read_file(path, "load_fortunes"), entries);
  }
  if (entries.empty()) throw ValueError("load_fortunes: the files in " + dir + " hold no entries");
  return entries;
}

TextSplit split_corpus(const std::vector<std::string>& entries, double val_fraction, uint64_t seed) {
  if (entries.empty()) throw ValueError("split_corpus: empty corpus");
  if (!(val_fraction > 0.0 && val_fraction < 1.0))
    throw ValueError("split_corpus: val_fraction " + std::to_string(val_fraction) +
                     " must lie in (0, 1)");
  size_t n = entries.size();
  size_t n_val = static_cast<size_t>(std::ceil(val_fraction * static_cast<double>(n)));
  if (n_val >= n)
    throw ValueError("split_corpus: " + std::to_string(n) + " entries with val_fraction " +
                     std::to_string(val_fraction) + " leave no training entry");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  Rng rng(seed);
  for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  std::vector<char> is_val(n, 0);
  for (size_t i = 0; i < n_val; ++i) is_val[order[i]] = 1;
  TextSplit s;
  for (size_t i = 0; i < n; ++i) {
    std::string& dst = is_val[i] ? s.val : s.train;
    dst += entries[i];
    dst += kEntrySeparator;
  }
  return s;
}

std::vector<std::string> corpus_entries(const std::string& text) {
  std::vector<std::string> out;
  std::string_view sep(kEntrySeparator);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t at = text.find(sep, pos);
    if (at == std::string::npos) {
      out.push_back(text.substr(pos));
      break;
    }
    out.push_back(text.substr(pos, at - pos));
    pos = at + sep.size();
  }
  return out;
}

}  // namespace lldl
