// Op cases shared by the CUDA tests: the host emulation of the naive kernels
// (test_cuda_host.cpp) and the GPU tests (test_cuda_gpu.cpp). Every op kind
// has at least one case; a test fails for a kind without one.
//
// A case is run on the CPU backend (the reference) and on the CUDA code with
// the same random inputs, upstream gradient and PRE-FILLED input gradients
// (so that a backward kernel that overwrites instead of accumulating fails),
// and compared by normalised mean squared error.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/device.h"
#include "core/rng.h"
#include "ops/op.h"

namespace lldl::cudatest {

struct Case {
  OpKind kind;
  std::string name;
  std::vector<Shape> in;
  OpAttr attr = no_attr();
  double lo = -2.0, hi = 2.0;  // input values uniform in [lo, hi) ...
  int64_t classes = 0;         // ... int32 inputs in [0, classes)
  std::string label() const { return std::string(op_name(kind)) + " " + name; }
};

// The cases of every op kind: its examples (OpMeta::examples, ops/examples.h),
// small ones for the host emulation and the GPU, large ones for the GPU only
// (the host emulation would be slow): they reach the fast tier's
// multi-block, multi-warp and multi-chunk paths.
inline std::vector<Case> examples(bool large) {
  std::vector<Case> v;
  for (int i = 0; i < kOpCount; ++i)
    for (const OpExample& e : op_meta(OpKind(i)).examples)
      if (e.large == large)
        v.push_back(Case{OpKind(i), example_label(e), example_shapes(e), e.attr, e.lo, e.hi, e.classes});
  return v;
}
inline std::vector<Case> cases() { return examples(false); }
inline std::vector<Case> large_cases() { return examples(true); }

// Causal attention at each sequence length of Ts, B batch rows, NH heads of
// head dim D (the flash attention's tiles, issue 16).
inline std::vector<Case> attention_sweep(const std::vector<int64_t>& Ts, int64_t B, int64_t NH, int64_t D) {
  std::vector<Case> v;
  for (int64_t T : Ts)
    v.push_back(Case{OpKind::Attention, "T " + std::to_string(T) + ", D " + std::to_string(D),
                     {Shape{B, T, 3 * NH * D}}, attention_attr(static_cast<int>(NH))});
  return v;
}
// cross_entropy_labels over a GPT-2 vocabulary (50257 classes).
inline Case ce_vocab_case(int64_t N, int64_t V) {
  Case k{OpKind::CrossEntropyLabels, std::to_string(N) + " rows, vocab " + std::to_string(V),
         {Shape{N, V}, Shape{N}}};
  k.classes = V;
  k.lo = -8.0, k.hi = 8.0;  // logits spread as a trained model's
  return k;
}

// Random input i of case k: int32 labels or floats (batch norm's running
// variance, input 4, stays positive).
struct Inputs {
  std::vector<std::vector<float>> f;
  std::vector<std::vector<int32_t>> i;
};
inline Inputs make_inputs(const Case& k, uint64_t seed) {
  Rng r(seed);
  const OpMeta& m = op_meta(k.kind);
  Inputs v;
  v.f.resize(k.in.size());
  v.i.resize(k.in.size());
  for (size_t j = 0; j < k.in.size(); ++j) {
    const int64_t n = k.in[j].numel();
    if (is_int_input(m, static_cast<int>(j))) {
      for (int64_t e = 0; e < n; ++e) v.i[j].push_back(static_cast<int32_t>(r.below(k.classes)));
      continue;
    }
    const bool positive = k.kind == OpKind::BatchNorm && j == 4;
    for (int64_t e = 0; e < n; ++e)
      v.f[j].push_back(static_cast<float>(positive ? r.uniform(0.5, 2.0) : r.uniform(k.lo, k.hi)));
  }
  return v;
}

inline std::vector<float> random_vector(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(r.uniform(-1.0, 1.0));
  return v;
}

// sum (a - ref)^2 / sum ref^2 (absolute when ref is all zero); infinity when
// either side has a NaN or Inf.
inline double nmse(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(ref[i])) return INFINITY;
    double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : num;
}

// The criteria of issue 6: normalised MSE <= 1e-7, 5e-4 for matmul-like ops
// (a GPU's GEMM sums in another order and may fuse differently: matmul,
// linear, linear_gelu, conv2d and the GEMM-based attention and LSTM).
inline double tolerance(OpKind k, bool gpu) {
  if (gpu && (k == OpKind::MatMul || k == OpKind::Linear || k == OpKind::LinearGelu || k == OpKind::Conv2d ||
              k == OpKind::Attention ||
              k == OpKind::Lstm || k == OpKind::LstmGates))
    return 5e-4;
  return 1e-7;
}

// ---- running a case ------------------------------------------------------------

using Fn = std::function<void(const KernelArgs&)>;
struct Side {
  Fn forward, backward;
};
inline Side cpu_side(OpKind k) {
  const KernelPair& p = kernels(Backend::CPU, DType::F32, k);
  return {p.forward, p.backward};
}
inline Side cuda_side(OpKind k) {
  const KernelPair& p = kernels(Backend::CUDA, DType::F32, k);
  return {p.forward, p.backward};
}

