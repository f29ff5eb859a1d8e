// Placement by measurement on synthetic timing data: the fit recovers the
// coefficients the rows were made from, the choice switches from 1 to 2
// threads at the crossover the coefficients imply, an unavailable backend is
// never chosen, and a graph with automatic placement restores the thread
// count and computes the same values.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/placement.h"
#include "backends/cuda/device.h"
#include "core/threads.h"

using namespace lldl;

namespace {

// time = a + b*flops + c*bytes for one (backend, tier, threads) group.
struct Law {
  const char* backend;
  const char* tier;
  int threads;
  double a, b, c;
};
// 1 thread: cheap to start; 2 threads: 20 us to start, half the time per unit
// of work; the fake GPU: 100 us to launch, 1000x faster per FLOP.
const Law kOne{"cpu", "eigen", 1, 1e-6, 1e-9, 1e-10};
const Law kTwo{"cpu", "eigen", 2, 2e-5, 0.5e-9, 0.5e-10};
const Law kGpu{"cuda", "cublas", 1, 1e-4, 1e-12, 1e-12};

double mm_flops(int n) { return 2.0 * n * n * n; }
double mm_bytes(int n) { return 12.0 * n * n; }

std::vector<StudyRow> synthetic_rows() {
  std::vector<StudyRow> rows;
  for (const Law& l : {kOne, kTwo, kGpu})
    for (int n : {4, 8, 16, 32, 64, 128, 256, 512})
      for (const char* phase : {"forward", "backward"}) {
        double k = std::string(phase) == "backward" ? 2.0 : 1.0;
        StudyRow r;
        r.op = "matmul";
        r.size = std::to_string(n);
        r.backend = l.backend;
        r.tier = l.tier;
        r.phase = phase;
        r.threads = l.threads;
        r.flops = k * mm_flops(n);
        r.bytes = k * mm_bytes(n);
        r.seconds = l.a + l.b * r.flops + l.c * r.bytes;
        rows.push_back(r);
      }
  return rows;
}

Placement choose_matmul(const CostModel& m, int n, Phase ph = Phase::Forward) {
  Shape in[2] = {Shape{n, n}, Shape{n, n}};
  return m.choose(OpKind::MatMul, in, matmul_attr(false, false), ph);
}

}  // namespace

TEST_CASE("fit_nonnegative recovers exact coefficients and never goes below zero") {
  std::vector<double> f, b, t;
  for (int i = 1; i <= 6; ++i) {
    f.push_back(1e6 * i * i);
    b.push_back(3e4 * i + 1e3 * i * i * i);
    t.push_back(3e-6 + 2e-10 * f.back() + 4e-9 * b.back());
  }
  Coeffs c = fit_nonnegative(f, b, t);
  CHECK(c.a == doctest::Approx(3e-6).epsilon(1e-6));
  CHECK(c.b == doctest::Approx(2e-10).epsilon(1e-6));
  CHECK(c.c == doctest::Approx(4e-9).epsilon(1e-6));

  // Time falling with size would need a negative slope: clamped to zero, the
  // constant takes it all.
  Coeffs d = fit_nonnegative({1, 2, 3}, {1, 2, 3}, {3e-6, 2e-6, 1e-6});
  CHECK(d.b == 0.0);
  CHECK(d.c == 0.0);
  CHECK(d.a > 1e-6);
  CHECK(d.a < 3e-6);
  CHECK_THROWS_AS(fit_nonnegative({1}, {1}, {0.0}), ValueError);
  CHECK_THROWS_AS(fit_nonnegative({1, 2}, {1}, {1.0, 2.0}), ValueError);
}

TEST_CASE("cost model: fitted coefficients equal the synthetic laws") {
  CostModel m(synthetic_rows());
  CHECK(m.fits().size() == 6);  // 3 laws x 2 phases
  for (const Law& l : {kOne, kTwo}) {
    const CostFit* f = m.find(OpKind::MatMul, Backend::CPU, l.threads, Phase::Forward, l.tier);
    REQUIRE(f != nullptr);
    CHECK(f->n == 8);
    CHECK(f->a == doctest::Approx(l.a).epsilon(1e-5));
    CHECK(f->b == doctest::Approx(l.b).epsilon(1e-5));
    CHECK(f->c == doctest::Approx(l.c).epsilon(1e-5));
  }
  CHECK(m.find(OpKind::MatMul, Backend::CPU, 3, Phase::Forward, "eigen") == nullptr);
  CHECK(m.find(OpKind::Relu, Backend::CPU, 1, Phase::Forward, "eigen") == nullptr);
}

