// Text data: the fortune corpus, its train/val split, the character
// tokenizers (byte and corpus-built) and the random training windows.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "core/error.h"
#include "tests/text_util.h"
#include "text/tokenizer.h"
#include "text/windows.h"

using namespace lldl;
using namespace lldl::text_test;

namespace {

bool has_percent_line(const std::string& entry) {
  size_t pos = 0;
  while (pos <= entry.size()) {
    size_t nl = entry.find('\n', pos);
    std::string line = entry.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "%") return true;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return false;
}

}  // namespace

// ---- fortunes -----------------------------------------------------------------

TEST_CASE("load_fortunes reads the installed fortunes, split on '%' lines, deterministically") {
  const auto& e = fortunes();
  CHECK(e.size() > 1000);
  size_t bytes = 0;
  for (const std::string& s : e) {
    CHECK_MESSAGE(!s.empty(), "an empty entry was kept");
    CHECK_MESSAGE(!has_percent_line(s), "entry holds a '%' line: " << s);
    bytes += s.size();
  }
  CHECK(bytes > 1000000);  // the Debian fortunes are a few MB
  CHECK(load_fortunes(kFortunesDir) == e);
}

TEST_CASE("load_fortunes takes only the plain-text files, in name order") {
  ScratchDir d("fortunes");
  write_bytes(d.file("b"), "x\n%\ny\r\n%\r\n");  // CRLF separators are accepted too
  write_bytes(d.file("a"), "first\n%\nsecond line\nmore\n\n%\n%\n100%\n%");
  write_bytes(d.file("a.dat"), std::string("\0\0\0\2%\n%\nDAT", 11));
  std::filesystem::create_symlink("a", d.path / "a.u8");
  std::filesystem::create_directory(d.path / "off");
  write_bytes(d.file("off/rude"), "offensive\n%\n");
  write_bytes(d.file(".hidden"), "hidden\n%\n");
  std::vector<std::string> want = {"first", "second line\nmore\n", "100%", "x", "y"};
  CHECK(load_fortunes(d.path.string()) == want);
}

TEST_CASE("load_fortunes names the path of a missing dir, an empty dir or an unreadable file") {
  ScratchDir d("fortunes_bad");
  std::string missing = d.file("nope");
  CHECK(message_of<ValueError>([&] { load_fortunes(missing); }).find(missing) != std::string::npos);
  std::string msg = message_of<ValueError>([&] { load_fortunes(d.path.string()); });
  CHECK(msg.find("no fortune files") != std::string::npos);
  CHECK(msg.find(d.path.string()) != std::string::npos);
  write_bytes(d.file("ok"), "fine\n%\n");
  std::filesystem::create_symlink(d.file("gone"), d.path / "dangling");  // cannot be opened
  msg = message_of<ValueError>([&] { load_fortunes(d.path.string()); });
  CHECK(msg.find(d.file("dangling")) != std::string::npos);
}

// ---- split_corpus ---------------------------------------------------------------

TEST_CASE("split_corpus is disjoint, covers every entry and keeps their order") {
  const auto& e = fortunes();
  TextSplit s = split_corpus(e, 0.1, 7);
  std::vector<std::string> tr = corpus_entries(s.train), va = corpus_entries(s.val);
  CHECK(va.size() == size_t(std::ceil(0.1 * double(e.size()))));
  CHECK(tr.size() + va.size() == e.size());
  // Merging the two ordered parts by original index restores the entry list.
  std::vector<std::string> all = tr;
  all.insert(all.end(), va.begin(), va.end());
  std::vector<std::string> a = all, b = e;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  CHECK(a == b);
  // Each part is a subsequence of the original order.
  for (const auto* part : {&tr, &va}) {
    size_t j = 0;
    for (const std::string& x : *part) {
      while (j < e.size() && e[j] != x) ++j;
      CHECK_MESSAGE(j < e.size(), "entry out of order");
      ++j;
    }
  }
  CHECK(s.train.size() + s.val.size() ==
        std::accumulate(e.begin(), e.end(), size_t(0),
                        [](size_t n, const std::string& x) { return n + x.size() + 3; }));
  CHECK(s.train.substr(s.train.size() - 3) == "\n%\n");
}

TEST_CASE("split_corpus is seeded: same seed same split, another seed another") {
  const auto& e = fortunes();
  TextSplit a = split_corpus(e, 0.2, 3), b = split_corpus(e, 0.2, 3), c = split_corpus(e, 0.2, 4);
  CHECK(a.train == b.train);
  CHECK(a.val == b.val);
  CHECK(a.val != c.val);
}

