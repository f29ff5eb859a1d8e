// conv2d, pooling and reshape against plain loops: the convolution and its
// three gradients against a direct convolution written out here (on one and
// on all threads, batches split over threads and not), pooling on hand-made
// data (ties, NaN), reshape as a view, the conv scratch memory that stops
// growing after the first step, and the target CNN end to end.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "backends/cpu/common.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace lldl;

namespace {

struct ConvCase {
  const char* what;
  int64_t N, C, H, W, OC, KH, KW, S, P;
  int64_t OH() const { return (H + 2 * P - KH) / S + 1; }
  int64_t OW() const { return (W + 2 * P - KW) / S + 1; }
};

struct Result {
  std::vector<double> y, dx, dw, db;
};

// The definition: y[n,o,i,j] = b[o] + sum_{c,u,v} x[n,c,i*S-P+u, j*S-P+v] w[o,c,u,v],
// terms outside the image being zero; the gradients follow term by term.
Result direct_conv(const ConvCase& c, const std::vector<double>& x, const std::vector<double>& w,
                   const std::vector<double>& b, const std::vector<double>& dy) {
  Result r;
  const int64_t OH = c.OH(), OW = c.OW();
  r.y.assign(static_cast<size_t>(c.N * c.OC * OH * OW), 0.0);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(w.size(), 0.0);
  r.db.assign(b.size(), 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.OC; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          const size_t yi = static_cast<size_t>(((n * c.OC + o) * OH + i) * OW + j);
          double acc = b[o];
          const double d = dy[yi];
          r.db[o] += d;
          for (int64_t ci = 0; ci < c.C; ++ci)
            for (int64_t u = 0; u < c.KH; ++u)
              for (int64_t v = 0; v < c.KW; ++v) {
                const int64_t ih = i * c.S - c.P + u, iw = j * c.S - c.P + v;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const size_t xi = static_cast<size_t>(((n * c.C + ci) * c.H + ih) * c.W + iw);
                const size_t wi = static_cast<size_t>(((o * c.C + ci) * c.KH + u) * c.KW + v);
                acc += x[xi] * w[wi];
                r.dx[xi] += d * w[wi];
                r.dw[wi] += d * x[xi];
              }
          r.y[yi] = acc;
        }
  return r;
}

std::vector<double> uniform(int64_t n, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& e : v) e = static_cast<float>(rng.uniform(-1, 1));  // exact in float too
  return v;
}

template <class T>
void check_close(const char* what, const std::vector<double>& want, const T* got, double tol) {
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (std::abs(g - want[i]) <= tol * (1.0 + std::abs(want[i]))) continue;
    if (!bad++)
      FAIL_CHECK(what << " element " << i << ": conv2d gives " << g << ", the direct convolution "
                      << want[i] << " (tolerance " << tol << " relative)");
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << want.size() << " elements differ");
}

// Which inputs require a gradient: all, or only x, or only w and b.
enum class Grad { All, XOnly, WeightsOnly };

template <class T>
void compare(const ConvCase& c, Grad which) {
  INFO(c.what << (which == Grad::All ? "" : which == Grad::XOnly ? ", dx only" : ", dw, db only")
              << ", " << get_num_threads() << " thread(s), "
              << (sizeof(T) == 8 ? "float64" : "float32"));
  Rng rng(static_cast<uint64_t>(c.N * 1000003 + c.C * 1009 + c.H * 31 + c.KW));
  const Shape xs{c.N, c.C, c.H, c.W}, ws{c.OC, c.C, c.KH, c.KW}, bs{c.OC};
  std::vector<double> x = uniform(xs.numel(), rng), w = uniform(ws.numel(), rng),
                      b = uniform(c.OC, rng), dy = uniform(c.N * c.OC * c.OH() * c.OW(), rng);
  Result want = direct_conv(c, x, w, b, dy);

  const DType dt = sizeof(T) == 8 ? DType::F64 : DType::F32;
  Graph g(dt);
  auto make = [&](const Shape& s, const std::vector<double>& v, bool grad) {
    std::vector<T> t(v.begin(), v.end());
    Tensor h = g.input(s, t.data(), dt);
    if (grad) g.set_requires_grad(h);
    return h;
  };
  const bool gx = which != Grad::WeightsOnly, gw = which != Grad::XOnly;
  Tensor X = make(xs, x, gx), Wt = make(ws, w, gw), B = make(bs, b, gw);
  Tensor Y = conv2d(X, Wt, B, static_cast<int>(c.S), static_cast<int>(c.P));
  REQUIRE(g.shape(Y) == Shape{c.N, c.OC, c.OH(), c.OW()});
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-5;
  check_close("y", want.y, g.data<T>(Y), tol);
  std::vector<T> seed(dy.begin(), dy.end());
  g.backward(Y, seed.data());
  if (gx) check_close("dx", want.dx, g.grad<T>(X), tol);
  if (gw) {
    check_close("dw", want.dw, g.grad<T>(Wt), tol);
    check_close("db", want.db, g.grad<T>(B), tol);
  }
}

