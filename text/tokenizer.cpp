#include "text/tokenizer.h"

#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "text/io.h"

namespace lldl {

namespace {

[[noreturn]] void bad_id(const char* who, int32_t id, size_t pos, int vocab) {
  throw ValueError(std::string(who) + ".decode: id " + std::to_string(id) + " at position " +
                   std::to_string(pos) + " is out of range [0, " + std::to_string(vocab) + ")");
}

constexpr const char* kCharHeader = "lldl-char-tokenizer v1";

std::string hex16(uint64_t h) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= 256) bad_id("ByteTokenizer", ids[i], i, 256);
    out[i] = static_cast<char>(ids[i]);
  }
  return out;
}

CharTokenizer::CharTokenizer(const std::string& corpus) {
  if (corpus.empty()) throw ValueError("CharTokenizer: empty corpus");
  bool seen[256] = {};
  for (unsigned char c : corpus) seen[c] = true;
  for (int c = 0; c < 256; ++c)
    if (seen[c]) bytes_.push_back(static_cast<char>(c));
  index();
}

void CharTokenizer::index() {
  id_.fill(-1);
  for (size_t i = 0; i < bytes_.size(); ++i) id_[static_cast<unsigned char>(bytes_[i])] = int32_t(i);
}

std::vector<int32_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (id_[c] < 0)
      throw ValueError("CharTokenizer.encode: byte " + byte_repr(c) + " at position " +
                       std::to_string(i) + " is not in the vocabulary (" +
                       std::to_string(bytes_.size()) + " bytes seen in the corpus)");
    ids[i] = id_[c];
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size()) bad_id("CharTokenizer", ids[i], i, vocab_size());
    out[i] = bytes_[static_cast<size_t>(ids[i])];
  }
  return out;
}

void CharTokenizer::save(const std::string& path) const {
  std::string list;
  for (size_t i = 0; i < bytes_.size(); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", unsigned(static_cast<unsigned char>(bytes_[i])));
    if (i) list += ' ';
    list += buf;
  }
  std::string text = std::string(kCharHeader) + "\n" + std::to_string(bytes_.size()) + "\n" + list +
                     "\nend " + hex16(fnv1a64(list)) + "\n";
  write_file(path, text, "CharTokenizer.save");
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  std::string text = read_file(path, "CharTokenizer.load");
  auto bad = [&](const std::string& why) -> ValueError {
    return ValueError("CharTokenizer.load: " + path + ": " + why);
  };
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (text.empty() || text.back() != '\n' || lines.size() != 4)
    throw bad("expected 4 newline-terminated lines (header, count, bytes, end), found " +
              std::to_string(lines.size()) + (text.empty() || text.back() == '\n' ? "" : " (truncated)"));
  if (lines[0] != kCharHeader) throw bad("line 1 is not the header '" + std::string(kCharHeader) + "'");
  int count = 0;
  {
    const std::string& s = lines[1];
    if (s.empty() || s.size() > 3 || s.find_first_not_of("0123456789") != std::string::npos)
      throw bad("line 2: count '" + s + "' is not a number");
    count = std::stoi(s);
    if (count < 1 || count > 256) throw bad("line 2: count " + s + " is not in 1..256");
  }
  const std::string& list = lines[2];
  if (list.size() != size_t(count) * 3 - 1)
    throw bad("line 3: expected " + std::to_string(count) + " hex bytes");
  CharTokenizer t;
  int prev = -1;
  for (int i = 0; i < count; ++i) {
    std::string h = list.substr(size_t(i) * 3, 2);
    if (h.find_first_not_of("0123456789abcdef") != std::string::npos ||
        (i + 1 < count && list[size_t(i) * 3 + 2] != ' '))
      throw bad("line 3: byte " + std::to_string(i) + " ('" + h + "') is not two hex digits");
    int v = std::stoi(h, nullptr, 16);
    if (v <= prev) throw bad("line 3: bytes are not strictly increasing at byte " + std::to_string(i));
    prev = v;
    t.bytes_.push_back(static_cast<char>(v));
  }
  if (lines[3] != "end " + hex16(fnv1a64(list)))
    throw bad("line 4: checksum line does not match the byte list (corrupt file)");
  t.index();
  return t;
}

}  // namespace lldl
