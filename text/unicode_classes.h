// The Unicode classes of GPT-2's pre-tokenization pattern (\p{L}, \p{N}, \s)
// for any code point, from the range table that text/gen_unicode_classes.py
// generates into text/unicode_classes.cpp.
#pragma once
#include <cstdint>

namespace lldl {

enum class CharClass : uint8_t { Other, Letter, Number, Space };

struct UnicodeRange {
  uint32_t first, last;
  CharClass cls;
};

extern const char* const kUnicodeVersion;       // of the table, e.g. "14.0.0"
extern const UnicodeRange kUnicodeRanges[];     // sorted, disjoint
extern const int kUnicodeRangeCount;

// The class of code point cp (Other for anything outside 0..0x10FFFF).
CharClass char_class(uint32_t cp);

}  // namespace lldl
