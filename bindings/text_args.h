// Arguments and results shared by the tokenizer bindings (text.cpp,
// gpt2_tokenizer.cpp): text in as str (its UTF-8 bytes), bytes or bytearray;
// ids in as a list of ints or an integer array (read flat); ids out as an
// int32 array; text out as str when valid UTF-8, bytes otherwise.
#pragma once
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lldl::py_bind {

// The Python type name of h, for error messages.
std::string type_name(const pybind11::handle& h);
// The bytes of a str (UTF-8), bytes or bytearray argument; TypeError otherwise.
std::string as_text(const pybind11::handle& obj, const char* who);
// str when valid UTF-8, bytes otherwise.
pybind11::object text_or_bytes(const std::string& s);
pybind11::array_t<int32_t> as_numpy(const std::vector<int32_t>& ids);
// Token ids from a list of ints or an integer array; TypeError for other
// types, ValueError for a value beyond int32 (naming its position).
std::vector<int32_t> as_ids(const pybind11::handle& obj, const char* who);

}  // namespace lldl::py_bind
