// Graph: the arena, tensors and tape of a model from Python. Tensor, the op
// functions, Optimizer and Graph's profiling methods are bound in their own
// files (tensor.cpp, ops.cpp, optim.cpp, profile.cpp).
//
//   g = cppapi.Graph()
//   W = g.param((10, 16), name="W", init="xavier_uniform", seed=0)
//   x = g.input(X)                      # float32 C-contiguous: no copy
//   loss = cppapi.mse_loss(cppapi.sigmoid(x @ W) ..., y)
//   g.backward(loss); opt.step(); g.reset()
#include <pybind11/stl.h>

#include <memory>

#include "autograd/init.h"
#include "autograd/optim.h"
#include "autograd/placement.h"
#include "bindings/arrays.h"
#include "bindings/graph_handles.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

Shape shape_from(const std::vector<int64_t>& dims, const char* what) {
  return make_shape(dims.data(), static_cast<int>(dims.size()), what);
}

namespace {

Init init_from(const std::string& s) {
  if (s == "zeros") return Init::Zeros;
  if (s == "xavier_uniform") return Init::XavierUniform;
  if (s == "xavier_normal") return Init::XavierNormal;
  if (s == "he_uniform") return Init::HeUniform;
  if (s == "he_normal") return Init::HeNormal;
  throw ValueError("param: unknown init '" + s +
                   "' (zeros, xavier_uniform, xavier_normal, he_uniform, he_normal)");
}

GraphPtr make_graph(const std::string& dtype, const std::string& backend) {
  if (dtype != "float32" && dtype != "float64")
    throw TypeError("Graph: dtype must be 'float32' or 'float64', got '" + dtype + "'");
  if (backend != "cpu" && backend != "cuda")
    throw ValueError("Graph: unknown backend '" + backend + "' (cpu, cuda)");
  // Graph() itself refuses CUDA without a usable device, saying why.
  return std::make_shared<PyGraph>(dtype == "float32" ? DType::F32 : DType::F64,
                                   backend == "cuda" ? Backend::CUDA : Backend::CPU);
}

PyTensor make_buffer(const GraphPtr& pg, const std::vector<int64_t>& shape, double fill) {
  Tensor t = pg->g.buffer(shape_from(shape, "buffer"), pg->g.dtype());
  const int64_t n = pg->g.desc(t).shape.numel();
  if (pg->g.dtype() == DType::F64) pg->g.from_host(t, std::vector<double>(n, fill).data());
  else pg->g.from_host(t, std::vector<float>(n, static_cast<float>(fill)).data());
  return PyTensor{pg, t};
}

// Graph.input: a float64 graph copies into double; writeable arrays are
// borrowed, read-only ones copied.
PyTensor make_input(const GraphPtr& pg, const py::handle& value, bool requires_grad) {
  bool ints = !requires_grad;
  py::array a = as_tensor_array(value, "input", ints);
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  Shape s = shape_from(dims, "input");
  DType t = a.dtype().kind() == 'i' ? DType::I32 : DType::F32;
  if (t == DType::F32 && pg->g.dtype() == DType::F64) {
    // A float64 graph (for checks) gets its own copy in double.
    auto d = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(value);
    Tensor h = pg->g.input(s, d.data(), DType::F64);
    if (requires_grad) pg->g.set_requires_grad(h);
    return PyTensor{pg, h};
  }
  Tensor h;
  if (a.writeable()) {
    // No copy: the graph borrows the array's memory until reset().
    h = pg->g.external(s, a.mutable_data(), t);
    pg->borrowed.push_back(a);
  } else {
    // Tensor.assign() may write into an input: read-only arrays are copied.
    h = pg->g.input(s, a.data(), t);
  }
  if (requires_grad) pg->g.set_requires_grad(h);
  return PyTensor{pg, h};
}

// Graph.backward: the upstream grad arrives in double and is handed over in
// the graph's dtype.
void backward_from(const GraphPtr& pg, const PyTensor& out, const py::object& grad) {
  if (grad.is_none()) return pg->g.backward(out.t);
  const TensorDesc& d = pg->g.desc(out.t);
  py::array_t<double, py::array::c_style | py::array::forcecast> seed(grad);
  if (seed.size() != d.shape.numel())
    throw ValueError("backward: grad has " + std::to_string(seed.size()) +
                     " elements, output " + d.shape.str() + " has " +
                     std::to_string(d.shape.numel()));
  if (pg->g.dtype() == DType::F64) return pg->g.backward(out.t, seed.data());
  std::vector<float> f(seed.data(), seed.data() + seed.size());
  pg->g.backward(out.t, f.data());
}

py::list tape_list(const GraphPtr& pg) {
  py::list l;
  for (const TapeEntry& e : pg->g.tape()) {
    py::dict d;
    d["op"] = op_name(e.kind);
    std::vector<int32_t> ins(e.in, e.in + e.n_in);
    d["inputs"] = ins;
    d["output"] = e.out;
    l.append(d);
  }
  return l;
}

py::dict stats_dict(const GraphPtr& pg) {
  py::dict d;
  for (auto [name, r] : {std::pair{"persistent", Region::Persistent}, {"step", Region::Step}}) {
    ArenaStats s = pg->g.arena().stats(r);
    py::dict x;
    x["in_use"] = s.in_use;
    x["high_water"] = s.high_water;
    x["reserved"] = s.reserved;
    x["blocks"] = s.blocks;
    x["system_allocs"] = s.system_allocs;
    d[name] = x;
  }
  d["tape_length"] = pg->g.tape().size();
  // Not "step": that key holds the step region's arena stats.
  d["step_number"] = pg->g.step();
  return d;
}

// Graph(dtype, backend) and the tensors it makes: buffers, parameters, inputs.
void def_construction(GraphClass& c) {
  c.def(py::init(&make_graph), py::arg("dtype") = "float32", py::arg("backend") = "cpu",
        "backend 'cuda' places every tensor and op of the graph on the GPU (float32 only); "
        "values reach it through input()/assign() and come back through numpy()/grad.")
      .def_property_readonly("backend", [](const GraphPtr& pg) {
             return std::string(backend_name(pg->g.backend()));
           })
      .def("buffer", &make_buffer, py::arg("shape"), py::arg("fill") = 0.0,
           "A persistent tensor without gradient (e.g. batch_norm's running statistics).")
      .def("param",
           [](const GraphPtr& pg, std::vector<int64_t> shape, const std::string& name,
              const std::string& init, uint64_t seed) {
             Tensor t = pg->g.param(shape_from(shape, "param"), name);
             init_param(pg->g, t, init_from(init), seed);
             return PyTensor{pg, t};
           },
           py::arg("shape"), py::arg("name") = "", py::arg("init") = "xavier_uniform",
           py::arg("seed") = 0,
           "A trainable parameter (persistent), initialised from a seed.")
      .def("input", &make_input, py::arg("value"), py::arg("requires_grad") = false,
           "A step input over the array. Writeable float32 C-contiguous arrays are borrowed "
           "without a copy until reset() (changing the array changes the input); other float "
           "dtypes and layouts, and read-only arrays, are copied once; integer arrays become "
           "int32 labels unless requires_grad.");
}

// One training step's end points: backward, reset, zero_grad.
void def_step(GraphClass& c) {
  c.def("backward", &backward_from, py::arg("output"), py::arg("grad") = py::none(),
        "Reverse walk from a one-element loss (or from any output with an upstream grad).")
      .def("reset",
           [](const GraphPtr& pg, bool keep_grads) {
             pg->g.reset(keep_grads);
             pg->borrowed.clear();
           },
           py::arg("keep_grads") = false,
           "Ends the step: step tensors are released, parameter gradients zeroed.")
      .def("zero_grad", [](const GraphPtr& pg) { pg->g.zero_grad(); });
}

// What a graph holds: parameters, the tape, arena statistics, anomaly mode.
void def_inspection(GraphClass& c) {
  c.def("params",
        [](const GraphPtr& pg) {
          std::vector<PyTensor> out;
          for (Tensor t : pg->g.params()) out.push_back({pg, t});
          return out;
        })
      .def("param_by_name",
           [](const GraphPtr& pg, const std::string& n) { return PyTensor{pg, pg->g.param_by_name(n)}; })
      .def_property("anomaly_mode", [](const GraphPtr& pg) { return pg->g.anomaly_mode(); },
                    [](const GraphPtr& pg, bool on) { pg->g.set_anomaly_mode(on); })
      .def("tape", &tape_list, "The recorded ops of this step, in order.")
      .def("stats", &stats_dict,
           "Arena bytes per region ('persistent', 'step': in use, high-water mark, reserved), "
           "tape_length and step_number (reset() calls so far, plus one).");
}

}  // namespace

void bind_graph(py::module_& m) {
  GraphClass c(m, "Graph",
               "Owns the arena, tensors and tape of a model. Ops run as they are called; "
               "backward() walks the tape in reverse.");
  def_construction(c);
  def_step(c);
  def_inspection(c);
  def_graph_profiling(c);
}

}  // namespace lldl::py_bind
