// StepGraph: a training step captured into a CUDA graph and replayed
// (autograd/step_graph.h); on the CPU every run is the eager step.
//
//   def step(x, y):                       # Tensors of the graph
//       loss = cppapi.cross_entropy(model(x), y)
//       g.backward(loss); opt.step()
//       return loss
//   sg = g.capture(step, [((64, 20), "float32"), ((64,), "int32")])
//   for xb, yb in batches:
//       loss = sg.run(xb, yb)             # a float
//
// The step function runs in Python twice (the warm-up and the capture);
// after that a run is one graph launch without the interpreter (the GIL is
// released). Change the learning rate between runs with opt.lr.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/optim.h"
#include "autograd/step_graph.h"
#include "bindings/arrays.h"
#include "bindings/graph_handles.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

namespace {

struct PyStepGraph {
  GraphPtr owner;
  py::function fn;
  std::unique_ptr<StepGraph> sg;
};

StepInput input_spec(const py::handle& h, size_t i) {
  auto t = h.cast<std::pair<std::vector<int64_t>, std::string>>();
  const std::string what = "StepGraph: input " + std::to_string(i);
  DType d;
  if (t.second == "float32") d = DType::F32;
  else if (t.second == "float64") d = DType::F64;
  else if (t.second == "int32") d = DType::I32;
  else throw TypeError(what + ": dtype must be 'float32', 'float64' or 'int32', got '" + t.second + "'");
  return {shape_from(t.first, what.c_str()), d};
}

std::unique_ptr<PyStepGraph> make(const GraphPtr& pg, py::function fn, const py::list& inputs) {
  auto s = std::make_unique<PyStepGraph>();
  s->owner = pg;
  s->fn = std::move(fn);
  std::vector<StepInput> specs;
  for (size_t i = 0; i < inputs.size(); ++i) specs.push_back(input_spec(inputs[i], i));
  PyStepGraph* self = s.get();
  s->sg = std::make_unique<StepGraph>(pg->g, specs, [self](Graph&, const std::vector<Tensor>& in) {
    py::list args;
    for (Tensor t : in) args.append(PyTensor{self->owner, t});
    py::object r = self->fn(*args);
    if (!py::isinstance<PyTensor>(r))
      throw TypeError("StepGraph: the step function must return the loss Tensor");
    PyTensor loss = r.cast<PyTensor>();
    if (loss.owner.get() != self->owner.get())
      throw ValueError("StepGraph: the step function returned a Tensor of another graph");
    return loss.t;
  });
  return s;
}

// One host array per input, of the input's dtype and exactly its shape.
py::array host_input(const py::handle& obj, const StepInput& spec, size_t i) {
  const std::string name = "StepGraph.run: input " + std::to_string(i);
  py::array a = as_tensor_array(obj, name.c_str(), spec.dtype == DType::I32);
  const bool is_int = a.dtype().kind() == 'i';
  if (is_int != (spec.dtype == DType::I32))
    throw TypeError(name + " must be " + dtype_name(spec.dtype) + ", got " +
                    std::string(py::str(a.dtype())));
  if (spec.dtype == DType::F64) a = py::array_t<double, py::array::c_style | py::array::forcecast>(a);
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  if (shape_from(dims, name.c_str()) != spec.shape)
    throw ShapeError(name + " has shape " + shape_str(a) + ", the captured step takes " +
                     spec.shape.str());
  return a;
}

double run(PyStepGraph& s, const py::args& args) {
  const std::vector<StepInput>& specs = s.sg->inputs();
  if (args.size() != specs.size())
    throw ValueError("StepGraph.run: expected " + std::to_string(specs.size()) + " input(s), got " +
                     std::to_string(args.size()));
  std::vector<py::array> keep;
  std::vector<const void*> ptrs;
  for (size_t i = 0; i < specs.size(); ++i) {
    keep.push_back(host_input(args[i], specs[i], i));
    ptrs.push_back(keep.back().data());
  }
  if (!s.sg->captured() || !s.sg->can_capture()) return s.sg->run(ptrs);  // calls Python
  py::gil_scoped_release nogil;  // a replay runs no Python
  return s.sg->run(ptrs);
}

}  // namespace

void bind_step_graph(py::module_& m) {
  py::class_<PyStepGraph>(m, "StepGraph",
                          "A training step captured into a CUDA graph and replayed (eager on the CPU).")
      .def(py::init(&make), py::arg("graph"), py::arg("step"), py::arg("inputs"),
           "step(*tensors) -> loss records one step (forward, backward, opt.step()); inputs: "
           "[(shape, dtype), ...] with dtype 'float32', 'float64' or 'int32'")
      .def("run", &run, "One step on NumPy arrays (one per input); returns the loss.")
      .def_property_readonly("captured", [](const PyStepGraph& s) { return s.sg->captured(); })
      .def_property_readonly("can_capture", [](const PyStepGraph& s) { return s.sg->can_capture(); })
      .def_property_readonly("runs", [](const PyStepGraph& s) { return s.sg->runs(); });
  // Graph.capture(step, inputs): the same, as a method of the graph (bound
  // here, after Graph, so that graph.cpp needs no part of it).
  py::object graph = m.attr("Graph");
  graph.attr("capture") = py::cpp_function(
      [](const GraphPtr& pg, py::function fn, const py::list& inputs) { return make(pg, std::move(fn), inputs); },
      py::is_method(graph), py::name("capture"), py::arg("step"), py::arg("inputs"),
      "The same as StepGraph(graph, step, inputs).");
}

}  // namespace lldl::py_bind
