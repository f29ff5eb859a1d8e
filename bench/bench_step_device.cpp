// Whole training steps on the CPU and on the GPU: where does a small network
// stop being faster on the CPU? An MLP classifier (in -> width tanh -> width
// tanh -> 10, cross-entropy, Adam) is trained on random data through the
// Graph API, so each step pays what a user's step pays: recording the tape,
// copying the batch in, forward, backward, the optimiser, and reading the
// loss back (one device-to-host copy per step on the GPU).
//
// On the GPU each step is also timed captured into a CUDA graph
// (autograd/step_graph.h, graph=yes): the same step replayed with one
// launch, its inputs copied in from pinned memory and its loss read back.
//
// Rows: width, batch, device, tier, threads, graph, nodes (operations in the
// captured graph), us_per_step (median), us_min, us_max, steps_per_s.
// CPU at 1 thread and at the machine's core count; GPU in both kernel tiers,
// eager and captured, when a device is usable (else a "# skip cuda:
// <reason>" line). --widths 64,256 picks widths, --batches 64 batches,
// --gpu-only leaves out the CPU rows. Each row: the median of 5 timed runs
// (after 3 untimed steps) with their range.
//
//   bench_step_device [--quick] [--gpu-only] [--widths W,...] [--batches B,...]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "autograd/step_graph.h"
#include "backends/cuda/device.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

constexpr int kRepeats = 5;

// Seconds per step of each timed run, sorted; *nodes: the captured graph's
// operations (0 eager).
std::vector<double> time_steps(Backend backend, int64_t width, int64_t batch, int steps, bool graph,
                               size_t* nodes) {
  const int64_t d = 64, c = 10;
  Rng r(7);
  std::vector<float> x(static_cast<size_t>(batch * d));
  for (float& v : x) v = static_cast<float>(r.uniform(-1, 1));
  std::vector<int32_t> y(static_cast<size_t>(batch));
  for (auto& v : y) v = static_cast<int32_t>(r.below(c));
  size_t arena = static_cast<size_t>(4 * (batch * width * 8 + width * width + 4 * width * (d + c)) +
                                     (1 << 20));
  Graph g(DType::F32, backend, arena);
  Tensor W1 = g.param({d, width}, "W1"), b1 = g.param({width}, "b1");
  Tensor W2 = g.param({width, width}, "W2"), b2 = g.param({width}, "b2");
  Tensor W3 = g.param({width, c}, "W3"), b3 = g.param({c}, "b3");
  init_param(g, W1, Init::XavierUniform, 1);
  init_param(g, W2, Init::XavierUniform, 2);
  init_param(g, W3, Init::XavierUniform, 3);
  OptimConfig cfg;
  cfg.kind = OptimKind::Adam;
  cfg.lr = 1e-3f;
  Optimizer opt(g, cfg);
  double sink = 0;
  auto forward = [&](Tensor xt, Tensor yt) {
    Tensor h = tanh(bias_add(matmul(xt, W1), b1));
    h = tanh(bias_add(matmul(h, W2), b2));
    return cross_entropy(bias_add(matmul(h, W3), b3), yt);
  };
  StepGraph sg(g, {{Shape{batch, d}, DType::F32}, {Shape{batch}, DType::I32}},
               [&](Graph&, const std::vector<Tensor>& in) {
                 Tensor loss = forward(in[0], in[1]);
                 g.backward(loss);
                 opt.step();
                 return loss;
               });
  auto step = [&] {
    if (graph) {
      sink += sg.run({x.data(), y.data()});
      return;
    }
    Tensor loss = forward(g.input({batch, d}, x.data(), DType::F32),
                          g.input({batch}, y.data(), DType::I32));
    g.backward(loss);
    opt.step();
    sink += g.item(loss);  // the loss on the host: waits for the device
    g.reset();
  };
  for (int i = 0; i < 3; ++i) step();
  if (steps <= 0) {  // enough steps for about 0.25 s, from the time of three
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) step();
    double est = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
    steps = static_cast<int>(std::clamp(0.25 / est, 5.0 * kRepeats, 4000.0));
  }
  // kRepeats timed runs of steps / kRepeats steps each: seconds per step.
  std::vector<double> per_step;
  const int each = std::max(1, steps / kRepeats);
  for (int r = 0; r < kRepeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < each; ++i) step();
    per_step.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / each);
  }
  if (!(sink == sink)) std::fprintf(stderr, "# warning: NaN loss\n");
  *nodes = sg.nodes();
  std::sort(per_step.begin(), per_step.end());
  return per_step;
}

// width,batch,device,tier,threads,graph,nodes, then the median, min and max
// us per step and the median's steps/s.
void row(int64_t w, int64_t b, const char* dev, const char* tier, int threads, bool graph,
         Backend backend, int steps) {
  size_t nodes = 0;
  std::vector<double> s = time_steps(backend, w, b, steps, graph, &nodes);
  const double med = s[s.size() / 2];
  std::printf("%lld,%lld,%s,%s,%d,%s,%zu,%.2f,%.2f,%.2f,%.1f\n", (long long)w, (long long)b, dev,
              tier, threads, graph ? "yes" : "no", nodes, med * 1e6, s.front() * 1e6, s.back() * 1e6,
              1 / med);
  std::fflush(stdout);
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (const char* p = s; *p;) {
    char* end = nullptr;
    long long x = std::strtoll(p, &end, 10);
    if (end == p || x < 1) {
      std::fprintf(stderr, "bench_step_device: bad list '%s' (positive integers, commas)\n", s);
      std::exit(2);
    }
    v.push_back(x);
    p = *end == ',' ? end + 1 : end;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, gpu_only = false;
  std::vector<int64_t> widths = {16, 64, 256, 1024, 4096}, batches = {64, 1024};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--widths") == 0 && i + 1 < argc) widths = parse_list(argv[++i]);
    else if (std::strcmp(argv[i], "--batches") == 0 && i + 1 < argc) batches = parse_list(argv[++i]);
    else if (std::strcmp(argv[i], "--gpu-only") == 0) gpu_only = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_step_device [--quick] [--gpu-only] [--widths W,...] [--batches B,...]\n");
      return 2;
    }
  }
  if (quick) {
    widths = {16, 256};
    batches = {64};
  }
  const int procs = omp_get_num_procs();
  std::vector<int> threads = {1};
  if (procs > 1) threads.push_back(procs);
  const bool gpu = cuda_available();
  if (!gpu) std::printf("# skip cuda: %s\n", cuda_status().c_str());
  std::printf("width,batch,device,tier,threads,graph,nodes,us_per_step,us_min,us_max,steps_per_s\n");
  for (int64_t b : batches)
    for (int64_t w : widths) {
      // About 0.3 s of work per row on the CPU at one thread, at least 5 steps.
      double flops = 6.0 * b * (64.0 * w + w * w + 10.0 * w);
      int steps = static_cast<int>(std::max(5.0, std::min(2000.0, 0.3 / (flops / 5e10 + 2e-5))));
      for (int t : threads) {
        if (gpu_only) break;
        set_num_threads(t);
        row(w, b, "cpu", "-", t, false, Backend::CPU, steps);
        std::fflush(stdout);
      }
      if (!gpu) continue;
      set_num_threads(1);
      for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast})
        for (bool graph : {false, true}) {
          set_cuda_tier(tier);
          row(w, b, "cuda", cuda_tier_name(tier), 1, graph, Backend::CUDA, 0);
        }
    }
  return 0;
}
