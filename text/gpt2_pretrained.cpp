// Gpt2Tokenizer's tables (set_token, add_special, finish) and the loaders of
// tiktoken ranks files and Hugging Face tokenizer directories.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "text/bpe.h"
#include "text/gpt2_tokenizer.h"
#include "text/io.h"

namespace lldl {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& msg) {
  throw ValueError("GPT2Tokenizer: " + where + ": " + msg);
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding; false when `s` is not exactly that.
bool base64_decode(std::string_view s, std::string& out) {
  out.clear();
  if (s.empty() || s.size() % 4 != 0) return false;
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i + size_t(k)];
      if (c == '=' && i + 4 == s.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = base64_value(c)) < 0) {
        return false;
      }
    }
    uint32_t w = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    out += char(w >> 16);
    if (pad < 2) out += char((w >> 8) & 0xFF);
    if (pad < 1) out += char(w & 0xFF);
  }
  return true;
}

nlohmann::json read_json(const std::string& path) {
  std::string text = read_file(path, "GPT2Tokenizer");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace

void Gpt2Tokenizer::set_token(int32_t id, std::string bytes, const std::string& where) {
  if (id < 0) fail(where, "negative id " + std::to_string(id));
  if (size_t(id) >= tokens_.size()) {
    tokens_.resize(size_t(id) + 1);
    used_.resize(size_t(id) + 1, false);
  }
  if (used_[size_t(id)]) fail(where, "id " + std::to_string(id) + " is given to two tokens");
  auto [it, fresh] = ids_.emplace(bytes, id);
  if (!fresh) fail(where, "a token is given two ids, " + std::to_string(it->second) + " and " + std::to_string(id));
  tokens_[size_t(id)] = std::move(bytes);
  used_[size_t(id)] = true;
}

void Gpt2Tokenizer::add_special(const std::vector<std::string>& special) {
  for (const std::string& s : special) {
    if (s.empty()) throw ValueError("GPT2Tokenizer: a special token is empty");
    int32_t id = token_id(s);
    if (id < 0) {
      id = vocab_size();
      set_token(id, s, "special token " + s);
    }
    bool known = false;
    for (auto& [text, sid] : special_) known |= text == s;
    if (!known) special_.emplace_back(s, id);
  }
}

void Gpt2Tokenizer::finish(const std::string& where) {
  if (tokens_.empty()) fail(where, "the vocabulary is empty");
  for (int b = 0; b < 256; ++b) byte_id_[b] = token_id(std::string(1, char(b)));
  eot_ = token_id("<|endoftext|>");
}

Gpt2Tokenizer Gpt2Tokenizer::from_tiktoken(const std::string& path, const std::vector<std::string>& special) {
  std::string text = read_file(path, "GPT2Tokenizer");
  Gpt2Tokenizer t;
  t.whole_piece_ = true;
  size_t line = 0, pos = 0;
  std::string bytes;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view l(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    std::string where = path + ":" + std::to_string(++line);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty()) continue;  // tiktoken skips blank lines too
    size_t sp = l.find(' ');
    if (sp == std::string_view::npos) fail(where, "expected '<base64 token> <rank>'");
    if (!base64_decode(l.substr(0, sp), bytes)) fail(where, "bad base64 '" + std::string(l.substr(0, sp)) + "'");
    std::string_view r = l.substr(sp + 1);
    int64_t rank = 0;
    if (r.empty() || r.size() > 9) fail(where, "bad rank '" + std::string(r) + "'");
    for (char c : r) {
      if (c < '0' || c > '9') fail(where, "bad rank '" + std::string(r) + "'");
      rank = rank * 10 + (c - '0');
    }
    if (rank >= (1 << 24)) fail(where, "rank " + std::to_string(rank) + " is implausibly large");
    t.set_token(int32_t(rank), bytes, where);
  }
  // tiktoken merges a pair when the concatenation is a token, at that
  // token's rank: every split of every token into two tokens is a merge.
  for (size_t id = 0; id < t.tokens_.size(); ++id) {
    const std::string& tok = t.tokens_[id];
    if (!t.used_[id]) continue;
    for (size_t k = 1; k < tok.size(); ++k) {
      int32_t a = t.token_id(std::string_view(tok).substr(0, k)), b = t.token_id(std::string_view(tok).substr(k));
      if (a >= 0 && b >= 0) t.merges_.insert(bpe_pair_key(a, b), PairMerge{int32_t(id), int32_t(id)});
    }
  }
  t.add_special(special);
  t.finish(path);
  return t;
}

namespace {

// A special token's text in special_tokens_map.json: "text" or {"content": "text"}.
std::string special_text(const nlohmann::json& v, const std::string& path) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail(path, "expected a token text or {\"content\": ...}, got " + v.dump());
}

}  // namespace

// tokenizer.json's added_tokens: [{"id": N, "content": "...", ...}, ...].
void Gpt2Tokenizer::add_listed(const std::string& content, int64_t id, const std::string& path) {
  if (content.empty() || id < 0 || id >= (1 << 24))
    fail(path, "added token '" + content + "' has a bad id or no content");
  int32_t have = token_id(content);
  if (have >= 0 && have != id)
    fail(path, "added token '" + content + "' has id " + std::to_string(id) + " but vocab.json gives it " +
                   std::to_string(have));
  if (have < 0) set_token(int32_t(id), content, path);
  add_special({content});
}

Gpt2Tokenizer Gpt2Tokenizer::from_pretrained(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw ValueError("GPT2Tokenizer.from_pretrained: " + dir + " is not a directory");
  Gpt2Tokenizer t = from_files((fs::path(dir) / "vocab.json").string(), (fs::path(dir) / "merges.txt").string(), {});
  std::string tj = (fs::path(dir) / "tokenizer.json").string(), at = (fs::path(dir) / "added_tokens.json").string(),
              sm = (fs::path(dir) / "special_tokens_map.json").string();
  std::string path;
  try {
    if (fs::exists(path = tj)) {
      nlohmann::json j = read_json(path);
      if (j.contains("added_tokens"))
        for (const auto& a : j.at("added_tokens")) t.add_listed(a.at("content").get<std::string>(), a.at("id").get<int64_t>(), path);
    } else {
      nlohmann::json j;  // named: items() of a temporary would dangle
      if (fs::exists(path = at) && !(j = read_json(path)).is_null())
        for (const auto& [k, v] : j.items()) t.add_listed(k, v.get<int64_t>(), path);
      if (fs::exists(path = sm) && !(j = read_json(path)).is_null())
        for (const auto& [k, v] : j.items()) {
          std::vector<nlohmann::json> items;  // one token, or a list (additional_special_tokens)
          if (v.is_array()) items = v.get<std::vector<nlohmann::json>>();
          else items.push_back(v);
          for (const auto& x : items) {
            std::string s = special_text(x, path);
            if (t.token_id(s) < 0) fail(path, "special token '" + s + "' (" + k + ") is not in the vocabulary");
            t.add_special({s});
          }
        }
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("unexpected JSON content: ") + e.what());
  }
  if (t.special_.empty() && t.token_id("<|endoftext|>") >= 0) t.add_special({"<|endoftext|>"});
  t.finish(dir);
  return t;
}

}  // namespace lldl