TEST_CASE("split_corpus refuses an empty corpus and fractions that leave a part empty") {
  CHECK(message_of<ValueError>([] { split_corpus({}, 0.1, 0); }).find("empty corpus") != std::string::npos);
  for (double f : {0.0, 1.0, -0.5, 1.5, std::nan("")})
    CHECK(message_of<ValueError>([&] { split_corpus({"a", "b"}, f, 0); }).find("(0, 1)") !=
          std::string::npos);
  CHECK(message_of<ValueError>([] { split_corpus({"only"}, 0.5, 0); }).find("no training entry") !=
        std::string::npos);
}

// ---- ByteTokenizer --------------------------------------------------------------

TEST_CASE("ByteTokenizer maps each byte to its value and back, for any bytes") {
  ByteTokenizer t;
  CHECK(t.vocab_size() == 256);
  std::string s = random_bytes(5000, 11);
  std::vector<int32_t> ids = t.encode(s);
  REQUIRE(ids.size() == s.size());
  for (size_t i = 0; i < s.size(); ++i) CHECK(ids[i] == int32_t(static_cast<unsigned char>(s[i])));
  CHECK(t.decode(ids) == s);
  CHECK(t.decode(t.encode(fortunes_split().val)) == fortunes_split().val);
  CHECK(t.encode("").empty());
  CHECK(t.decode({}).empty());
}

TEST_CASE("ByteTokenizer.decode names an out-of-range id and its position") {
  ByteTokenizer t;
  std::string msg = message_of<ValueError>([&] { t.decode({65, 256}); });
  CHECK(msg.find("id 256 at position 1") != std::string::npos);
  msg = message_of<ValueError>([&] { t.decode({-1}); });
  CHECK(msg.find("id -1 at position 0") != std::string::npos);
}

// ---- CharTokenizer --------------------------------------------------------------

TEST_CASE("CharTokenizer's vocabulary is the corpus's distinct bytes, sorted") {
  CharTokenizer t(std::string("banana\0\xff", 8));
  CHECK(t.vocab_size() == 5);
  CHECK(t.vocab() == std::string("\0abn\xff", 5));
  CHECK(t.encode("nab") == std::vector<int32_t>{3, 1, 2});
  const std::string& train = fortunes_split().train;
  CharTokenizer f(train);
  std::set<char> distinct(train.begin(), train.end());
  CHECK(size_t(f.vocab_size()) == distinct.size());
  CHECK(f.decode(f.encode(train)) == train);
}

TEST_CASE("CharTokenizer round-trips random bytes with NUL and invalid UTF-8") {
  std::string s = random_bytes(20000, 5);  // holds every byte value with near certainty
  CharTokenizer t(s);
  CHECK(t.vocab_size() == 256);
  CHECK(t.decode(t.encode(s)) == s);
  std::string bad_utf8("\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc\0\0", 10);
  CHECK(t.decode(t.encode(bad_utf8)) == bad_utf8);
}

TEST_CASE("CharTokenizer rejects unseen bytes, out-of-range ids and an empty corpus") {
  CharTokenizer t("abc");
  std::string msg = message_of<ValueError>([&] { t.encode("abz"); });
  CHECK(msg.find("'z'") != std::string::npos);
  CHECK(msg.find("position 2") != std::string::npos);
  msg = message_of<ValueError>([&] { t.encode(std::string("a\0", 2)); });
  CHECK(msg.find("\\x00") != std::string::npos);
  CHECK(msg.find("position 1") != std::string::npos);
  msg = message_of<ValueError>([&] { t.encode("\xe9"); });
  CHECK(msg.find("\\xE9") != std::string::npos);
  msg = message_of<ValueError>([&] { t.decode({0, 1, 3}); });
  CHECK(msg.find("id 3 at position 2") != std::string::npos);
  CHECK(message_of<ValueError>([] { CharTokenizer(""); }).find("empty corpus") != std::string::npos);
}

TEST_CASE("CharTokenizer save/load round trip") {
  ScratchDir d("char");
  CharTokenizer t(std::string("hello\0world\xfe\n", 13));
  t.save(d.file("v.txt"));
  CharTokenizer u = CharTokenizer::load(d.file("v.txt"));
  CHECK(u.vocab() == t.vocab());
  std::string s("world\0hello\n\xfe", 13);
  CHECK(u.encode(s) == t.encode(s));
}

