#include "data/idx.h"

#include <zlib.h>

#include <memory>

#include "core/error.h"

namespace lldl {

namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

// Reads exactly n bytes or explains why not.
void read_exact(gzFile f, void* dst, size_t n, const std::string& path, const char* what) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
    int got = gzread(f, p, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      throw ValueError(path + ": corrupt compressed data while reading " + what + " (" + msg + ")");
    }
    if (got == 0) throw ValueError(path + ": file is truncated while reading " + what);
    p += got;
    n -= static_cast<size_t>(got);
  }
}

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

}  // namespace

std::vector<uint8_t> read_idx(const std::string& path, std::vector<int64_t>* dims) {
  std::unique_ptr<gzFile_s, GzCloser> f(gzopen(path.c_str(), "rb"));
  if (!f) throw ValueError(path + ": cannot open (missing or unreadable); on Debian install "
                           "the package dataset-fashion-mnist");
  unsigned char head[4];
  read_exact(f.get(), head, 4, path, "the magic number");
  if (head[0] != 0 || head[1] != 0)
    throw ValueError(path + ": not an idx file (bad magic number)");
  if (head[2] != 0x08)
    throw ValueError(path + ": element type 0x" + std::to_string(head[2]) +
                     " is not supported (only unsigned bytes, 0x08)");
  int rank = head[3];
  if (rank < 1 || rank > 4)
    throw ValueError(path + ": rank " + std::to_string(rank) + " is not supported (1 to 4)");
  dims->assign(rank, 0);
  // Caps every dimension and the total, so a lying header cannot make us
  // allocate more than a real data set needs.
  constexpr int64_t kMaxElements = int64_t(1) << 32;
  int64_t total = 1;
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    read_exact(f.get(), b, 4, path, "the header");
    int64_t d = big_endian(b);
    if (d == 0 || d > kMaxElements / total)
      throw ValueError(path + ": header dimension " + std::to_string(i) + " (" + std::to_string(d) +
                       ") is zero or too large");
    (*dims)[i] = d;
    total *= d;
  }
  std::vector<uint8_t> data(static_cast<size_t>(total));
  read_exact(f.get(), data.data(), data.size(), path, "the data");
  unsigned char extra;
  if (gzread(f.get(), &extra, 1) != 0)
    throw ValueError(path + ": has more data than its header declares");
  return data;
}

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit) {
  if (split != "train" && split != "t10k")
    throw ValueError("load_fashion_mnist: split must be 'train' or 't10k', got '" + split + "'");
  if (limit < 0) throw ValueError("load_fashion_mnist: limit must be >= 0");
  std::string ipath = dir + "/" + split + "-images-idx3-ubyte.gz";
  std::string lpath = dir + "/" + split + "-labels-idx1-ubyte.gz";
  std::vector<int64_t> idims, ldims;
  std::vector<uint8_t> px = read_idx(ipath, &idims);
  std::vector<uint8_t> lb = read_idx(lpath, &ldims);
  if (idims.size() != 3) throw ValueError(ipath + ": expected 3 dimensions (N x H x W)");
  if (ldims.size() != 1) throw ValueError(lpath + ": expected 1 dimension (N)");
  if (idims[0] != ldims[0])
    throw ValueError(ipath + " holds " + std::to_string(idims[0]) + " images but " + lpath +
                     " holds " + std::to_string(ldims[0]) + " labels");
  ImageSet s;
  s.count = limit > 0 && limit < idims[0] ? limit : idims[0];
  s.height = idims[1];
  s.width = idims[2];
  int64_t per = s.height * s.width;
  s.images.resize(static_cast<size_t>(s.count * per));
  for (int64_t i = 0; i < s.count * per; ++i) s.images[i] = static_cast<float>(px[i]) / 255.0f;
  s.labels.resize(static_cast<size_t>(s.count));
  for (int64_t i = 0; i < s.count; ++i) {
    if (lb[i] > 9)
      throw ValueError(lpath + ": label " + std::to_string(lb[i]) + " at index " +
                       std::to_string(i) + " is out of range 0..9");
    s.labels[i] = lb[i];
  }
  return s;
}

}  // namespace lldl
