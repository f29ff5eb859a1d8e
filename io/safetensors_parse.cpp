// Validation of safetensors headers. Every size a file claims is checked
// (overflow-checked arithmetic, bounds against the bytes actually present)
// before anything is allocated from it or read through it.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_format.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; lldl reads it in place");

namespace lldl::st {
namespace {

using json = nlohmann::json;

// A JSON value for an error message, cut short if long.
std::string brief(const json& v) {
  std::string s = v.dump();
  return s.size() <= 64 ? s : s.substr(0, 60) + " ...";
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw ValueError(where + ": " + what);
}

[[noreturn]] void fail_tensor(const std::string& where, const std::string& name,
                              const std::string& what) {
  fail(where, "tensor '" + name + "': " + what);
}

// The entry's dtype and storage from the file's dtype string; false if lldl
// does not read it (halves only when the loader widens them).
bool dtype_from_string(const std::string& s, StHalf half, Entry* e) {
  for (DType t : {DType::F32, DType::F64, DType::I32})
    if (s == st_dtype_name(t)) {
      e->dtype = t;
      return true;
    }
  if (half != StHalf::WidenToF32 || (s != "F16" && s != "BF16")) return false;
  e->dtype = DType::F32;
  e->stored = s == "F16" ? Stored::F16 : Stored::BF16;
  return true;
}

// A JSON value that must be a non-negative integer: returns it or fails.
uint64_t as_uint(const json& v, const std::string& where, const std::string& name,
                 const std::string& field) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer())
    fail_tensor(where, name, field + " is negative (" + std::to_string(v.get<int64_t>()) + ")");
  fail_tensor(where, name, field + " is not a non-negative integer (got " + brief(v) + ")");
}

// nlohmann keeps the last of duplicate keys silently; this parser callback
// sees every key and rejects a repeat within one object.
struct DuplicateKeyCheck {
  const std::string& where;
  std::vector<std::set<std::string>> open;  // keys of each enclosing object
  std::string entry;                        // the latest top-level key

  bool operator()(int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start: open.emplace_back(); break;
      case json::parse_event_t::object_end: open.pop_back(); break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (open.size() == 1) entry = k;
        if (open.back().insert(k).second) break;
        if (open.size() > 1) fail_tensor(where, entry, "duplicate key '" + k + "'");
        fail(where, k == "__metadata__" ? "__metadata__ appears twice" : "duplicate tensor name '" + k + "'");
        break;
      }
      default: break;
    }
    return true;
  }
};

void read_metadata(const json& m, const std::string& where,
                   std::map<std::string, std::string>* out) {
  if (!m.is_object()) fail(where, "__metadata__ is not an object of strings (got " + std::string(m.type_name()) + ")");
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!it.value().is_string())
      fail(where, "__metadata__ value of '" + it.key() + "' is not a string (got " +
                      std::string(it.value().type_name()) + ")");
    if (out) (*out)[it.key()] = it.value().get<std::string>();
  }
}

Entry read_entry(const std::string& name, const json& v, const std::string& where, StHalf half) {
  if (!v.is_object()) fail_tensor(where, name, "entry is not an object (got " + std::string(v.type_name()) + ")");
  for (auto it = v.begin(); it != v.end(); ++it)
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      fail_tensor(where, name, "unexpected key '" + it.key() + "'");
  for (const char* k : {"dtype", "shape", "data_offsets"})
    if (!v.contains(k)) fail_tensor(where, name, std::string("missing '") + k + "'");

  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) fail_tensor(where, name, "'dtype' is not a string (got " + brief(dt) + ")");
  if (!dtype_from_string(dt.get<std::string>(), half, &e))
    fail_tensor(where, name, "unsupported dtype '" + dt.get<std::string>() + "' (lldl reads F32, F64, I32" +
                                 (half == StHalf::WidenToF32 ? ", F16, BF16)" : "; F16, BF16 only where widened)"));

  const json& sh = v["shape"];
  if (!sh.is_array()) fail_tensor(where, name, "'shape' is not an array (got " + brief(sh) + ")");
  uint64_t numel = 1;
  for (size_t i = 0; i < sh.size(); ++i) {
    uint64_t d = as_uint(sh[i], where, name, "shape[" + std::to_string(i) + "]");
    if (d > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel) || numel > uint64_t(INT64_MAX))
      fail_tensor(where, name, "element count of shape " + brief(sh) + " overflows 64 bits");
    e.shape.push_back(static_cast<int64_t>(d));
  }
  uint64_t bytes = 0;
  const uint64_t elem = e.stored == Stored::Same ? dtype_size(e.dtype) : 2;
  if (__builtin_mul_overflow(numel, elem, &bytes))
    fail_tensor(where, name, "byte size of shape " + brief(sh) + " overflows 64 bits");

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    fail_tensor(where, name, "'data_offsets' is not [begin, end] (got " + brief(off) + ")");
  e.begin = as_uint(off[0], where, name, "data_offsets[0]");
  e.end = as_uint(off[1], where, name, "data_offsets[1]");
  if (e.end < e.begin)
    fail_tensor(where, name, "data_offsets " + brief(off) + " end before they begin");
  if (e.end - e.begin != bytes)
    fail_tensor(where, name, "data_offsets " + brief(off) + " span " + std::to_string(e.end - e.begin) +
                                 " bytes but shape " + shape_str(e.shape) + " of " + dt.get<std::string>() +
                                 " needs " + std::to_string(bytes));
  return e;
}

}  // namespace

