// GPT-2's tokenizer in C++: the byte table, UTF-8 validation, the Unicode
// classes, the pre-tokenization pattern's corner cases, BPE by rank, and each
// kind of bad file. The comparisons with tokenizers and tiktoken are in
// tests/python/test_gpt2_tokenizer.py.
#include <doctest/doctest.h>

#include <set>

#include "core/error.h"
#include "tests/text_util.h"
#include "text/gpt2_pretokenize.h"
#include "text/gpt2_tokenizer.h"

using namespace lldl;
using lldl::text_test::message_of;
using lldl::text_test::ScratchDir;
using lldl::text_test::write_bytes;

namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string_view> v;
  gpt2_pretokenize(text, v);
  return {v.begin(), v.end()};
}

// The UTF-8 of a code point.
std::string u8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) s += char(cp);
  else if (cp < 0x800) s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
  else s += char(0xE0 | (cp >> 12)), s += char(0x80 | ((cp >> 6) & 0x3F)), s += char(0x80 | (cp & 0x3F));
  return s;
}

// vocab.json of the 256 byte tokens plus `extra` (JSON-escaped texts).
std::string byte_vocab(const std::vector<std::string>& extra) {
  std::string j = "{";
  for (int b = 0; b < 256; ++b) {
    uint32_t cp = gpt2_byte_to_unicode(static_cast<unsigned char>(b));
    std::string t = (cp == '"' || cp == '\\') ? "\\" + u8(cp) : u8(cp);
    j += "\"" + t + "\": " + std::to_string(b) + ",\n";
  }
  for (size_t i = 0; i < extra.size(); ++i) j += "\"" + extra[i] + "\": " + std::to_string(256 + i) + ",\n";
  j.resize(j.size() - 2);
  return j + "}";
}

}  // namespace

TEST_CASE("gpt2 byte table: printable bytes stand for themselves, the 68 others for U+0100..U+0143") {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) seen.insert(gpt2_byte_to_unicode(static_cast<unsigned char>(b)));
  CHECK(seen.size() == 256);
  CHECK(gpt2_byte_to_unicode('a') == 'a');
  CHECK(gpt2_byte_to_unicode(' ') == 0x120);  // GPT-2's 'Ġ'
  CHECK(gpt2_byte_to_unicode('\n') == 0x10A);  // 'Ċ'
  CHECK(gpt2_byte_to_unicode(0xAD) == 0x143);
  CHECK(*seen.rbegin() == 0x143);
}

TEST_CASE("utf8_sequence accepts exactly what a strict decoder accepts") {
  uint32_t cp = 0;
  CHECK(utf8_sequence("\xC3\xA9", 0, cp) == 2);
  CHECK(cp == 0xE9);
  CHECK(utf8_sequence("\xF0\x9F\x98\x80", 0, cp) == 4);
  CHECK(cp == 0x1F600);
  CHECK(utf8_sequence("\xC0\xAF", 0, cp) == 0);          // overlong
  CHECK(utf8_sequence("\xE0\x80\xAF", 0, cp) == 0);      // overlong
  CHECK(utf8_sequence("\xED\xA0\x80", 0, cp) == 0);      // a surrogate
  CHECK(utf8_sequence("\xF4\x90\x80\x80", 0, cp) == 0);  // above U+10FFFF
  CHECK(utf8_sequence("\xE2\x82", 0, cp) == 0);          // truncated
  CHECK(utf8_sequence("\x80", 0, cp) == 0);              // a lone continuation byte
}

TEST_CASE("char_class: letters, numbers and White_Space beyond ASCII") {
  CHECK(char_class(0xE9) == CharClass::Letter);     // é
  CHECK(char_class(0x65E5) == CharClass::Letter);   // 日
  CHECK(char_class(0x0663) == CharClass::Number);   // Arabic-Indic 3
  CHECK(char_class(0x2153) == CharClass::Number);   // ⅓ (No)
  CHECK(char_class(0xA0) == CharClass::Space);      // NBSP
  CHECK(char_class(0x3000) == CharClass::Space);
  CHECK(char_class(0x1C) == CharClass::Other);      // not White_Space, though Python's isspace says so
  CHECK(char_class(0x301) == CharClass::Other);     // a combining mark (Mn)
  CHECK(char_class(0x1F600) == CharClass::Other);   // 😀 (So)
  CHECK(char_class(0x110000) == CharClass::Other);
  CHECK(std::string(kUnicodeVersion) == "14.0.0");
}

