// Tensor: a handle to one tensor of a Graph; its values and gradient as NumPy
// arrays, assign(), and the arithmetic operators.
//
//   y = x @ W + b; y.shape; y.numpy(); W.grad; x.assign(X)
#include <pybind11/stl.h>

#include "autograd/functions.h"
#include "bindings/arrays.h"
#include "bindings/graph_handles.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

namespace {

// A copy of a tensor's values (or gradient) as a NumPy array; through the
// graph's backend, so a CUDA tensor is copied from the device.
py::array to_numpy(Graph& g, Tensor t, bool grad) {
  const TensorDesc& d = g.desc(t);
  std::vector<py::ssize_t> shape(d.shape.d, d.shape.d + d.shape.ndim);
  py::array a = d.dtype == DType::I32   ? py::array(py::array_t<int32_t>(shape))
                : d.dtype == DType::F64 ? py::array(py::array_t<double>(shape))
                                        : py::array(py::array_t<float>(shape));
  if (grad) g.grad_to_host(t, a.mutable_data());
  else g.to_host(t, a.mutable_data());
  return a;
}

void copy_into(PyGraph& pg, Tensor t, const py::handle& value, const char* name) {
  const TensorDesc& d = pg.g.desc(t);
  py::array a = as_tensor_array(value, name, d.dtype == DType::I32);
  if (d.dtype == DType::I32 && a.dtype().kind() != 'i')
    throw TypeError(std::string(name) + " has dtype " +
                    std::string(py::str(py::array::ensure(value).dtype())) +
                    "; the tensor holds int32 labels: pass an integer array");
  // A float64 tensor takes the values in double, straight from `value`
  // (as_tensor_array above has checked its dtype and converted to float32).
  if (d.dtype == DType::F64)
    a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(value);
  if (a.ndim() != d.shape.ndim || a.size() != d.shape.numel())
    throw ValueError(std::string(name) + ": shape " + shape_str(a) + " does not match tensor " +
                     d.shape.str());
  for (int i = 0; i < d.shape.ndim; ++i)
    if (a.shape(i) != d.shape[i])
      throw ValueError(std::string(name) + ": shape " + shape_str(a) + " does not match tensor " +
                       d.shape.str());
  pg.g.from_host(t, a.data());
}

}  // namespace

void bind_tensor(py::module_& m) {
  py::class_<PyTensor>(m, "Tensor", "A handle to a tensor of a Graph.")
      .def_property_readonly("shape",
                             [](const PyTensor& t) {
                               const Shape& s = t.owner->g.shape(t.t);
                               return std::vector<int64_t>(s.d, s.d + s.ndim);
                             })
      .def_property_readonly("name", [](const PyTensor& t) { return t.owner->g.desc(t.t).name; })
      .def_property_readonly("requires_grad",
                             [](const PyTensor& t) { return t.owner->g.desc(t.t).requires_grad; })
      .def("numpy", [](const PyTensor& t) {
             return to_numpy(t.owner->g, t.t, false);
           }, "A copy of the values as a NumPy array.")
      .def_property_readonly("grad", [](const PyTensor& t) -> py::object {
             if (!t.owner->g.desc(t.t).grad) return py::none();
             return to_numpy(t.owner->g, t.t, true);
           }, "A copy of the gradient, or None before backward reached it.")
      .def("item", [](const PyTensor& t) { return t.owner->g.item(t.t); })
      .def("assign", [](PyTensor& t, const py::handle& v) { copy_into(*t.owner, t.t, v, "value"); },
           py::arg("value"), "Copies an array of the same shape into the tensor.")
      .def("__add__", [](const PyTensor& a, const PyTensor& b) { return op2(add, a, b); })
      .def("__sub__", [](const PyTensor& a, const PyTensor& b) { return op2(sub, a, b); })
      .def("__mul__", [](const PyTensor& a, const PyTensor& b) { return op2(mul, a, b); })
      .def("__mul__", [](const PyTensor& a, float s) { return wrap(a, scale(a.t, s)); })
      .def("__rmul__", [](const PyTensor& a, float s) { return wrap(a, scale(a.t, s)); })
      .def("__neg__", [](const PyTensor& a) { return wrap(a, scale(a.t, -1.0f)); })
      .def("__matmul__", [](const PyTensor& a, const PyTensor& b) { return wrap(a, matmul(a.t, b.t)); })
      .def("__repr__", [](const PyTensor& t) {
        const TensorDesc& d = t.owner->g.desc(t.t);
        return "Tensor(" + d.shape.str() + ", " + dtype_name(d.dtype) +
               (d.name.empty() ? "" : ", name='" + d.name + "'") +
               (d.requires_grad ? ", requires_grad" : "") + ")";
      });
}

}  // namespace lldl::py_bind
