// The profiler, the measured peak and the placement cost model from Python.
//
//   g.set_profiling(True); ...; g.profile()["matmul"]["forward"]["gflops"]
//   print(g.profile_table(roofline=True))
//   cppapi.measure_peak()  ->  {"threads": 2, "gflops": ..., "gbs": ..., "ridge": ...}
//   m = cppapi.CostModel.from_csv("bench/out/study.csv"); g.set_auto_placement(m)
//   g.set_memory_planning(True); ...; g.memory_report()["peak_planned"]
#include <pybind11/stl.h>

#include "autograd/placement.h"
#include "autograd/planner.h"
#include "autograd/profiler.h"
#include "bench/peak.h"
#include "bindings/graph_handles.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

namespace py = pybind11;

py::dict memory_report_dict(const MemoryReport& r) {
  py::dict d;
  d["peak_unplanned"] = r.peak_unplanned;
  d["peak_planned"] = r.peak_planned;
  d["sum_all_tensors"] = r.sum_all_tensors;
  d["max_live_bytes"] = r.max_live_bytes;
  d["plan_bytes"] = r.plan_bytes;
  d["requests"] = r.requests;
  d["graphs"] = r.graphs;
  d["last_step_planned"] = r.last_step_planned;
  d["planned_steps"] = r.planned_steps;
  d["fallback_steps"] = r.fallback_steps;
  return d;
}

py::dict profile_dict(const Profile& p) {
  py::dict out;
  for (int b = 0; b < kBackendCount; ++b)
    for (int k = 0; k < kOpCount; ++k) {
      const ProfileRow* rows = p.rows[b][k];
      if (!rows[0].calls && !rows[1].calls) continue;
      py::dict op;
      for (int ph = 0; ph < kPhaseCount; ++ph) {
        const ProfileRow& r = rows[ph];
        py::dict d;
        d["calls"] = r.calls;
        d["seconds"] = static_cast<double>(r.ns) * 1e-9;
        d["flops"] = r.flops;
        d["bytes"] = r.bytes;
        d["gflops"] = r.gflops();
        d["gbs"] = r.gbs();
        d["backend"] = backend_name(Backend(b));
        op[phase_name(Phase(ph))] = d;
      }
      std::string key = op_name(OpKind(k));
      if (Backend(b) != Backend::CPU) key += std::string("@") + backend_name(Backend(b));
      out[py::str(key)] = op;
    }
  return out;
}

std::string profile_text(const Profile& p, bool roofline) {
  return profile_table(p, roofline ? &measure_peak() : nullptr);
}

namespace {

Backend backend_from(const std::string& s) {
  for (int i = 0; i < kBackendCount; ++i)
    if (s == backend_name(Backend(i))) return Backend(i);
  throw ValueError("unknown backend '" + s + "' (cpu, cuda)");
}

Phase phase_from(const std::string& s) {
  if (s == "forward") return Phase::Forward;
  if (s == "backward") return Phase::Backward;
  throw ValueError("unknown phase '" + s + "' (forward, backward)");
}

}  // namespace

// Graph's per-op profiling, memory planning and auto placement.
void def_graph_profiling(GraphClass& c) {
  c.def("set_profiling", [](const GraphPtr& pg, bool on) { pg->g.set_profiling(on); },
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
           "Run every kernel at the thread count the CostModel predicts fastest; None: off.");
}

void bind_profile(py::module_& m) {
  m.def("measure_peak", [](bool refresh) {
    const Peak& p = measure_peak(refresh);
    py::dict d;
    d["threads"] = p.threads;
    d["gflops"] = p.gflops;
    d["gbs"] = p.gbs;
    d["ridge"] = p.ridge();
    return d;
  }, py::arg("refresh") = false,
     "The machine's peak at the current thread count: GFLOP/s of a float32 GEMM, GB/s of a "
     "triad, and their ratio (the roofline's ridge, FLOP/byte). Measured once per thread count "
     "(about a quarter of a second), then cached; refresh=True measures again.");

  py::class_<CostModel>(m, "CostModel",
                        "Per op, backend and thread count: time = a + b FLOPs + c bytes, fitted "
                        "from the study's CSV (bench/study). Picks the fastest placement.")
      .def_static("from_csv", &CostModel::from_csv, py::arg("path"))
      .def_property("max_threads", &CostModel::max_threads, &CostModel::set_max_threads)
      .def("set_available", [](CostModel& c, const std::string& b, bool on) {
             c.set_available(backend_from(b), on);
           }, py::arg("backend"), py::arg("available"))
      .def_property_readonly("skipped", &CostModel::skipped)
      .def("fits", [](const CostModel& c) {
             py::list l;
             for (const CostFit& f : c.fits()) {
               py::dict d;
               d["op"] = op_name(f.kind);
               d["backend"] = backend_name(f.backend);
               d["tier"] = f.tier;
               d["threads"] = f.threads;
               d["phase"] = phase_name(f.phase);
               d["a"] = f.a;
               d["b"] = f.b;
               d["c"] = f.c;
               d["rows"] = f.n;
               l.append(d);
             }
             return l;
           })
      .def("choose", [](const CostModel& c, const std::string& op, double flops, double bytes,
                        const std::string& phase) -> py::object {
             Placement p = c.choose_cost(op_from_name(op.c_str()), phase_from(phase), flops, bytes);
             if (!p.found()) return py::none();
             py::dict d;
             d["backend"] = backend_name(p.backend);
             d["threads"] = p.threads;
             d["tier"] = p.tier;
             d["seconds"] = p.seconds;
             return d;
           }, py::arg("op"), py::arg("flops"), py::arg("bytes"), py::arg("phase") = "forward",
           "The fastest {backend, threads, tier, seconds} for one call, or None without data.");
}

}  // namespace lldl::py_bind
