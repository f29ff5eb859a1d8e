// bf16 mixed-precision training (Graph::set_matmul_precision, LMTrainConfig::
// precision): the matmul and linear kernels' forward and both gradient
// products take bf16 operands, everything else stays float32, and a model
// trained so tracks its float32 twin. The GEMM itself: test_bf16_gemm.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/graph.h"
#include "backends/lowp_isa.h"
#include "core/error.h"
#include "core/rng.h"
#include "models/gpt.h"
#include "models/lm_train.h"

using namespace lldl;

namespace {

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(r.uniform(-1, 1));
  return v;
}

double rnd(float x) { return bf16_widen(bf16_pack(x)); }

// Largest |got - want| over the bound K 2^-23 * sum |terms| + 1e-6 of the
// reference want(i, j) = sum_k l(i, k) r(k, j) of bf16-rounded operands
// (float32 accumulation is the kernel's only rounding beyond the operands').
template <class L, class R>
double worst_ratio(const std::vector<float>& got, int64_t M, int64_t N, int64_t K, L&& l, R&& r) {
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += rnd(l(i, k)) * rnd(r(k, j));
        a += std::abs(rnd(l(i, k)) * rnd(r(k, j)));
      }
      worst = std::max(worst, std::abs(got[i * N + j] - s) / (double(K) * 0x1p-23 * a + 1e-6));
    }
  return worst;
}

}  // namespace

TEST_CASE("bf16 matmul precision: linear's output and its three gradients use bf16 operands") {
  const int64_t M = 37, K = 70, N = 29;
  for (bool tb : {false, true}) {
    Graph g;
    Tensor x = g.param({M, K}), w = g.param(tb ? Shape{N, K} : Shape{K, N}), b = g.param({N});
    const std::vector<float> xv = random_vec(M * K, 1), wv = random_vec(K * N, 2),
                             bv = random_vec(N, 3), gv = random_vec(M * N, 4);
    g.from_host(x, xv.data());
    g.from_host(w, wv.data());
    g.from_host(b, bv.data());
    g.set_matmul_precision(MatmulPrecision::BF16);
    CHECK(g.matmul_precision() == MatmulPrecision::BF16);
    Tensor y = linear(x, w, b, tb);
    Tensor seed = g.input({M, N});
    g.from_host(seed, gv.data());
    g.backward(y, seed);
    std::vector<float> yv(M * N), dx(M * K), dw(K * N), db(N);
    g.to_host(y, yv.data());
    g.grad_to_host(x, dx.data());
    g.grad_to_host(w, dw.data());
    g.grad_to_host(b, db.data());
    auto W = [&](int64_t k, int64_t j) { return tb ? wv[j * K + k] : wv[k * N + j]; };
    auto X = [&](int64_t i, int64_t k) { return xv[i * K + k]; };
    auto G = [&](int64_t i, int64_t j) { return gv[i * N + j]; };
    std::vector<float> y_nob = yv;  // Y - b: the product alone
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) y_nob[i * N + j] -= bv[j];
    INFO("trans_b " << tb);
    CHECK(worst_ratio(y_nob, M, N, K, X, W) <= 1.0);
    // dX = dY W^T (M x K over N), dW = X^T dY (K x N over M), stored as W is.
    CHECK(worst_ratio(dx, M, K, N, G, [&](int64_t j, int64_t k) { return W(k, j); }) <= 1.0);
    std::vector<float> dw_kn = dw;
    if (tb)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) dw_kn[k * N + j] = dw[j * K + k];
    CHECK(worst_ratio(dw_kn, K, N, M, [&](int64_t k, int64_t i) { return X(i, k); }, G) <= 1.0);
    // The bias gradient is a float32 column sum, no product.
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t i = 0; i < M; ++i) s += G(i, j);
      CHECK(db[j] == doctest::Approx(s).epsilon(1e-5));
    }
    // Float32 operands would miss these bounds: the rounding is really there.
    double diff = 0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = bv[j];
        for (int64_t k = 0; k < K; ++k) s += double(X(i, k)) * W(k, j);
        diff = std::max(diff, std::abs(yv[i * N + j] - s));
      }
    CHECK(diff > 1e-4);
  }
}

