// Dropout and batch normalisation beyond their gradient checks: dropout's
// mask is reproducible from its seed, keeps about 1-p of the elements and
// preserves the mean; batch_norm's forward (training and eval) and its
// running-statistics updates match a plain reference written here, like
// PyTorch's BatchNorm1d/2d.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"

using namespace lldl;

namespace {

// ---- dropout ---------------------------------------------------------------

std::vector<float> dropout_of(const std::vector<float>& xv, float p, bool training,
                              uint64_t seed) {
  Graph g;
  Tensor x = g.input({static_cast<int64_t>(xv.size())}, xv.data(), DType::F32);
  Tensor y = dropout(x, p, training, seed);
  const float* o = g.data(y);
  return {o, o + xv.size()};
}

// ---- batch_norm reference ----------------------------------------------------

// x (N, C, S), the statistics in double; updates rm and rv like PyTorch in
// training (unbiased variance for the running estimate).
struct BnCase {
  int64_t N, C, S;
  std::vector<double> x, gamma, beta, rm, rv;
};

std::vector<double> bn_reference(BnCase& c, bool training, double momentum, double eps) {
  std::vector<double> out(c.x.size());
  const double M = static_cast<double>(c.N * c.S);
  for (int64_t ch = 0; ch < c.C; ++ch) {
    double mean = c.rm[ch], var = c.rv[ch];
    if (training) {
      double s = 0, q = 0;
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t k = 0; k < c.S; ++k) s += c.x[(n * c.C + ch) * c.S + k];
      mean = s / M;
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t k = 0; k < c.S; ++k) {
          double d = c.x[(n * c.C + ch) * c.S + k] - mean;
          q += d * d;
        }
      var = q / M;
      c.rm[ch] = (1 - momentum) * c.rm[ch] + momentum * mean;
      c.rv[ch] = (1 - momentum) * c.rv[ch] + momentum * var * M / (M - 1);
    }
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t k = 0; k < c.S; ++k) {
        int64_t i = (n * c.C + ch) * c.S + k;
        out[i] = c.gamma[ch] * (c.x[i] - mean) / std::sqrt(var + eps) + c.beta[ch];
      }
  }
  return out;
}

BnCase random_case(int64_t N, int64_t C, int64_t S, uint64_t seed) {
  Rng rng(seed);
  BnCase c{N, C, S, {}, {}, {}, {}, {}};
  auto fill = [&](std::vector<double>& v, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<float>(rng.uniform(lo, hi)));
  };
  fill(c.x, N * C * S, -3, 5);
  fill(c.gamma, C, 0.5, 2);
  fill(c.beta, C, -1, 1);
  fill(c.rm, C, -1, 1);
  fill(c.rv, C, 0.5, 2);
  return c;
}

void set(Graph& g, Tensor t, const std::vector<double>& v) {
  float* d = g.data(t);
  for (size_t i = 0; i < v.size(); ++i) d[i] = static_cast<float>(v[i]);
}

void check_close(const float* got, const std::vector<double>& want, const char* what) {
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(what << " element " << i);
    CHECK_MESSAGE(std::abs(got[i] - want[i]) <= 1e-5 + 1e-5 * std::abs(want[i]),
                  "got " << got[i] << ", expected " << want[i]);
  }
}

}  // namespace

TEST_CASE("dropout: the same seed gives the same mask, different seeds differ") {
  std::vector<float> x(4096, 1.0f);
  std::vector<float> a = dropout_of(x, 0.5f, true, 42), b = dropout_of(x, 0.5f, true, 42);
  CHECK_MESSAGE(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
                "expected identical outputs for the same seed");
  for (uint64_t other : {43ull, 42ull ^ (1ull << 40), 0ull}) {
    std::vector<float> c = dropout_of(x, 0.5f, true, other);
    int differ = 0;
    for (size_t i = 0; i < x.size(); ++i) differ += a[i] != c[i];
    // Independent masks at p = 0.5 disagree on half the elements (+-4 sigma).
    CAPTURE(other);
    CHECK_MESSAGE(std::abs(differ - 2048) < 4 * 32, differ << " of 4096 elements differ");
  }
}

TEST_CASE("dropout: the mask does not depend on the element type") {
  std::vector<float> x(1000, 1.0f);
  std::vector<float> a = dropout_of(x, 0.3f, true, 9);
  Graph g(DType::F64);
  std::vector<double> xd(x.begin(), x.end());
  Tensor y = dropout(g.input({1000}, xd.data(), DType::F64), 0.3f, true, 9);
  for (int i = 0; i < 1000; ++i) {
    CAPTURE(i);
    CHECK((a[i] == 0.0f) == (g.data<double>(y)[i] == 0.0));
  }
}

