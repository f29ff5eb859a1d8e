// Every op kind on the CPU (1 and 2 threads) and on the GPU (naive and fast
// CUDA tiers), forward and forward+backward, at three sizes; CSV on stdout.
//
// Kernels are called through the backend table on raw buffers (no Graph), so
// the figures are kernel times. GPU times are taken around
// cudaDeviceSynchronize; "transfers=yes" adds copying the inputs (and the
// upstream gradient) to the device and the output (and input gradients) back,
// as a caller with host data would pay. Each figure is the median of `reps`
// timings after one warm-up run.
//
// Columns: op, case, elements (of the output), device (cpu|cuda), tier
// (-|naive|middle|fast: the rungs of the ladder, device.h's cuda_rung_name),
// threads, pass (fwd|fwd+bwd), transfers (no|yes), median_us, gflops
// (forward FLOPs of the op metadata / time; 0 for bwd), gbps (forward bytes
// of the op metadata / time; 0 for bwd), pct_peak_flops, pct_peak_bw (of
// the "# peak" line: a 4096^3 SGEMM on the fast tier and a 1 GiB device
// copy, measured first).
// The ladder cases at GPT-2 124M size (issue 16: causal attention 8 x 1024,
// 12 heads of 64; cross-entropy over 8192 rows of the 50257 vocabulary; the
// MLP's linear + GELU) run on the GPU only, without the transfer rows.
// Residual add + layer norm has no fused rung (see the report of issue 16):
// its ladder is add's and layer_norm's rows.
// Without a usable GPU the CUDA rows are left out and a "# skip" line says why.
// Usage: bench_cuda [--quick] (the large examples and the ladder, 3 repetitions).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/device.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  OpKind kind;
  std::string name;
  std::vector<Shape> in;
  OpAttr attr;
  bool gpu_only = false;  // the ladder's GPT-size cases
};

// GPT-2 124M at batch 8 x 1024: the attention of one layer, the classifier's
// loss, the MLP's first linear with its GELU.
std::vector<Case> ladder_cases() {
  return {Case{OpKind::Attention, "8x1024x2304 (GPT-2 124M; 12 heads)", {Shape{8, 1024, 2304}}, attention_attr(12), true},
          Case{OpKind::CrossEntropyLabels, "8192x50257 8192 (GPT-2 vocabulary)", {Shape{8192, 50257}, Shape{8192}},
               no_attr(), true},
          Case{OpKind::LinearGelu, "8192x768 3072x768 3072 (GPT-2 124M c_fc; w^T)",
               {Shape{8192, 768}, Shape{3072, 768}, Shape{3072}}, matmul_attr(false, true), true}};
}

// Every example of every kind (OpMeta::examples, ops/examples.h): the small
// ones, where launch overhead dominates, and the large ones; --quick takes
// the large ones only.
std::vector<Case> cases(bool quick) {
  std::vector<Case> v;
  for (int i = 0; i < kOpCount; ++i)
    for (const OpExample& e : op_meta(OpKind(i)).examples)
      if (e.large || !quick) {
        // No comma in a CSV field: "7x5 7x3 (a^T)".
        std::string name = *e.note ? std::string(e.shapes) + " (" + e.note + ")" : e.shapes;
        std::replace(name.begin(), name.end(), ',', ';');
        v.push_back(Case{OpKind(i), name, example_shapes(e), e.attr});
      }
  for (const Case& k : ladder_cases()) v.push_back(k);
  return v;
}

// Host buffers for one case: inputs (labels in range, variances positive),
// output, workspace, upstream gradient, input gradients.
struct Host {
  std::vector<std::vector<char>> in, gin;
  std::vector<char> out, ws, gout;
};
Host make_host(const Case& k, const KernelArgs& a) {
  const OpMeta& m = op_meta(k.kind);
  Rng r(1);
  Host h;
  for (size_t j = 0; j < k.in.size(); ++j) {
    const int64_t n = k.in[j].numel();
    h.in.emplace_back(static_cast<size_t>(n) * 4);
    h.gin.emplace_back(is_int_input(m, int(j)) ? 0 : static_cast<size_t>(n) * 4);
    for (int64_t e = 0; e < n; ++e) {
      if (is_int_input(m, int(j))) {
        // Labels index logits' columns; token ids index the table's rows.
        const int64_t bound = k.kind == OpKind::Embedding ? k.in[1][0] : k.in[0][1];
        int32_t v = static_cast<int32_t>(r.below(static_cast<uint64_t>(bound)));
        std::memcpy(h.in[j].data() + 4 * e, &v, 4);
      } else {
        float v = static_cast<float>(j == 4 ? r.uniform(0.5, 2) : r.uniform(-1, 1));
        std::memcpy(h.in[j].data() + 4 * e, &v, 4);
      }
    }
  }
  h.out.assign(static_cast<size_t>(a.out_shape.numel()) * 4, 0);
  h.gout.assign(h.out.size(), 0);
  if (m.workspace) h.ws.assign(static_cast<size_t>(m.workspace(a.in_shape, a.out_shape, a.attr)) * 4, 0);
  return h;
}

