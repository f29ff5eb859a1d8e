// The language models: GPTConfig / GPT and LSTMConfig / LSTM, with the same
// interface: forward, loss, backward, grads, parameters, save, load,
// generate, and an AdamW optimiser (configure_optimizer, clip_grad_norm,
// step, zero_grad) for training from Python.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/optim.h"
#include "autograd/profiler.h"
#include "bench/peak.h"
#include "bindings/module.h"
#include "core/error.h"
#include "models/gpt.h"
#include "models/lstm_lm.h"

namespace lldl::py_bind {

namespace py = pybind11;

namespace {

// Token ids as an int32 [B, T] buffer. Integer arrays (or nested lists) only;
// values are range-checked against int32 here and against the vocabulary by
// the model.
struct Ids {
  std::vector<int32_t> v;
  int64_t B = 0, T = 0;
};
Ids as_ids(const py::handle& obj, const char* name, bool allow_1d) {
  py::array a = py::array::ensure(obj);
  if (!a) throw TypeError(std::string(name) + ": expected an integer array");
  if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
    throw TypeError(std::string(name) + ": token ids must be an integer array, got dtype " +
                    std::string(py::str(a.dtype())));
  if (!(a.ndim() == 2 || (allow_1d && a.ndim() == 1)))
    throw ValueError(std::string(name) + ": expected a 2-D [B, T] array of token ids, got " +
                     std::to_string(a.ndim()) + "-D");
  auto a64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  Ids ids;
  ids.B = a.ndim() == 2 ? a.shape(0) : 1;
  ids.T = a.ndim() == 2 ? a.shape(1) : a.shape(0);
  const int64_t* p = a64.data();
  ids.v.resize(static_cast<size_t>(ids.B * ids.T));
  for (size_t i = 0; i < ids.v.size(); ++i) {
    if (p[i] < INT32_MIN || p[i] > INT32_MAX)
      throw ValueError(std::string(name) + ": token id " + std::to_string(p[i]) +
                       " does not fit int32");
    ids.v[i] = static_cast<int32_t>(p[i]);
  }
  return ids;
}

template <class T>
py::array_t<T> copy_out(const T* p, std::vector<py::ssize_t> shape) {
  py::array_t<T> a(shape);
  std::copy(p, p + a.size(), a.mutable_data());
  return a;
}

// A model and its optimiser, for Python.
template <class Model>
struct PyLM {
  std::unique_ptr<Model> m;
  std::unique_ptr<Optimizer> opt;
};

// Generation of B prompt rows: the GPT runs them as one batch through its
// KV caches; the LSTM one after the other (row b with seed + b either way).
std::vector<std::vector<int32_t>> generate_rows(const GPT& m, const std::vector<std::vector<int32_t>>& rows,
                                                int64_t n, float temperature, int64_t top_k,
                                                uint64_t seed, float top_p) {
  return m.generate_batch(rows, n, temperature, top_k, seed, top_p);
}
std::vector<std::vector<int32_t>> generate_rows(const LSTMLM& m, const std::vector<std::vector<int32_t>>& rows,
                                                int64_t n, float temperature, int64_t top_k,
                                                uint64_t seed, float top_p) {
  if (top_p != 1.0f) throw ValueError("generate: top_p is supported by the GPT only (got " +
                                      std::to_string(top_p) + ")");
  std::vector<std::vector<int32_t>> out;
  for (size_t b = 0; b < rows.size(); ++b)
    out.push_back(m.generate(rows[b], n, temperature, top_k, seed + b));
  return out;
}

Backend backend_arg(const std::string& d) {
  if (d == "cpu") return Backend::CPU;
  if (d == "cuda") return Backend::CUDA;
  throw ValueError("device must be 'cpu' or 'cuda', got '" + d + "'");
}

template <class Model>
py::dict named(PyLM<Model>& lm, bool grads) {
  py::dict d;
  Graph& g = lm.m->graph();
  for (const auto& [name, t] : lm.m->named_params()) {
    const Shape& s = g.shape(t);
    std::vector<py::ssize_t> shape(s.d, s.d + s.ndim);
    py::array_t<float> a(shape);  // copied from host or device memory
    if (grads) g.grad_to_host(t, a.mutable_data());
    else g.to_host(t, a.mutable_data());
    d[py::str(name)] = a;
  }
  return d;
}

template <class Model, class Config>
py::class_<PyLM<Model>> bind_lm(py::module_& m, const char* name, const char* doc) {
  using LM = PyLM<Model>;
  py::class_<LM> cls(m, name, doc);
  cls
      .def(py::init([](const Config& c, uint64_t seed, const std::string& device) {
             return LM{std::make_unique<Model>(c, seed, backend_arg(device)), nullptr};
           }),
           py::arg("config"), py::arg("seed") = 1337, py::arg("device") = "cpu",
           "device 'cuda': parameters, training and (GPT) generation on the GPU; the weights "
           "are drawn on the host exactly as for 'cpu', then copied.")
      .def_property_readonly("device", [](const LM& lm) {
        return std::string(backend_name(lm.m->backend()));
      })
      .def_property_readonly("config", [](const LM& lm) { return lm.m->config(); })
      .def("num_parameters", [](const LM& lm) { return lm.m->num_parameters(); })
      .def("forward",
           [](LM& lm, const py::handle& idx) {
             Ids ids = as_ids(idx, "idx", false);
             Tensor logits;
             {
               py::gil_scoped_release nogil;
               logits = lm.m->forward(ids.v.data(), ids.B, ids.T);
             }
             int64_t V = lm.m->config().vocab_size;
             py::array_t<float> out(std::vector<py::ssize_t>{ids.B, ids.T, V});
             lm.m->graph().to_host(logits, out.mutable_data());
             return out;
           },
           py::arg("idx"), "Logits float32 [B, T, vocab] of int ids [B, T].")
      .def("loss",
           [](LM& lm, const py::handle& idx, const py::handle& targets) {
             Ids x = as_ids(idx, "idx", false), y = as_ids(targets, "targets", false);
             if (x.B != y.B || x.T != y.T)
               throw ValueError("loss: targets [" + std::to_string(y.B) + ", " +
                                std::to_string(y.T) + "] must have idx's shape [" +
                                std::to_string(x.B) + ", " + std::to_string(x.T) + "]");
             py::gil_scoped_release nogil;
             return lm.m->loss(x.v.data(), y.v.data(), x.B, x.T);
           },
           py::arg("idx"), py::arg("targets"), "Mean cross-entropy (nats per token).")
      .def("backward",
           [](LM& lm) {
             py::gil_scoped_release nogil;
             lm.m->backward();
           },
           "Accumulates the gradients of the last loss() (zero_grad() clears them).")
      .def("zero_grad", [](LM& lm) { lm.m->zero_grad(); })
      .def("set_memory_planning", [](LM& lm, bool on) { lm.m->graph().set_memory_planning(on); },
           py::arg("on"), "Planned step memory (Graph::set_memory_planning), as lldl-gpt train uses.")
      .def("set_profiling", [](LM& lm, bool on) { lm.m->graph().set_profiling(on); },
           py::arg("on"), "Per-op timing of every forward and backward kernel (Graph profiler).")
      .def("profile_table",
           [](LM& lm, bool roofline) {
             return profile_table(lm.m->graph().profile(), roofline ? &measure_peak() : nullptr);
           },
           py::arg("roofline") = false, "The profiler's table, slowest op first.")
      .def("reset_profile", [](LM& lm) { lm.m->graph().reset_profile(); })
      .def("grads", [](LM& lm) { return named(lm, true); }, "dict name -> gradient (a copy)")
      .def("parameters", [](LM& lm) { return named(lm, false); }, "dict name -> value (a copy)")
      .def("save", [](const LM& lm, const std::string& path) { lm.m->save(path); },
           py::arg("path"), "Atomic safetensors checkpoint (parameters + config).")
      .def("load", [](LM& lm, const std::string& path) { lm.m->load(path); }, py::arg("path"))
      .def_static("from_checkpoint",
                  [](const std::string& path, const std::string& device) {
                    return LM{Model::from_checkpoint(path, nullptr, backend_arg(device)), nullptr};
                  },
                  py::arg("path"), py::arg("device") = "cpu",
                  "The model a checkpoint describes, its parameters loaded, on device.")
      .def("configure_optimizer",
           [](LM& lm, float lr, float weight_decay, std::pair<float, float> betas, float eps,
              const std::string& precision) {
             const MatmulPrecision p = matmul_precision_from_name(precision);
             OptimConfig c;
             c.kind = OptimKind::AdamW;
             c.lr = lr;
             c.weight_decay = weight_decay;
             c.beta1 = betas.first;
             c.beta2 = betas.second;
             c.eps = eps;
             lm.opt = std::make_unique<Optimizer>(lm.m->graph(), c);
             lm.m->graph().set_matmul_precision(p);
           },
           py::arg("lr") = 1e-3f, py::arg("weight_decay") = 0.1f,
           py::arg("betas") = std::pair<float, float>(0.9f, 0.999f), py::arg("eps") = 1e-8f,
           py::arg("precision") = "fp32",
           "AdamW with decoupled weight decay over every parameter. precision 'bf16': mixed\n"
           "precision, the matmul and linear products (forward and both gradients) with bf16\n"
           "operands and float32 accumulation; weights, gradients and moments stay float32.")
      .def_property_readonly(
          "precision", [](const LM& lm) { return matmul_precision_name(lm.m->graph().matmul_precision()); },
          "'fp32' or 'bf16': the operands of the matrix products (configure_optimizer).")
      .def("clip_grad_norm",
           [](LM& lm, double max_norm) { return clip_grad_norm(lm.m->graph(), max_norm); },
           py::arg("max_norm"), "Scales the gradients to global norm <= max_norm; returns the norm.")
      .def("set_grad_clip",
           [](LM& lm, double max_norm) {
             if (!lm.opt) throw ValueError("set_grad_clip: call configure_optimizer() first");
             if (!(max_norm >= 0)) throw ValueError("set_grad_clip: max_norm must be >= 0 (0: off)");
             lm.opt->clip_max_norm = max_norm;
           },
           py::arg("max_norm"),
           "Clips inside every step() (fused into the update, no host read of the gradients; "
           "0: off). grad_norm() reads the norm the last step saw.")
      .def("grad_norm",
           [](LM& lm) {
             if (!lm.opt) throw ValueError("grad_norm: call configure_optimizer() first");
             return lm.opt->grad_norm();
           })
      .def("step",
           [](LM& lm, std::optional<float> lr) {
             if (!lm.opt) throw ValueError("step: call configure_optimizer() first");
             if (lr) {
               OptimConfig c = lm.opt->cfg;
               c.lr = *lr;
               validate(c);
               lm.opt->cfg = c;
             }
             py::gil_scoped_release nogil;
             lm.opt->step();
           },
           py::arg("lr") = py::none(), "One AdamW update (optionally at a new learning rate).")
      .def("generate",
           [](const LM& lm, const py::handle& idx, int64_t max_new_tokens, float temperature,
              std::optional<int64_t> top_k, uint64_t seed, float top_p) {
             Ids ids = as_ids(idx, "idx", true);
             int64_t k = top_k ? *top_k : lm.m->config().vocab_size;
             std::vector<std::vector<int32_t>> rows;
             for (int64_t b = 0; b < ids.B; ++b)
               rows.emplace_back(ids.v.begin() + b * ids.T, ids.v.begin() + (b + 1) * ids.T);
             {
               py::gil_scoped_release nogil;
               rows = generate_rows(*lm.m, rows, max_new_tokens, temperature, k, seed, top_p);
             }
             py::ssize_t n = static_cast<py::ssize_t>(rows[0].size());
             py::array_t<int32_t> out(py::array::ShapeContainer{static_cast<py::ssize_t>(ids.B), n});
             for (int64_t b = 0; b < ids.B; ++b)
               std::copy(rows[b].begin(), rows[b].end(), out.mutable_data() + b * n);
             if (py::array::ensure(idx).ndim() == 1) return py::array(out.attr("reshape")(n));
             return py::array(out);
           },
           py::arg("idx"), py::arg("max_new_tokens"), py::arg("temperature") = 1.0f,
           py::arg("top_k") = py::none(), py::arg("seed") = 0, py::arg("top_p") = 1.0f,
           "Appends max_new_tokens sampled tokens to each row of idx ([B, T] or [T]); "
           "temperature 0 is greedy; top_k None and top_p 1 mean no restriction; "
           "row b samples with seed + b (the GPT runs the rows as one batch).");
  return cls;
}

// Logits [T, vocab] of one sequence through the generation path (KV cache or
// carried LSTM state), to check it against forward().
template <class LM, class F>
py::array_t<float> stepwise(const LM& lm, const py::handle& seq, F f) {
  Ids ids = as_ids(seq, "seq", true);
  if (ids.B != 1) throw ValueError("seq: one sequence ([T] or [1, T]) expected");
  std::vector<float> l = f(ids.v);
  return copy_out(l.data(), {ids.T, lm.m->config().vocab_size});
}

}  // namespace

void bind_lm(py::module_& m) {
  m.def("cpu_isa", [] { return std::string(cpu_isa_name(cpu_isa())); },
        "The CPU vector level the low-precision kernels use (cpuid, lowered by LLDL_CPU_ISA).");
  m.def("cpu_isa_detected", [] { return std::string(cpu_isa_name(cpu_isa_detected())); });
  m.def("set_cpu_isa",
        [](const std::string& name) { return std::string(cpu_isa_name(set_cpu_isa(cpu_isa_from_name(name)))); },
        py::arg("level"),
        "Sets the level (scalar, avx2, avx512, avx512vnni, avx512bf16; clamped to the CPU's); "
        "returns the previous one.");
  py::class_<GPTConfig>(m, "GPTConfig")
      .def(py::init([](int64_t vocab_size, int64_t block_size, int64_t n_layer, int64_t n_head,
                       int64_t n_embd, double layer_norm_epsilon) {
             GPTConfig c{vocab_size, block_size, n_layer, n_head, n_embd, layer_norm_epsilon};
             c.validate();
             return c;
           }),
           py::arg("vocab_size"), py::arg("block_size"), py::arg("n_layer"), py::arg("n_head"),
           py::arg("n_embd"), py::arg("layer_norm_epsilon") = 1e-5)
      .def_readonly("vocab_size", &GPTConfig::vocab_size)
      .def_readonly("block_size", &GPTConfig::block_size)
      .def_readonly("n_layer", &GPTConfig::n_layer)
      .def_readonly("n_head", &GPTConfig::n_head)
      .def_readonly("n_embd", &GPTConfig::n_embd)
      .def_readonly("layer_norm_epsilon", &GPTConfig::layer_norm_epsilon)
      .def("__repr__", [](const GPTConfig& c) {
        return "GPTConfig(vocab_size=" + std::to_string(c.vocab_size) +
               ", block_size=" + std::to_string(c.block_size) + ", n_layer=" +
               std::to_string(c.n_layer) + ", n_head=" + std::to_string(c.n_head) +
               ", n_embd=" + std::to_string(c.n_embd) + ", layer_norm_epsilon=" +
               std::string(py::repr(py::float_(c.layer_norm_epsilon))) + ")";
      });
  py::class_<LSTMConfig>(m, "LSTMConfig")
      .def(py::init([](int64_t vocab_size, int64_t n_embd, int64_t n_hidden,
                       bool table_projection) {
             LSTMConfig c{vocab_size, n_embd, n_hidden, table_projection};
             c.validate();
             return c;
           }),
           py::arg("vocab_size"), py::arg("n_embd") = 64, py::arg("n_hidden") = 256,
           py::arg("table_projection") = true,
           "table_projection: project the embedding table (V rows) instead of every "
           "token when V <= B*T; False always runs the per-token lstm op.")
      .def_readonly("vocab_size", &LSTMConfig::vocab_size)
      .def_readonly("n_embd", &LSTMConfig::n_embd)
      .def_readonly("n_hidden", &LSTMConfig::n_hidden)
      .def_readonly("table_projection", &LSTMConfig::table_projection);
  bind_lm<GPT, GPTConfig>(m, "GPT",
                          "A GPT in the GPT-2 layout (parameter names of the GPT-2 state dict).")
      .def("cached_logits",
           [](const PyLM<GPT>& lm, const py::handle& seq) {
             return stepwise(lm, seq, [&](const std::vector<int32_t>& v) {
               return lm.m->cached_logits(v);
             });
           },
           py::arg("seq"), "Logits [T, vocab] computed token by token through the KV cache.")
      .def("prefill_logits",
           [](const PyLM<GPT>& lm, const py::handle& seq) {
             Ids ids = as_ids(seq, "seq", true);
             if (ids.B != 1) throw ValueError("seq: one sequence ([T] or [1, T]) expected");
             std::vector<float> out;
             {
               py::gil_scoped_release nogil;
               out = lm.m->prefill_logits(ids.v);
             }
             py::array_t<float> a(static_cast<py::ssize_t>(out.size()));
             std::copy(out.begin(), out.end(), a.mutable_data());
             return a;
           },
           py::arg("seq"), "Logits [vocab] of the last token, through one KV-cache prefill.")
      .def("set_inference_precision",
           [](PyLM<GPT>& lm, const std::string& name, bool head) {
             py::gil_scoped_release nogil;
             lm.m->set_inference_precision(name, head);
           },
           py::arg("precision"), py::arg("head") = true,
           "'fp32', 'bf16' or 'int8' weights for generation (generate, cached_logits, "
           "prefill_logits): packs the block matrices and, with head=True, the tied LM head "
           "from the current weights, once (a snapshot: call again after training). "
           "forward/loss stay float32.")
      .def_property_readonly("inference_precision",
                             [](const PyLM<GPT>& lm) { return lm.m->inference_precision(); })
      .def("inference_weight_bytes",
           [](const PyLM<GPT>& lm) { return lm.m->inference_weight_bytes(); },
           "Bytes of weights one decode step reads in the current precision.")
      .def_static("from_pretrained",
                  [](const std::filesystem::path& dir, const std::string& device) {
                    const Backend b = backend_arg(device);
                    std::unique_ptr<GPT> g;
                    {
                      py::gil_scoped_release nogil;
                      g = GPT::from_pretrained(dir.string(), b);
                    }
                    return PyLM<GPT>{std::move(g), nullptr};
                  },
                  py::arg("dir"), py::arg("device") = "cpu",
                  "A Hugging Face GPT-2 directory (config.json + model.safetensors; F32, F16 or "
                  "BF16), as transformers' save_pretrained writes it.")
      .def("save_pretrained",
           [](const PyLM<GPT>& lm, const std::filesystem::path& dir, const std::string& precision) {
             py::gil_scoped_release nogil;
             lm.m->save_pretrained(dir.string(), precision);
           },
           py::arg("dir"), py::arg("precision") = "fp32",
           "Writes config.json and model.safetensors for transformers.GPT2LMHeadModel; "
           "precision 'fp32' or 'bf16' (BF16 tensors, round to nearest even).");
  bind_lm<LSTMLM, LSTMConfig>(m, "LSTM", "A character-level LSTM language model.")
      .def("stepwise_logits",
           [](const PyLM<LSTMLM>& lm, const py::handle& seq) {
             return stepwise(lm, seq, [&](const std::vector<int32_t>& v) {
               return lm.m->stepwise_logits(v);
             });
           },
           py::arg("seq"), "Logits [T, vocab] computed one step at a time with carried state.");
}

Graph* lm_graph(const py::handle& obj) {
  if (py::isinstance<PyLM<GPT>>(obj)) return &obj.cast<PyLM<GPT>&>().m->graph();
  if (py::isinstance<PyLM<LSTMLM>>(obj)) return &obj.cast<PyLM<LSTMLM>&>().m->graph();
  return nullptr;
}

}  // namespace lldl::py_bind
