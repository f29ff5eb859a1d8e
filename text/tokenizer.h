// Character-level tokenizers: one token per byte. Text is a byte string
// (std::string); UTF-8 is not decoded, so a multi-byte character is several
// tokens and any byte string, invalid UTF-8 and NUL included, round-trips.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lldl {

// Every byte 0..255 is its own id: vocab_size() == 256, nothing to learn.
struct ByteTokenizer {
  std::vector<int32_t> encode(const std::string& text) const;
  // ids outside [0, 256) -> ValueError naming the id and its position.
  std::string decode(const std::vector<int32_t>& ids) const;
  int vocab_size() const { return 256; }
};

// The distinct bytes of a corpus, sorted, numbered 0..vocab_size()-1.
//
// File format (text, written by save):
//   lldl-char-tokenizer v1
//   <count>
//   <count two-digit hex bytes, space separated, strictly increasing>
//   end <fnv1a64 of the byte list line, 16 hex digits>
// load checks each line, so a corrupt or truncated file is a ValueError
// naming the path and the line.
class CharTokenizer {
 public:
  // Empty corpus -> ValueError "empty corpus".
  explicit CharTokenizer(const std::string& corpus);

  // A byte the corpus never held -> ValueError naming the byte ('a' or \xNN)
  // and its position in `text`.
  std::vector<int32_t> encode(const std::string& text) const;
  // ids outside [0, vocab_size()) -> ValueError naming the id and its position.
  std::string decode(const std::vector<int32_t>& ids) const;
  int vocab_size() const { return static_cast<int>(bytes_.size()); }
  // The vocabulary: bytes_[id] is the byte of token id.
  const std::string& vocab() const { return bytes_; }

  void save(const std::string& path) const;
  static CharTokenizer load(const std::string& path);

 private:
  CharTokenizer() = default;
  void index();  // fills id_ from bytes_
  std::string bytes_;                // sorted distinct bytes
  std::array<int32_t, 256> id_{};    // byte -> id, -1 when absent
};

}  // namespace lldl
