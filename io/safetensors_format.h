// Internal to io/: the validated header of a safetensors file, shared by the
// file loader and the in-memory parser.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lldl::st {

// One tensor of a validated header: [begin, end) lies inside the data section
// and end - begin == numel * dtype_size(dtype).
struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// Checks the file size and the 8-byte length prefix; returns the header
// length N, which fits in the file (8 + N <= file_size) and the cap.
uint64_t header_length(const uint8_t* prefix, uint64_t file_size, const std::string& where);

// Parses and validates the N-byte JSON header of a file whose data section
// holds data_len bytes. Returns the tensors in offset order; they tile the
// data section exactly. Fills *metadata when given.
std::vector<Entry> parse_header(const char* json, size_t n, uint64_t data_len,
                                const std::string& where,
                                std::map<std::string, std::string>* metadata);

// "safetensors file 'x.st'": how messages name the source.
std::string describe(const std::string& path);
// "[2, 3]", "[]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace lldl::st
