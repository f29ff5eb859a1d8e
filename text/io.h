// Small file helpers shared by the text loaders and tokenizer formats: whole
// files in and out, every failure a ValueError naming the path.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lldl {

// The file's bytes; ValueError "<what>: cannot read <path>" when it is missing
// or unreadable.
std::string read_file(const std::string& path, const char* what);

// Writes (replaces) the file; ValueError naming the path on failure.
void write_file(const std::string& path, const std::string& content, const char* what);

// FNV-1a 64-bit hash: the checksum line of the tokenizer files.
uint64_t fnv1a64(std::string_view s);

// The byte as it should appear in a message: 'a' when printable, \xNN otherwise.
std::string byte_repr(unsigned char c);

}  // namespace lldl