std::string describe(const std::string& path) { return "safetensors file '" + path + "'"; }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

uint64_t header_length(const uint8_t* prefix, uint64_t file_size, const std::string& where) {
  if (file_size < 8)
    fail(where, "is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint64_t n;
  std::memcpy(&n, prefix, 8);
  if (n > kStMaxHeaderBytes)
    fail(where, "header length " + std::to_string(n) + " exceeds the cap of " +
                    std::to_string(kStMaxHeaderBytes) + " bytes");
  if (n > file_size - 8)
    fail(where, "header length " + std::to_string(n) + " is larger than the file (" +
                    std::to_string(file_size) + " bytes)");
  return n;
}

std::vector<Entry> parse_header(const char* text, size_t n, uint64_t data_len, const std::string& where,
                                std::map<std::string, std::string>* metadata, StHalf half) {
  json j;
  try {
    j = json::parse(text, text + n, DuplicateKeyCheck{where, {}, {}});
  } catch (const json::exception& e) {
    fail(where, std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(where, "header is not a JSON object (got " + std::string(j.type_name()) + ")");

  std::map<std::string, std::string> meta;
  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__")
      read_metadata(it.value(), where, &meta);
    else
      entries.push_back(read_entry(it.key(), it.value(), where, half));
  }

  // The tensors must tile [0, data_len): sorted by offset, each begins where
  // the previous one ended, and the last ends at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  uint64_t cursor = 0;
  const std::string* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      fail_tensor(where, e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                     "] overlap tensor '" + *prev + "' (which ends at " + std::to_string(cursor) + ")");
    if (e.begin > cursor)
      fail_tensor(where, e.name, "data_offsets begin at " + std::to_string(e.begin) + " but " +
                                     (prev ? "tensor '" + *prev + "' ends" : std::string("the data section starts")) +
                                     " at " + std::to_string(cursor) + " (offsets are not contiguous)");
    if (e.end > data_len)
      fail_tensor(where, e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                     "] run past the data section of " + std::to_string(data_len) +
                                     " bytes (file truncated?)");
    cursor = e.end;
    prev = &e.name;
  }
  if (cursor < data_len)
    fail(where, "data section has " + std::to_string(data_len) + " bytes but the tensors cover only " +
                    std::to_string(cursor) + " (trailing bytes)");
  if (metadata) *metadata = std::move(meta);
  return entries;
}

StTensor decode(const Entry& e, const uint8_t* bytes) {
  const size_t n = e.end - e.begin;
  if (e.stored == Stored::Same) return {e.name, e.dtype, e.shape, std::vector<uint8_t>(bytes, bytes + n)};
  // Halves: n / 2 elements, each widened to a 4-byte float.
  std::vector<uint8_t> out(n * 2);
  for (size_t i = 0; i < n / 2; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    float f = e.stored == Stored::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    std::memcpy(out.data() + 4 * i, &f, 4);
  }
  return {e.name, DType::F32, e.shape, std::move(out)};
}

}  // namespace lldl::st

namespace lldl {

// bfloat16 is the top half of a float's bits.
float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // infinity or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);  // rebias 15 -> 127
  } else {
    // Zero or subnormal: man * 2^-24 is exact in float.
    float f = std::ldexp(float(man), -24);
    bits = sign | std::bit_cast<uint32_t>(f);
  }
  return std::bit_cast<float>(bits);
}

}  // namespace lldl
