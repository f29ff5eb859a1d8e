// cppapi: the CUDA backend's status and tier switch.
#include <pybind11/stl.h>

#include <string>

#include "backends/cuda/device.h"
#include "bindings/module.h"
#include "core/error.h"

namespace py = pybind11;

namespace lldl::py_bind {

void bind_cuda(py::module_& m) {
  m.def("cuda_available", &cuda_available,
        "True when lldl was built with CUDA and a CUDA device is present.");
  m.def("cuda_status", &cuda_status,
        "The CUDA device in one line, or why the CUDA backend is unavailable.");
  m.def(
      "set_cuda_tier",
      [](const std::string& tier) {
        if (tier == "naive") set_cuda_tier(CudaTier::Naive);
        else if (tier == "fast") set_cuda_tier(CudaTier::Fast);
        else throw ValueError("set_cuda_tier: tier must be 'naive' or 'fast', got '" + tier + "'");
      },
      py::arg("tier"), "Which CUDA kernels run: 'naive' (one thread per output) or 'fast'.");
  m.def("cuda_tier", [] { return std::string(cuda_tier_name(cuda_tier())); });
  m.def("set_tf32", &set_cuda_tf32, py::arg("on"),
        "CUDA GEMMs may round their float inputs to TF32 on the tensor cores (default off). "
        "Raises UnavailableError without a CUDA device.");
  m.def("tf32", &cuda_tf32);
  m.def(
      "set_precision",
      [](const std::string& p) {
        if (p != "fp32" && p != "bf16")
          throw ValueError("set_precision: precision must be 'fp32' or 'bf16', got '" + p + "'");
        set_cuda_bf16_gemm(p == "bf16");
      },
      py::arg("precision"),
      "'bf16': CUDA GEMMs run on bfloat16 copies of their operands with float accumulation "
      "(autocast; weights and activations stay float32). 'fp32' (default): float GEMMs.");
  m.def("precision", [] { return std::string(cuda_bf16_gemm() ? "bf16" : "fp32"); });
  m.def("set_cuda_fused", &set_cuda_fused, py::arg("on"),
        "Within the fast tier, the fused kernels (flash attention, block-per-row cross-entropy, "
        "linear_gelu's epilogue) when True (the default), the middle rung when False.");
  m.def("cuda_fused", &cuda_fused);
  m.def("cuda_rung", [] { return std::string(cuda_rung_name()); },
        "The rung kernels run now: 'naive', 'middle' or 'fast'.");
}

}  // namespace lldl::py_bind
