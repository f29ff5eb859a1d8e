// The loaders of Gpt2Tokenizer: vocab.json (a small reader of its own, so that
// every error names a line), merges.txt, tiktoken ranks files and Hugging Face
// tokenizer directories (tokenizer.json and the special-token maps through
// nlohmann::json). See gpt2_tokenizer.h for the formats.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <filesystem>

#include "core/error.h"
#include "text/bpe.h"
#include "text/gpt2_pretokenize.h"
#include "text/gpt2_tokenizer.h"
#include "text/io.h"

namespace lldl {

namespace {

[[noreturn]] void fail(const std::string& path, size_t line, const std::string& msg) {
  throw ValueError("GPT2Tokenizer: " + path + (line ? ":" + std::to_string(line) : "") + ": " + msg);
}

// The bytes a token text of vocab.json or merges.txt stands for: each
// character of the byte table is its byte, any other keeps its UTF-8.
std::string token_text_bytes(std::string_view text) {
  static const std::vector<int> inverse = [] {
    std::vector<int> v(324, -1);
    for (int b = 0; b < 256; ++b) v[gpt2_byte_to_unicode(static_cast<unsigned char>(b))] = b;
    return v;
  }();
  std::string out;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    int n = utf8_sequence(text, i, cp);
    if (n == 0) n = 1, cp = UINT32_MAX;
    if (cp < inverse.size() && inverse[cp] >= 0) out += char(inverse[cp]);
    else out.append(text.substr(i, size_t(n)));
    i += size_t(n);
  }
  return out;
}

// Shows a token's text in a message.
std::string show_token(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? byte_repr(c) : std::string(1, char(c));
  return out + "'";
}

// A reader for vocab.json: one JSON object of string keys and integer values.
struct VocabReader {
  const std::string& path;
  std::string_view s;
  size_t i = 0, line = 1;

  [[noreturn]] void error(const std::string& msg) { fail(path, line, "malformed vocab.json: " + msg); }
  void space() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) line += s[i++] == '\n';
  }
  void expect(char c) {
    space();
    if (i >= s.size() || s[i] != c)
      error(std::string("expected '") + c + "', found " + (i < s.size() ? byte_repr(uint8_t(s[i])) : "end of file"));
    ++i;
  }
  uint32_t hex4() {
    if (i + 4 > s.size()) error("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) error("bad \\u escape");
      v = v * 16 + uint32_t(d);
    }
    return v;
  }
  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
    else if (cp < 0x10000) out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    else out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
  }
  uint32_t escape_u() {
    uint32_t cp = hex4();
    if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
      if (i + 6 > s.size() || s[i] != '\\' || s[i + 1] != 'u') error("unpaired surrogate escape");
      i += 2;
      uint32_t lo = hex4();
      if (lo < 0xDC00 || lo > 0xDFFF) error("unpaired surrogate escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      error("unpaired surrogate escape");
    }
    return cp;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i >= s.size()) error("unterminated string");
      char c = s[i++];
      if (c == '"') return out;
      if (c == '\n' || uint8_t(c) < 0x20) error("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) error("unterminated string");
      char e = s[i++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': put_utf8(out, escape_u()); break;
        default: error(std::string("bad escape \\") + e);
      }
    }
  }
  int32_t integer() {
    space();
    size_t start = i;
    int64_t v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && v <= INT32_MAX) v = v * 10 + (s[i++] - '0');
    if (i == start) error("expected a non-negative integer id");
    if (v > INT32_MAX) error("id too large");
    if (i < s.size() && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) error("id is not an integer");
    return int32_t(v);
  }
};

}  // namespace

// Fills a tokenizer's private tables from the files.
struct Gpt2Loader {
  static void vocab(Gpt2Tokenizer& t, const std::string& path) {
    std::string text = read_file(path, "GPT2Tokenizer");
    VocabReader r{path, text};
    std::vector<std::pair<std::string, int32_t>> entries;
    r.expect('{');
    r.space();
    if (r.i < text.size() && text[r.i] == '}') {
      ++r.i;
    } else {
      while (true) {
        std::string key = r.string();
        r.expect(':');
        int32_t id = r.integer();
        if (id >= (1 << 24)) r.error("id " + std::to_string(id) + " is implausibly large");
        t.set_token(id, token_text_bytes(key), path + ":" + std::to_string(r.line));
        r.space();
        if (r.i < text.size() && text[r.i] == ',') { ++r.i; continue; }
        r.expect('}');
        break;
      }
    }
    r.space();
    if (r.i != text.size()) r.error("data after the object");
  }

  static void merges(Gpt2Tokenizer& t, const std::string& path) {
    std::string text = read_file(path, "GPT2Tokenizer");
    size_t line = 0, pos = 0;
    int32_t rank = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string_view l(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      ++line;
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      if (line == 1 && l.substr(0, 8) == "#version") continue;
      size_t sp = l.find(' ');
      if (l.empty() || sp == 0 || sp == std::string_view::npos || sp + 1 == l.size() || l.find(' ', sp + 1) != std::string_view::npos)
        fail(path, line, "expected two tokens separated by one space, got " + show_token(l));
      std::string a = token_text_bytes(l.substr(0, sp)), b = token_text_bytes(l.substr(sp + 1));
      int32_t ia = t.token_id(a), ib = t.token_id(b), iab = t.token_id(a + b);
      for (auto [id, what] : {std::pair{ia, l.substr(0, sp)}, std::pair{ib, l.substr(sp + 1)}})
        if (id < 0) fail(path, line, "token " + show_token(what) + " is not in vocab.json");
      if (iab < 0) fail(path, line, "the merged token " + show_token(std::string(l.substr(0, sp)) + std::string(l.substr(sp + 1))) + " is not in vocab.json");
      if (!t.merges_.insert(bpe_pair_key(ia, ib), PairMerge{rank, iab}))
        fail(path, line, "merge " + show_token(l) + " is given twice");
      ++rank;
    }
  }
};

Gpt2Tokenizer Gpt2Tokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt,
                                        const std::vector<std::string>& special) {
  Gpt2Tokenizer t;
  Gpt2Loader::vocab(t, vocab_json);
  Gpt2Loader::merges(t, merges_txt);
  t.add_special(special);
  t.finish(vocab_json);
  return t;
}

}  // namespace lldl