TEST_CASE("dropout: keeps about 1-p of a large tensor, scales by 1/(1-p), preserves the mean") {
  const int n = 200000;
  std::vector<float> x(n, 1.0f);
  for (float p : {0.1f, 0.5f, 0.9f}) {
    CAPTURE(p);
    std::vector<float> y = dropout_of(x, p, true, 123);
    const float kept_value = 1.0f / (1.0f - p);
    int kept = 0, other = 0;
    double total = 0;
    for (float v : y) {
      kept += v == kept_value;
      other += v != kept_value && v != 0.0f;
      total += v;
    }
    CHECK_MESSAGE(other == 0, other << " elements are neither 0 nor 1/(1-p)");
    const double frac = static_cast<double>(kept) / n, sd = std::sqrt(p * (1 - p) / n);
    CHECK_MESSAGE(std::abs(frac - (1 - p)) < 5 * sd, "kept " << frac << ", expected " << 1 - p);
    // mean(y) = frac / (1 - p), so its standard deviation is sd / (1 - p).
    const double mean = total / n;
    CHECK_MESSAGE(std::abs(mean - 1.0) < 5 * sd / (1 - p), "mean " << mean << ", expected 1");
  }
}

TEST_CASE("dropout: backward applies the forward mask and scale") {
  Graph g(DType::F64);
  Rng rng(5);
  std::vector<double> xv(500);
  for (double& v : xv) v = rng.uniform(0.5, 2.0);  // nonzero: the mask shows in y
  Tensor x = g.input({500}, xv.data(), DType::F64);
  g.set_requires_grad(x);
  Tensor y = dropout(x, 0.4f, true, 77);
  std::vector<double> seed(500, 1.0);
  g.backward(y, seed.data());
  for (int i = 0; i < 500; ++i) {
    CAPTURE(i);
    // y = x * mask / (1 - p), so dy/dx = y / x exactly at this seed.
    CHECK(g.grad<double>(x)[i] == doctest::Approx(g.data<double>(y)[i] / xv[i]));
  }
}

TEST_CASE("dropout: eval mode and p = 0 are the identity") {
  std::vector<float> x(333);
  Rng rng(3);
  for (float& v : x) v = static_cast<float>(rng.normal());
  for (auto [p, training] : {std::pair{0.5f, false}, std::pair{0.0f, true}}) {
    std::vector<float> y = dropout_of(x, p, training, 1);
    CAPTURE(p);
    CAPTURE(training);
    CHECK_MESSAGE(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0,
                  "expected the input unchanged");
  }
}

TEST_CASE("batch_norm: training and eval forward and running statistics match a reference") {
  struct Dims {
    int64_t N, C, H, W;
    bool four_d;
  };
  for (Dims d : {Dims{8, 3, 1, 1, false}, Dims{2, 4, 1, 1, false}, Dims{4, 5, 3, 2, true},
                 Dims{2, 1, 1, 3, true}, Dims{3, 2, 1, 1, true},
                 Dims{64, 8, 8, 8, true}}) {  // the last runs on OpenMP threads
    const Shape xs = d.four_d ? Shape{d.N, d.C, d.H, d.W} : Shape{d.N, d.C};
    INFO("x is " << xs.str());
    const double momentum = 0.25, eps = 1e-3;
    BnCase ref = random_case(d.N, d.C, d.H * d.W, 17 + d.N);
    Graph g;
    Tensor gamma = g.param({d.C}, "gamma"), beta = g.param({d.C}, "beta");
    Tensor rm = g.buffer({d.C}, DType::F32), rv = g.buffer({d.C}, DType::F32);
    set(g, gamma, ref.gamma);
    set(g, beta, ref.beta);
    set(g, rm, ref.rm);
    set(g, rv, ref.rv);
    // Three training steps on different batches, then eval.
    for (int step = 0; step < 3; ++step) {
      CAPTURE(step);
      for (double& v : ref.x) v = static_cast<float>(v * 0.9 + 0.3 * step);
      Tensor x = g.input(xs);
      set(g, x, ref.x);
      Tensor y = batch_norm(x, gamma, beta, rm, rv, true, static_cast<float>(momentum),
                            static_cast<float>(eps));
      std::vector<double> want = bn_reference(ref, true, momentum, eps);
      check_close(g.data(y), want, "training output");
      check_close(g.data(rm), ref.rm, "running_mean");
      check_close(g.data(rv), ref.rv, "running_var (unbiased)");
      g.reset();
    }
    Tensor x = g.input(xs);
    set(g, x, ref.x);
    Tensor y = batch_norm(x, gamma, beta, rm, rv, false, static_cast<float>(momentum),
                          static_cast<float>(eps));
    std::vector<double> before_rm = ref.rm, before_rv = ref.rv;
    check_close(g.data(y), bn_reference(ref, false, momentum, eps), "eval output");
    check_close(g.data(rm), before_rm, "running_mean unchanged in eval");
    check_close(g.data(rv), before_rv, "running_var unchanged in eval");
  }
}