const ConvCase kCases[] = {
    {"the target network's second layer, batch 4", 4, 16, 14, 14, 32, 5, 5, 1, 2},
    {"the target network's first layer, batch 3", 3, 1, 28, 28, 16, 5, 5, 1, 2},
    {"stride 2, padding 1, non-square input", 3, 3, 9, 7, 4, 3, 3, 2, 1},
    {"1x1 kernel (no im2col)", 4, 16, 8, 8, 16, 1, 1, 1, 0},
    {"batch 1", 1, 3, 10, 10, 8, 3, 3, 1, 1},
    {"kernel 2x4, stride 3 (pixels skipped)", 2, 2, 11, 13, 3, 2, 4, 3, 0},
    {"padding 3 > kernel 3, stride 2 (outputs in the padding)", 2, 1, 4, 5, 2, 3, 3, 2, 3},
    {"batch 5 over 2 threads (uneven blocks)", 5, 6, 12, 9, 7, 3, 3, 1, 1},
    {"stride 1, no padding, kernel 3x2 (row by row im2col)", 3, 2, 8, 9, 4, 3, 2, 1, 0},
    {"kernel 3x5, padding 2 (shifted im2col, more output rows than input)", 2, 3, 6, 7, 5, 3, 5,
     1, 2},
    {"20 output channels (a partial packet), stride 2", 3, 9, 9, 8, 20, 3, 3, 2, 1},
    {"80 output channels (several packet groups), 16 inputs", 2, 16, 6, 5, 80, 3, 3, 1, 1},
    {"padding 3 > kernel - 1 (dx not direct), 12 channels", 2, 12, 5, 5, 12, 3, 3, 1, 3},
    {"kernel 1x3, 9 to 9 channels", 3, 9, 7, 6, 9, 1, 3, 1, 1},
    {"40 input channels, 8 output channels", 2, 40, 5, 6, 8, 3, 3, 1, 1},
    // Few output channels: 5 (below half a packet) and 24 (a packet and a
    // half), kernels 3x5 and 5x5, rows of 20 outputs. (Each dW element sums
    // under a thousand terms, so float32 rounding stays within the tolerance.)
    {"24x22 images, 5 channels, kernel 3x5", 2, 2, 24, 22, 5, 3, 5, 1, 1},
    {"20x24 images, 24 channels, kernel 5x5, no padding", 2, 3, 20, 24, 24, 5, 5, 1, 0},
};

}  // namespace

// Both algorithms (the direct micro-kernel and im2col + GEMM), forced and as
// chosen by shape, on one thread and on all.
TEST_CASE_TEMPLATE("conv2d and its gradients equal a direct convolution", T, float, double) {
  const int threads = get_num_threads();
  for (cpu::ConvAlgo algo : {cpu::ConvAlgo::Auto, cpu::ConvAlgo::Direct, cpu::ConvAlgo::Im2col}) {
    cpu::set_conv_algo(algo);
    INFO("algorithm " << (algo == cpu::ConvAlgo::Auto     ? "auto"
                          : algo == cpu::ConvAlgo::Direct ? "direct"
                                                          : "im2col"));
    for (int nt : {1, threads}) {
      set_num_threads(nt);
      for (const ConvCase& c : kCases) compare<T>(c, Grad::All);
      compare<T>(kCases[0], Grad::XOnly);
      compare<T>(kCases[0], Grad::WeightsOnly);
      compare<T>(kCases[4], Grad::WeightsOnly);
    }
  }
  cpu::set_conv_algo(cpu::ConvAlgo::Auto);
  set_num_threads(threads);
}

