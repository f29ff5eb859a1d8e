// Byte-level byte-pair encoding (BPE), GPT-2 style: the 256 byte values are
// ids 0..255 and every learned merge (a, b) adds the id 256 + its rank, whose
// bytes are those of a followed by those of b. Decoding concatenates bytes, so
// any byte string round-trips (invalid UTF-8, NUL and "" included).
//
// Pre-split. Merges never cross chunk boundaries; text is cut into chunks
// (a simplified form of GPT-2's regex, on bytes):
//   classes: letter (A-Z, a-z and every byte >= 0x80, so UTF-8 stays inside
//   words), digit (0-9), space (' '), other whitespace (\t \n \v \f \r) and
//   punctuation (everything else, NUL and control bytes included);
//   a chunk is a maximal run of one class, except that a single ' ' before a
//   letter, digit or punctuation run joins that run (" the", " 42", " --"), as
//   in GPT-2 where a run of spaces gives its last space to the next word;
//   chunks are at most kMaxChunk bytes (longer runs are cut), which bounds the
//   cost of encoding one chunk.
// encode() uses the same split, then in each chunk repeatedly merges the
// adjacent pair of lowest rank (all its occurrences, left to right).
//
// File format (text, written by save):
//   lldl-bpe v1
//   merges <N>
//   <a> <b>          N lines, decimal ids; line i (from 0) defines id 256 + i,
//                    and a, b must be < 256 + i
//   end <fnv1a64 of the N merge lines joined with '\n', 16 hex digits>
// load rejects anything else (wrong header, bad numbers, forward references,
// a missing or wrong end line, trailing data) with a ValueError naming the path
// and the line: a truncated or corrupt file never loads silently.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lldl {

class BpeTokenizer {
 public:
  static constexpr int kMaxChunk = 64;

  // Learns vocab_size - 256 merges from `corpus`: each step merges the most
  // frequent adjacent pair over the corpus's chunks (weighted by how often
  // each distinct chunk occurs); ties go to the smallest (a, b). Pair counts
  // are updated incrementally, touching only the chunks that hold the merged
  // pair. Stops early when no pair is left (every chunk is one token), so
  // vocab_size() may end up below the request.
  // Empty corpus or vocab_size < 256 -> ValueError.
  static BpeTokenizer train(const std::string& corpus, int vocab_size);

  std::vector<int32_t> encode(const std::string& text) const;
  // ids outside [0, vocab_size()) -> ValueError naming the id and its position.
  std::string decode(const std::vector<int32_t>& ids) const;
  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  // The bytes of token `id` (ValueError when out of range).
  const std::string& token_bytes(int32_t id) const;
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

  void save(const std::string& path) const;
  static BpeTokenizer load(const std::string& path);

  // The pre-split chunks of `text` (views into it); exposed for tests.
  static std::vector<std::string_view> chunks(std::string_view text);

 private:
  BpeTokenizer();
  void add_merge(int32_t a, int32_t b);
  void encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const;

  std::vector<std::pair<int32_t, int32_t>> merges_;  // rank -> (a, b)
  std::vector<std::string> tokens_;                   // id -> bytes
  std::unordered_map<uint64_t, int32_t> rank_;        // pair key -> rank
};

// The key of pair (a, b) in rank_ and the trainer's count maps.
inline uint64_t bpe_pair_key(int32_t a, int32_t b) {
  return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

}  // namespace lldl
