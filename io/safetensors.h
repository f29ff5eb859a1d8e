// safetensors files: the checkpoint format of Hugging Face's `safetensors`.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
//    ..., "__metadata__": {"key": "value", ...}}
// padded with spaces to a multiple of 8, then the raw little-endian data.
// Offsets are relative to the start of the data section; the tensors tile it
// exactly (contiguous, no gaps, no overlap, nothing after the last one).
//
// lldl reads and writes F32, F64 and I32. A loader may also ask for F16 and
// BF16 tensors (Hugging Face's half-precision checkpoints), which are then
// validated as strictly as the rest and widened to F32 (StHalf). Any
// malformed file raises
// ValueError naming the file, the tensor and what is wrong, before anything is
// allocated from a size the file claims; failing system calls raise IOError.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lldl {

// A tensor read from a file: owns its bytes (numel * dtype_size(dtype)).
struct StTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // empty: a 0-d tensor with one element
  std::vector<uint8_t> data;
};

// A tensor to write: borrows numel * dtype_size(dtype) bytes at `data`.
struct StTensorRef {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  // F32 only: `data` holds bfloat16 bits (2 bytes per element), written as
  // "BF16" (half-size weight files; loaders widen them back, StHalf).
  bool bf16 = false;
};

// What a loader does with F16 / BF16 tensors: refuse them (the default: an
// lldl checkpoint never holds them), or widen them exactly to F32 (every
// half value is a float). Sizes and offsets are checked against the 2-byte
// elements of the file either way.
enum class StHalf : uint8_t { Reject, WidenToF32 };

// Writes atomically: a temporary file next to `path` is written, flushed,
// fsynced and renamed over `path`, then the directory is fsynced. On failure
// the temporary file is removed and any previous file at `path` is intact.
// Tensors are stored by decreasing element size, then by name (so every
// tensor stays aligned to its element size); names must be unique and not
// "__metadata__".
void save_safetensors(const std::string& path, const std::vector<StTensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor, in file (offset) order; fills *metadata when given.
std::vector<StTensor> load_safetensors(const std::string& path,
                                       std::map<std::string, std::string>* metadata = nullptr,
                                       StHalf half = StHalf::Reject);

// The same from a buffer holding a whole file (the fuzzing entry point).
std::vector<StTensor> parse_safetensors(const uint8_t* bytes, size_t n,
                                        std::map<std::string, std::string>* metadata = nullptr,
                                        StHalf half = StHalf::Reject);

// IEEE half (F16) and bfloat16 bit patterns as float, exactly (subnormals,
// infinities and NaN included).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);

// The dtype strings of the format ("F32", "F64", "I32").
const char* st_dtype_name(DType t);

// Largest header accepted on load (the reference implementation's cap).
constexpr uint64_t kStMaxHeaderBytes = 100'000'000;

namespace testing {
// Makes the next save fail, as if the disk were full, once it has written n
// bytes of its temporary file (n = file size fails just before fsync; a
// larger n does not fail). The next save disarms it; -1 disarms it now.
void fail_save_after_bytes(int64_t n);
}  // namespace testing

}  // namespace lldl
