// GPT-2's pre-tokenization pattern by hand; see gpt2_pretokenize.h.
//
// The pattern's alternatives are tried in order at each position, as a
// backtracking regex engine would, decoding UTF-8 as they go; that fixes the
// corner cases:
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

// The code point (U+FFFD for an invalid byte), class and byte length of the
// character at text[i].
struct Unit {
  uint32_t cp;
  CharClass cls;
  size_t len;
};

inline Unit unit_at(std::string_view text, size_t i) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return {c, char_class(c), 1};
  uint32_t cp = 0;
  int n = utf8_sequence(text, i, cp);
  if (n == 0) return {0xFFFD, CharClass::Other, 1};
  return {cp, char_class(cp), size_t(n)};
}

// Bytes matched by 's|'t|'re|'ve|'m|'ll|'d at text[i] (0 when none). The
// letters are ASCII, so comparing bytes is comparing characters.
size_t contraction(std::string_view t, size_t i) {
  if (t[i] != '\'' || i + 1 >= t.size()) return 0;
  char a = t[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= t.size()) return 0;
  char b = t[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// The end (byte offset) of the piece that starts at text[i]: the first
// alternative of the pattern that matches there.
size_t piece_end(std::string_view t, size_t i) {
  const size_t n = t.size();
  if (size_t c = contraction(t, i)) return i + c;
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': a run of one class, after at
  // most one leading U+0020.
  size_t start = (t[i] == ' ' && i + 1 < n) ? i + 1 : i;
  Unit u = unit_at(t, start);
  if (u.cls != CharClass::Space) {
    size_t j = start + u.len;
    while (j < n) {
      Unit v = unit_at(t, j);
      if (v.cls != u.cls) break;
      j += v.len;
    }
    return j;
  }
  // '\s+(?!\S)' then '\s+': the whitespace run, less its last character when
  // a non-space follows and the run has more than one.
  size_t j = i, last = i;
  while (j < n) {
    Unit v = unit_at(t, j);
    if (v.cls != CharClass::Space) break;
    last = j;
    j += v.len;
  }
  return (j < n && last != i) ? last : j;
}

}  // namespace

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces) {
  for (size_t i = 0; i < text.size();) {
    size_t e = piece_end(text, i);
    pieces.push_back(text.substr(i, e - i));
    i = e;
  }
}

}  // namespace lldl
