// The fortune(6) databases as a text corpus for character-level and BPE
// language models. Debian's fortunes-min / fortunes package installs them
// under /usr/share/games/fortunes: plain-text files whose entries are separated
// by lines holding just '%', each with a binary index (*.dat) and a *.u8
// symlink beside it; the offensive ones live in the subdirectory off/.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lldl {

inline constexpr const char* kFortunesDir = "/usr/share/games/fortunes";

// Every entry of every plain-text fortune file in `dir` (not *.dat, not *.u8,
// not hidden files, not subdirectories), files in sorted name order, entries
// in file order. An entry is the text between two '%' lines without the
// newline that ends its last line; "\r\n" line ends are accepted around the
// '%' separator. Empty entries are dropped.
// A missing dir, a dir without fortune files or an unreadable file -> ValueError
// naming the path.
std::vector<std::string> load_fortunes(const std::string& dir = kFortunesDir);

// Separator placed after every entry of a corpus text: the fortune file format,
// so that "%" on its own line marks the end of an entry for a language model.
inline constexpr const char* kEntrySeparator = "\n%\n";

// Train/validation texts. Each text is its entries, in their original order,
// each followed by kEntrySeparator.
struct TextSplit {
  std::string train, val;
};

// Splits by entry: a Fisher-Yates shuffle with lldl::Rng(seed) picks the
// ceil(val_fraction * n) validation entries, the others go to train.
// Empty `entries` -> ValueError "empty corpus"; val_fraction outside (0, 1) or
// a split that would leave a part empty -> ValueError naming the sizes.
TextSplit split_corpus(const std::vector<std::string>& entries, double val_fraction, uint64_t seed);

// The entries of a corpus text made by split_corpus (the inverse of the join
// for entries that hold no '%'-only line, which is every entry load_fortunes
// returns).
std::vector<std::string> corpus_entries(const std::string& text);

}  // namespace lldl
