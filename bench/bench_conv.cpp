// conv2d throughput, and one training step of the target CNN.
//
// 1. conv2d forward and forward+backward GFLOP/s (median of repeated
//    timings) for the two layers of the target network and a few more
//    shapes, recorded on a Graph as a model would (shape rule, arena, tape,
//    kernel). Forward FLOPs are 2*N*OC*OH*OW*C*KH*KW; backward adds the same
//    again for dW and, when x needs a gradient, for dx (the first layer of a
//    network needs none, so that row counts 2x instead of 3x). The last two
//    columns force the im2col + GEMM algorithm for comparison (the engine
//    picks the direct micro-kernel where it suits the shapes).
// 2. The target network, batch 64, 28x28 inputs: conv5x5 1->16 pad 2, ReLU,
//    max-pool 2, conv5x5 16->32 pad 2, ReLU, max-pool 2, dense 1568->128,
//    ReLU, dense 128->10, cross-entropy; forward, backward and an SGD update,
//    in images per second. PyTorch's figures are measured, never quoted:
//    bench/cnn_vs_torch.py runs both side by side, bench/conv_vs_torch.py
//    runs these layers and this network in PyTorch.
//
// Threads follow OMP_NUM_THREADS (or LLDL_NUM_THREADS).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "autograd/functions.h"
#include "backends/cpu/common.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void fill(Graph& g, Tensor t, Rng& rng, double scale) {
  float* p = g.data(t);
  for (int64_t i = 0; i < g.shape(t).numel(); ++i)
    p[i] = static_cast<float>(scale * rng.uniform(-1, 1));
}

struct Layer {
  const char* name;
  int64_t N, C, H, W, OC, K, stride, pad;
  bool x_grad;  // does x need a gradient (not for a network's first layer)
};

struct Timing {
  double fwd, fb;  // seconds, medians
};

Timing bench_layer(const Layer& l, int reps) {
  Graph g;
  Rng rng(1);
  Tensor w = g.param({l.OC, l.C, l.K, l.K}, "w"), b = g.param({l.OC}, "b");
  fill(g, w, rng, 0.1);
  fill(g, b, rng, 0.1);
  std::vector<float> xv(static_cast<size_t>(l.N * l.C * l.H * l.W));
  for (float& v : xv) v = static_cast<float>(rng.uniform(-1, 1));
  std::vector<float> seed;
  std::vector<double> f, fb;
  for (int r = -2; r < reps; ++r) {  // two untimed rounds size the arena and scratch
    Tensor x = g.external({l.N, l.C, l.H, l.W}, xv.data(), DType::F32);
    if (l.x_grad) g.set_requires_grad(x);
    auto t0 = Clock::now();
    Tensor y = conv2d(x, w, b, static_cast<int>(l.stride), static_cast<int>(l.pad));
    const double t_f = seconds_since(t0);
    seed.assign(static_cast<size_t>(g.shape(y).numel()), 1.0f);
    g.reset(true);

    x = g.external({l.N, l.C, l.H, l.W}, xv.data(), DType::F32);
    if (l.x_grad) g.set_requires_grad(x);
    t0 = Clock::now();
    y = conv2d(x, w, b, static_cast<int>(l.stride), static_cast<int>(l.pad));
    g.backward(y, seed.data());
    const double t_fb = seconds_since(t0);
    g.reset();
    if (r >= 0) {
      f.push_back(t_f);
      fb.push_back(t_fb);
    }
  }
  return {median(f), median(fb)};
}

