// See text_args.h.
#include "bindings/text_args.h"

#include <limits>

#include "core/error.h"

namespace lldl::py_bind {

namespace py = pybind11;

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

}  // namespace lldl::py_bind
