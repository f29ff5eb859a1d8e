// Writes the seed corpus for fuzz_safetensors into the directory argv[1]:
// every handcrafted malformed file of the test suite plus valid files.
#include <cstdio>
#include <string>

#include "tests/st_corpus.h"

static bool write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  int n = 0;
  for (const lldl::StCorruptCase& c : lldl::st_corrupt_cases())
    if (!write_file(dir + "/bad_" + std::to_string(n++), c.bytes)) return 1;
  if (!write_file(dir + "/valid_0", lldl::st_valid_file())) return 1;
  if (!write_file(dir + "/valid_empty", lldl::st_file("{}      ", {}))) return 1;
  if (!write_file(dir + "/valid_half", lldl::st_valid_half_file())) return 1;
  std::printf("wrote %d seed files to %s\n", n + 3, dir.c_str());
  return 0;
}