TEST_CASE("conv2d: FLOPs are 2 N OC OH OW C KH KW") {
  Shape in[3] = {{64, 16, 14, 14}, {32, 16, 5, 5}, {32}};
  OpAttr a{};
  a.conv.stride = 1;
  a.conv.padding = 2;
  const OpMeta& m = op_meta(OpKind::Conv2d);
  Shape out = m.shape(in, a);
  CHECK(out == Shape{64, 32, 14, 14});
  CHECK(m.flops(in, out, a) == 2.0 * 64 * 32 * 14 * 14 * 16 * 5 * 5);
}

TEST_CASE("reshape and flatten are views: same data, separate gradients") {
  Graph g;
  Tensor w = g.param({4, 6}, "w");
  Tensor x = g.input({2, 3, 4});
  g.set_requires_grad(x);
  const size_t tensors_before = g.num_step_tensors();
  const ArenaStats before = g.arena().stats(Region::Step);

  Tensor r = reshape(x, {6, 4});
  Tensor f = flatten(x);
  Tensor rw = reshape(w, {24});
  CHECK_MESSAGE(g.data(r) == g.data(x), "reshape must not copy");
  CHECK_MESSAGE(g.data(f) == g.data(x), "flatten must not copy");
  CHECK_MESSAGE(g.data(rw) == g.data(w), "a reshaped parameter aliases the parameter");
  CHECK(g.shape(r) == Shape{6, 4});
  CHECK(g.shape(f) == Shape{2, 12});
  CHECK(g.shape(rw) == Shape{24});
  CHECK(g.num_step_tensors() == tensors_before + 3);
  CHECK_MESSAGE(g.arena().stats(Region::Step).in_use == before.in_use,
                "a view allocates nothing in the arena");

  // Writing through the input shows in the view (it is the same memory).
  g.data(x)[5] = 42.0f;
  CHECK(g.data(f)[5] == 42.0f);

  // sum(2 * r) + sum(f): x gets 3 everywhere, through two views.
  g.backward(add(sum(scale(r, 2.0f)), sum(f)));
  CHECK(g.desc(r).grad != g.desc(x).grad);
  for (int i = 0; i < 24; ++i) {
    CAPTURE(i);
    CHECK(g.grad(x)[i] == 3.0f);
  }
}

TEST_CASE("reshape and flatten refuse what they cannot view") {
  Graph g;
  Tensor x = g.input({2, 3, 4});
  CHECK_THROWS_WITH_AS(reshape(x, {5, 5}),
                       "reshape: cannot view x of 2x3x4 (24 elements) as 5x5 (25 elements)",
                       ShapeError);
  CHECK_THROWS_WITH_AS(reshape(x, {int64_t(1) << 32, 0}),
                       doctest::Contains("larger than 2147483647"), ShapeError);
  Tensor s = g.input(Shape{});
  CHECK_THROWS_WITH_AS(flatten(s), "flatten: x needs a batch dimension, got a scalar", ShapeError);
  CHECK_THROWS_AS(flatten(Tensor{}), ValueError);
  CHECK(g.tape().empty());
  // Empty tensors reshape like any other.
  Tensor e = g.input({0, 3});
  CHECK(g.shape(reshape(e, {3, 0})) == Shape{3, 0});
  CHECK(g.shape(flatten(g.input({0, 2, 2}))) == Shape{0, 4});
}

