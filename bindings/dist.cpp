// cppapi.dist: data-parallel training from Python scripts started by
// `mpirun -np N python script.py` (dist/comm.h, dist/grad_sync.h); no mpi4py.
//
//   cppapi.dist.init()                       # joins the job (one rank without mpirun)
//   nn = ...; trainer.fit(X, Y, ...)         # the seed API: data parallel by itself
//   sync = cppapi.dist.GradSync(graph_or_model)  # the graph API, a GPT or an LSTM
//   ... backward ...; sync.finish()          # gradients are now the mean over ranks
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "bindings/graph_handles.h"
#include "bindings/module.h"
#include "core/error.h"
#include "dist/comm.h"
#include "dist/grad_sync.h"
#include "models/seed_api.h"

namespace lldl::py_bind {

namespace {

dist::ReduceOp reduce_op(const std::string& op) {
  if (op == "mean") return dist::ReduceOp::Mean;
  if (op == "sum") return dist::ReduceOp::Sum;
  if (op == "min") return dist::ReduceOp::Min;
  if (op == "max") return dist::ReduceOp::Max;
  throw ValueError("allreduce_scalar: op must be 'mean', 'sum', 'min' or 'max', got '" + op + "'");
}

// The Graph behind a graph-API Graph, a NeuralNetwork2, a GPT or an LSTM.
Graph& graph_of(const py::handle& obj, const char* what) {
  if (py::isinstance<PyGraph>(obj)) return obj.cast<PyGraph&>().g;
  if (py::isinstance<NeuralNetwork2>(obj)) {
    NeuralNetwork2& nn = obj.cast<NeuralNetwork2&>();
    if (!nn.built()) throw ValueError(std::string(what) + ": the NeuralNetwork2 is not built yet (fit or predict first)");
    return nn.graph();
  }
  if (Graph* g = lm_graph(obj)) return *g;
  throw TypeError(std::string(what) + ": expected a Graph, NeuralNetwork2, GPT or LSTM, got " +
                  std::string(py::str(py::type::of(obj).attr("__name__"))));
}

// A writable C-contiguous float32 or float64 array, reduced in place.
void allreduce_array(py::array a) {
  if (!(a.flags() & py::array::c_style) || !a.writeable())
    throw ValueError("allreduce_mean: the array must be C-contiguous and writable");
  py::gil_scoped_release nogil;  // other Python threads run while MPI waits
  if (a.dtype().is(py::dtype::of<float>()))
    dist::allreduce_mean(static_cast<float*>(a.mutable_data()), size_t(a.size()));
  else if (a.dtype().is(py::dtype::of<double>()))
    dist::allreduce_mean(static_cast<double*>(a.mutable_data()), size_t(a.size()));
  else
    throw TypeError("allreduce_mean: the array must be float32 or float64");
}

void broadcast_array(py::array a, int root) {
  if (!(a.flags() & py::array::c_style) || !a.writeable())
    throw ValueError("broadcast: the array must be C-contiguous and writable");
  py::gil_scoped_release nogil;
  dist::broadcast(a.mutable_data(), size_t(a.nbytes()), root);
}

}  // namespace

py::dict grad_sync_stats_dict(const dist::GradSyncStats& s) {
  py::dict d;
  d["steps"] = s.steps;
  d["buckets"] = s.buckets;
  d["comm_s"] = s.comm_s;
  d["exposed_s"] = s.exposed_s;
  d["hidden_fraction"] = s.hidden_fraction();
  return d;
}

void bind_dist(py::module_& top) {
  py::module_ m = top.def_submodule(
      "dist",
      "Data-parallel training across processes started by `mpirun -np N` (OpenMPI; no mpi4py).\n"
      "init() joins the job (a process started without mpirun is a job of one rank). After init(),\n"
      "Trainer.fit is data parallel: batch_size is per rank, gradients are averaged, rank 0 prints.\n"
      "GradSync(model) averages the gradients of a Graph, GPT or LSTM overlapping backward.");
  m.def("init", &dist::init, "Joins the job mpirun started (MPI_Init); later calls do nothing.");
  m.def("initialized", &dist::initialized);
  m.def("built_with_mpi", &dist::built_with_mpi, "True when lldl was built with MPI (LLDL_MPI).");
  m.def("rank", &dist::rank, "This process's rank (0 before init()).");
  m.def("world_size", &dist::world_size, "The number of ranks (1 before init()).");
  m.def("finalize", &dist::finalize, "Leaves the job after a barrier (also done at exit).");
  m.def("timeout_seconds", &dist::timeout_seconds,
        "Seconds a rank waits for the others before aborting the job (LLDL_DIST_TIMEOUT).");
  m.def("barrier", []() {
    py::gil_scoped_release nogil;
    dist::barrier();
  });
  m.def("allreduce_mean", &allreduce_array, py::arg("array"),
        "In place: each element of a float32/float64 C-contiguous array becomes its mean over ranks.");
  m.def("allreduce_scalar",
        [](double v, const std::string& op) {
          dist::ReduceOp o = reduce_op(op);
          py::gil_scoped_release nogil;
          return dist::allreduce_scalar(v, o);
        },
        py::arg("value"), py::arg("op") = "mean", "A number reduced over ranks: 'mean', 'sum', 'min' or 'max'.");
  m.def("broadcast", &broadcast_array, py::arg("array"), py::arg("root") = 0,
        "In place: every rank's array becomes rank root's (same shape and dtype everywhere).");
  m.def("shard",
        [](int64_t global_batch) {
          dist::Shard s = dist::my_shard(global_batch);
          return py::make_tuple(s.first, s.rows);
        },
        py::arg("global_batch"),
        "(first, rows): this rank's rows [first, first + rows) of a global batch that splits evenly\n"
        "over the ranks (ValueError otherwise); with TokenWindows.sample_rows or array slicing.");
  m.def("broadcast_params",
        [](const py::handle& model, int root) {
          Graph& g = graph_of(model, "broadcast_params");
          py::gil_scoped_release nogil;
          dist::broadcast_params(g, root);
        },
        py::arg("model"), py::arg("root") = 0,
        "Rank root's parameters to every rank (Graph, NeuralNetwork2, GPT or LSTM), after checking\n"
        "that all ranks hold the same parameter names and shapes.");

  py::class_<dist::GradSync>(m, "GradSync",
                             "Averages a model's gradients over the ranks, in buckets started while\n"
                             "backward runs. Call finish() after backward and before the optimiser step.")
      .def(py::init([](const py::handle& model, double bucket_mb) {
             Graph& g = graph_of(model, "GradSync");
             size_t bytes = bucket_mb > 0 ? size_t(bucket_mb * double(1 << 20)) : dist::default_bucket_bytes();
             return std::make_unique<dist::GradSync>(g, bytes);
           }),
           py::arg("model"), py::arg("bucket_mb") = 0.0, py::keep_alive<1, 2>(),
           "bucket_mb: bucket size in MiB (0: LLDL_DIST_BUCKET_MB or the default, 4).")
      .def("finish",
           [](dist::GradSync& s) {
             py::gil_scoped_release nogil;
             s.finish();
           },
           "Waits for every bucket and writes the mean gradients back.")
      .def("set_active", &dist::GradSync::set_active, py::arg("on"),
           "False: the next backward sends nothing (gradient accumulation's first micro-batches).")
      .def_property_readonly("num_buckets", [](const dist::GradSync& s) { return s.buckets().size(); })
      .def("stats", [](const dist::GradSync& s) { return grad_sync_stats_dict(s.stats()); },
           "steps, buckets, comm_s (first start to last completion, summed over steps), exposed_s\n"
           "(time finish() waited) and hidden_fraction (1 - exposed/comm).");
}

}  // namespace lldl::py_bind