// Device copies of a Host's buffers, freed at the end.
struct Dev {
  std::vector<void*> in, gin;
  void *out = nullptr, *ws = nullptr, *gout = nullptr;
  static void* copy(const std::vector<char>& v) {
    if (v.empty()) return nullptr;
    void* p = cuda_alloc(v.size());
    cuda_to_device(p, v.data(), v.size());
    return p;
  }
  explicit Dev(const Host& h) {
    for (auto& v : h.in) in.push_back(copy(v));
    for (auto& v : h.gin) gin.push_back(copy(v));
    out = copy(h.out), ws = copy(h.ws), gout = copy(h.gout);
  }
  ~Dev() {
    for (void* p : in) cuda_free(p);
    for (void* p : gin) cuda_free(p);
    cuda_free(out), cuda_free(ws), cuda_free(gout);
  }
};

// Points a at the buffers (host or device pointers).
void bind(KernelArgs& a, const std::vector<void*>& in, const std::vector<void*>& gin, void* out,
          void* ws, void* gout, bool view) {
  for (size_t j = 0; j < in.size(); ++j) a.in[j] = in[j], a.gin[j] = gin[j];
  a.out = view ? const_cast<void*>(a.in[0]) : out;
  a.ws = ws;
  a.gout = gout;
}

double median_us(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2] * 1e6;
}

template <class F>
double time_it(int reps, F&& f) {
  f();  // warm-up (scratch growth, cuBLAS initialisation)
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median_us(t);
}

// The device's measured peaks (0 without a GPU or before measuring).
struct Peak {
  double gflops = 0, gbps = 0;
} g_peak;

void row(const Case& k, const KernelArgs& a, const char* dev, const char* tier, int threads, bool bwd,
         bool transfers, double us) {
  const OpMeta& m = op_meta(k.kind);
  const double gflops = bwd ? 0.0 : m.flops(a.in_shape, a.out_shape, a.attr) / (us * 1e3);
  const double gbps = bwd || !m.bytes ? 0.0 : m.bytes(a.in_shape, a.out_shape, a.attr) / (us * 1e3);
  const bool cuda = std::strcmp(dev, "cuda") == 0;
  const double pf = cuda && g_peak.gflops > 0 ? 100 * gflops / g_peak.gflops : 0;
  const double pb = cuda && g_peak.gbps > 0 ? 100 * gbps / g_peak.gbps : 0;
  std::printf("%s,%s,%lld,%s,%s,%d,%s,%s,%.2f,%.3f,%.3f,%.2f,%.2f\n", m.name, k.name.c_str(),
              static_cast<long long>(a.out_shape.numel()), dev, tier, threads, bwd ? "fwd+bwd" : "fwd",
              transfers ? "yes" : "no", us, gflops, gbps, pf, pb);
}

