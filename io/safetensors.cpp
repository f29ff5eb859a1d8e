// Reading and writing safetensors files (see io/safetensors.h). Writes go to
// a temporary file that replaces the target only once it is complete and on
// disk, so a crash or a full disk never leaves a half-written checkpoint.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/safetensors_format.h"

namespace lldl {
namespace {

std::atomic<int64_t> g_fail_after{-1};   // testing::fail_save_after_bytes
std::atomic<uint64_t> g_tmp_counter{0};  // unique temporary names per process

[[noreturn]] void io_fail(const std::string& path, const std::string& call, int err) {
  throw IOError(st::describe(path) + ": " + call + " failed: " + std::strerror(err));
}

// Byte count of a tensor to save, overflow-checked.
uint64_t checked_bytes(const StTensorRef& t, const std::string& where) {
  if (t.dtype != DType::F32 && t.dtype != DType::F64 && t.dtype != DType::I32)
    throw ValueError(where + ": tensor '" + t.name + "': unsupported dtype");
  if (t.bf16 && t.dtype != DType::F32)
    throw ValueError(where + ": tensor '" + t.name + "': bf16 storage is for F32 tensors only");
  uint64_t n = t.bf16 ? 2 : dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0) throw ValueError(where + ": tensor '" + t.name + "': negative dimension in shape " + st::shape_str(t.shape));
    if (__builtin_mul_overflow(n, uint64_t(d), &n))
      throw ValueError(where + ": tensor '" + t.name + "': byte size of shape " + st::shape_str(t.shape) + " overflows");
  }
  if (n && !t.data) throw ValueError(where + ": tensor '" + t.name + "': data is null");
  return n;
}

// The temporary file being written; removed unless it was renamed into place.
struct TempFile {
  std::string path, tmp;
  int fd = -1;
  uint64_t written = 0;
  bool committed = false;

  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!committed && !tmp.empty()) ::unlink(tmp.c_str());
  }

  // The fault-injection hook, taken by this save: fail like a full disk
  // once `written` reaches fail_at (-1: off).
  int64_t fail_at = -1;
  void inject_if_due() {
    if (fail_at < 0 || written < uint64_t(fail_at)) return;
    throw IOError(st::describe(path) + ": write to " + tmp + " failed: injected failure after " +
                  std::to_string(fail_at) + " bytes");
  }

  void write_all_raw(const uint8_t* p, uint64_t n) {
    while (n) {
      ssize_t k = ::write(fd, p, std::min<uint64_t>(n, uint64_t(1) << 30));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) io_fail(path, "write to " + tmp, k < 0 ? errno : ENOSPC);
      p += k;
      n -= uint64_t(k);
      written += uint64_t(k);
    }
  }

  void write_all(const void* data, uint64_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    if (fail_at >= 0 && written <= uint64_t(fail_at) && written + n > uint64_t(fail_at)) {
      write_all_raw(p, uint64_t(fail_at) - written);  // what fits, then fail
      inject_if_due();
    }
    write_all_raw(p, n);
  }
};

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::vector<StTensor> copy_out(const std::vector<st::Entry>& entries, const uint8_t* data) {
  std::vector<StTensor> out;
  out.reserve(entries.size());
  for (const st::Entry& e : entries) out.push_back(st::decode(e, data + e.begin));
  return out;
}

}  // namespace

const char* st_dtype_name(DType t) { return t == DType::F32 ? "F32" : t == DType::F64 ? "F64" : "I32"; }

namespace testing {
void fail_save_after_bytes(int64_t n) { g_fail_after.store(n < 0 ? -1 : n); }
}  // namespace testing

