// libFuzzer target: parse_safetensors on arbitrary bytes. A malformed input
// must end in an lldl error; anything else (a crash, a sanitizer report, an
// unexpected exception type) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::map<std::string, std::string> meta;
    std::vector<lldl::StTensor> ts = lldl::parse_safetensors(data, size, &meta);
    // A file that parses must describe exactly the bytes it holds.
    size_t total = 0;
    for (const lldl::StTensor& t : ts) total += t.data.size();
    if (total > size) __builtin_trap();
  } catch (const lldl::ValueError&) {
  }
  try {
    // With halves widened, each stored byte becomes at most two.
    std::vector<lldl::StTensor> ts = lldl::parse_safetensors(data, size, nullptr, lldl::StHalf::WidenToF32);
    size_t total = 0;
    for (const lldl::StTensor& t : ts) total += t.data.size();
    if (total > 2 * size) __builtin_trap();
  } catch (const lldl::ValueError&) {
  }
  return 0;
}