// Peak float32 GEMM rate (4096^3 through the fast tier's matmul kernel, TF32
// off) and device-to-device copy bandwidth (1 GiB, read + write counted).
Peak measure_peak() {
  Peak p;
  const int64_t n = 4096;
  const size_t mat = static_cast<size_t>(n * n) * 4;
  void *x = cuda_alloc(mat), *w = cuda_alloc(mat), *o = cuda_alloc(mat);
  cuda_memset(x, 0, mat), cuda_memset(w, 0, mat);
  KernelArgs a{};
  a.kind = OpKind::MatMul;
  a.attr = matmul_attr(false, false);
  a.n_in = 2;
  a.in[0] = x, a.in[1] = w, a.out = o;
  a.in_shape[0] = a.in_shape[1] = a.out_shape = Shape{n, n};
  set_cuda_tier(CudaTier::Fast);
  const KernelPair& kp = kernels(Backend::CUDA, DType::F32, OpKind::MatMul);
  const double us = time_it(5, [&] { kp.forward(a), cuda_synchronize(); });
  p.gflops = 2.0 * n * n * n / (us * 1e3);
  cuda_free(x), cuda_free(w), cuda_free(o);
  const size_t big = size_t(1) << 30;
  void *s = cuda_alloc(big), *d = cuda_alloc(big);
  cuda_memset(s, 0, big);
  const double cus = time_it(5, [&] { cuda_copy(d, s, big), cuda_synchronize(); });
  p.gbps = 2.0 * big / (cus * 1e3);
  cuda_free(s), cuda_free(d);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int reps = quick ? 3 : 15;
  const bool gpu = cuda_available();
  std::printf("op,case,elements,device,tier,threads,pass,transfers,median_us,gflops,gbps,pct_peak_flops,pct_peak_bw\n");
  if (!gpu) std::printf("# skip cuda: %s\n", cuda_status().c_str());
  if (gpu) {
    g_peak = measure_peak();
    std::printf("# peak: %.1f GFLOP/s (float32 SGEMM 4096^3), %.1f GB/s (device copy 1 GiB)\n", g_peak.gflops,
                g_peak.gbps);
  }
  for (const Case& k : cases(quick)) {
    if (k.gpu_only && !gpu) continue;
    const OpMeta& m = op_meta(k.kind);
    KernelArgs a{};
    a.kind = k.kind;
    a.attr = k.attr;
    a.n_in = static_cast<int>(k.in.size());
    for (int j = 0; j < a.n_in; ++j) a.in_shape[j] = k.in[j];
    a.out_shape = m.shape(a.in_shape, a.attr);
    Host h = make_host(k, a);
    if (!k.gpu_only) {  // CPU
      std::vector<void*> in, gin;
      for (auto& v : h.in) in.push_back(v.data());
      for (auto& v : h.gin) gin.push_back(v.empty() ? nullptr : v.data());
      bind(a, in, gin, h.out.data(), h.ws.empty() ? nullptr : h.ws.data(), h.gout.data(), m.view);
      const KernelPair& kp = kernels(Backend::CPU, DType::F32, k.kind);
      for (int t : {1, 2}) {
        set_num_threads(t);
        row(k, a, "cpu", "-", t, false, false, time_it(reps, [&] { kp.forward(a); }));
        row(k, a, "cpu", "-", t, true, false, time_it(reps, [&] { kp.forward(a), kp.backward(a); }));
      }
    }
    if (!gpu) continue;
    Dev d(h);
    bind(a, d.in, d.gin, d.out, d.ws, d.gout, m.view);
    const KernelPair& kp = kernels(Backend::CUDA, DType::F32, k.kind);
    // The ladder: naive, middle (fast tier, fused kernels off), fast.
    for (int rung = 0; rung < 3; ++rung) {
      set_cuda_tier(rung == 0 ? CudaTier::Naive : CudaTier::Fast);
      set_cuda_fused(rung == 2);
      const char* tn = cuda_rung_name();
      auto fwd = [&] { kp.forward(a); };
      auto both = [&] { kp.forward(a), kp.backward(a); };
      // With transfers: inputs (and the upstream gradient) in, results out.
      auto in_out = [&](bool bwd) {
        for (size_t j = 0; j < h.in.size(); ++j) cuda_to_device(d.in[j], h.in[j].data(), h.in[j].size());
        if (bwd) cuda_to_device(d.gout, h.gout.data(), h.gout.size());
        bwd ? both() : fwd();
        if (!m.view) cuda_to_host(h.out.data(), d.out, h.out.size());
        if (bwd)
          for (size_t j = 0; j < h.gin.size(); ++j)
            if (d.gin[j]) cuda_to_host(h.gin[j].data(), d.gin[j], h.gin[j].size());
      };
      row(k, a, "cuda", tn, 0, false, false, time_it(reps, [&] { fwd(), cuda_synchronize(); }));
      row(k, a, "cuda", tn, 0, true, false, time_it(reps, [&] { both(), cuda_synchronize(); }));
      if (k.gpu_only) continue;
      row(k, a, "cuda", tn, 0, false, true, time_it(reps, [&] { in_out(false); }));
      row(k, a, "cuda", tn, 0, true, true, time_it(reps, [&] { in_out(true); }));
    }
  }
  return 0;
}
