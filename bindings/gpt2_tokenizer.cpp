// GPT2Tokenizer: GPT-2's byte-level BPE from vocab.json + merges.txt, a Hugging
// Face tokenizer directory or a tiktoken ranks file (text/gpt2_tokenizer.h).
// Text in: str (its UTF-8 bytes) or bytes; ids out: an int32 array. decode
// returns str when the bytes are valid UTF-8, bytes otherwise, as the other
// tokenizers of bindings/text.cpp do.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>


#include "bindings/module.h"
#include "bindings/text_args.h"
#include "core/error.h"
#include "text/gpt2_tokenizer.h"

namespace lldl::py_bind {

namespace py = pybind11;

namespace {

template <std::vector<int32_t> (Gpt2Tokenizer::*Encode)(std::string_view) const>
py::array_t<int32_t> encode_with(const Gpt2Tokenizer& t, const py::object& text) {
  std::string s = as_text(text, "GPT2Tokenizer.encode");
  std::vector<int32_t> ids;
  {
    py::gil_scoped_release nogil;
    ids = (t.*Encode)(s);
  }
  return as_numpy(ids);
}

}  // namespace

void bind_gpt2_tokenizer(py::module_& m) {
  using T = Gpt2Tokenizer;
  py::class_<T>(m, "GPT2Tokenizer",
                "GPT-2's byte-level BPE tokenizer, read from its files: ids equal those of Hugging Face "
                "tokenizers (ByteLevel BPE from the same files) and of tiktoken with GPT-2's ranks.")
      .def_static("from_pretrained", &T::from_pretrained, py::arg("dir"),
                  "A Hugging Face tokenizer directory: vocab.json + merges.txt, with the added tokens of "
                  "tokenizer.json (or added_tokens.json / special_tokens_map.json).")
      .def_static("from_files", &T::from_files, py::arg("vocab"), py::arg("merges"),
                  py::arg("special_tokens") = std::vector<std::string>{"<|endoftext|>"},
                  "vocab.json + merges.txt; special tokens not in the vocabulary get the next ids.")
      .def_static("from_tiktoken", &T::from_tiktoken, py::arg("path"),
                  py::arg("special_tokens") = std::vector<std::string>{"<|endoftext|>"},
                  "A tiktoken ranks file (e.g. gpt2.tiktoken); special tokens get ids after the ranks.")
      .def("encode", &encode_with<&T::encode>, py::arg("text"),
           "Token ids (int32 array) of a str (its UTF-8 bytes) or bytes; special tokens are recognised.")
      .def("encode_ordinary", &encode_with<&T::encode_ordinary>, py::arg("text"),
           "Token ids with special tokens encoded as plain text.")
      .def("decode", [](const T& t, const py::object& ids) { return text_or_bytes(t.decode(as_ids(ids, "GPT2Tokenizer.decode"))); },
           py::arg("ids"), "The text of token ids: str when it is valid UTF-8, bytes otherwise.")
      .def("decode_bytes", [](const T& t, const py::object& ids) { return py::bytes(t.decode(as_ids(ids, "GPT2Tokenizer.decode"))); },
           py::arg("ids"), "The bytes of token ids.")
      .def("token_bytes", [](const T& t, int32_t id) { return py::bytes(t.token_bytes(id)); }, py::arg("id"))
      .def_property_readonly("vocab_size", &T::vocab_size, "Largest id + 1.")
      .def_property_readonly("eot_token", [](const T& t) -> py::object {
            return t.eot_token() < 0 ? py::none() : py::object(py::int_(t.eot_token()));
          }, "The id of <|endoftext|>, None when the vocabulary lacks it.")
      .def_property_readonly("special_tokens", [](const T& t) {
            py::dict d;
            for (const auto& [s, id] : t.special_tokens()) d[py::str(s)] = id;
            return d;
          }, "{text: id} of the special tokens encode recognises.");
}

}  // namespace lldl::py_bind
