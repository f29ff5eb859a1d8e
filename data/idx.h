// Loader for the idx files of MNIST-style data sets (Debian's
// dataset-fashion-mnist ships them gzipped under
// /usr/share/datasets/fashion-mnist). An idx file is a big-endian header,
// magic 0x000008TT (TT = element type, 0x08 = unsigned byte) with the rank in
// its low byte, then one uint32 per dimension, then the data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lldl {

struct ImageSet {
  int64_t count = 0, channels = 1, height = 0, width = 0;
  std::vector<float> images;   // count x channels x height x width, scaled to [0, 1]
  std::vector<int32_t> labels; // count
};

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads a gzipped (or plain) idx file of unsigned bytes: returns its
// dimensions and data. Raises ValueError naming the file for a missing file,
// a bad magic number, an unsupported element type or rank, a header whose
// dimensions overflow or lie, or data shorter than the header promises.
std::vector<uint8_t> read_idx(const std::string& path, std::vector<int64_t>* dims);

// Images (N x 28 x 28) and labels (N) of one split: "train" or "t10k".
// `limit` > 0 keeps only the first `limit` examples. Labels are checked to be
// 0..9 and the two files to hold the same number of examples.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit = 0);

}  // namespace lldl
