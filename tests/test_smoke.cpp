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

namespace {
// W (3x2) and x (2x3) with fixed values, for the lazy-zeroing tests.
Tensor fixed_param(Graph& g, const char* name, float base) {
  Tensor W = g.param({3, 2}, name);
  float* w = g.data(W);
  for (int i = 0; i < 6; ++i) w[i] = base + 0.1f * float(i) * (i % 2 ? -1.0f : 1.0f);
  return W;
}
Tensor fixed_x(Graph& g) {
  const float xv[6] = {1, -2, 3, 0.5f, 4, -1};
  return g.input({2, 3}, xv, DType::F32);
}
}  // namespace

TEST_CASE("backward: an intermediate off the path to the loss has a zero gradient") {
  // The CPU backward zero-fills intermediate gradients lazily: a gradient
  // that a later backward never reaches must still read as zeros afterwards.
  Graph g;
  Tensor W = fixed_param(g, "W", 0.2f), V = fixed_param(g, "V", -0.3f);
  Tensor x = fixed_x(g);
  Tensor side = relu(matmul(x, V));
  Tensor loss_side = sum(side);
  Tensor loss = sum(tanh(matmul(x, W)));
  g.backward(loss_side);  // allocates side's gradient and fills it with ones
  CHECK(g.grad(side)[0] == 1.0f);
  std::vector<float> gv(g.grad(V), g.grad(V) + 6);
  g.backward(loss);  // does not reach side
  for (int i = 0; i < 4; ++i) CHECK(g.grad(side)[i] == 0.0f);
  for (int i = 0; i < 6; ++i) CHECK(g.grad(V)[i] == gv[i]);  // nothing added
  CHECK(g.grad(W)[0] != 0.0f);
}

TEST_CASE("backward: an input used twice by one op gets both contributions") {
  auto grads = [](bool twice) {
    Graph g;
    Tensor W = fixed_param(g, "W", 0.2f);
    Tensor h = tanh(matmul(fixed_x(g), W));
    Tensor y = twice ? add(h, h) : scale(h, 2.0f);
    Tensor hh = matmul(y, y, false, true);  // y y^T: y twice again
    g.backward(sum(hh));
    return std::vector<float>(g.grad(W), g.grad(W) + 6);
  };
  std::vector<float> a = grads(true), b = grads(false);
  for (int i = 0; i < 6; ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-6));
  CHECK(a[0] != 0.0f);
}

TEST_CASE("backward twice in one step: intermediates restart from zero, parameters accumulate") {
  Graph g;
  Tensor W = fixed_param(g, "W", 0.2f);
  Tensor h = tanh(matmul(fixed_x(g), W));
  Tensor loss = sum(mul(h, h));
  g.backward(loss);
  std::vector<float> gh1(g.grad(h), g.grad(h) + 4), gw1(g.grad(W), g.grad(W) + 6);
  g.backward(loss);
  for (int i = 0; i < 4; ++i) CHECK(g.grad(h)[i] == gh1[i]);
  for (int i = 0; i < 6; ++i) CHECK(g.grad(W)[i] == doctest::Approx(2 * gw1[i]));
}

TEST_CASE("shared gradient buffers give exactly the gradients that copying gives") {
  // reshape, identity, add and bias_add's x pass the output gradient through
  // unchanged; where their input has no other consumer the graph shares one
  // buffer instead of copying (KernelPair::passes). Anomaly mode copies (and
  // zero-fills), so it is the reference. Every intermediate gradient the user
  // can read, and every parameter gradient, must match bit for bit, over two
  // backward calls in one step (the second restarts intermediates from zero).
  auto run = [](bool anomaly, std::vector<std::vector<float>>& out) {
    Graph g;
    g.set_anomaly_mode(anomaly);
    Tensor W = g.param({4, 6}, "W"), b = g.param({6}, "b"), V = g.param({3, 4}, "V");
    for (int i = 0; i < 24; ++i) g.data(W)[i] = 0.05f * float(i % 7) - 0.15f;
    for (int i = 0; i < 6; ++i) g.data(b)[i] = 0.1f * float(i) - 0.2f;
    for (int i = 0; i < 12; ++i) g.data(V)[i] = 0.07f * float(i % 5) - 0.1f;
    float xv[20];
    for (int i = 0; i < 20; ++i) xv[i] = 0.3f * float(i % 6) - 0.8f;
    Tensor x = g.input({5, 4}, xv, DType::F32);
    Tensor m = matmul(x, W);                 // only consumer: bias_add (shared)
    Tensor h = bias_add(m, b);               // consumers: tanh and add
    Tensor t = tanh(h);                      // only consumer: identity (shared)
    Tensor i = identity(t);                  // only consumer: add (shared)
    Tensor s = add(i, h);                    // only consumer: reshape (shared)
    Tensor r = reshape(s, Shape{10, 3});     // only consumer: matmul
    Tensor loss = sum(mul(matmul(r, V), matmul(r, V)));
    out.clear();
    for (int pass = 0; pass < 2; ++pass) {
      g.backward(loss);
      for (Tensor u : {m, h, t, i, s, r, W, b, V})
        out.emplace_back(g.grad(u), g.grad(u) + g.shape(u).numel());
    }
  };
  std::vector<std::vector<float>> shared, copied;
  run(false, shared);
  run(true, copied);
  REQUIRE(shared.size() == copied.size());
  for (size_t k = 0; k < shared.size(); ++k) {
    CAPTURE(k);  // pass * 9 + index into m, h, t, i, s, r, W, b, V
    CHECK(shared[k] == copied[k]);
  }
  CHECK(copied[1] != std::vector<float>(30, 0.0f));  // h's gradient is not trivially zero
}

TEST_CASE("a gradient shared in one backward is its own again in the next, with another consumer") {
  // First backward: h's only consumer is the reshape, so h shares r's
  // gradient buffer. A second loss then reads h directly while r is off its
  // path: h must get its own buffer (r's, zero-filled as off the path, would
  // otherwise wipe it), and its gradient is the new loss's alone.
  Graph g;
  Tensor W = g.param({3, 4}, "W");
  for (int i = 0; i < 12; ++i) g.data(W)[i] = 0.1f * float(i) - 0.5f;
  float xv[6] = {1, -2, 0.5f, 3, -1, 2};
  Tensor x = g.input({2, 3}, xv, DType::F32);
  Tensor h = tanh(matmul(x, W));            // (2, 4)
  Tensor r = reshape(h, Shape{8});
  g.backward(sum(mul(r, r)));                // dL/dh = 2 h
  for (int i = 0; i < 8; ++i) CHECK(g.grad(h)[i] == doctest::Approx(2 * g.data(h)[i]));
  Tensor loss2 = sum(h);                     // dL2/dh = 1; r is off this path
  g.backward(loss2);
  for (int i = 0; i < 8; ++i) {
    CAPTURE(i);
    CHECK(g.grad(h)[i] == 1.0f);
    CHECK(g.grad(r)[i] == 0.0f);
  }
}
