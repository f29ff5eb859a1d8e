// cppapi: lldl from Python. Thin: types and errors are translated here, all
// logic lives in the C++ API.
#include <pybind11/pybind11.h>

#include "bindings/module.h"
#include "core/error.h"
#include "core/threads.h"

namespace py = pybind11;

PYBIND11_MODULE(cppapi, m) {
  m.doc() = "lldl (Low Level Deep Learning): a C++ engine with tape-based autodiff";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lldl::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const lldl::ShapeError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lldl::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lldl::UnavailableError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  m.def("set_num_threads", &lldl::set_num_threads, py::arg("n"),
        "Threads for every parallel kernel (OpenMP loops and GEMM).");
  m.def("get_num_threads", &lldl::get_num_threads);
  lldl::py_bind::bind_seed(m);
  lldl::py_bind::bind_graph(m);
}
