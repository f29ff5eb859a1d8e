// Engine matmul against a raw Eigen product, and the fixed cost of one op.
//
// 1. Square matmul n x n @ n x n, n = 64 .. 2048, float32. "engine" records
//    the op on a Graph (shape rule, arena allocation, tape entry, kernel
//    dispatch); "eigen" is C.noalias() = A * B over Eigen::Map of the same
//    kind of 64-byte aligned row-major buffers. Forward+backward adds
//    g.backward(C, ones) against the raw dA += dC B^T, dB += A^T dC.
// 2. The overhead of recording and dispatching one op on a 1x4 tensor
//    (add, scale), over batches of ops with g.reset() between batches.
//
// Every figure is the median of repeated timings (steady_clock). Threads
// follow OMP_NUM_THREADS. Targets: engine >= 0.95x Eigen for n >= 256, and
// under 1 microsecond of overhead per op.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"

using namespace lldl;

namespace {

using Clock = std::chrono::steady_clock;
using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<MatR>;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// An aligned float buffer like an arena tensor's, filled from a seed.
struct Buffer {
  float* p;
  explicit Buffer(int64_t n, uint64_t seed = 0) {
    size_t bytes = (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    Rng r(seed);
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(r.uniform(-1, 1));
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

double minimum(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

// Repetitions for one size: about 0.25 s of work per variant at a rough
// guess of the machine's speed, at least 7.
int reps_for(double flops_per_rep) {
  double guess_rate = 50e9 * omp_get_max_threads();
  int r = static_cast<int>(0.25 * guess_rate / flops_per_rep);
  return std::clamp(r, 7, 5000);
}

struct Row {
  int64_t n;
  double engine_fwd, eigen_fwd, engine_fb, eigen_fb;  // seconds, medians
  double best_ratio_fwd, best_ratio_fb;               // eigen / engine of the fastest runs
};

Row bench_size(int64_t n) {
  const int64_t nn = n * n;
  Graph g;
  Tensor A = g.param({n, n}, "A"), B = g.param({n, n}, "B");
  Buffer a(nn, 1), b(nn, 2), c(nn), da(nn), db(nn), dc(nn);
  std::memcpy(g.data(A), a.p, nn * sizeof(float));
  std::memcpy(g.data(B), b.p, nn * sizeof(float));
  std::vector<float> ones(static_cast<size_t>(nn), 1.0f);
  std::fill(dc.p, dc.p + nn, 1.0f);
  Map mA(a.p, n, n), mB(b.p, n, n), mC(c.p, n, n), mdA(da.p, n, n), mdB(db.p, n, n),
      mdC(dc.p, n, n);

  const double flops = 2.0 * double(n) * double(n) * double(n);
  const int reps = reps_for(flops);
  std::vector<double> ef, rf, eb, rb;
  // One untimed round warms caches, the arena and OpenMP's thread pool; the
  // variants then alternate so that drift affects them alike.
  for (int r = -1; r < reps; ++r) {
    auto t0 = Clock::now();
    matmul(A, B);
    double t_ef = seconds_since(t0);
    g.reset(/*keep_grads=*/true);

    t0 = Clock::now();
    mC.noalias() = mA * mB;
    double t_rf = seconds_since(t0);

    t0 = Clock::now();
    Tensor C = matmul(A, B);
    g.backward(C, ones.data());
    double t_eb = seconds_since(t0);
    g.reset();  // zeroes dA, dB: untimed, the raw variant accumulates too

    t0 = Clock::now();
    mC.noalias() = mA * mB;
    mdA.noalias() += mdC * mB.transpose();
    mdB.noalias() += mA.transpose() * mdC;
    double t_rb = seconds_since(t0);
    if (r >= 0) {
      ef.push_back(t_ef);
      rf.push_back(t_rf);
      eb.push_back(t_eb);
      rb.push_back(t_rb);
    }
  }
  return {n,
          median(ef),
          median(rf),
          median(eb),
          median(rb),
          minimum(rf) / minimum(ef),
          minimum(rb) / minimum(eb)};
}

// ns per op for `ops` records of `op` per batch, median over batches, with
// and without the g.reset() that ends each batch; plus the backward walk.
struct Overhead {
  double record_ns, with_reset_ns, backward_ns;
};
template <class F>
Overhead bench_overhead(F&& op, bool requires_grad) {
  const int ops = 1000, batches = 300;
  Graph g;
  float v[4] = {0.5f, -0.25f, 1.0f, 2.0f};
  Tensor p = g.param({1, 4}, "p");
  std::memcpy(g.data(p), v, sizeof v);
  std::vector<double> rec, all, bwd;
  for (int b = -3; b < batches; ++b) {  // 3 warm-up batches size the arena
    auto t0 = Clock::now();
    Tensor x = requires_grad ? p : g.input({1, 4}, v, DType::F32);
    Tensor y = x;
    for (int i = 0; i < ops; ++i) y = op(y);
    double t_rec = seconds_since(t0);
    double t_bwd = 0;
    if (requires_grad) {
      float seed[4] = {1, 1, 1, 1};
      auto t1 = Clock::now();
      g.backward(y, seed);
      t_bwd = seconds_since(t1);
    }
    auto t2 = Clock::now();
    g.reset();
    double t_reset = seconds_since(t2);
    if (b >= 0) {
      rec.push_back(t_rec * 1e9 / ops);
      all.push_back((t_rec + t_reset) * 1e9 / ops);
      bwd.push_back(t_bwd * 1e9 / ops);
    }
  }
  return {median(rec), median(all), median(bwd)};
}

int run() {
  std::printf("bench_matmul: float32, %d OpenMP thread(s) (OMP_NUM_THREADS=%s), Eigen %d.%d.%d, "
              "Eigen threads %d\n",
              omp_get_max_threads(), std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS")
                                                                    : "unset",
              EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, Eigen::nbThreads());
  // Another process on the cores stretches some runs (an OpenMP barrier waits
  // for a descheduled thread); say so, since the table then says little.
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  if (load > 0.5) {
    std::printf("note: load average %.2f before start on %d cores: other processes share the "
                "CPU and disturb the timings\n",
                load, omp_get_num_procs());
  }
  std::printf("\nmatmul n x n @ n x n, GFLOP/s (median); ratio = engine speed / eigen speed of the "
              "medians, best = of the fastest runs; target ratio >= 0.95 for n >= 256\n");
  std::printf("%6s | %8s %8s %6s %6s | %8s %8s %6s %6s | %s\n", "n", "engine", "eigen", "ratio",
              "best", "eng f+b", "eig f+b", "ratio", "best", "target");
  bool all_ok = true;
  for (int64_t n : {64, 128, 256, 512, 1024, 2048}) {
    Row r = bench_size(n);
    double f = 2.0 * double(n) * double(n) * double(n);
    double rf = r.eigen_fwd / r.engine_fwd, rb = r.eigen_fb / r.engine_fb;
    const char* verdict = "-";
    if (n >= 256) {
      bool ok = rf >= 0.95 && rb >= 0.95;
      all_ok &= ok;
      verdict = ok ? "ok" : "MISSED";
    }
    std::printf("%6lld | %8.1f %8.1f %6.3f %6.3f | %8.1f %8.1f %6.3f %6.3f | %s\n",
                (long long)n, f / r.engine_fwd * 1e-9, f / r.eigen_fwd * 1e-9, rf,
                r.best_ratio_fwd, 3 * f / r.engine_fb * 1e-9, 3 * f / r.eigen_fb * 1e-9, rb,
                r.best_ratio_fb, verdict);
    std::fflush(stdout);
  }

  std::printf("\nper-op overhead on a 1x4 tensor, ns per op (median of 300 batches of 1000 "
              "ops); target < 1000 ns\n");
  std::printf("%-28s %10s %12s %12s\n", "op", "record", "+ reset", "backward");
  struct Case {
    const char* name;
    Tensor (*op)(Tensor);
    bool grad;
  };
  const Case cases[] = {
      {"add(y, y), no grad", [](Tensor y) { return add(y, y); }, false},
      {"add(y, y), requires grad", [](Tensor y) { return add(y, y); }, true},
      {"scale(y, 0.5), no grad", [](Tensor y) { return scale(y, 0.5f); }, false},
      {"scale(y, 0.5), requires grad", [](Tensor y) { return scale(y, 0.5f); }, true},
  };
  bool op_ok = true;
  for (const Case& c : cases) {
    Overhead o = bench_overhead(c.op, c.grad);
    op_ok &= o.with_reset_ns < 1000;
    if (c.grad)
      std::printf("%-28s %10.1f %12.1f %12.1f\n", c.name, o.record_ns, o.with_reset_ns,
                  o.backward_ns);
    else
      std::printf("%-28s %10.1f %12.1f %12s\n", c.name, o.record_ns, o.with_reset_ns, "-");
  }
  std::printf("\ntargets: matmul >= 0.95x Eigen at n >= 256: %s; per-op overhead < 1 us: %s\n",
              all_ok ? "met" : "MISSED", op_ok ? "met" : "MISSED");
  return 0;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_matmul: error: %s\n", e.what());
    return 1;
  }
}