TEST_CASE("bf16 matmul precision: matmul with a transposed A, and float32 again after switching back") {
  const int64_t M = 9, K = 40, N = 11;
  Graph g;
  Tensor a = g.param({K, M}), b = g.param({K, N});
  const std::vector<float> av = random_vec(K * M, 5), bv = random_vec(K * N, 6);
  g.from_host(a, av.data());
  g.from_host(b, bv.data());
  g.set_matmul_precision(MatmulPrecision::BF16);
  std::vector<float> c(M * N);
  g.to_host(matmul(a, b, true, false), c.data());
  auto A = [&](int64_t i, int64_t k) { return av[k * M + i]; };
  auto B = [&](int64_t k, int64_t j) { return bv[k * N + j]; };
  CHECK(worst_ratio(c, M, N, K, A, B) <= 1.0);
  g.set_matmul_precision(MatmulPrecision::F32);
  g.to_host(matmul(a, b, true, false), c.data());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(A(i, k)) * B(k, j);
      CHECK(c[i * N + j] == doctest::Approx(s).epsilon(1e-5));
    }
}

TEST_CASE("bf16 matmul precision: bad names and float64 graphs are refused") {
  CHECK(matmul_precision_from_name("fp32") == MatmulPrecision::F32);
  CHECK(matmul_precision_from_name("bf16") == MatmulPrecision::BF16);
  CHECK_THROWS_WITH_AS(matmul_precision_from_name("fp16"),
                       doctest::Contains("unknown name 'fp16' (expected fp32 or bf16)"), ValueError);
  // Gradient checks run in float64 with exact products: no bf16 there.
  Graph g64(DType::F64);
  CHECK_THROWS_WITH_AS(g64.set_matmul_precision(MatmulPrecision::BF16),
                       doctest::Contains("float32 graph"), TypeError);
  CHECK(g64.matmul_precision() == MatmulPrecision::F32);
  LMTrainConfig c;
  c.precision = "half";
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("precision must be fp32 or bf16, got 'half'"),
                       ValueError);
}

TEST_CASE("train_lm with precision bf16 tracks float32's losses") {
  // The structured corpus of test_lm's train_lm case ("ab?" with a random
  // third token), the same model and seed in both precisions. bf16 operands
  // perturb each product by ~2^-8 relative; over 120 steps of AdamW the two
  // runs stay within 0.5% of each other at every evaluation (measured: 0.01-
  // 0.03% on this test; bf16 GEMMs give the same bits on any thread count),
  // and both learn the structure (entropy ln(2)/3 = 0.23, untrained ln 6).
  std::vector<int32_t> train, val;
  Rng r(3);
  for (int i = 0; i < 3000; ++i) train.push_back(i % 3 == 0 ? 1 : (i % 3 == 1 ? 2 : int32_t(r.below(2) + 3)));
  for (int i = 0; i < 600; ++i) val.push_back(i % 3 == 0 ? 1 : (i % 3 == 1 ? 2 : int32_t(r.below(2) + 3)));
  LMTrainConfig c;
  c.steps = 120;
  c.batch = 8;
  c.seq = 16;
  c.lr = 3e-3;
  c.min_lr = 3e-4;
  c.warmup = 10;
  c.eval_every = 40;
  c.eval_batches = 4;
  c.progress = false;
  GPT m32(GPTConfig{6, 16, 2, 2, 32}), m16(GPTConfig{6, 16, 2, 2, 32});
  LMTrainLog l32 = train_lm(m32, train, val, c);
  c.precision = "bf16";
  LMTrainLog l16 = train_lm(m16, train, val, c);
  CHECK(m16.graph().matmul_precision() == MatmulPrecision::BF16);
  REQUIRE(l32.val_loss.size() == 3);
  REQUIRE(l16.val_loss.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("evaluation " << i << ": fp32 " << l32.val_loss[i] << ", bf16 " << l16.val_loss[i]);
    CHECK(std::abs(l16.val_loss[i] - l32.val_loss[i]) <= 0.005 * l32.val_loss[i]);
  }
  CHECK(l16.val_loss.back() < 0.6);
  CHECK(l16.train_loss != l32.train_loss);  // bf16 did run
}
