// Text data and tokenizers: the fortune corpus, ByteTokenizer, CharTokenizer,
// BpeTokenizer and TokenWindows.
//
// Text in: str (taken as its UTF-8 bytes) or bytes/bytearray. Token ids out:
// a NumPy int32 array. Ids in: a list of ints or an integer NumPy array
// (floats and other types are a TypeError). Text out: str when the bytes are
// valid UTF-8, bytes otherwise (a byte tokenizer can produce any bytes, and
// that keeps every round trip lossless); decode_bytes always returns bytes.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <limits>

#include "bindings/module.h"
#include "core/error.h"
#include "text/bpe.h"
#include "text/fortunes.h"
#include "text/tokenizer.h"
#include "text/windows.h"

namespace lldl::py_bind {

namespace py = pybind11;

namespace {

std::string type_name(const py::handle& h) {
  return std::string(py::str(py::type::of(h).attr("__name__")));
}

// The bytes of a str (UTF-8), bytes or bytearray argument.
std::string as_text(const py::handle& obj, const char* who) {
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  if (py::isinstance<py::bytes>(obj)) return std::string(py::reinterpret_borrow<py::bytes>(obj));
  if (PyByteArray_Check(obj.ptr()))
    return std::string(PyByteArray_AsString(obj.ptr()), size_t(PyByteArray_Size(obj.ptr())));
  throw TypeError(std::string(who) + ": text must be str or bytes, got " + type_name(obj));
}

// str when valid UTF-8, bytes otherwise.
py::object text_or_bytes(const std::string& s) {
  PyObject* u = PyUnicode_DecodeUTF8(s.data(), py::ssize_t(s.size()), "strict");
  if (u) return py::reinterpret_steal<py::object>(u);
  PyErr_Clear();
  return py::bytes(s);
}

py::array_t<int32_t> as_numpy(const std::vector<int32_t>& ids) {
  py::array_t<int32_t> out(py::ssize_t(ids.size()));
  std::copy(ids.begin(), ids.end(), out.mutable_data());
  return out;
}

// Token ids from a list of ints or an integer array (any shape, read flat).
std::vector<int32_t> as_ids(const py::handle& obj, const char* who) {
  std::vector<int32_t> ids;
  auto put = [&](long long v, size_t i) {
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
      throw ValueError(std::string(who) + ": id " + std::to_string(v) + " at position " +
                       std::to_string(i) + " is out of range");
    ids.push_back(int32_t(v));
  };
  if (py::isinstance<py::array>(obj)) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
      throw TypeError(std::string(who) + ": ids must be integers, got an array of dtype " +
                      std::string(py::str(a.dtype())));
    auto v = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    if (kind == 'u' && a.dtype().itemsize() == 8) {  // uint64 above 2^63 would wrap
      auto u = py::array_t<uint64_t, py::array::c_style>::ensure(a);
      for (py::ssize_t i = 0; i < u.size(); ++i)
        if (u.data()[i] > uint64_t(std::numeric_limits<int32_t>::max()))
          put(std::numeric_limits<long long>::max(), size_t(i));
    }
    ids.reserve(size_t(v.size()));
    for (py::ssize_t i = 0; i < v.size(); ++i) put(v.data()[i], size_t(i));
    return ids;
  }
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) || !py::isinstance<py::sequence>(obj))
    throw TypeError(std::string(who) + ": ids must be a list of ints or an integer array, got " +
                    type_name(obj));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  ids.reserve(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) {
    py::object x = seq[i];
    if (py::isinstance<py::bool_>(x) || !PyIndex_Check(x.ptr()))
      throw TypeError(std::string(who) + ": id at position " + std::to_string(i) + " is a " +
                      type_name(x) + ", not an int");
    long long v = PyLong_AsLongLong(x.ptr());
    if (v == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      v = std::numeric_limits<long long>::max();  // too large for C: out of range
    }
    put(v, i);
  }
  return ids;
}

// encode / decode / decode_bytes / vocab_size, the same for every tokenizer.
template <class Tok, class Cls>
void def_codec(Cls& c, const char* name) {
  std::string enc = std::string(name) + ".encode", dec = std::string(name) + ".decode";
  c.def("encode",
        [enc](const Tok& t, const py::object& text) {
          std::string s = as_text(text, enc.c_str());
          std::vector<int32_t> ids;
          {
            py::gil_scoped_release nogil;
            ids = t.encode(s);
          }
          return as_numpy(ids);
        },
        py::arg("text"), "Token ids (int32 array) of a str (its UTF-8 bytes) or bytes.")
      .def("decode",
           [dec](const Tok& t, const py::object& ids) { return text_or_bytes(t.decode(as_ids(ids, dec.c_str()))); },
           py::arg("ids"), "The text of token ids: str when it is valid UTF-8, bytes otherwise.")
      .def("decode_bytes",
           [dec](const Tok& t, const py::object& ids) { return py::bytes(t.decode(as_ids(ids, dec.c_str()))); },
           py::arg("ids"), "The bytes of token ids.")
      .def("vocab_size", &Tok::vocab_size);
}

}  // namespace