TEST_CASE("gpt2 pre-tokenization: contractions, optional space, whitespace runs") {
  using V = std::vector<std::string>;
  CHECK(pieces("Hello world") == V{"Hello", " world"});
  CHECK(pieces("it's they're 'S") == V{"it", "'s", " they", "'re", " '", "S"});
  CHECK(pieces("a  b") == V{"a", " ", " b"});
  CHECK(pieces("a \t b") == V{"a", " \t", " b"});
  CHECK(pieces("a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(pieces("a   ") == V{"a", "   "});
  CHECK(pieces("x1y22 333") == V{"x", "1", "y", "22", " 333"});
  CHECK(pieces("hi!! ?") == V{"hi", "!!", " ?"});
  CHECK(pieces("") == V{});
  // Invalid bytes are symbols: they join punctuation and take a space.
  CHECK(pieces("a \xFF!b") == V{"a", " \xFF!", "b"});
  CHECK(pieces("caf\xE9") == V{"caf", "\xE9"});
}

TEST_CASE("gpt2 BPE merges the lowest rank first and round-trips any bytes") {
  ScratchDir d("gpt2_bpe");
  write_bytes(d.file("vocab.json"), byte_vocab({"\xC4\xA0t", "\xC4\xA0th", "he"}));
  write_bytes(d.file("merges.txt"), "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0t h\nh e\n");
  Gpt2Tokenizer t = Gpt2Tokenizer::from_files(d.file("vocab.json"), d.file("merges.txt"));
  // " the": (Ġ,t) ranks before (h,e), so "Ġth" + "e", not "Ġt" + "he".
  CHECK(t.encode(" the") == std::vector<int32_t>{257, 'e'});
  CHECK(t.encode("he") == std::vector<int32_t>{258});
  CHECK(t.vocab_size() == 260);
  CHECK(t.eot_token() == 259);  // appended: <|endoftext|> was not in vocab.json
  CHECK(t.encode("a<|endoftext|>") == std::vector<int32_t>{'a', 259});
  CHECK(t.encode_ordinary("<|endoftext|>").size() > 1);
  std::string bytes = lldl::text_test::random_bytes(2000, 3);
  CHECK(t.decode(t.encode(bytes)) == bytes);
  CHECK(message_of<ValueError>([&] { t.decode({1, 260}); }).find("id 260 at position 1") != std::string::npos);
}

TEST_CASE("gpt2 tokenizer: each bad file is an error naming the file and line") {
  ScratchDir d("gpt2_bad");
  auto vocab_error = [&](const std::string& vocab) {
    write_bytes(d.file("vocab.json"), vocab);
    write_bytes(d.file("merges.txt"), "");
    return message_of<ValueError>([&] { Gpt2Tokenizer::from_files(d.file("vocab.json"), d.file("merges.txt")); });
  };
  CHECK(vocab_error("{\"a\": 0,\n\"b\": }").find("vocab.json:2: malformed vocab.json") != std::string::npos);
  CHECK(vocab_error("[1, 2]").find("vocab.json:1: malformed vocab.json: expected '{'") != std::string::npos);
  CHECK(vocab_error("{\"a\": 0,\n\n\"a\": 1}").find("vocab.json:3: a token is given two ids") != std::string::npos);
  CHECK(vocab_error("{\"\\ud800\": 0}").find("unpaired surrogate") != std::string::npos);
  CHECK(vocab_error("{\"a\": 99999999999}").find("id too large") != std::string::npos);

  write_bytes(d.file("vocab.json"), byte_vocab({}));
  write_bytes(d.file("merges.txt"), "a b\nq\n");
  CHECK(message_of<ValueError>([&] { Gpt2Tokenizer::from_files(d.file("vocab.json"), d.file("merges.txt")); })
            .find("merges.txt:1: the merged token 'ab' is not in vocab.json") != std::string::npos);
  CHECK(message_of<ValueError>([&] { Gpt2Tokenizer::from_files(d.file("nope.json"), d.file("merges.txt")); })
            .find("cannot read") != std::string::npos);

  write_bytes(d.file("x.tiktoken"), "YQ== 0\nYg== 1\nY*== 2\n");
  CHECK(message_of<ValueError>([&] { Gpt2Tokenizer::from_tiktoken(d.file("x.tiktoken")); })
            .find("x.tiktoken:3: bad base64 'Y*=='") != std::string::npos);
  write_bytes(d.file("x.tiktoken"), "YQ== 0\nYg==\n");
  CHECK(message_of<ValueError>([&] { Gpt2Tokenizer::from_tiktoken(d.file("x.tiktoken")); })
            .find("x.tiktoken:2: expected") != std::string::npos);
}

TEST_CASE("gpt2 tokenizer from tiktoken ranks: merges follow from the ranks, <|endoftext|> comes next") {
  ScratchDir d("gpt2_tiktoken");
  // a=0 b=1 c=2 ab=3 bc=4 abc=5 (base64 of a, b, c, ab, bc, abc)
  write_bytes(d.file("x.tiktoken"), "YQ== 0\nYg== 1\nYw== 2\nYWI= 3\nYmM= 4\nYWJj 5\n");
  Gpt2Tokenizer t = Gpt2Tokenizer::from_tiktoken(d.file("x.tiktoken"));
  CHECK(t.encode("abc") == std::vector<int32_t>{5});
  CHECK(t.encode("abcb") == std::vector<int32_t>{5, 1});  // ab (3) before bc (4), then ab+c = abc
  CHECK(t.encode("bcab") == std::vector<int32_t>{4, 3});
  CHECK(t.eot_token() == 6);
  CHECK(t.vocab_size() == 7);
  CHECK(message_of<ValueError>([&] { t.encode("d"); }).find("byte 100 has no token") != std::string::npos);
}
