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


#include "bindings/module.h"
#include "bindings/text_args.h"
#include "core/error.h"
#include "text/bpe.h"
#include "text/fortunes.h"
#include "text/tokenizer.h"
#include "text/windows.h"

namespace lldl::py_bind {

namespace py = pybind11;

namespace {

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
      .def("sample_rows",
           [](TokenWindows& w, int B, int T, int first, int rows) {
             py::array_t<int32_t> x({rows > 0 ? rows : 0, T > 0 ? T : 0}), y({rows > 0 ? rows : 0, T > 0 ? T : 0});
             w.sample_rows(B, T, first, rows, x.mutable_data(), y.mutable_data());
             return py::make_tuple(x, y);
           },
           py::arg("B"), py::arg("T"), py::arg("first"), py::arg("rows"),
           "Rows [first, first + rows) of the batch sample(B, T) would draw (the generator advances\n"
           "by all B): a rank's slice of a global batch (cppapi.dist.shard).")
      .def("__len__", &TokenWindows::size);
}

}  // namespace lldl::py_bind
