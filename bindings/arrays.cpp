#include "bindings/arrays.h"

#include <limits>

#include "core/error.h"

namespace lldl::py_bind {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

namespace {

py::array to_array(const py::handle& obj, const char* name) {
  if (obj.is_none()) throw TypeError(std::string(name) + " is None; expected a NumPy array");
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  // ensure() gives a null handle (error cleared) when NumPy cannot convert,
  // e.g. for ragged nested lists.
  if (py::array a = py::array::ensure(obj)) return a;
  throw TypeError(std::string(name) + " is not array-like (got " +
                  std::string(py::str(py::type::handle_of(obj).attr("__name__"))) + ")");
}

char kind_of(const py::array& a) { return a.dtype().kind(); }

py::array to_float32_c(const py::array& a, const char* name) {
  char k = kind_of(a);
  if (k != 'f')
    throw TypeError(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) +
                    "; expected floating point (float32 is used without a copy): pass " + name +
                    ".astype(numpy.float32)");
  bool exact = a.dtype().is(py::dtype::of<float>()) &&
               (a.flags() & py::array::c_style) == py::array::c_style;
  if (exact) return a;
  // One documented conversion: float64/float16 or a non-C-contiguous layout.
  return py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
}

}  // namespace

Matrix as_matrix(const py::handle& obj, const char* name, py::array& keep) {
  py::array a = to_array(obj, name);
  if (a.ndim() != 2)
    throw ShapeError(std::string(name) + " must be 2-D (samples x features), got shape " +
                     shape_str(a) +
                     (a.ndim() == 1 ? "; use " + std::string(name) +
                                          ".reshape(-1, 1) for one feature per sample"
                                    : ""));
  keep = to_float32_c(a, name);
  return {static_cast<const float*>(keep.data()), keep.shape(0), keep.shape(1)};
}

Matrix as_samples(const py::handle& obj, const char* name, const std::vector<int64_t>& sample_shape,
                  py::array& keep) {
  if (py::isinstance<py::array>(obj) && !sample_shape.empty()) {
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (a.ndim() == static_cast<py::ssize_t>(sample_shape.size()) + 1 && a.ndim() > 2) {
      for (size_t i = 0; i < sample_shape.size(); ++i)
        if (a.shape(i + 1) != sample_shape[i])
          throw ShapeError(std::string(name) + " has shape " + shape_str(a) +
                           " but the network's input_shape asks for (N, " +
                           [&] {
                             std::string t;
                             for (size_t k = 0; k < sample_shape.size(); ++k)
                               t += (k ? ", " : "") + std::to_string(sample_shape[k]);
                             return t;
                           }() + ")");
      // Same memory, seen as one row per sample (numpy makes a view when it can).
      py::array rows = a.attr("reshape")(a.shape(0), -1);
      return as_matrix(rows, name, keep);
    }
  }
  return as_matrix(obj, name, keep);
}

Targets as_targets(const py::handle& obj, const char* name, bool labels_ok, py::array& keep) {
  py::array a = to_array(obj, name);
  char k = kind_of(a);
  if (k == 'i' || k == 'u') {
    if (!labels_ok)
      throw TypeError(std::string(name) + " has integer dtype " + std::string(py::str(a.dtype())) +
                      ", i.e. class labels, but the loss is MSE: pass float targets (" + name +
                      ".astype(numpy.float32))");
    if (!(a.ndim() == 1 || (a.ndim() == 2 && a.shape(1) == 1)))
      throw ShapeError(std::string(name) + ": integer labels must have shape (N,) or (N, 1), got " +
                       shape_str(a));
    // Range-check before narrowing, so 2**40 is not silently wrapped.
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> wide(a);
    const int64_t* p = wide.data();
    for (py::ssize_t i = 0; i < wide.size(); ++i)
      if (p[i] < 0 || p[i] > std::numeric_limits<int32_t>::max())
        throw ValueError(std::string(name) + ": label " + std::to_string(p[i]) + " at row " +
                         std::to_string(i) + " is out of range (labels are 0 .. classes-1)");
    keep = py::array_t<int32_t, py::array::c_style | py::array::forcecast>(wide);
    return {nullptr, static_cast<const int32_t*>(keep.data()), keep.shape(0), 1};
  }
  if (a.ndim() != 2)
    throw ShapeError(std::string(name) + " must be 2-D (samples x outputs), got shape " +
                     shape_str(a) +
                     (a.ndim() == 1 ? "; use " + std::string(name) + ".reshape(-1, 1)" : ""));
  keep = to_float32_c(a, name);
  return {static_cast<const float*>(keep.data()), nullptr, keep.shape(0), keep.shape(1)};
}

py::array as_tensor_array(const py::handle& obj, const char* name, bool ints_ok) {
  py::array a = to_array(obj, name);
  if (a.ndim() > 4)
    throw ShapeError(std::string(name) + " has " + std::to_string(a.ndim()) +
                     " dimensions; lldl tensors have at most 4 (shape " + shape_str(a) + ")");
  char k = kind_of(a);
  if ((k == 'i' || k == 'u') && ints_ok) {
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> wide(a);
    for (py::ssize_t i = 0; i < wide.size(); ++i)
      if (wide.data()[i] < std::numeric_limits<int32_t>::min() ||
          wide.data()[i] > std::numeric_limits<int32_t>::max())
        throw ValueError(std::string(name) + ": value " + std::to_string(wide.data()[i]) +
                         " does not fit int32");
    return py::array_t<int32_t, py::array::c_style | py::array::forcecast>(wide);
  }
  return to_float32_c(a, name);
}

}  // namespace lldl::py_bind
