// GPT-2's tokenizer, read from the files GPT-2 tokenizers ship: byte-level BPE
// over GPT-2's pre-tokenization pieces (text/gpt2_pretokenize.h), with special
// tokens such as <|endoftext|>. encode/decode give the ids of Hugging Face
// tokenizers' ByteLevel BPE loaded from the same files, and of tiktoken with
// GPT-2's ranks.
//
// Byte-to-unicode. vocab.json and merges.txt write each token's bytes as
// characters: the 188 printable bytes (! .. ~, ¡ .. ¬, ® .. ÿ) stand for
// themselves, the other 68 bytes for U+0100, U+0101, ... in byte order, so
// that no token text holds a space or a control character.
//
// BPE. A piece starts as one token per byte; the adjacent pair of lowest rank
// is merged (leftmost first on ties) until no pair has a rank. Ranks come from
// merges.txt (line order) or, for a tiktoken file, from the ranks themselves:
// pair (a, b) has the rank of the token a+b when there is one, as in tiktoken.
// Encoded pieces are cached per tokenizer (thread-safe, bounded).
//
// Special tokens are matched in the text before pre-tokenization, leftmost
// and then longest, and give their id whatever surrounds them (as in
// tokenizers; tiktoken's encode(..., allowed_special="all")).
// encode_ordinary treats them as plain text.
//
// Files (each error is a ValueError naming the file, and the line when there
// is one):
//   vocab.json   a JSON object {token text: id}, ids distinct and >= 0
//   merges.txt   optional "#version" first line, then one "a b" per line;
//                a, b and a+b must be in vocab.json
//   *.tiktoken   "<base64 token bytes> <rank>" per line (tiktoken's format,
//                e.g. whisper's gpt2.tiktoken); <|endoftext|> gets the id one
//                past the largest rank (50256 for GPT-2)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "text/pair_table.h"

namespace lldl {

struct Gpt2Cache;  // the per-piece cache (gpt2_tokenizer.cpp)

// GPT-2's byte-to-unicode table: the code point that stands for byte b.
uint32_t gpt2_byte_to_unicode(unsigned char b);

class Gpt2Tokenizer {
 public:
  // vocab.json + merges.txt. `special` lists special tokens: each one in the
  // vocabulary keeps its id, any other is appended with the next free id.
  static Gpt2Tokenizer from_files(const std::string& vocab_json, const std::string& merges_txt,
                                  const std::vector<std::string>& special = {"<|endoftext|>"});
  // A Hugging Face tokenizer directory: vocab.json + merges.txt, with the added
  // tokens of tokenizer.json when present, else of added_tokens.json and
  // special_tokens_map.json when present, else <|endoftext|> when in vocab.
  static Gpt2Tokenizer from_pretrained(const std::string& dir);
  // A tiktoken ranks file; `special` get ids from one past the largest rank.
  static Gpt2Tokenizer from_tiktoken(const std::string& path,
                                     const std::vector<std::string>& special = {"<|endoftext|>"});

  std::vector<int32_t> encode(std::string_view text) const;           // special tokens recognised
  std::vector<int32_t> encode_ordinary(std::string_view text) const;  // special tokens as text
  // ids outside the vocabulary -> ValueError naming the id and its position.
  std::string decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const { return static_cast<int>(tokens_.size()); }  // largest id + 1
  int32_t eot_token() const { return eot_; }  // id of <|endoftext|>, -1 when absent
  int32_t token_id(std::string_view bytes) const;  // -1 when not a token
  const std::string& token_bytes(int32_t id) const;
  const std::vector<std::pair<std::string, int32_t>>& special_tokens() const { return special_; }

  Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept;
  Gpt2Tokenizer& operator=(Gpt2Tokenizer&&) noexcept;
  ~Gpt2Tokenizer();

 private:
  Gpt2Tokenizer();
  using Merge = PairMerge;
  void set_token(int32_t id, std::string bytes, const std::string& where);
  void add_special(const std::vector<std::string>& special);
  void add_listed(const std::string& content, int64_t id, const std::string& path);
  void finish(const std::string& where);  // byte ids, eot
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_uncached(std::string_view piece, std::vector<int32_t>& out) const;
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;                // id -> bytes ("" for an unused id)
  std::vector<bool> used_;                         // id is a token
  std::unordered_map<std::string, int32_t> ids_;   // bytes -> id
  PairTable merges_;                               // pair key -> (rank, merged id)
  std::vector<std::pair<std::string, int32_t>> special_;
  int32_t byte_id_[256];
  int32_t eot_ = -1;
  bool whole_piece_ = false;  // tiktoken's shortcut: a piece that is a token is encoded as it
  std::unique_ptr<Gpt2Cache> cache_;

  friend struct Gpt2Loader;
};

}  // namespace lldl
