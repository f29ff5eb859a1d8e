// Validation of safetensors headers. Every size a file claims is checked
// (overflow-checked arithmetic, bounds against the bytes actually present)
// before anything is allocated from it or read through it.
#include <algorithm>
#include <bit>
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

bool dtype_from_string(const std::string& s, DType* out) {
  for (DType t : {DType::F32, DType::F64, DType::I32})
    if (s == st_dtype_name(t)) {
      *out = t;
      return true;
    }
  return false;
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

Entry read_entry(const std::string& name, const json& v, const std::string& where) {
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
  if (!dtype_from_string(dt.get<std::string>(), &e.dtype))
    fail_tensor(where, name, "unsupported dtype '" + dt.get<std::string>() + "' (lldl reads F32, F64, I32)");

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
  if (__builtin_mul_overflow(numel, uint64_t(dtype_size(e.dtype)), &bytes))
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
                                std::map<std::string, std::string>* metadata) {
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
      entries.push_back(read_entry(it.key(), it.value(), where));
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

}  // namespace lldl::st
