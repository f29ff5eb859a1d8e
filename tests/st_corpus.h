// Handcrafted safetensors files: one malformed file per rejection rule, with
// the message fragment it must produce, plus a valid file. Used by
// tests/test_safetensors.cpp and, as a seed corpus, by fuzz/make_corpus.cpp.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace lldl {

// 8-byte little-endian header length, the header bytes, the data bytes.
inline std::vector<uint8_t> st_file(const std::string& header, const std::vector<uint8_t>& data,
                                    uint64_t header_len) {
  std::vector<uint8_t> f;
  for (int i = 0; i < 8; ++i) f.push_back(uint8_t(header_len >> (8 * i)));
  f.insert(f.end(), header.begin(), header.end());
  f.insert(f.end(), data.begin(), data.end());
  return f;
}
inline std::vector<uint8_t> st_file(const std::string& header, const std::vector<uint8_t>& data) {
  return st_file(header, data, header.size());
}

struct StCorruptCase {
  std::string name;
  std::vector<uint8_t> bytes;
  std::string expect;  // fragment of the error message
  std::string tensor;  // the tensor the message must name ("" if none)
};

// A well-formed file: F32 "w" [2, 2], I32 "n" [] and metadata.
inline std::vector<uint8_t> st_valid_file() {
  std::string h =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("n":{"dtype":"I32","shape":[],"data_offsets":[16,20]}})";
  h.append((8 - h.size() % 8) % 8, ' ');
  std::vector<uint8_t> data(20);
  float w[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  int32_t n = 42;
  std::memcpy(data.data(), w, 16);
  std::memcpy(data.data() + 16, &n, 4);
  return st_file(h, data);
}

// A well-formed file of half-precision tensors (valid when halves are
// widened): F16 "a" [2] = {1, -2}, BF16 "b" [1] = {1}.
inline std::vector<uint8_t> st_valid_half_file() {
  std::string h = R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}})";
  return st_file(h, {0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F});
}

