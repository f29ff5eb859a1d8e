// Step memory of a training step with and without the memory planner.
//
// The seed's Fashion-MNIST CNN (conv5x5 1->16 pad 2, ReLU, max-pool 2,
// conv5x5 16->32 pad 2, ReLU, max-pool 2, dense 1568->128 ReLU, dense
// 128->10, cross-entropy, Adam) and a dense MLP (784->256->128->10), each
// trained for a few steps on random data, once with Graph::set_memory_planning
// off and once on. For each it prints the step region's bytes:
//   sum of tensors  every buffer the step asks for (activations, workspaces,
//                   gradients), as requested
//   unplanned peak  what bump allocation holds (all of them, 64-byte aligned)
//   planned peak    the planned block
//   max live        the most bytes live at one tick: no placement can do better
// and the arena's reserved bytes and system allocations after the last step,
// with the time per step (informative only on a shared machine).
//
//   build/bench_memory [--batch 64] [--steps 5]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/seed_api.h"

using namespace lldl;

namespace {

struct Result {
  MemoryReport rep;
  ArenaStats arena;
  double ms_per_step = 0;
  double last_loss = 0;
};

Result run(const std::vector<Layer2>& layers, std::vector<int64_t> shape, int64_t features,
           int64_t batch, int steps, bool plan) {
  NeuralNetwork2 nn(layers, LossType::CrossEntropy, 42, shape);
  nn.set_memory_planning(plan);
  nn.build(features);
  Graph& g = nn.graph();
  OptimConfig c;
  c.kind = OptimKind::Adam;
  c.lr = 1e-3f;
  Optimizer opt(g, c);
  Rng rng(1);
  std::vector<float> X(static_cast<size_t>(batch * features));
  std::vector<int32_t> Y(static_cast<size_t>(batch));
  for (float& v : X) v = static_cast<float>(rng.uniform());
  for (int32_t& v : Y) v = static_cast<int32_t>(rng.below(10));
  Result r;
  auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) {
    if (s == 1) t0 = std::chrono::steady_clock::now();  // the first step logs and plans
    Tensor x = g.input({batch, features}, X.data(), DType::F32);
    Tensor y = g.input({batch}, Y.data(), DType::I32);
    Tensor loss = nn.loss_of(x, y, nullptr, true);
    r.last_loss = g.item(loss);
    g.backward(loss);
    opt.step();
    g.reset();
  }
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.ms_per_step = steps > 1 ? 1e3 * el / (steps - 1) : 0;
  r.rep = g.memory_report();
  r.arena = g.arena().stats(Region::Step);
  return r;
}

double mib(size_t b) { return static_cast<double>(b) / (1 << 20); }

void report(const char* name, const std::vector<Layer2>& layers, std::vector<int64_t> shape,
            int64_t features, int64_t batch, int steps) {
  Result off = run(layers, shape, features, batch, steps, false);
  Result on = run(layers, shape, features, batch, steps, true);
  const MemoryReport& m = on.rep;
  std::printf("\n%s, batch %lld, %d steps (losses %s: %.6f / %.6f)\n", name, (long long)batch,
              steps, off.last_loss == on.last_loss ? "identical" : "DIFFER", off.last_loss,
              on.last_loss);
  std::printf("  sum of tensors   %9.3f MiB  (%zu buffers)\n", mib(m.sum_all_tensors), m.requests);
  std::printf("  unplanned peak   %9.3f MiB  (arena high-water without planning: %.3f MiB)\n",
              mib(m.peak_unplanned), mib(off.rep.peak_unplanned));
  std::printf("  planned peak     %9.3f MiB  = %.2fx max live, %.2fx less than unplanned\n",
              mib(m.peak_planned), static_cast<double>(m.peak_planned) / m.max_live_bytes,
              static_cast<double>(m.peak_unplanned) / m.peak_planned);
  std::printf("  max live         %9.3f MiB\n", mib(m.max_live_bytes));
  std::printf("  arena reserved   %9.3f MiB planned, %.3f MiB unplanned; system allocations "
              "%zu / %zu\n",
              mib(on.arena.reserved), mib(off.arena.reserved), on.arena.system_allocs,
              off.arena.system_allocs);
  std::printf("  steps planned    %llu of %d\n", (unsigned long long)m.planned_steps, steps);
  std::printf("  time per step    %.2f ms planned, %.2f ms unplanned\n", on.ms_per_step,
              off.ms_per_step);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 64;
  int steps = 5;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (i + 1 >= argc) throw ValueError("missing value after " + a);
      if (a == "--batch") batch = std::stoll(argv[++i]);
      else if (a == "--steps") steps = std::stoi(argv[++i]);
      else throw ValueError("unknown flag " + a);
    }
    if (batch < 1 || steps < 2) throw ValueError("--batch must be >= 1 and --steps >= 2");
    using L = LayerType;
    using A = ActivationType;
    report("Fashion-MNIST CNN", fashion_cnn_layers(), {1, 28, 28}, 784, batch, steps);
    report("MLP 784-256-128-10",
           {{L::Dense, 256, A::ReLU}, {L::Dense, 128, A::ReLU}, {L::Dense, 10, A::Linear}}, {},
           784, batch, steps);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_memory: %s\n", e.what());
    return 1;
  }
}
