// GPT-2's tokenizer: the byte table, BPE by merge ranks with a per-piece
// cache, special tokens, encode and decode. The file loaders are in
// gpt2_files.cpp.
#include "text/gpt2_tokenizer.h"

#include <climits>
#include <mutex>

#include "core/error.h"
#include "text/bpe.h"
#include "text/gpt2_pretokenize.h"

namespace lldl {

// Encoded pieces. Text repeats its words, so most pieces are found here; the
// map is emptied when it reaches kMaxEntries, which bounds its memory.
struct Gpt2Cache {
  static constexpr size_t kMaxEntries = 1 << 16;
  static constexpr size_t kMaxPiece = 64;  // longer pieces are rare: not cached
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
};

uint32_t gpt2_byte_to_unicode(unsigned char b) {
  // Printable bytes stand for themselves; the n-th other byte for U+0100 + n.
  auto printable = [](unsigned c) { return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE; };
  if (printable(b)) return b;
  uint32_t n = 0;
  for (unsigned c = 0; c < b; ++c) n += printable(c) ? 0 : 1;
  return 256 + n;
}

Gpt2Tokenizer::Gpt2Tokenizer() : cache_(std::make_unique<Gpt2Cache>()) {
  cache_->map.reserve(Gpt2Cache::kMaxEntries);
  for (int32_t& id : byte_id_) id = -1;
}
Gpt2Tokenizer::Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept = default;
Gpt2Tokenizer& Gpt2Tokenizer::operator=(Gpt2Tokenizer&&) noexcept = default;
Gpt2Tokenizer::~Gpt2Tokenizer() = default;

int32_t Gpt2Tokenizer::token_id(std::string_view bytes) const {
  auto it = ids_.find(std::string(bytes));
  return it == ids_.end() ? -1 : it->second;
}

const std::string& Gpt2Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !used_[size_t(id)])
    throw ValueError("GPT2Tokenizer: id " + std::to_string(id) + " is not in the vocabulary (size " +
                     std::to_string(vocab_size()) + ")");
  return tokens_[size_t(id)];
}

// Merges the adjacent pair of lowest rank, leftmost first, until none is
// left. rank[i] caches the rank of (sym[i], sym[i+1]); a merge changes only
// its two neighbours' entries.
void Gpt2Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  thread_local std::vector<int32_t> sym, rank, merged;
  sym.clear();
  for (unsigned char c : piece) {
    if (byte_id_[c] < 0)
      throw ValueError("GPT2Tokenizer.encode: byte " + std::to_string(int(c)) + " has no token in the vocabulary");
    sym.push_back(byte_id_[c]);
  }
  auto pair_rank = [&](size_t i, int32_t& id) {
    const PairMerge* m = merges_.find(bpe_pair_key(sym[i], sym[i + 1]));
    if (!m) return INT_MAX;
    id = m->id;
    return m->rank;
  };
  rank.assign(sym.size(), INT_MAX);
  merged.assign(sym.size(), -1);
  for (size_t i = 0; i + 1 < sym.size(); ++i) rank[i] = pair_rank(i, merged[i]);
  while (sym.size() > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < sym.size(); ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT_MAX) break;
    sym[best] = merged[best];
    sym.erase(sym.begin() + std::ptrdiff_t(best) + 1);
    rank.erase(rank.begin() + std::ptrdiff_t(best) + 1);
    merged.erase(merged.begin() + std::ptrdiff_t(best) + 1);
    rank[best] = best + 1 < sym.size() ? pair_rank(best, merged[best]) : INT_MAX;
    if (best > 0) rank[best - 1] = pair_rank(best - 1, merged[best - 1]);
  }
  out.insert(out.end(), sym.begin(), sym.end());
}

// tiktoken's shortcut (a piece that is a token is that token), then BPE.
void Gpt2Tokenizer::encode_uncached(std::string_view piece, std::vector<int32_t>& out) const {
  if (whole_piece_) {
    auto it = ids_.find(std::string(piece));
    if (it != ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  bpe(piece, out);
}

void Gpt2Tokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1 || piece.size() > Gpt2Cache::kMaxPiece) {
    encode_uncached(piece, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->map.find(piece);
    if (it != cache_->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t from = out.size();
  encode_uncached(piece, out);
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->map.size() >= Gpt2Cache::kMaxEntries) cache_->map.clear();
  cache_->map.emplace(std::string(piece), std::vector<int32_t>(out.begin() + std::ptrdiff_t(from), out.end()));
}

std::vector<int32_t> Gpt2Tokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 16);  // about 3.5 bytes a token in English
  std::vector<std::string_view> pieces;
  pieces.reserve(text.size() / 3 + 16);
  gpt2_pretokenize(text, pieces);
  for (std::string_view p : pieces) encode_piece(p, out);
  return out;
}

std::vector<int32_t> Gpt2Tokenizer::encode(std::string_view text) const {
  if (special_.empty()) return encode_ordinary(text);
  std::vector<int32_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    // The leftmost special token from pos, the longest among those there.
    size_t at = std::string_view::npos, best = 0;
    for (size_t k = 0; k < special_.size(); ++k) {
      size_t f = text.find(special_[k].first, pos);
      if (f < at || (f == at && f != std::string_view::npos && special_[k].first.size() > special_[best].first.size())) {
        at = f;
        best = k;
      }
    }
    std::string_view plain = text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos);
    std::vector<int32_t> part = encode_ordinary(plain);
    out.insert(out.end(), part.begin(), part.end());
    if (at == std::string_view::npos) break;
    out.push_back(special_[best].second);
    pos = at + special_[best].first.size();
  }
  return out;
}

std::string Gpt2Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t id = ids[i];
    if (id < 0 || id >= vocab_size() || !used_[size_t(id)])
      throw ValueError("GPT2Tokenizer.decode: id " + std::to_string(id) + " at position " + std::to_string(i) +
                       " is not in the vocabulary (size " + std::to_string(vocab_size()) + ")");
    out += tokens_[size_t(id)];
  }
  return out;
}

}  // namespace lldl
