// The Python handles of the graph API, shared by its binding files
// (tensor.cpp, graph.cpp, ops.cpp, optim.cpp, profile.cpp).
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/graph.h"

namespace lldl::py_bind {

namespace py = pybind11;

// The graph plus the arrays whose memory its step tensors borrow; those are
// released by reset().
struct PyGraph {
  PyGraph(DType t, Backend b) : g(t, b) {}
  Graph g;
  std::vector<py::object> borrowed;
  py::object placement;  // keeps the CostModel of set_auto_placement alive
};
using GraphPtr = std::shared_ptr<PyGraph>;
using GraphClass = py::class_<PyGraph, GraphPtr>;

// A tensor handle that keeps its graph alive.
struct PyTensor {
  GraphPtr owner;
  Tensor t;
};

inline PyTensor wrap(const PyTensor& like, Tensor t) { return {like.owner, t}; }

// Ops: each takes PyTensors and records on their graph.
inline PyTensor op1(Tensor (*f)(Tensor), const PyTensor& x) { return wrap(x, f(x.t)); }
inline PyTensor op2(Tensor (*f)(Tensor, Tensor), const PyTensor& a, const PyTensor& b) {
  return wrap(a, f(a.t, b.t));
}

// A shape from Python's list of dims; `what` names the caller in errors.
Shape shape_from(const std::vector<int64_t>& dims, const char* what);

// Graph's per-op profiling, memory planning and auto placement (profile.cpp).
void def_graph_profiling(GraphClass& c);

}  // namespace lldl::py_bind