TEST_CASE("max_pool2d and avg_pool2d on a known plane") {
  Graph g;
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(i);  // 0..15 row by row
  Tensor x = g.input({1, 1, 4, 4}, v.data(), DType::F32);
  g.set_requires_grad(x);

  Tensor m = max_pool2d(x, 2);  // stride defaults to the kernel
  Tensor a = avg_pool2d(x, 2);
  Tensor o = max_pool2d(x, 3, 1);  // overlapping windows
  REQUIRE(g.shape(m) == Shape{1, 1, 2, 2});
  REQUIRE(g.shape(o) == Shape{1, 1, 2, 2});
  const float want_m[4] = {5, 7, 13, 15}, want_a[4] = {2.5f, 4.5f, 10.5f, 12.5f},
              want_o[4] = {10, 11, 14, 15};
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(g.data(m)[i] == want_m[i]);
    CHECK(g.data(a)[i] == want_a[i]);
    CHECK(g.data(o)[i] == want_o[i]);
  }
  // Overlapping windows: 15 is the maximum of all four, and gets all four.
  g.backward(sum(o));
  for (int i = 0; i < 16; ++i) {
    CAPTURE(i);
    const float want = i == 10 || i == 11 || i == 14 ? 1.0f : i == 15 ? 1.0f : 0.0f;
    CHECK(g.grad(x)[i] == want);
  }
}

TEST_CASE("max_pool2d: the first maximum of a window gets the gradient, NaN propagates") {
  Graph g;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Window 0 all equal, window 1 holds a NaN after its maximum.
  float v[8] = {1, 1, 3, 9, 1, 1, nan, 2};  // 1x1x2x4
  Tensor x = g.input({1, 1, 2, 4}, v, DType::F32);
  g.set_requires_grad(x);
  Tensor y = max_pool2d(x, 2);
  CHECK(g.data(y)[0] == 1.0f);
  CHECK(std::isnan(g.data(y)[1]));
  float seed[2] = {1, 1};
  g.backward(y, seed);
  const float want[8] = {1, 0, 0, 0, 0, 0, 1, 0};
  for (int i = 0; i < 8; ++i) {
    CAPTURE(i);
    CHECK(g.grad(x)[i] == want[i]);
  }
  // The same rule on the general path (k 2, stride 1: windows overlap).
  g.zero_grad();
  Tensor o = max_pool2d(x, 2, 1);
  CHECK(g.data(o)[0] == 1.0f);
  CHECK(std::isnan(g.data(o)[1]));
  CHECK(std::isnan(g.data(o)[2]));
  float seed3[3] = {1, 1, 1};
  g.backward(o, seed3);
  const float want3[8] = {1, 0, 0, 0, 0, 0, 2, 0};
  for (int i = 0; i < 8; ++i) {
    CAPTURE(i);
    CHECK(g.grad(x)[i] == want3[i]);
  }
}

TEST_CASE("pooling backward overwrites a stale intermediate gradient, uncovered rows included") {
  // x (leaf) -> y = 1 * x (an intermediate) -> pool -> sum(pool * r). The
  // pools write y's gradient instead of adding to it (no zero-fill first),
  // so garbage left in it must vanish, also in a last row and column no
  // window covers (odd sizes). x's gradient must equal y's, and the same
  // pool applied to x directly (x's gradient accumulates: the other path).
  struct PoolCase {
    const char* name;
    bool max;
    int k, stride;
    Shape shape;
  };
  for (const PoolCase& c : {PoolCase{"max 2x2 (fast path)", true, 2, 0, {2, 3, 5, 7}},
                            PoolCase{"max k3 s2", true, 3, 2, {1, 2, 8, 6}},
                            PoolCase{"avg 2x2", false, 2, 0, {2, 2, 5, 5}}}) {
    INFO(c.name);
    Rng rng(11);
    const int64_t n = c.shape.numel();
    std::vector<float> xv(static_cast<size_t>(n));
    for (float& v : xv) v = static_cast<float>(rng.uniform(-1, 1));
    auto pool = [&](Tensor t) { return c.max ? max_pool2d(t, c.k, c.stride) : avg_pool2d(t, c.k, c.stride); };
    Graph g;
    Tensor x = g.input(c.shape, xv.data(), DType::F32);
    g.set_requires_grad(x);
    Tensor direct = pool(x);
    std::vector<float> r(static_cast<size_t>(g.shape(direct).numel()));
    for (float& v : r) v = static_cast<float>(rng.uniform(-1, 1));
    g.backward(sum(mul(direct, g.input(g.shape(direct), r.data(), DType::F32))));
    const std::vector<float> want(g.grad(x), g.grad(x) + n);
    g.zero_grad();

    Tensor y = scale(x, 1.0f);
    Tensor loss = sum(mul(pool(y), g.input(g.shape(direct), r.data(), DType::F32)));
    g.backward(loss);
    for (int round = 0; round < 2; ++round) {
      CAPTURE(round);
      for (int64_t i = 0; i < n; ++i) {
        CAPTURE(i);
        REQUIRE(g.grad(y)[i] == want[i]);
        REQUIRE(g.grad(x)[i] == doctest::Approx((round + 1) * want[i]));
      }
      std::fill(g.grad(y), g.grad(y) + n, 12345.0f);  // garbage: the next pass overwrites it
      g.backward(loss);
    }
  }
}

