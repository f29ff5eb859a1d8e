// Internal to io/: the validated header of a safetensors file, shared by the
// file loader and the in-memory parser.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/safetensors.h"

namespace lldl::st {

// How a tensor is stored: as its DType, or as 2-byte halves widened to F32.
enum class Stored : uint8_t { Same, F16, BF16 };

// One tensor of a validated header: [begin, end) lies inside the data section
// and end - begin == numel * (stored == Same ? dtype_size(dtype) : 2); dtype
// is F32 for halves (what they are widened to).
struct Entry {
  std::string name;
  DType dtype = DType::F32;
  Stored stored = Stored::Same;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// Checks the file size and the 8-byte length prefix; returns the header
// length N, which fits in the file (8 + N <= file_size) and the cap.
uint64_t header_length(const uint8_t* prefix, uint64_t file_size, const std::string& where);

// Parses and validates the N-byte JSON header of a file whose data section
// holds data_len bytes. Returns the tensors in offset order; they tile the
// data section exactly. Fills *metadata when given.
// F16 / BF16 entries are accepted only with half == WidenToF32.
std::vector<Entry> parse_header(const char* json, size_t n, uint64_t data_len,
                                const std::string& where,
                                std::map<std::string, std::string>* metadata, StHalf half);

// The tensor's value from its stored bytes (e.end - e.begin of them).
StTensor decode(const Entry& e, const uint8_t* bytes);

// "safetensors file 'x.st'": how messages name the source.
std::string describe(const std::string& path);
// "[2, 3]", "[]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace lldl::st
