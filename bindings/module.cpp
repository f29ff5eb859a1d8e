// cppapi: lldl from Python. Thin: types and errors are translated here, all
// logic lives in the C++ API.
#include <pybind11/pybind11.h>

#include "bindings/module.h"
#include "core/error.h"
#include "core/threads.h"

namespace py = pybind11;

PYBIND11_MODULE(cppapi, m) {
  m.doc() =
      "lldl (Low Level Deep Learning): a C++ engine with tape-based autodiff.\n\n"
      "The seed's API: NeuralNetwork2, Layer2, Trainer (fit, evaluate), predict.\n"
      "The graph API: Graph, Tensor, one function per op (matmul, sigmoid, ...), Optimizer.\n\n"
      "NumPy arrays: float32 C-contiguous arrays are used in place, without a copy. Other\n"
      "float dtypes (float64, float16), Fortran order, strided views and lists are converted\n"
      "once to float32 C order. Integer arrays are class labels where labels are allowed\n"
      "(cross-entropy targets) and a TypeError elsewhere; bool, complex, string and object\n"
      "arrays are a TypeError. Rank is never guessed: a 1-D array is not an N x 1 matrix.\n"
      "Bad input raises TypeError or ValueError naming the argument and its shape.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lldl::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const lldl::ShapeError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lldl::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lldl::IOError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const lldl::UnavailableError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  m.def("set_num_threads", &lldl::set_num_threads, py::arg("n"),
        "Threads for every parallel kernel (OpenMP loops and GEMM).");
  m.def("get_num_threads", &lldl::get_num_threads);
  lldl::py_bind::bind_seed(m);
  lldl::py_bind::bind_tensor(m);
  lldl::py_bind::bind_graph(m);
  lldl::py_bind::bind_ops(m);
  lldl::py_bind::bind_optim(m);
  lldl::py_bind::bind_step_graph(m);
  lldl::py_bind::bind_data(m);
  lldl::py_bind::bind_lm(m);
  lldl::py_bind::bind_text(m);
  lldl::py_bind::bind_gpt2_tokenizer(m);
  lldl::py_bind::bind_profile(m);
  lldl::py_bind::bind_cuda(m);
  lldl::py_bind::bind_dist(m);
}
