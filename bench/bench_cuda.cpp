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
// (-|naive|fast), threads, pass (fwd|fwd+bwd), transfers (no|yes),
// median_us, gflops (forward FLOPs of the op metadata / time; 0 for bwd).
// Without a usable GPU the CUDA rows are left out and a "# skip" line says why.
// Usage: bench_cuda [--quick] (the large examples only, 3 repetitions).
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
};

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

void row(const Case& k, const KernelArgs& a, const char* dev, const char* tier, int threads, bool bwd,
         bool transfers, double us) {
  const OpMeta& m = op_meta(k.kind);
  double gflops = bwd ? 0.0 : m.flops(a.in_shape, a.out_shape, a.attr) / (us * 1e3);
  std::printf("%s,%s,%lld,%s,%s,%d,%s,%s,%.2f,%.3f\n", m.name, k.name.c_str(),
              static_cast<long long>(a.out_shape.numel()), dev, tier, threads, bwd ? "fwd+bwd" : "fwd",
              transfers ? "yes" : "no", us, gflops);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int reps = quick ? 3 : 15;
  const bool gpu = cuda_available();
  std::printf("op,case,elements,device,tier,threads,pass,transfers,median_us,gflops\n");
  if (!gpu) std::printf("# skip cuda: %s\n", cuda_status().c_str());
  for (const Case& k : cases(quick)) {
    const OpMeta& m = op_meta(k.kind);
    KernelArgs a{};
    a.kind = k.kind;
    a.attr = k.attr;
    a.n_in = static_cast<int>(k.in.size());
    for (int j = 0; j < a.n_in; ++j) a.in_shape[j] = k.in[j];
    a.out_shape = m.shape(a.in_shape, a.attr);
    Host h = make_host(k, a);
    {  // CPU
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
    for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast}) {
      set_cuda_tier(tier);
      const char* tn = cuda_tier_name(tier);
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
      row(k, a, "cuda", tn, 0, false, true, time_it(reps, [&] { in_out(false); }));
      row(k, a, "cuda", tn, 0, true, true, time_it(reps, [&] { in_out(true); }));
    }
  }
  return 0;
}