TEST_CASE("conv2d scratch grows in the first step only") {
  // Also at 8 threads (oversubscribed on a small machine): scratch tied to OS
  // threads regrew every step there, as libgomp ends and restarts threads
  // when team sizes change.
  const int saved = get_num_threads();
  for (int threads : {1, 2, 8}) {
    CAPTURE(threads);
    set_num_threads(threads);
    Graph g;
    Rng rng(3);
    Tensor w = g.param({8, 4, 3, 3}, "w"), b = g.param({8}, "b");
    for (int i = 0; i < 8 * 4 * 9; ++i) g.data(w)[i] = static_cast<float>(rng.uniform(-1, 1));
    size_t after_first = 0;
    for (int step = 0; step < 3; ++step) {
      Tensor x = g.input({6, 4, 12, 12});
      g.set_requires_grad(x);
      Tensor loss = sum(max_pool2d(relu(conv2d(x, w, b, 1, 1)), 2));
      g.backward(loss);
      if (step == 0) after_first = cpu::scratch_growths();
      else CHECK_MESSAGE(cpu::scratch_growths() == after_first, "scratch grew in step " << step);
      g.reset();
    }
  }
  set_num_threads(saved);
}

TEST_CASE("the target CNN trains: conv, relu, max-pool twice, then two dense layers") {
  Graph g;
  Rng rng(11);
  auto init = [&](Tensor t, double scale) {
    float* p = g.data(t);
    for (int64_t i = 0; i < g.shape(t).numel(); ++i)
      p[i] = static_cast<float>(scale * rng.uniform(-1, 1));
  };
  Tensor c1w = g.param({16, 1, 5, 5}), c1b = g.param({16});
  Tensor c2w = g.param({32, 16, 5, 5}), c2b = g.param({32});
  Tensor d1w = g.param({1568, 128}), d1b = g.param({128});
  Tensor d2w = g.param({128, 10}), d2b = g.param({10});
  init(c1w, 0.2);
  init(c2w, 0.05);
  init(d1w, 0.025);
  init(d2w, 0.09);
  const int64_t n = 8;
  std::vector<float> images(static_cast<size_t>(n * 28 * 28));
  for (float& p : images) p = static_cast<float>(rng.uniform(0, 1));
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int32_t& l : y) l = static_cast<int32_t>(rng.below(10));

  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    Tensor x = g.input({n, 1, 28, 28}, images.data(), DType::F32);
    Tensor labels = g.input({n}, y.data(), DType::I32);
    Tensor h = max_pool2d(relu(conv2d(x, c1w, c1b, 1, 2)), 2);
    REQUIRE(g.shape(h) == Shape{n, 16, 14, 14});
    h = max_pool2d(relu(conv2d(h, c2w, c2b, 1, 2)), 2);
    REQUIRE(g.shape(h) == Shape{n, 32, 7, 7});
    h = relu(bias_add(matmul(flatten(h), d1w), d1b));
    Tensor loss = cross_entropy(bias_add(matmul(h, d2w), d2b), labels);
    (step == 0 ? first : last) = g.item(loss);
    g.backward(loss);
    for (Tensor p : g.params()) {
      float *v = g.data(p), *d = g.grad(p);
      for (int64_t i = 0; i < g.shape(p).numel(); ++i) v[i] -= 0.1f * d[i];
    }
    g.reset();
  }
  CHECK(std::isfinite(first));
  // Same weights and data in PyTorch 2 give the same losses to 1e-6 (checked
  // by hand); here only that SGD makes progress on the batch.
  CHECK_MESSAGE(last < first - 0.1,
                "20 SGD steps on one batch should lower its loss: " << first << " -> " << last);
}
