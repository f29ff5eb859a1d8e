// Optimizer: SGD, momentum, Adam and AdamW over a graph's parameters.
//
//   opt = cppapi.Optimizer(g, cppapi.OptimiserType.Adam, lr=1e-3); ...; opt.step()
#include <cmath>
#include <memory>
#include <string>

#include "autograd/optim.h"
#include "bindings/graph_handles.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

void bind_optim(py::module_& m) {
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
      .def_readonly("steps", &Optimizer::t)
      // The learning rate of the next step (a schedule sets it before each
      // step; a captured step, cppapi.StepGraph, reads it at every replay).
      .def_property(
          "lr", [](const Optimizer& o) { return o.cfg.lr; },
          [](Optimizer& o, float lr) {
            if (!(lr >= 0) || !std::isfinite(lr))
              throw ValueError("Optimizer.lr: must be a finite number >= 0, got " + std::to_string(lr));
            o.cfg.lr = lr;
          });
}

}  // namespace lldl::py_bind