void save_safetensors(const std::string& path, const std::vector<StTensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = st::describe(path);
  const int64_t fail_at = g_fail_after.exchange(-1);  // testing hook: this save takes it
  // Larger elements first keeps every tensor aligned to its element size
  // (the header is padded to 8 bytes); names break ties deterministically.
  std::vector<const StTensorRef*> order;
  std::set<std::string> names;
  for (const StTensorRef& t : tensors) {
    if (t.name == "__metadata__") throw ValueError(where + ": '__metadata__' is not a valid tensor name");
    if (!names.insert(t.name).second) throw ValueError(where + ": two tensors are named '" + t.name + "'");
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const StTensorRef* a, const StTensorRef* b) {
    size_t sa = a->bf16 ? 2 : dtype_size(a->dtype), sb = b->bf16 ? 2 : dtype_size(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });

  nlohmann::json header = nlohmann::json::object();
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const StTensorRef* t : order) {
    uint64_t n = checked_bytes(*t, where);
    if (__builtin_add_overflow(offset, n, &offset)) throw ValueError(where + ": total size overflows");
    header[t->name] = {{"dtype", t->bf16 ? "BF16" : st_dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset - n, offset}}};
    sizes.push_back(n);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not UTF-8
    throw ValueError(where + ": cannot encode the header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t hlen = text.size();

  TempFile f;
  f.path = path;
  f.fail_at = fail_at;
  f.tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_tmp_counter++);
  f.fd = ::open(f.tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f.fd < 0) {
    int err = errno;
    std::string name = std::move(f.tmp);
    f.tmp.clear();  // not ours to remove
    io_fail(path, "open of " + name, err);
  }
  f.write_all(&hlen, 8);
  f.write_all(text.data(), hlen);
  for (size_t i = 0; i < order.size(); ++i) f.write_all(order[i]->data, sizes[i]);
  f.inject_if_due();  // armed at exactly the file size: fail before fsync
  if (::fsync(f.fd) != 0) io_fail(path, "fsync of " + f.tmp, errno);
  int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0) io_fail(path, "close of " + f.tmp, errno);
  if (::rename(f.tmp.c_str(), path.c_str()) != 0) io_fail(path, "rename from " + f.tmp, errno);
  f.committed = true;

  // Make the rename itself durable. Some filesystems cannot fsync a
  // directory (EINVAL); the file's data is on disk either way.
  std::string dir = directory_of(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) io_fail(path, "open of directory " + dir, errno);
  int rc = ::fsync(dfd), err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL) io_fail(path, "fsync of directory " + dir + " (the file was replaced)", err);
}

std::vector<StTensor> parse_safetensors(const uint8_t* bytes, size_t n,
                                        std::map<std::string, std::string>* metadata, StHalf half) {
  const std::string where = "safetensors buffer";
  if (!bytes && n) throw ValueError(where + ": null data");
  uint64_t hlen = st::header_length(bytes, n, where);
  std::vector<st::Entry> entries = st::parse_header(reinterpret_cast<const char*>(bytes + 8), hlen,
                                                    n - 8 - hlen, where, metadata, half);
  return copy_out(entries, bytes + 8 + hlen);
}

std::vector<StTensor> load_safetensors(const std::string& path,
                                       std::map<std::string, std::string>* metadata, StHalf half) {
  const std::string where = st::describe(path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_fail(path, "open", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat sb;
  if (::fstat(fd, &sb) != 0) io_fail(path, "fstat", errno);
  if (!S_ISREG(sb.st_mode)) throw ValueError(where + ": not a regular file");
  uint64_t size = uint64_t(sb.st_size);

  // Reads exactly n bytes at off; the sizes were validated against `size`.
  auto read_at = [&](void* dst, uint64_t n, uint64_t off) {
    uint8_t* p = static_cast<uint8_t*>(dst);
    while (n) {
      ssize_t k = ::pread(fd, p, std::min<uint64_t>(n, uint64_t(1) << 30), off_t(off));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) io_fail(path, "read", errno);
      if (k == 0) throw IOError(where + ": file shrank while being read");
      p += k;
      n -= uint64_t(k);
      off += uint64_t(k);
    }
  };

  uint8_t prefix[8] = {};
  read_at(prefix, std::min<uint64_t>(size, 8), 0);
  uint64_t hlen = st::header_length(prefix, size, where);
  std::string text(hlen, '\0');
  read_at(text.data(), hlen, 8);
  std::vector<st::Entry> entries = st::parse_header(text.data(), hlen, size - 8 - hlen, where, metadata, half);

  std::vector<StTensor> out;
  out.reserve(entries.size());
  std::vector<uint8_t> raw;
  for (const st::Entry& e : entries) {
    if (e.stored == st::Stored::Same) {
      out.push_back({e.name, e.dtype, e.shape, std::vector<uint8_t>(e.end - e.begin)});
      read_at(out.back().data.data(), e.end - e.begin, 8 + hlen + e.begin);
    } else {  // halves: read the stored bytes, then widen
      raw.resize(e.end - e.begin);
      read_at(raw.data(), raw.size(), 8 + hlen + e.begin);
      out.push_back(st::decode(e, raw.data()));
    }
  }
  return out;
}

}  // namespace lldl