void bind_text(py::module_& m) {
  m.attr("FORTUNES_DIR") = kFortunesDir;
  m.def("load_fortunes",
        [](const std::string& dir) {
          std::vector<std::string> e;
          {
            py::gil_scoped_release nogil;
            e = load_fortunes(dir);
          }
          py::list out;
          for (const std::string& s : e) out.append(text_or_bytes(s));
          return out;
        },
        py::arg("dir") = kFortunesDir,
        "Every entry of the plain-text fortune files in dir (sorted file names; *.dat, *.u8 and "
        "subdirectories skipped), as str (bytes for an entry that is not valid UTF-8).");
  m.def("split_corpus",
        [](const py::sequence& entries, double val_fraction, uint64_t seed) {
          std::vector<std::string> e;
          e.reserve(entries.size());
          for (size_t i = 0; i < entries.size(); ++i) e.push_back(as_text(entries[i], "split_corpus"));
          TextSplit s = split_corpus(e, val_fraction, seed);
          return py::make_tuple(text_or_bytes(s.train), text_or_bytes(s.val));
        },
        py::arg("entries"), py::arg("val_fraction") = 0.1, py::arg("seed") = 0,
        "(train, val) texts: a seeded ceil(val_fraction * n) of the entries go to val; each text "
        "is its entries in order, each followed by '\\n%\\n'.");

  py::class_<ByteTokenizer> bt(m, "ByteTokenizer", "Each byte 0..255 is its own token (vocab 256).");
  bt.def(py::init<>());
  def_codec<ByteTokenizer>(bt, "ByteTokenizer");

  py::class_<CharTokenizer> ct(m, "CharTokenizer",
                               "The distinct bytes of a corpus, sorted; encoding an unseen byte is a "
                               "ValueError naming it and its position.");
  ct.def(py::init([](const py::object& corpus) { return CharTokenizer(as_text(corpus, "CharTokenizer")); }),
         py::arg("corpus"))
      .def_property_readonly("vocab", [](const CharTokenizer& t) { return py::bytes(t.vocab()); },
                             "The vocabulary: vocab[id] is the byte of token id.")
      .def("save", &CharTokenizer::save, py::arg("path"))
      .def_static("load", &CharTokenizer::load, py::arg("path"));
  def_codec<CharTokenizer>(ct, "CharTokenizer");

  py::class_<BpeTokenizer> bp(m, "BpeTokenizer",
                              "Byte-level BPE: ids 0..255 are bytes, id 256 + r is merge r. Build it "
                              "with BpeTokenizer.train(corpus, vocab_size) or BpeTokenizer.load(path).");
  bp.def_static("train",
                [](const py::object& corpus, int vocab_size) {
                  std::string s = as_text(corpus, "BpeTokenizer.train");
                  py::gil_scoped_release nogil;
                  return BpeTokenizer::train(s, vocab_size);
                },
                py::arg("corpus"), py::arg("vocab_size"))
      .def_static("load", &BpeTokenizer::load, py::arg("path"))
      .def("save", &BpeTokenizer::save, py::arg("path"))
      .def_property_readonly("merges", &BpeTokenizer::merges, "[(a, b), ...]: merge r makes id 256 + r.")
      .def("token_bytes", [](const BpeTokenizer& t, int32_t id) { return py::bytes(t.token_bytes(id)); },
           py::arg("id"));
  def_codec<BpeTokenizer>(bp, "BpeTokenizer");

  py::class_<TokenWindows>(m, "TokenWindows",
                           "Seeded random windows of a token stream: sample(B, T) -> (x, y), int32 "
                           "(B, T) each, y = x shifted by one token.")
      .def(py::init([](const py::object& tokens, uint64_t seed) {
             return TokenWindows(as_ids(tokens, "TokenWindows"), seed);
           }),
           py::arg("tokens"), py::arg("seed") = 0)
      .def("sample",
           [](TokenWindows& w, int B, int T) {
             py::array_t<int32_t> x({B > 0 ? B : 0, T > 0 ? T : 0}), y({B > 0 ? B : 0, T > 0 ? T : 0});
             w.sample(B, T, x.mutable_data(), y.mutable_data());
             return py::make_tuple(x, y);
           },
           py::arg("B"), py::arg("T"))
      .def("__len__", &TokenWindows::size);
}

}  // namespace lldl::py_bind
