// Whole training steps on the CPU and on the GPU: where does a small network
// stop being faster on the CPU? An MLP classifier (in -> width tanh -> width
// tanh -> 10, cross-entropy, Adam) is trained on random data through the
// Graph API, so each step pays what a user's step pays: recording the tape,
// copying the batch in, forward, backward, the optimiser, and reading the
// loss back (one device-to-host copy per step on the GPU).
//
// Rows: width, batch, device, tier, threads, us_per_step, steps_per_s.
// CPU at 1 thread and at the machine's core count; GPU in both kernel tiers
// when a device is usable (else a "# skip cuda: <reason>" line).
//
//   bench_step_device [--quick]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "backends/cuda/device.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

double time_steps(Backend backend, int64_t width, int64_t batch, int steps) {
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
  auto step = [&] {
    Tensor xt = g.input({batch, d}, x.data(), DType::F32);
    Tensor yt = g.input({batch}, y.data(), DType::I32);
    Tensor h = tanh(bias_add(matmul(xt, W1), b1));
    h = tanh(bias_add(matmul(h, W2), b2));
    Tensor loss = cross_entropy(bias_add(matmul(h, W3), b3), yt);
    g.backward(loss);
    opt.step();
    sink += g.item(loss);  // the loss on the host: waits for the device
    g.reset();
  };
  for (int i = 0; i < 3; ++i) step();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!(sink == sink)) std::fprintf(stderr, "# warning: NaN loss\n");
  return s / steps;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int procs = omp_get_num_procs();
  std::vector<int> threads = {1};
  if (procs > 1) threads.push_back(procs);
  const bool gpu = cuda_available();
  if (!gpu) std::printf("# skip cuda: %s\n", cuda_status().c_str());
  std::printf("width,batch,device,tier,threads,us_per_step,steps_per_s\n");
  std::vector<int64_t> widths = quick ? std::vector<int64_t>{16, 256}
                                      : std::vector<int64_t>{16, 64, 256, 1024, 4096};
  std::vector<int64_t> batches = quick ? std::vector<int64_t>{64} : std::vector<int64_t>{64, 1024};
  for (int64_t b : batches)
    for (int64_t w : widths) {
      // About 0.3 s of work per row on the CPU at one thread, at least 5 steps.
      double flops = 6.0 * b * (64.0 * w + w * w + 10.0 * w);
      int steps = static_cast<int>(std::max(5.0, std::min(2000.0, 0.3 / (flops / 5e10 + 2e-5))));
      for (int t : threads) {
        set_num_threads(t);
        double s = time_steps(Backend::CPU, w, b, steps);
        std::printf("%lld,%lld,cpu,-,%d,%.2f,%.1f\n", (long long)w, (long long)b, t, s * 1e6, 1 / s);
        std::fflush(stdout);
      }
      if (!gpu) continue;
      set_num_threads(1);
      for (CudaTier tier : {CudaTier::Naive, CudaTier::Fast}) {
        set_cuda_tier(tier);
        double s = time_steps(Backend::CUDA, w, b, std::max(steps, 50));
        std::printf("%lld,%lld,cuda,%s,1,%.2f,%.1f\n", (long long)w, (long long)b,
                    cuda_tier_name(tier), s * 1e6, 1 / s);
        std::fflush(stdout);
      }
    }
  return 0;
}
