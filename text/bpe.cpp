// BpeTokenizer: pre-split, encode, decode and the file format (training is in
// bpe_train.cpp).
#include "text/bpe.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "core/error.h"
#include "text/io.h"

namespace lldl {

namespace {

enum Class { kLetter, kDigit, kSpace, kOtherSpace, kPunct };

Class byte_class(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return kLetter;
  if (c >= '0' && c <= '9') return kDigit;
  if (c == ' ') return kSpace;
  if (c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return kOtherSpace;
  return kPunct;
}

constexpr const char* kBpeHeader = "lldl-bpe v1";
constexpr int kMaxMerges = 1 << 24;

std::string hex16(uint64_t h) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// A decimal int in [0, limit) that fills all of `s`, or -1.
int64_t parse_id(std::string_view s, int64_t limit) {
  if (s.empty() || s.size() > 9) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v < limit ? v : -1;
}

}  // namespace

std::vector<std::string_view> BpeTokenizer::chunks(std::string_view text) {
  std::vector<std::string_view> out;
  size_t n = text.size(), i = 0;
  auto cls = [&](size_t k) { return byte_class(static_cast<unsigned char>(text[k])); };
  while (i < n) {
    size_t start = i;
    Class c = cls(i);
    if (c == kSpace && i + 1 < n && cls(i + 1) != kSpace && cls(i + 1) != kOtherSpace) {
      c = cls(i + 1);  // " word": the space leads the run after it
      i += 1;
    }
    while (i < n && i - start < size_t(kMaxChunk) && cls(i) == c) ++i;
    // A run of spaces leaves its last space to a following word.
    if (c == kSpace && i < n && i - start > 1 && cls(i) != kSpace && cls(i) != kOtherSpace) --i;
    out.emplace_back(text.data() + start, i - start);
  }
  return out;
}

BpeTokenizer::BpeTokenizer() {
  tokens_.reserve(256);
  for (int c = 0; c < 256; ++c) tokens_.emplace_back(1, static_cast<char>(c));
}

void BpeTokenizer::add_merge(int32_t a, int32_t b) {
  rank_.emplace(bpe_pair_key(a, b), static_cast<int32_t>(merges_.size()));
  merges_.emplace_back(a, b);
  tokens_.push_back(tokens_[size_t(a)] + tokens_[size_t(b)]);
}

void BpeTokenizer::encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const {
  std::vector<int32_t> sym(chunk.size());
  for (size_t i = 0; i < chunk.size(); ++i) sym[i] = static_cast<unsigned char>(chunk[i]);
  while (sym.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = rank_.find(bpe_pair_key(sym[i], sym[i + 1]));
      if (it != rank_.end() && it->second < best) best = it->second;
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    auto [a, b] = merges_[size_t(best)];
    int32_t z = 256 + best;
    size_t w = 0;
    for (size_t r = 0; r < sym.size();) {
      if (r + 1 < sym.size() && sym[r] == a && sym[r + 1] == b) {
        sym[w++] = z;
        r += 2;
      } else {
        sym[w++] = sym[r++];
      }
    }
    sym.resize(w);
  }
  out.insert(out.end(), sym.begin(), sym.end());
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 2 + 1);
  // Natural text repeats its words: encode each distinct chunk once per call.
  std::unordered_map<std::string_view, std::vector<int32_t>> cache;
  for (std::string_view c : chunks(text)) {
    auto it = cache.find(c);
    if (it == cache.end()) {
      std::vector<int32_t> ids;
      encode_chunk(c, ids);
      it = cache.emplace(c, std::move(ids)).first;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size())
      throw ValueError("BpeTokenizer.decode: id " + std::to_string(ids[i]) + " at position " +
                       std::to_string(i) + " is out of range [0, " + std::to_string(vocab_size()) + ")");
    out += tokens_[size_t(ids[i])];
  }
  return out;
}

const std::string& BpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw ValueError("BpeTokenizer.token_bytes: id " + std::to_string(id) + " is out of range [0, " +
                     std::to_string(vocab_size()) + ")");
  return tokens_[size_t(id)];
}

void BpeTokenizer::save(const std::string& path) const {
  std::string body;
  for (size_t i = 0; i < merges_.size(); ++i) {
    if (i) body += '\n';
    body += std::to_string(merges_[i].first) + " " + std::to_string(merges_[i].second);
  }
  std::string text = std::string(kBpeHeader) + "\nmerges " + std::to_string(merges_.size()) + "\n" +
                     body + (merges_.empty() ? "" : "\n") + "end " + hex16(fnv1a64(body)) + "\n";
  write_file(path, text, "BpeTokenizer.save");
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::string text = read_file(path, "BpeTokenizer.load");
  auto bad = [&](size_t line, const std::string& why) {
    return ValueError("BpeTokenizer.load: " + path + ": line " + std::to_string(line) + ": " + why);
  };
  std::vector<std::string_view> lines;
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos)
      throw bad(lines.size() + 1, "no newline at the end (truncated file)");
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  if (lines.empty()) throw bad(1, "empty file, expected the header '" + std::string(kBpeHeader) + "'");
  if (lines[0] != kBpeHeader) throw bad(1, "not the header '" + std::string(kBpeHeader) + "'");
  if (lines.size() < 2 || lines[1].substr(0, 7) != "merges ")
    throw bad(2, "expected 'merges <count>'");
  int64_t n = parse_id(lines[1].substr(7), kMaxMerges + 1);
  if (n < 0) throw bad(2, "merge count '" + std::string(lines[1].substr(7)) + "' is not a number in 0.." +
                          std::to_string(kMaxMerges));
  if (lines.size() != size_t(n) + 3)
    throw bad(lines.size(), "expected " + std::to_string(n) + " merge lines and an end line, found " +
                                std::to_string(lines.size()) + " lines in all (truncated or corrupt)");
  BpeTokenizer t;
  std::string body;
  for (int64_t i = 0; i < n; ++i) {
    std::string_view l = lines[size_t(i) + 2];
    size_t sp = l.find(' ');
    int64_t limit = 256 + i;
    int64_t a = sp == std::string_view::npos ? -1 : parse_id(l.substr(0, sp), limit);
    int64_t b = sp == std::string_view::npos ? -1 : parse_id(l.substr(sp + 1), limit);
    if (a < 0 || b < 0)
      throw bad(size_t(i) + 3, "'" + std::string(l) + "' is not two ids below " + std::to_string(limit));
    if (t.rank_.count(bpe_pair_key(int32_t(a), int32_t(b))))
      throw bad(size_t(i) + 3, "merge '" + std::string(l) + "' repeats an earlier merge");
    t.add_merge(int32_t(a), int32_t(b));
    if (i) body += '\n';
    body += l;
  }
  if (lines.back() != "end " + hex16(fnv1a64(body)))
    throw bad(lines.size(), "the end line does not match the merges' checksum (corrupt file)");
  return t;
}

}  // namespace lldl
