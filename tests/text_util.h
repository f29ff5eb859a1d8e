// Helpers for the text tests: a scratch directory, the fortunes corpus loaded
// once, seeded random byte strings and exception-message checks.
#pragma once
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "text/fortunes.h"

namespace lldl::text_test {

// A fresh empty directory under the system temp dir, removed at scope exit.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& tag) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("lldl_text_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The installed fortunes, loaded once, and their seed-1 10% split.
inline const std::vector<std::string>& fortunes() {
  static const std::vector<std::string> e = load_fortunes();
  return e;
}
inline const TextSplit& fortunes_split() {
  static const TextSplit s = split_corpus(fortunes(), 0.1, 1);
  return s;
}

// n uniformly random bytes (all 256 values, so NUL and invalid UTF-8 appear).
inline std::string random_bytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

// Runs f, which must throw E; returns the message ("" and a failed check if not).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception");
  return "";
}

}  // namespace lldl::text_test