inline std::vector<StCorruptCase> st_corrupt_cases() {
  const std::vector<uint8_t> b4(4, 0), b8(8, 0), b12(12, 0);
  // One F32 tensor "w" with the given entry fields and data.
  auto w = [](const std::string& fields, const std::vector<uint8_t>& data) {
    return st_file(R"({"w":{)" + fields + "}}", data);
  };
  const std::string ok_w = R"("dtype":"F32","shape":[1],"data_offsets":[0,4])";
  return {
      {"empty file", {}, "is 0 bytes, shorter than the 8-byte header length", ""},
      {"5-byte file", {1, 0, 0, 0, 0}, "is 5 bytes, shorter than the 8-byte header length", ""},
      {"header length over the cap", st_file("{}", {}, 100'000'001), "exceeds the cap of 100000000 bytes", ""},
      {"header length 2^64-1", st_file("{}", {}, ~uint64_t(0)), "exceeds the cap", ""},
      {"header length past the file", st_file("{}", {}, 64), "header length 64 is larger than the file (10 bytes)", ""},
      {"truncated JSON", st_file(R"({"w":)", {}), "header is not valid JSON", ""},
      {"binary junk header", st_file(std::string("\xff\xfe\x00\x01", 4), {}), "header is not valid JSON", ""},
      {"key not UTF-8", st_file("{\"\xc3\x28\":{}}", {}), "header is not valid JSON", ""},
      {"empty header", st_file("", {}), "header is not valid JSON", ""},
      {"header is an array", st_file("[1,2]", {}), "header is not a JSON object (got array)", ""},
      {"header is a string", st_file(R"("w")", {}), "header is not a JSON object (got string)", ""},
      {"entry is a number", st_file(R"({"w":5})", {}), "entry is not an object (got number)", "w"},
      {"missing dtype", w(R"("shape":[1],"data_offsets":[0,4])", b4), "missing 'dtype'", "w"},
      {"missing shape", w(R"("dtype":"F32","data_offsets":[0,4])", b4), "missing 'shape'", "w"},
      {"missing data_offsets", w(R"("dtype":"F32","shape":[1])", b4), "missing 'data_offsets'", "w"},
      {"unexpected key", w(ok_w + R"(,"extra":1)", b4), "unexpected key 'extra'", "w"},
      {"dtype is a number", w(R"("dtype":32,"shape":[1],"data_offsets":[0,4])", b4), "'dtype' is not a string", "w"},
      {"shape is a string", w(R"("dtype":"F32","shape":"1","data_offsets":[0,4])", b4), "'shape' is not an array", "w"},
      {"shape holds a float", w(R"("dtype":"F32","shape":[1.5],"data_offsets":[0,4])", b4),
       "shape[0] is not a non-negative integer", "w"},
      {"shape holds a string", w(R"("dtype":"F32","shape":[1,"2"],"data_offsets":[0,8])", b8),
       "shape[1] is not a non-negative integer", "w"},
      {"shape dim beyond u64", w(R"("dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4])", b4),
       "shape[0] is not a non-negative integer", "w"},
      {"data_offsets is a number", w(R"("dtype":"F32","shape":[1],"data_offsets":4)", b4),
       "'data_offsets' is not [begin, end]", "w"},
      {"data_offsets has one element", w(R"("dtype":"F32","shape":[1],"data_offsets":[4])", b4),
       "'data_offsets' is not [begin, end]", "w"},
      {"data_offsets has three elements", w(R"("dtype":"F32","shape":[1],"data_offsets":[0,4,8])", b4),
       "'data_offsets' is not [begin, end]", "w"},
      {"data_offsets holds a float", w(R"("dtype":"F32","shape":[1],"data_offsets":[0,4.0])", b4),
       "data_offsets[1] is not a non-negative integer", "w"},
      {"data_offsets negative", w(R"("dtype":"F32","shape":[1],"data_offsets":[-4,0])", b4),
       "data_offsets[0] is negative (-4)", "w"},
      {"negative dimension", w(R"("dtype":"F32","shape":[2,-3],"data_offsets":[0,4])", b4),
       "shape[1] is negative (-3)", "w"},
      {"element count overflows", w(R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4])", b4),
       "element count of shape [4294967296,4294967296] overflows 64 bits", "w"},
      {"dimension above int64", w(R"("dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4])", b4),
       "overflows 64 bits", "w"},
      {"byte size overflows", w(R"("dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4])", b4),
       "byte size of shape [4611686018427387904] overflows 64 bits", "w"},
      {"span shorter than the shape", w(R"("dtype":"F32","shape":[2],"data_offsets":[0,4])", b4),
       "span 4 bytes but shape [2] of F32 needs 8", "w"},
      {"span longer than the shape", w(R"("dtype":"F64","shape":[1],"data_offsets":[0,12])", b12),
       "span 12 bytes but shape [1] of F64 needs 8", "w"},
      {"offsets end before they begin", w(R"("dtype":"F32","shape":[0],"data_offsets":[8,4])", b8),
       "end before they begin", "w"},
      {"first tensor not at 0", w(R"("dtype":"F32","shape":[1],"data_offsets":[4,8])", b8),
       "begin at 4 but the data section starts at 0", "w"},
      {"gap between tensors",
       st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", b12),
       "begin at 8 but tensor 'a' ends at 4 (offsets are not contiguous)", "b"},
      {"overlapping tensors",
       st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", b8),
       "overlap tensor 'a'", "b"},
      {"two tensors over the same bytes",
       st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
               R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", b4),
       "overlap tensor 'a'", "b"},
      {"trailing bytes", w(ok_w, std::vector<uint8_t>(6, 0)),
       "data section has 6 bytes but the tensors cover only 4 (trailing bytes)", ""},
      {"data but no tensors", st_file("{}", b4), "data section has 4 bytes but the tensors cover only 0", ""},
      {"missing bytes", w(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])", b4),
       "run past the data section of 4 bytes", "w"},
      {"offsets far past the end", w(R"("dtype":"F32","shape":[0],"data_offsets":[0,0]},"v":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551608,18446744073709551612])", b4),
       "begin at 18446744073709551608 but tensor 'w' ends at 0 (offsets are not contiguous)", "v"},
      {"duplicate tensor name",
       st_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
               R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", b8),
       "duplicate tensor name 'w'", ""},
      {"long shape array cut short in messages",
       w(R"("dtype":"F32","shape":[)" + [] { std::string s = "65536"; for (int i = 0; i < 40; ++i) s += ",65536"; return s; }() +
             R"(],"data_offsets":[0,4])", b4),
       "element count of shape [65536,65536,65536,65536,65536,65536,65536,65536,65536,65536 ... overflows", "w"},
      {"duplicate key in an entry", w(R"("dtype":"F64","dtype":"F32","shape":[1],"data_offsets":[0,4])", b4),
       "duplicate key 'dtype'", "w"},
      {"unknown dtype BF16", w(R"("dtype":"BF16","shape":[2],"data_offsets":[0,4])", b4),
       "unsupported dtype 'BF16'", "w"},
      {"lower-case dtype", w(R"("dtype":"f32","shape":[1],"data_offsets":[0,4])", b4), "unsupported dtype 'f32'", "w"},
      {"metadata is a list", st_file(R"({"__metadata__":["a","b"]})", {}), "__metadata__ is not an object", ""},
      {"metadata value is a number", st_file(R"({"__metadata__":{"epoch":3}})", {}),
       "__metadata__ value of 'epoch' is not a string (got number)", ""},
      {"metadata value is an object", st_file(R"({"__metadata__":{"a":{"b":"c"}}})", {}),
       "__metadata__ value of 'a' is not a string (got object)", ""},
      {"duplicate metadata", st_file(R"({"__metadata__":{},"__metadata__":{}})", {}),
       "__metadata__ appears twice", ""},
  };
}

}  // namespace lldl