TEST_CASE("cost model: 1 thread below the crossover, 2 above, the GPU only when available") {
  CostModel m(synthetic_rows());
  m.set_max_threads(2);
  // Without a usable GPU (none here, or a build without CUDA) CUDA is out.
  REQUIRE(m.available(Backend::CUDA) == cuda_available());
  m.set_available(Backend::CUDA, false);
  // Crossover: 0.5e-9 f + 0.5e-10 b = 1.9e-5, between n = 16 and n = 32.
  for (int n : {4, 8, 16}) {
    Placement p = choose_matmul(m, n);
    CHECK_MESSAGE(p.threads == 1, "n = " << n);
    CHECK(p.backend == Backend::CPU);
    CHECK(p.tier == "eigen");
    CHECK(p.seconds == doctest::Approx(kOne.a + kOne.b * mm_flops(n) + kOne.c * mm_bytes(n)));
  }
  for (int n : {32, 64, 512, 2048}) {
    Placement p = choose_matmul(m, n);
    CHECK_MESSAGE(p.threads == 2, "n = " << n);
    CHECK(p.backend == Backend::CPU);
  }
  // Backward has twice the work: it crosses over at a smaller n.
  CHECK(choose_matmul(m, 24, Phase::Forward).threads == 1);
  CHECK(choose_matmul(m, 24, Phase::Backward).threads == 2);

  m.set_available(Backend::CUDA, true);
  CHECK(choose_matmul(m, 8).backend == Backend::CPU);
  CHECK(choose_matmul(m, 8).threads == 1);
  Placement big = choose_matmul(m, 512);
  CHECK(big.backend == Backend::CUDA);
  CHECK(big.tier == "cublas");
  Backend cpu = Backend::CPU;
  CHECK(m.choose_cost(OpKind::MatMul, Phase::Forward, mm_flops(512), mm_bytes(512), &cpu).backend ==
        Backend::CPU);

  m.set_max_threads(1);
  m.set_available(Backend::CUDA, false);
  CHECK(choose_matmul(m, 512).threads == 1);
  CHECK_THROWS_AS(m.set_max_threads(0), ValueError);
  CHECK_FALSE(m.choose_cost(OpKind::Relu, Phase::Forward, 1e6, 1e6).found());
  // The shape rule runs first.
  Shape bad[2] = {Shape{4, 5}, Shape{4, 5}};
  CHECK_THROWS_AS(m.choose(OpKind::MatMul, bad, matmul_attr(false, false)), ShapeError);
}

TEST_CASE("study CSV: columns found by name, unknown ops skipped, bad fields named") {
  std::istringstream ok(
      "op,size,flops,bytes,threads,backend,tier,phase,median_s,gflops,gbs\n"
      "matmul,8,1024,768,1,cpu,eigen,forward,2e-6,0.5,0.4\n"
      "matmul,16,8192,3072,1,cpu,eigen,forward,9.5e-6,0.9,0.3\n"
      "matmul,16,8192,3072,1,cpu,eigen,forward_backward,3e-5,0.9,0.3\n"
      "some_future_op,16,10,10,1,cpu,eigen,forward,1e-6,0,0\n"
      "matmul,16,8192,3072,1,tpu,x,forward,1e-6,0,0\n");
  std::vector<StudyRow> rows = parse_study_csv(ok, "ok.csv");
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].size == "16");
  CHECK(rows[1].flops == 8192);
  CHECK(rows[1].seconds == doctest::Approx(9.5e-6));
  CostModel m(rows);
  CHECK(m.skipped() == 2);
  CHECK(m.fits().size() == 1);

  std::istringstream missing("op,flops,bytes,threads,backend,phase\nmatmul,1,1,1,cpu,forward\n");
  CHECK_THROWS_WITH_AS(parse_study_csv(missing, "m.csv"),
                       doctest::Contains("no column 'median_s'"), ValueError);
  std::istringstream bad("op,flops,bytes,threads,backend,phase,median_s\n"
                         "matmul,1,1,1,cpu,forward,1e-6\nmatmul,abc,1,1,cpu,forward,1e-6\n");
  CHECK_THROWS_WITH_AS(parse_study_csv(bad, "b.csv"), doctest::Contains("b.csv:3: column flops"),
                       ValueError);
  std::istringstream zero_threads("op,flops,bytes,threads,backend,phase,median_s\n"
                                  "matmul,1,1,0,cpu,forward,1e-6\n");
  std::vector<StudyRow> zr = parse_study_csv(zero_threads, "z.csv");
  CHECK_THROWS_WITH_AS(CostModel{zr}, doctest::Contains("threads 0"), ValueError);
  CHECK_THROWS_AS(read_study_csv("/nonexistent/study.csv"), ValueError);
}

TEST_CASE("auto placement: same values, the caller's thread count restored, off by null") {
  CostModel m(synthetic_rows());
  m.set_max_threads(2);
  const int before = get_num_threads();
  set_num_threads(1);
  auto run = [](Graph& g) {
    const int n = 64;
    std::vector<float> av(n * n), bv(n * n);
    for (int i = 0; i < n * n; ++i) {
      av[i] = std::sin(0.1f * i);
      bv[i] = std::cos(0.07f * i);
    }
    Tensor a = g.input({n, n}, av.data(), DType::F32);
    Tensor b = g.input({n, n}, bv.data(), DType::F32);
    g.set_requires_grad(a);
    Tensor c = matmul(a, b);
    Tensor loss = sum(relu(c));  // relu, sum: not in the model, thread count untouched
    g.backward(loss);
    std::vector<float> out(g.data(c), g.data(c) + n * n);
    out.insert(out.end(), g.grad(a), g.grad(a) + n * n);
    return out;
  };
  Graph plain, placed;
  placed.set_auto_placement(&m);
  CHECK(placed.auto_placement() == &m);
  std::vector<float> x = run(plain), y = run(placed);
  CHECK(get_num_threads() == 1);  // the model chose 2 for n = 64 and put 1 back
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == doctest::Approx(y[i]).epsilon(1e-5));
  placed.set_auto_placement(nullptr);
  CHECK(placed.auto_placement() == nullptr);
  set_num_threads(before);
}