// Where a run's buffers live: the host vectors themselves, or device copies
// (freed at the end) that are read back into them.
struct Buffers {
  bool device;
  std::vector<void*> owned;
  explicit Buffers(bool on_device) : device(on_device) {}
  Buffers(const Buffers&) = delete;
  ~Buffers() {
    for (void* p : owned) cuda_free(p);
  }
  void* put(void* host, size_t bytes) {
    if (!device) return host;
    void* d = cuda_alloc(bytes ? bytes : 1);
    owned.push_back(d);
    cuda_to_device(d, host, bytes);
    return d;
  }
  void get(void* host, const void* p, size_t bytes) {
    if (device && bytes) cuda_to_host(host, p, bytes);
  }
};

// Output, input gradients and inputs (batch norm updates its running
// buffers in place) after forward and backward.
struct Result {
  std::vector<float> out, ws;  // ws: the workspace after forward and backward
  std::vector<std::vector<float>> grads, inputs;
};

inline Result run(const Case& k, const Side& s, uint64_t seed, bool device) {
  const OpMeta& m = op_meta(k.kind);
  Inputs v = make_inputs(k, seed);
  Buffers b(device);
  KernelArgs a{};
  a.kind = k.kind;
  a.attr = k.attr;
  a.n_in = static_cast<int>(k.in.size());
  for (int j = 0; j < a.n_in; ++j) {
    const size_t n = static_cast<size_t>(k.in[j].numel());
    a.in[j] = is_int_input(m, j) ? b.put(v.i[j].data(), n * 4) : b.put(v.f[j].data(), n * 4);
    a.in_shape[j] = k.in[j];
  }
  a.out_shape = m.shape(a.in_shape, a.attr);
  const size_t out_bytes = static_cast<size_t>(a.out_shape.numel()) * 4;
  Result r;
  // NaN-filled, so an element no kernel wrote fails the comparison.
  r.out.assign(static_cast<size_t>(a.out_shape.numel()), std::numeric_limits<float>::quiet_NaN());
  a.out = m.view ? const_cast<void*>(a.in[0]) : b.put(r.out.data(), out_bytes);
  // The workspace NaN-filled too: forward must write every element, in the
  // layout (and size) of the op's metadata row, which compare() checks.
  if (m.workspace) {
    r.ws.assign(static_cast<size_t>(m.workspace(a.in_shape, a.out_shape, a.attr)),
                std::numeric_limits<float>::quiet_NaN());
    a.ws = b.put(r.ws.data(), r.ws.size() * 4);
  }
  s.forward(a);
  std::vector<float> g = random_vector(a.out_shape.numel(), seed + 1);
  a.gout = b.put(g.data(), out_bytes);
  r.grads.resize(k.in.size());
  for (int j = 0; j < a.n_in; ++j) {
    if (is_int_input(m, j)) continue;
    r.grads[j] = random_vector(k.in[j].numel(), seed + 10 + j);  // gradients accumulate into these
    a.gin[j] = b.put(r.grads[j].data(), r.grads[j].size() * 4);
  }
  s.backward(a);
  for (int j = 0; j < a.n_in; ++j) {
    if (is_int_input(m, j)) continue;
    b.get(r.grads[j].data(), a.gin[j], r.grads[j].size() * 4);
    b.get(v.f[j].data(), a.in[j], v.f[j].size() * 4);
  }
  if (m.view) r.out = v.f[0];
  else b.get(r.out.data(), a.out, out_bytes);
  b.get(r.ws.data(), a.ws, r.ws.size() * 4);
  r.inputs = v.f;
  return r;
}

// tol_override > 0: that criterion instead of tolerance()'s.
// check_ws false: the workspace holds something else than the CPU's (flash
// attention keeps the logsumexp of each row where the CPU keeps P).
inline void compare(const Case& k, const Result& got, const Result& ref, const std::string& how,
                    bool gpu, bool check_ws = true, double tol_override = 0) {
  const double tol = tol_override > 0 ? tol_override : tolerance(k.kind, gpu);
  INFO(k.label() << " (" << how << ")");
  double e = nmse(got.out, ref.out);
  CHECK_MESSAGE(e <= tol, "forward output: normalised MSE " << e << " > " << tol);
  if (check_ws) {
    e = nmse(got.ws, ref.ws);
    CHECK_MESSAGE(e <= tol, "workspace: normalised MSE " << e << " > " << tol);
  }
  for (size_t j = 0; j < ref.grads.size(); ++j) {
    e = nmse(got.grads[j], ref.grads[j]);
    CHECK_MESSAGE(e <= tol, "gradient of input " << j << ": normalised MSE " << e << " > " << tol);
    e = nmse(got.inputs[j], ref.inputs[j]);
    CHECK_MESSAGE(e <= tol, "input " << j << " after the op: normalised MSE " << e << " > " << tol);
  }
}

}  // namespace lldl::cudatest
