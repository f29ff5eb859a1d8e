#include <doctest/doctest.h>

#include "autograd/functions.h"

using namespace lldl;

TEST_CASE("a two-op graph computes and differentiates") {
  Graph g;
  Tensor W = g.param({3, 2}, "W");
  float* w = g.data(W);
  for (int i = 0; i < 6; ++i) w[i] = 0.1f * float(i + 1);
  float xv[3] = {1, 2, 3};
  Tensor x = g.input({1, 3}, xv, DType::F32);
  Tensor y = sum(matmul(x, W));
  CHECK(g.item(y) == doctest::Approx(0.1 * (1 + 2) + 0.1 * 2 * (3 + 4) + 0.1 * 3 * (5 + 6)));
  g.backward(y);
  CHECK(g.grad(W)[0] == doctest::Approx(1.0));
  CHECK(g.grad(W)[5] == doctest::Approx(3.0));
}

TEST_CASE("backward from a seed tensor equals backward from host seed data") {
  auto run = [](bool tensor_seed, std::vector<float>& gW) {
    Graph g;
    Tensor W = g.param({3, 2}, "W");
    float* w = g.data(W);
    for (int i = 0; i < 6; ++i) w[i] = 0.1f * float(i + 1) - 0.25f;
    float xv[6] = {1, -2, 3, 0.5f, 4, -1};
    const float sv[4] = {0.3f, -1.5f, 2.0f, 0.7f};
    Tensor seed = g.buffer({2, 2}, DType::F32);
    g.from_host(seed, sv);
    Tensor x = g.input({2, 3}, xv, DType::F32);
    Tensor y = tanh(matmul(x, W));
    if (tensor_seed) g.backward(y, seed);
    else g.backward(y, sv);
    gW.assign(g.grad(W), g.grad(W) + 6);
  };
  std::vector<float> a, b;
  run(true, a);
  run(false, b);
  for (int i = 0; i < 6; ++i) CHECK(a[i] == b[i]);
  CHECK(a[0] != 0.0f);
}

TEST_CASE("backward rejects a seed tensor of the wrong shape") {
  Graph g;
  Tensor W = g.param({3, 2}, "W");
  Tensor seed = g.buffer({2, 3}, DType::F32);
  float xv[6] = {};
  Tensor y = matmul(g.input({2, 3}, xv, DType::F32), W);
  CHECK_THROWS_WITH_AS(g.backward(y, seed), doctest::Contains("seed tensor must have the output's shape"),
                       ShapeError);
}