// The target network; returns seconds per training step (median).
double bench_network(int64_t batch, int steps) {
  Graph g;
  Rng rng(2);
  Tensor c1w = g.param({16, 1, 5, 5}), c1b = g.param({16});
  Tensor c2w = g.param({32, 16, 5, 5}), c2b = g.param({32});
  Tensor d1w = g.param({1568, 128}), d1b = g.param({128});
  Tensor d2w = g.param({128, 10}), d2b = g.param({10});
  fill(g, c1w, rng, 0.2);
  fill(g, c2w, rng, 0.05);
  fill(g, d1w, rng, 0.025);
  fill(g, d2w, rng, 0.09);
  std::vector<float> images(static_cast<size_t>(batch * 28 * 28));
  for (float& p : images) p = static_cast<float>(rng.uniform(0, 1));
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (int32_t& y : labels) y = static_cast<int32_t>(rng.below(10));
  const std::vector<Tensor> params = g.params();
  std::vector<double> t;
  for (int s = -3; s < steps; ++s) {
    auto t0 = Clock::now();
    Tensor x = g.external({batch, 1, 28, 28}, images.data(), DType::F32);
    Tensor y = g.external({batch}, labels.data(), DType::I32);
    Tensor h = max_pool2d(relu(conv2d(x, c1w, c1b, 1, 2)), 2);
    h = max_pool2d(relu(conv2d(h, c2w, c2b, 1, 2)), 2);
    h = relu(bias_add(matmul(flatten(h), d1w), d1b));
    Tensor loss = cross_entropy(bias_add(matmul(h, d2w), d2b), y);
    g.backward(loss);
    for (Tensor p : params) {  // plain SGD
      float *v = g.data(p), *d = g.grad(p);
      const int64_t n = g.shape(p).numel();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) v[i] -= 0.01f * d[i];
    }
    g.reset();
    if (s >= 0) t.push_back(seconds_since(t0));
  }
  return median(t);
}

int run() {
  const char* env = std::getenv("OMP_NUM_THREADS");
  std::printf("bench_conv: float32, %d thread(s) (OMP_NUM_THREADS=%s)\n\n", get_num_threads(),
              env ? env : "unset");
  const Layer layers[] = {
      {"net conv1 64x1x28x28 k5 1->16 p2", 64, 1, 28, 28, 16, 5, 1, 2, false},
      {"net conv2 64x16x14x14 k5 16->32 p2", 64, 16, 14, 14, 32, 5, 1, 2, true},
      {"64x32x14x14 k3 32->64 p1", 64, 32, 14, 14, 64, 3, 1, 1, true},
      {"64x64x14x14 k1 64->64", 64, 64, 14, 14, 64, 1, 1, 0, true},
      {"64x32x28x28 k3 32->64 s2 p1", 64, 32, 28, 28, 64, 3, 2, 1, true},
      {"1x16x14x14 k5 16->32 p2 (batch 1)", 1, 16, 14, 14, 32, 5, 1, 2, true},
  };
  std::printf("%-38s %8s %8s %8s %8s | %8s %8s\n", "conv2d layer (GF/s: GFLOP/s)", "fwd ms",
              "fwd GF/s", "f+b ms", "f+b GF/s", "i2c fwd", "i2c f+b");
  for (const Layer& l : layers) {
    const int64_t oh = (l.H + 2 * l.pad - l.K) / l.stride + 1;
    const int64_t ow = (l.W + 2 * l.pad - l.K) / l.stride + 1;
    const double flops = 2.0 * l.N * l.OC * oh * ow * l.C * l.K * l.K;
    const int reps = std::clamp(static_cast<int>(2e9 / flops), 10, 400);
    Timing t = bench_layer(l, reps);
    cpu::set_conv_algo(cpu::ConvAlgo::Im2col);
    Timing i2c = bench_layer(l, reps);
    cpu::set_conv_algo(cpu::ConvAlgo::Auto);
    const double fb_flops = flops * (l.x_grad ? 3 : 2);
    std::printf("%-38s %8.3f %8.1f %8.3f %8.1f | %8.1f %8.1f\n", l.name, t.fwd * 1e3,
                flops / t.fwd * 1e-9, t.fb * 1e3, fb_flops / t.fb * 1e-9, flops / i2c.fwd * 1e-9,
                fb_flops / i2c.fb * 1e-9);
    std::fflush(stdout);
  }
  const int64_t batch = 64;
  const double step = bench_network(batch, 60);
  std::printf("\ntarget CNN, batch %lld, forward + backward + SGD: %.2f ms per step, %.0f img/s\n",
              static_cast<long long>(batch), step * 1e3, batch / step);
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conv: error: %s\n", e.what());
    return 1;
  }
}
