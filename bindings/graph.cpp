// The graph API for notebooks: Graph, Tensor, one function per op, Optimizer.
//
//   g = cppapi.Graph()
//   W = g.param((10, 16), name="W", init="xavier_uniform", seed=0)
//   x = g.input(X)                      # float32 C-contiguous: no copy
//   loss = cppapi.mse_loss(cppapi.sigmoid(x @ W) ..., y)
//   g.backward(loss); opt.step(); g.reset()
#include <pybind11/stl.h>

#include <memory>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "autograd/placement.h"
#include "bindings/arrays.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

namespace {

// The graph plus the arrays whose memory its step tensors borrow; those are
// released by reset().
struct PyGraph {
  PyGraph(DType t, Backend b) : g(t, b) {}
  Graph g;
  std::vector<py::object> borrowed;
  py::object placement;  // keeps the CostModel of set_auto_placement alive
};
using GraphPtr = std::shared_ptr<PyGraph>;

// A tensor handle that keeps its graph alive.
struct PyTensor {
  GraphPtr owner;
  Tensor t;
};

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

Shape shape_from(const std::vector<int64_t>& dims, const char* what) {
  return make_shape(dims.data(), static_cast<int>(dims.size()), what);
}

Init init_from(const std::string& s) {
  if (s == "zeros") return Init::Zeros;
  if (s == "xavier_uniform") return Init::XavierUniform;
  if (s == "xavier_normal") return Init::XavierNormal;
  if (s == "he_uniform") return Init::HeUniform;
  if (s == "he_normal") return Init::HeNormal;
  throw ValueError("param: unknown init '" + s +
                   "' (zeros, xavier_uniform, xavier_normal, he_uniform, he_normal)");
}

PyTensor wrap(const PyTensor& like, Tensor t) { return {like.owner, t}; }

// Ops: each takes PyTensors and records on their graph.
PyTensor op1(Tensor (*f)(Tensor), const PyTensor& x) { return wrap(x, f(x.t)); }
PyTensor op2(Tensor (*f)(Tensor, Tensor), const PyTensor& a, const PyTensor& b) {
  return wrap(a, f(a.t, b.t));
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

void bind_graph(py::module_& m) {
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

  py::class_<PyGraph, GraphPtr>(m, "Graph",
                                "Owns the arena, tensors and tape of a model. Ops run as they "
                                "are called; backward() walks the tape in reverse.")
      .def(py::init([](const std::string& dtype, const std::string& backend) {
             if (dtype != "float32" && dtype != "float64")
               throw TypeError("Graph: dtype must be 'float32' or 'float64', got '" + dtype + "'");
             if (backend != "cpu" && backend != "cuda")
               throw ValueError("Graph: unknown backend '" + backend + "' (cpu, cuda)");
             // Graph() itself refuses CUDA without a usable device, saying why.
             return std::make_shared<PyGraph>(dtype == "float32" ? DType::F32 : DType::F64,
                                              backend == "cuda" ? Backend::CUDA : Backend::CPU);
           }),
           py::arg("dtype") = "float32", py::arg("backend") = "cpu",
           "backend 'cuda' places every tensor and op of the graph on the GPU (float32 only); "
           "values reach it through input()/assign() and come back through numpy()/grad.")
      .def_property_readonly("backend", [](const GraphPtr& pg) {
             return std::string(backend_name(pg->g.backend()));
           })
      .def("buffer",
           [](const GraphPtr& pg, std::vector<int64_t> shape, double fill) {
             Tensor t = pg->g.buffer(shape_from(shape, "buffer"), pg->g.dtype());
             const int64_t n = pg->g.desc(t).shape.numel();
             if (pg->g.dtype() == DType::F64) pg->g.from_host(t, std::vector<double>(n, fill).data());
             else pg->g.from_host(t, std::vector<float>(n, static_cast<float>(fill)).data());
             return PyTensor{pg, t};
           },
           py::arg("shape"), py::arg("fill") = 0.0,
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
      .def("input",
           [](const GraphPtr& pg, const py::handle& value, bool requires_grad) {
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
           },
           py::arg("value"), py::arg("requires_grad") = false,
           "A step input over the array. Writeable float32 C-contiguous arrays are borrowed "
           "without a copy until reset() (changing the array changes the input); other float "
           "dtypes and layouts, and read-only arrays, are copied once; integer arrays become "
           "int32 labels unless requires_grad.")
      .def("backward",
           [](const GraphPtr& pg, const PyTensor& out, const py::object& grad) {
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
           },
           py::arg("output"), py::arg("grad") = py::none(),
           "Reverse walk from a one-element loss (or from any output with an upstream grad).")
      .def("reset",
           [](const GraphPtr& pg, bool keep_grads) {
             pg->g.reset(keep_grads);
             pg->borrowed.clear();
           },
           py::arg("keep_grads") = false,
           "Ends the step: step tensors are released, parameter gradients zeroed.")
      .def("zero_grad", [](const GraphPtr& pg) { pg->g.zero_grad(); })
      .def("params",
           [](const GraphPtr& pg) {
             std::vector<PyTensor> out;
             for (Tensor t : pg->g.params()) out.push_back({pg, t});
             return out;
           })
      .def("param_by_name",
           [](const GraphPtr& pg, const std::string& n) { return PyTensor{pg, pg->g.param_by_name(n)}; })
      .def_property("anomaly_mode", [](const GraphPtr& pg) { return pg->g.anomaly_mode(); },
                    [](const GraphPtr& pg, bool on) { pg->g.set_anomaly_mode(on); })
      .def("set_profiling", [](const GraphPtr& pg, bool on) { pg->g.set_profiling(on); },
           py::arg("on") = true,
           "Per-op profiling: calls, kernel time, FLOPs and bytes per op and phase.")
      .def_property_readonly("profiling", [](const GraphPtr& pg) { return pg->g.profiling(); })
      .def("profile", [](const GraphPtr& pg) { return profile_dict(pg->g.profile()); },
           "{op: {'forward': {calls, seconds, flops, bytes, gflops, gbs, backend}, "
           "'backward': {...}}} for every op with calls.")
      .def("reset_profile", [](const GraphPtr& pg) { pg->g.reset_profile(); })
      .def("profile_table",
           [](const GraphPtr& pg, bool roofline) { return profile_text(pg->g.profile(), roofline); },
           py::arg("roofline") = false,
           "The profile as a table sorted by time; roofline=True adds the position under the "
           "measured peak (measure_peak).")
      .def("set_memory_planning", [](const GraphPtr& pg, bool on) { pg->g.set_memory_planning(on); },
           py::arg("on") = true,
           "Plan step memory by lifetimes: after a step's first run, the same step is served "
           "from one planned block and allocates nothing. With planning on, an intermediate "
           "tensor is valid only until its last use (reading it later raises ValueError); the "
           "loss, outputs no op consumes and inputs stay valid until reset(). Takes effect on "
           "an empty step at once, else at the next reset().")
      .def_property_readonly("memory_planning", [](const GraphPtr& pg) { return pg->g.memory_planning(); })
      .def("memory_report", [](const GraphPtr& pg) { return memory_report_dict(pg->g.memory_report()); },
           "Step-region bytes of the last completed step: peak_unplanned (bump allocation), "
           "peak_planned, sum_all_tensors, max_live_bytes (the lower bound), plan_bytes (the "
           "block for all planned graphs), requests, graphs, last_step_planned, planned_steps, "
           "fallback_steps. With planning off only peak_unplanned is set.")
      .def("set_auto_placement",
           [](const GraphPtr& pg, const py::object& model) {
             if (model.is_none()) {
               pg->g.set_auto_placement(nullptr);
               pg->placement = py::none();
               return;
             }
             pg->g.set_auto_placement(&model.cast<const CostModel&>());
             pg->placement = model;
           },
           py::arg("model"),
           "Run every kernel at the thread count the CostModel predicts fastest; None: off.")
      .def("tape",
           [](const GraphPtr& pg) {
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
           },
           "The recorded ops of this step, in order.")
      .def("stats", [](const GraphPtr& pg) {
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
      }, "Arena bytes per region ('persistent', 'step': in use, high-water mark, reserved), "
         "tape_length and step_number (reset() calls so far, plus one).");

  m.def("matmul", [](const PyTensor& a, const PyTensor& b, bool ta, bool tb) {
    return wrap(a, matmul(a.t, b.t, ta, tb));
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false);
  m.def("bias_add", [](const PyTensor& x, const PyTensor& b) { return op2(bias_add, x, b); });
  m.def("linear", [](const PyTensor& x, const PyTensor& w, const PyTensor& b, bool trans_b) {
    return wrap(x, linear(x.t, w.t, b.t, trans_b));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("trans_b") = false,
     "x (M, K) @ w (K, N) + b (N) -> (M, N), or x @ w^T + b with w (N, K) when trans_b: "
     "bias_add(matmul(x, w), b) as one op.");
  m.def("add", [](const PyTensor& a, const PyTensor& b) { return op2(add, a, b); });
  m.def("sub", [](const PyTensor& a, const PyTensor& b) { return op2(sub, a, b); });
  m.def("mul", [](const PyTensor& a, const PyTensor& b) { return op2(mul, a, b); });
  m.def("scale", [](const PyTensor& x, float s) { return wrap(x, scale(x.t, s)); });
  m.def("sum", [](const PyTensor& x, int axis) { return wrap(x, sum(x.t, axis)); },
        py::arg("x"), py::arg("axis") = -1);
  m.def("mean", [](const PyTensor& x, int axis) { return wrap(x, mean(x.t, axis)); },
        py::arg("x"), py::arg("axis") = -1);
  m.def("sigmoid", [](const PyTensor& x) { return op1(sigmoid, x); });
  m.def("tanh", [](const PyTensor& x) { return op1(lldl::tanh, x); });
  m.def("relu", [](const PyTensor& x) { return op1(relu, x); });
  m.def("identity", [](const PyTensor& x) { return op1(identity, x); });
  m.def("softmax", [](const PyTensor& x) { return op1(softmax, x); });
  m.def("log_softmax", [](const PyTensor& x) { return op1(log_softmax, x); });
  m.def("mse_loss", [](const PyTensor& p, const PyTensor& t) { return op2(mse_loss, p, t); });
  m.def("cross_entropy", [](const PyTensor& l, const PyTensor& t) { return op2(cross_entropy, l, t); },
        "Cross-entropy of logits against one-hot/soft float targets or int32 labels.");
  m.def("conv2d", [](const PyTensor& x, const PyTensor& w, const PyTensor& b, int stride, int padding) {
    return wrap(x, conv2d(x.t, w.t, b.t, stride, padding));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride") = 1, py::arg("padding") = 0,
     "x (N, C, H, W), w (OC, C, KH, KW), b (OC) -> (N, OC, OH, OW), zero padding.");
  m.def("max_pool2d", [](const PyTensor& x, int kernel, int stride) {
    return wrap(x, max_pool2d(x.t, kernel, stride));
  }, py::arg("x"), py::arg("kernel"), py::arg("stride") = 0, "stride 0 means kernel.");
  m.def("avg_pool2d", [](const PyTensor& x, int kernel, int stride) {
    return wrap(x, avg_pool2d(x.t, kernel, stride));
  }, py::arg("x"), py::arg("kernel"), py::arg("stride") = 0, "stride 0 means kernel.");
  m.def("reshape", [](const PyTensor& x, std::vector<int64_t> shape) {
    return wrap(x, reshape(x.t, shape_from(shape, "reshape")));
  }, py::arg("x"), py::arg("shape"), "Same elements, new shape, no copy.");
  m.def("flatten", [](const PyTensor& x) { return op1(flatten, x); }, "(N, ...) -> (N, rest)");
  m.def("dropout", [](const PyTensor& x, float p, bool training, uint64_t seed) {
    return wrap(x, dropout(x.t, p, training, seed));
  }, py::arg("x"), py::arg("p"), py::arg("training") = true, py::arg("seed") = 0);
  m.def("batch_norm", [](const PyTensor& x, const PyTensor& gamma, const PyTensor& beta,
                         const PyTensor& running_mean, const PyTensor& running_var, bool training,
                         float momentum, float eps) {
    return wrap(x, batch_norm(x.t, gamma.t, beta.t, running_mean.t, running_var.t, training,
                              momentum, eps));
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
     py::arg("running_var"), py::arg("training") = true, py::arg("momentum") = 0.1f,
     py::arg("eps") = 1e-5f, "Per-channel normalisation; running buffers come from Graph.buffer.");
  m.def("embedding", [](const PyTensor& ids, const PyTensor& table) {
    return op2(embedding, ids, table);
  }, py::arg("ids"), py::arg("table"),
     "ids int32 (at most 3-D, from Graph.input of an integer array), table (V, C) -> "
     "ids.shape + (C,); every id must be in [0, V).");
  m.def("layer_norm", [](const PyTensor& x, const PyTensor& gamma, const PyTensor& beta, float eps) {
    return wrap(x, layer_norm(x.t, gamma.t, beta.t, eps));
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps") = 1e-5f,
     "Normalises x (..., C) over its last dimension, then gamma * xhat + beta.");
  m.def("gelu", [](const PyTensor& x) { return op1(gelu, x); },
        "GELU, tanh approximation (PyTorch approximate='tanh').");
  m.def("transpose", [](const PyTensor& x, int dim0, int dim1) {
    return wrap(x, transpose(x.t, dim0, dim1));
  }, py::arg("x"), py::arg("dim0"), py::arg("dim1"), "Swaps two dims (a contiguous copy).");
  m.def("slice", [](const PyTensor& x, int axis, int64_t start, int64_t length) {
    return wrap(x, slice(x.t, axis, start, length));
  }, py::arg("x"), py::arg("axis"), py::arg("start"), py::arg("length"),
     "Elements [start, start + length) along axis (a copy).");
  m.def("concat", [](const PyTensor& a, const PyTensor& b, int axis) {
    return wrap(a, concat(a.t, b.t, axis));
  }, py::arg("a"), py::arg("b"), py::arg("axis"), "a and b joined along axis.");
  m.def("causal_attention", [](const PyTensor& qkv, int n_head) {
    return wrap(qkv, causal_attention(qkv.t, n_head));
  }, py::arg("qkv"), py::arg("n_head"),
     "qkv (B, T, 3C) as GPT-2's c_attn writes it -> y (B, T, C), causal multi-head attention.");
  m.def("lstm", [](const PyTensor& x, const PyTensor& w_ih, const PyTensor& w_hh,
                   const PyTensor& b) { return wrap(x, lstm(x.t, w_ih.t, w_hh.t, b.t)); },
        py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b"),
        "x (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H) -> h (B, T, H); zero initial state, "
        "gates i, f, g, o (PyTorch), b = bias_ih + bias_hh.");
  m.def("lstm_gates", [](const PyTensor& gx, const PyTensor& w_hh) {
    return wrap(gx, lstm_gates(gx.t, w_hh.t));
  }, py::arg("gx"), py::arg("w_hh"),
     "gx (B, T, 4H) = x W_ih^T + b, the input projection already applied, w_hh (4H, H) -> "
     "h (B, T, H): lstm without its input GEMM.");
  m.def("op_names", [] {
    std::vector<std::string> n;
    for (int i = 0; i < kOpCount; ++i) n.push_back(op_name(static_cast<OpKind>(i)));
    return n;
  });

  py::class_<Optimizer>(m, "Optimizer", "Updates a graph's parameters from their gradients.")
      .def(py::init([](const GraphPtr& pg, OptimKind kind, float lr, float momentum, float beta1,
                       float beta2, float eps, float weight_decay) {
             OptimConfig c{kind, lr, momentum, beta1, beta2, eps, weight_decay};
             return std::make_unique<Optimizer>(pg->g, c);
           }),
           py::keep_alive<1, 2>(), py::arg("graph"), py::arg("kind"), py::arg("lr") = 0.01f,
           py::arg("momentum") = 0.9f, py::arg("beta1") = 0.9f, py::arg("beta2") = 0.999f,
           py::arg("eps") = 1e-8f, py::arg("weight_decay") = 0.0f)
      .def("step", &Optimizer::step)
      .def("reset_state", &Optimizer::reset_state)
      .def_readonly("steps", &Optimizer::t);
}

}  // namespace lldl::py_bind
