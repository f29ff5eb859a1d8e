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
