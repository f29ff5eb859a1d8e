// GPT-2's pre-tokenization pattern by hand; see gpt2_pretokenize.h.
//
// The text is decoded once into units (byte offset, class); the pattern's
// alternatives are then tried in order at each position, as a backtracking
// regex engine would, which fixes the corner cases:
// - contractions are lowercase only ("'S" is "'" then "S");
// - the optional leading space is U+0020 only, not any \s;
// - \s+(?!\S) leaves the last whitespace character of a run that is followed
//   by a non-space for the next piece (" world" keeps its space), and a run of
//   one such character falls through to \s+ alone.
#include "text/gpt2_pretokenize.h"

#include <algorithm>

namespace lldl {

CharClass char_class(uint32_t cp) {
  if (cp < 128) {
    if (cp >= 'a' && cp <= 'z') return CharClass::Letter;
    if (cp >= 'A' && cp <= 'Z') return CharClass::Letter;
    if (cp >= '0' && cp <= '9') return CharClass::Number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::Space;
    return CharClass::Other;
  }
  const UnicodeRange* end = kUnicodeRanges + kUnicodeRangeCount;
  const UnicodeRange* r =
      std::upper_bound(kUnicodeRanges, end, cp, [](uint32_t c, const UnicodeRange& x) { return c < x.first; });
  if (r == kUnicodeRanges) return CharClass::Other;
  --r;
  return cp <= r->last ? r->cls : CharClass::Other;
}

int utf8_sequence(std::string_view s, size_t i, uint32_t& cp) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  int n;
  uint32_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + size_t(n) > s.size()) return 0;
  for (int k = 1; k < n; ++k) {
    unsigned char b = at(i + size_t(k));
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return n;
}

namespace {

struct Unit {
  uint32_t offset;  // byte offset in the text
  uint32_t cp;      // code point (0xFFFD for an invalid byte)
  CharClass cls;
};

void decode_units(std::string_view text, std::vector<Unit>& units) {
  units.clear();
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    int n = utf8_sequence(text, i, cp);
    if (n == 0) {
      units.push_back({uint32_t(i), 0xFFFD, CharClass::Other});
      i += 1;
    } else {
      units.push_back({uint32_t(i), cp, char_class(cp)});
      i += size_t(n);
    }
  }
}

// Units matched by 's|'t|'re|'ve|'m|'ll|'d at u[i] (0 when none).
size_t contraction(const std::vector<Unit>& u, size_t i) {
  if (u[i].cp != '\'' || i + 1 >= u.size()) return 0;
  uint32_t a = u[i + 1].cp;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= u.size()) return 0;
  uint32_t b = u[i + 2].cp;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Units matched at u[i] by the first alternative that matches; never 0.
size_t match_at(const std::vector<Unit>& u, size_t i) {
  const size_t n = u.size();
  if (size_t c = contraction(u, i)) return c;
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': a run of one class, after at
  // most one leading U+0020.
  size_t start = i + ((u[i].cp == ' ' && i + 1 < n) ? 1 : 0);
  CharClass k = u[start].cls;
  if (k != CharClass::Space) {
    size_t j = start + 1;
    while (j < n && u[j].cls == k) ++j;
    return j - i;
  }
  // '\s+(?!\S)' then '\s+': the whitespace run, less its last unit when a
  // non-space follows and the run has more than one.
  size_t j = i + 1;
  while (j < n && u[j].cls == CharClass::Space) ++j;
  if (j < n && j - i > 1) return j - i - 1;
  return j - i;
}

}  // namespace

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
  thread_local std::vector<Unit> units;
  decode_units(text, units);
  const size_t n = units.size();
  for (size_t i = 0; i < n;) {
    size_t len = match_at(units, i);
    size_t b = units[i].offset, e = i + len < n ? units[i + len].offset : text.size();
    pieces.push_back(text.substr(b, e - b));
    i += len;
  }
}

}  // namespace lldl