TEST_CASE("CharTokenizer.load rejects missing, truncated and corrupt files, naming the path") {
  ScratchDir d("char_bad");
  std::string p = d.file("v.txt");
  CHECK(message_of<ValueError>([&] { CharTokenizer::load(p); }).find(p) != std::string::npos);
  CharTokenizer("the quick brown fox").save(p);
  const std::string good = read_bytes(p);
  std::vector<std::pair<std::string, std::string>> cases = {
      {"", "4 newline-terminated lines"},
      {good.substr(0, good.size() / 2), "truncated"},
      {good.substr(0, good.size() - 1), "truncated"},
      {"lldl-char-tokenizer v2" + good.substr(good.find('\n')), "header"},
  };
  std::string flipped = good;  // a byte of the list changed: "20" (space) -> "21"
  flipped[flipped.find("20 ")+1] = '1';
  cases.push_back({flipped, "checksum"});
  std::string unsorted = good;
  std::swap(unsorted[unsorted.find("20 ")], unsorted[unsorted.find("20 ") + 3]);
  std::swap(unsorted[unsorted.find("20 ") + 1], unsorted[unsorted.find("20 ") + 4]);
  cases.push_back({unsorted, "increasing"});
  std::string count = good;
  count[count.find('\n') + 1] = '9';
  cases.push_back({count, "line"});
  for (const auto& [text, what] : cases) {
    write_bytes(p, text);
    std::string msg = message_of<ValueError>([&] { CharTokenizer::load(p); });
    CHECK_MESSAGE(msg.find(p) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(what) != std::string::npos, "expected '" << what << "' in: " << msg);
  }
}

// ---- TokenWindows ---------------------------------------------------------------

TEST_CASE("TokenWindows: targets are the inputs shifted by one, starts cover (0, n-T-1)") {
  const int n = 20, T = 5, B = 64;
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), 100);
  TokenWindows w(tokens, 9);
  std::vector<int32_t> x, y;
  std::set<int32_t> starts;
  for (int rep = 0; rep < 40; ++rep) {
    w.sample(B, T, x, y);
    REQUIRE(x.size() == size_t(B * T));
    for (int b = 0; b < B; ++b) {
      int32_t s = x[size_t(b) * T] - 100;
      CHECK(s >= 0);
      CHECK(s <= n - T - 1);
      starts.insert(s);
      for (int t = 0; t < T; ++t) {
        CHECK(x[size_t(b) * T + t] == 100 + s + t);
        CHECK(y[size_t(b) * T + t] == 100 + s + t + 1);
      }
    }
  }
  CHECK(starts.size() == size_t(n - T));  // every start, both ends included
}

TEST_CASE("TokenWindows is seeded") {
  std::vector<int32_t> tokens = ByteTokenizer().encode(fortunes_split().val);
  TokenWindows a(tokens, 1), b(tokens, 1), c(tokens, 2);
  std::vector<int32_t> xa(4 * 32), ya(4 * 32), xb(4 * 32), yb(4 * 32), xc(4 * 32), yc(4 * 32);
  a.sample(4, 32, xa.data(), ya.data());
  b.sample(4, 32, xb.data(), yb.data());
  c.sample(4, 32, xc.data(), yc.data());
  CHECK(xa == xb);
  CHECK(ya == yb);
  CHECK(xa != xc);
}

TEST_CASE("TokenWindows refuses streams too short for a window, naming the sizes") {
  TokenWindows w(std::vector<int32_t>(5, 1), 0);
  int32_t x[10], y[10];
  std::string msg = message_of<ValueError>([&] { w.sample(2, 5, x, y); });
  CHECK(msg.find("5 tokens") != std::string::npos);
  CHECK(msg.find("T 5") != std::string::npos);
  CHECK_NOTHROW(w.sample(2, 4, x, y));
  CHECK(x[0] == 1);
  CHECK(message_of<ValueError>([&] { w.sample(0, 2, x, y); }).find("B 0") != std::string::npos);
  CHECK(message_of<ValueError>([&] { w.sample(1, 0, x, y); }).find("T 0") != std::string::npos);
}

TEST_CASE("TokenWindows: sample_rows gives the rows of the whole batch, ranks' slices tile it") {
  std::vector<int32_t> tokens(200);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i * 7 % 113);
  TokenWindows all(tokens, 5), r0(tokens, 5), r1(tokens, 5);
  std::vector<int32_t> x, y, x0(2 * 8), y0(2 * 8), x1(2 * 8), y1(2 * 8);
  for (int step = 0; step < 3; ++step) {
    all.sample(4, 8, x, y);
    r0.sample_rows(4, 8, 0, 2, x0.data(), y0.data());
    r1.sample_rows(4, 8, 2, 2, x1.data(), y1.data());
    CHECK(std::equal(x0.begin(), x0.end(), x.begin()));
    CHECK(std::equal(x1.begin(), x1.end(), x.begin() + 16));
    CHECK(std::equal(y1.begin(), y1.end(), y.begin() + 16));
  }
  CHECK_THROWS_AS(r0.sample_rows(4, 8, 3, 2, x0.data(), y0.data()), ValueError);
}