TEST_CASE("batch_norm: hand-computed values (PyTorch BatchNorm1d, momentum 1)") {
  Graph g;
  float xv[6] = {1, 2, 3, 4, 5, 6};  // (3, 2): columns {1, 3, 5} and {2, 4, 6}
  float ones[2] = {1, 1};
  Tensor gamma = g.param({2}), beta = g.param({2});
  std::memcpy(g.data(gamma), ones, sizeof ones);
  Tensor rm = g.buffer({2}, DType::F32), rv = g.buffer({2}, DType::F32);
  Tensor y = batch_norm(g.input({3, 2}, xv, DType::F32), gamma, beta, rm, rv, true, 1.0f, 0.0f);
  // mean 3 and 4, biased variance 8/3, unbiased 4.
  const double s = std::sqrt(8.0 / 3.0);
  const double want[6] = {-2 / s, -2 / s, 0, 0, 2 / s, 2 / s};
  for (int i = 0; i < 6; ++i) CHECK(g.data(y)[i] == doctest::Approx(want[i]));
  CHECK(g.data(rm)[0] == doctest::Approx(3));
  CHECK(g.data(rm)[1] == doctest::Approx(4));
  CHECK(g.data(rv)[0] == doctest::Approx(4));
  CHECK(g.data(rv)[1] == doctest::Approx(4));
}

TEST_CASE("batch_norm: the running buffers get no gradient, gamma and beta do") {
  for (bool training : {true, false}) {
    CAPTURE(training);
    Graph g;
    BnCase ref = random_case(4, 3, 1, 8);
    Tensor gamma = g.param({3}), beta = g.param({3});
    Tensor rm = g.buffer({3}, DType::F32), rv = g.buffer({3}, DType::F32);
    set(g, gamma, ref.gamma);
    set(g, rv, ref.rv);
    Tensor x = g.input({4, 3});
    set(g, x, ref.x);
    g.set_requires_grad(x);
    g.backward(sum(batch_norm(x, gamma, beta, rm, rv, training)));
    CHECK_THROWS_AS(g.grad(rm), ValueError);
    CHECK_THROWS_AS(g.grad(rv), ValueError);
    // d sum(y) / d beta = M per channel; in training d sum(y) / dx = 0
    // (the normalised values sum to zero whatever x is).
    for (int c = 0; c < 3; ++c) CHECK(g.grad(beta)[c] == doctest::Approx(4));
    if (training)
      for (int i = 0; i < 12; ++i) CHECK(g.grad(x)[i] == doctest::Approx(0).epsilon(1e-5));
  }
}

TEST_CASE("batch_norm: eval works on a single sample, training output is standardised") {
  Graph g;
  BnCase ref = random_case(1, 3, 1, 2);
  Tensor gamma = g.param({3}), beta = g.param({3});
  Tensor rm = g.buffer({3}, DType::F32), rv = g.buffer({3}, DType::F32);
  set(g, gamma, ref.gamma);
  set(g, beta, ref.beta);
  set(g, rm, ref.rm);
  set(g, rv, ref.rv);
  Tensor x = g.input({1, 3});
  set(g, x, ref.x);
  check_close(g.data(batch_norm(x, gamma, beta, rm, rv, false)),
              bn_reference(ref, false, 0.1, 1e-5), "eval output of one sample");

  // gamma 1, beta 0: each channel of the training output has mean 0 and
  // (biased) variance var / (var + eps), about 1.
  BnCase big = random_case(64, 2, 9, 4);
  Tensor g1 = g.param({2}), b0 = g.param({2});
  Tensor rm2 = g.buffer({2}, DType::F32), rv2 = g.buffer({2}, DType::F32);
  set(g, g1, {1.0, 1.0});
  Tensor xb = g.input({64, 2, 3, 3});
  set(g, xb, big.x);
  const float* y = g.data(batch_norm(xb, g1, b0, rm2, rv2, true));
  for (int c = 0; c < 2; ++c) {
    double s = 0, q = 0;
    for (int n = 0; n < 64; ++n)
      for (int k = 0; k < 9; ++k) s += y[(n * 2 + c) * 9 + k];
    for (int n = 0; n < 64; ++n)
      for (int k = 0; k < 9; ++k) q += y[(n * 2 + c) * 9 + k] * y[(n * 2 + c) * 9 + k];
    CAPTURE(c);
    CHECK(s / 576 == doctest::Approx(0).epsilon(1e-5));
    CHECK(q / 576 == doctest::Approx(1).epsilon(1e-4));
  }
}
