// GPT-2's pre-tokenization: the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matched leftmost-first over UTF-8 text, by hand instead of with a regex
// engine. BPE merges never cross the pieces it cuts.
//
// Invalid UTF-8. Text is bytes; a byte that does not begin a well-formed UTF-8
// sequence (per Python's strict decoder: no overlongs, no surrogates, nothing
// above U+10FFFF, no truncated sequences) is one unit of class Other, the class
// of U+FFFD. So invalid bytes are cut exactly as Hugging Face tokenizers cuts
// the same text with each invalid byte replaced by U+FFFD (a symbol, \p{So}):
// they join runs of punctuation, and a space before them. The pieces keep the
// original bytes, which BPE then encodes byte by byte, so any byte string
// round-trips.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "text/unicode_classes.h"

namespace lldl {

// The length (1..4) of the well-formed UTF-8 sequence at s[i] and its code
// point, or 0 when s[i] does not begin one.
int utf8_sequence(std::string_view s, size_t i, uint32_t& cp);

// Appends the pieces of `text` (views into it, in order, covering it exactly).
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace lldl
