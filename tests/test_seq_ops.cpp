// Values of the sequence-model ops (embedding, layer_norm, gelu, transpose,
// slice, concat): each output element is checked against the definition or
// against index arithmetic written here, not against stored outputs. Their
// gradients are checked in test_gradcheck.cpp, bad inputs in
// test_op_errors.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"

using namespace lldl;

namespace {

// A float32 step input of shape s holding 0.5 * i - 3 at flat index i:
// every element is distinct and exactly representable.
Tensor iota(Graph& g, const Shape& s) {
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5f * static_cast<float>(i) - 3.0f;
  return g.input(s, v.data(), DType::F32);
}
float iota_at(int64_t i) { return 0.5f * static_cast<float>(i) - 3.0f; }

// Reference GELU (tanh approximation) in double.
double gelu_ref(double x) {
  const double k0 = std::sqrt(2.0 / 3.14159265358979323846);
  return 0.5 * x * (1.0 + std::tanh(k0 * (x + 0.044715 * x * x * x)));
}

}  // namespace

TEST_CASE("embedding picks table rows, for ids of every rank") {
  Graph g;
  const int64_t V = 5, C = 3;
  Tensor table = iota(g, {V, C});
  std::vector<int32_t> ids = {4, 0, 2, 2, 1, 4};
  for (Shape s : {Shape{6}, Shape{2, 3}, Shape{3, 1, 2}}) {
    INFO("ids " << s.str());
    Tensor out = embedding(g.input(s, ids.data(), DType::I32), table);
    Shape want = s;
    want.d[want.ndim++] = C;
    CHECK_MESSAGE(g.shape(out) == want, "shape " << g.shape(out).str() << ", expected " << want.str());
    const float* o = g.data(out);
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t c = 0; c < C; ++c) {
        CAPTURE(i);
        CAPTURE(c);
        CHECK(o[i * C + c] == iota_at(ids[i] * C + c));
      }
  }
  int32_t one = 3;
  Tensor scalar = embedding(g.input(Shape{}, &one, DType::I32), table);
  CHECK(g.shape(scalar) == Shape{C});
  CHECK(g.data(scalar)[1] == iota_at(3 * C + 1));
}

TEST_CASE("embedding backward adds each id's gradient row into its table row") {
  Graph g(DType::F64);
  const int64_t V = 4, C = 2;
  Tensor table = g.param({V, C});
  int32_t ids[5] = {1, 3, 1, 1, 0};
  Tensor out = embedding(g.input({5}, ids, DType::I32), table);
  std::vector<double> seed(10);
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<double>(i + 1);
  g.backward(out, seed.data());
  const double* d = g.grad<double>(table);
  for (int64_t v = 0; v < V; ++v)
    for (int64_t c = 0; c < C; ++c) {
      double want = 0;
      for (int64_t i = 0; i < 5; ++i)
        if (ids[i] == v) want += seed[static_cast<size_t>(i * C + c)];
      CAPTURE(v);
      CAPTURE(c);
      CHECK(d[v * C + c] == want);  // row 2 is never picked: 0
    }
}

TEST_CASE("embedding backward on a large batch matches a serial scatter-add") {
  // Big enough for the threaded path; many repeats of few ids.
  Graph g;
  const int64_t V = 7, C = 64, n = 4096;
  Tensor table = g.param({V, C});
  std::vector<int32_t> ids(static_cast<size_t>(n));
  Rng rng(3);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.below(V));
  Tensor out = embedding(g.input({n}, ids.data(), DType::I32), table);
  std::vector<float> seed(static_cast<size_t>(n * C));
  for (float& s : seed) s = static_cast<float>(rng.below(5));  // small integers: sums are exact
  g.backward(out, seed.data());
  std::vector<double> want(static_cast<size_t>(V * C), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c) want[static_cast<size_t>(ids[i] * C + c)] += seed[i * C + c];
  int bad = 0;
  for (int64_t k = 0; k < V * C; ++k) bad += g.grad(table)[k] != static_cast<float>(want[k]);
  CHECK_MESSAGE(bad == 0, bad << " table gradient entries differ from the serial sum");
}

TEST_CASE("layer_norm with gamma 1 and beta 0 gives rows of mean 0 and variance 1") {
  Graph g(DType::F64);
  const int64_t R = 6, C = 9;
  Rng rng(5);
  std::vector<double> xv(static_cast<size_t>(R * C));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = rng.uniform(-3, 3) + static_cast<double>(i % 4);
  std::vector<double> ones(C, 1.0), zeros(C, 0.0);
  Tensor x = g.input({2, 3, C}, xv.data(), DType::F64);
  Tensor y = layer_norm(x, g.input({C}, ones.data(), DType::F64),
                        g.input({C}, zeros.data(), DType::F64), 0.0f);
  CHECK(g.shape(y) == Shape{2, 3, C});
  const double* o = g.data<double>(y);
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += o[r * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) v += (o[r * C + c] - m) * (o[r * C + c] - m);
    v /= C;  // biased, as the op uses
    CAPTURE(r);
    CHECK(std::abs(m) < 1e-12);
    CHECK(v == doctest::Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("layer_norm applies gamma and beta per feature after normalising with eps") {
  Graph g;
  float xv[6] = {1, 2, 3, -4, 0, 4}, gv[3] = {2, -1, 0.5f}, bv[3] = {0.25f, 1, -3};
  const float eps = 0.1f;
  Tensor y = layer_norm(g.input({2, 3}, xv, DType::F32), g.input({3}, gv, DType::F32),
                        g.input({3}, bv, DType::F32), eps);
  for (int r = 0; r < 2; ++r) {
    const float* row = xv + 3 * r;
    double m = (row[0] + row[1] + row[2]) / 3.0, v = 0;
    for (int c = 0; c < 3; ++c) v += (row[c] - m) * (row[c] - m) / 3.0;
    for (int c = 0; c < 3; ++c) {
      double want = gv[c] * (row[c] - m) / std::sqrt(v + eps) + bv[c];
      CAPTURE(r);
      CAPTURE(c);
      CHECK(g.data(y)[3 * r + c] == doctest::Approx(want).epsilon(1e-6));
    }
  }
}

TEST_CASE("layer_norm of a constant row is beta (no NaN with eps > 0)") {
  Graph g;
  float xv[4] = {7, 7, 7, 7}, gv[4] = {1, 2, 3, 4}, bv[4] = {0.5f, -1, 2, 0};
  Tensor y = layer_norm(g.input({1, 4}, xv, DType::F32), g.input({4}, gv, DType::F32),
                        g.input({4}, bv, DType::F32));
  for (int c = 0; c < 4; ++c) {
    CAPTURE(c);
    CHECK(g.data(y)[c] == bv[c]);
  }
}

TEST_CASE("gelu: 0 at 0, x for large x, 0 for very negative x, the formula between") {
  Graph g;
  float xv[9] = {0, 20, 50, -20, -50, 1, -1, 0.5f, 3};
  const float* y = g.data(gelu(g.input({9}, xv, DType::F32)));
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == doctest::Approx(20.0));
  CHECK(y[2] == doctest::Approx(50.0));
  CHECK(std::abs(y[3]) < 1e-5f);
  CHECK(std::abs(y[4]) < 1e-5f);
  for (int i = 0; i < 9; ++i) {
    CAPTURE(xv[i]);
    CHECK(std::isfinite(y[i]));
    CHECK(y[i] == doctest::Approx(gelu_ref(xv[i])).epsilon(1e-5));
  }
  // A published value: tanh-approximate GELU(1) = 0.841192 (exact GELU: 0.841345).
  CHECK(y[5] == doctest::Approx(0.841192).epsilon(2e-6));
}

TEST_CASE("gelu on a large input (vectorised, threaded chunks) matches the formula") {
  Graph g;
  const int64_t n = 100003;  // not a multiple of any chunk or vector width
  std::vector<float> xv(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) xv[i] = -8.0f + 16.0f * static_cast<float>(i) / n;
  Tensor x = g.input({n}, xv.data(), DType::F32);
  g.set_requires_grad(x);
  Tensor y = gelu(x);
  std::vector<float> ones(static_cast<size_t>(n), 1.0f);
  g.backward(y, ones.data());
  const double k0 = std::sqrt(2.0 / 3.14159265358979323846);
  int bad_y = 0, bad_d = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = xv[i], t = std::tanh(k0 * (v + 0.044715 * v * v * v));
    const double dy = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k0 * (1 + 3 * 0.044715 * v * v);
    bad_y += std::abs(g.data(y)[i] - gelu_ref(v)) > 1e-5 * (1 + std::abs(v));
    bad_d += std::abs(g.grad(x)[i] - dy) > 1e-5;
  }
  CHECK_MESSAGE(bad_y == 0, bad_y << " outputs differ from the formula by more than 1e-5");
  CHECK_MESSAGE(bad_d == 0, bad_d << " derivatives differ from the formula by more than 1e-5");
}

TEST_CASE("transpose moves element (.., i, .., j, ..) to (.., j, .., i, ..)") {
  Graph g;
  const Shape s{2, 3, 4, 5};
  Tensor x = iota(g, s);
  for (auto [d0, d1] : {std::pair{0, 1}, {1, 3}, {0, 3}, {-1, -2}, {2, 0}, {2, 2}}) {
    INFO("dims " << d0 << ", " << d1);
    Tensor y = transpose(x, d0, d1);
    const int a = d0 < 0 ? d0 + 4 : d0, b = d1 < 0 ? d1 + 4 : d1;
    Shape want = s;
    std::swap(want.d[a], want.d[b]);
    REQUIRE(g.shape(y) == want);
    const float* o = g.data(y);
    int bad = 0;
    for (int64_t i0 = 0; i0 < s[0]; ++i0)
      for (int64_t i1 = 0; i1 < s[1]; ++i1)
        for (int64_t i2 = 0; i2 < s[2]; ++i2)
          for (int64_t i3 = 0; i3 < s[3]; ++i3) {
            int64_t idx[4] = {i0, i1, i2, i3};
            const int64_t src = ((i0 * s[1] + i1) * s[2] + i2) * s[3] + i3;
            std::swap(idx[a], idx[b]);
            const int64_t dst = ((idx[0] * want[1] + idx[1]) * want[2] + idx[2]) * want[3] + idx[3];
            bad += o[dst] != iota_at(src);
          }
    CHECK_MESSAGE(bad == 0, bad << " elements misplaced");
  }
  Tensor m = transpose(iota(g, {3, 2}), 0, 1);  // a matrix, by hand
  CHECK(g.shape(m) == Shape{2, 3});
  const float* t = g.data(m);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) CHECK(t[r * 3 + c] == iota_at(c * 2 + r));
}

TEST_CASE("transpose of a large matrix (threaded) and its backward place every element") {
  Graph g;
  const int64_t R = 300, C = 257;
  Tensor x = iota(g, {R, C});
  g.set_requires_grad(x);
  Tensor y = transpose(x, 1, 0);
  std::vector<float> seed(static_cast<size_t>(R * C));
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<float>(i);
  g.backward(y, seed.data());
  int bad = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      bad += g.data(y)[c * R + r] != iota_at(r * C + c);
      bad += g.grad(x)[r * C + c] != seed[static_cast<size_t>(c * R + r)];
    }
  CHECK_MESSAGE(bad == 0, bad << " elements misplaced");
}

TEST_CASE("slice keeps the elements from start to start + length - 1 along the axis") {
  Graph g;
  const Shape s{3, 4, 5};
  Tensor x = iota(g, s);
  struct Case {
    int axis, start, length;
  };
  for (Case k : {Case{0, 1, 2}, Case{1, 0, 4}, Case{1, 3, 1}, Case{2, 2, 3}, Case{-1, 0, 1},
                 Case{-3, 2, 1}}) {
    INFO("axis " << k.axis << " start " << k.start << " length " << k.length);
    Tensor y = slice(x, k.axis, k.start, k.length);
    const int ax = k.axis < 0 ? k.axis + 3 : k.axis;
    Shape want = s;
    want.d[ax] = k.length;
    REQUIRE(g.shape(y) == want);
    int bad = 0;
    for (int64_t i0 = 0; i0 < want[0]; ++i0)
      for (int64_t i1 = 0; i1 < want[1]; ++i1)
        for (int64_t i2 = 0; i2 < want[2]; ++i2) {
          int64_t idx[3] = {i0, i1, i2};
          idx[ax] += k.start;
          const int64_t src = (idx[0] * s[1] + idx[1]) * s[2] + idx[2];
          bad += g.data(y)[(i0 * want[1] + i1) * want[2] + i2] != iota_at(src);
        }
    CHECK_MESSAGE(bad == 0, bad << " elements differ");
  }
}

TEST_CASE("slice backward puts the gradient in the sliced window and zero elsewhere") {
  Graph g(DType::F64);
  Tensor x = g.param({4, 6});
  Tensor y = slice(x, 1, 2, 3);
  std::vector<double> seed(12);
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<double>(i) + 1;
  g.backward(y, seed.data());
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) {
      double want = (c >= 2 && c < 5) ? seed[static_cast<size_t>(r * 3 + c - 2)] : 0.0;
      CAPTURE(r);
      CAPTURE(c);
      CHECK(g.grad<double>(x)[r * 6 + c] == want);
    }
}

TEST_CASE("slice refuses a start or length that does not fit in 32 bits") {
  Graph g;
  Tensor x = g.input({2, 3});
  CHECK_THROWS_WITH_AS(slice(x, 0, int64_t(1) << 33, 1), doctest::Contains("slice: start 8589934592"),
                       ValueError);
  CHECK_THROWS_AS(slice(x, 0, 0, int64_t(1) << 40), ValueError);
  CHECK_THROWS_AS(slice(x, 0, 0, -(int64_t(1) << 40)), ValueError);
  CHECK(g.tape().empty());
}

TEST_CASE("concat puts a's elements first and b's after along the axis") {
  Graph g;
  struct Case {
    Shape a, b;
    int axis;
  };
  for (Case k : {Case{{2, 3}, {2, 4}, 1}, Case{{1, 3}, {2, 3}, 0}, Case{{2, 3, 2}, {2, 1, 2}, 1},
                 Case{{2, 3, 2}, {2, 3, 5}, -1}, Case{{3}, {2}, 0}, Case{{2, 1, 2, 2}, {2, 1, 2, 2}, -4}}) {
    INFO("a " << k.a.str() << ", b " << k.b.str() << ", axis " << k.axis);
    Tensor a = iota(g, k.a), b = scale(iota(g, k.b), -1.0f);  // b negated: a and b differ
    Tensor y = concat(a, b, k.axis);
    const int ax = k.axis < 0 ? k.axis + k.a.ndim : k.axis;
    Shape want = k.a;
    want.d[ax] += k.b[ax];
    REQUIRE(g.shape(y) == want);
    // Walk the output in order, tracking its multi-index.
    int bad = 0;
    int64_t idx[4] = {0, 0, 0, 0};
    for (int64_t f = 0; f < want.numel(); ++f) {
      const bool from_a = idx[ax] < k.a[ax];
      const Shape& src = from_a ? k.a : k.b;
      int64_t s = 0;
      for (int i = 0; i < want.ndim; ++i)
        s = s * src[i] + (i == ax && !from_a ? idx[i] - k.a[ax] : idx[i]);
      bad += g.data(y)[f] != (from_a ? iota_at(s) : -iota_at(s));
      for (int i = want.ndim - 1; i >= 0 && ++idx[i] == want[i]; --i) idx[i] = 0;
    }
    CHECK_MESSAGE(bad == 0, bad << " elements misplaced");
  }
}

TEST_CASE("concat backward splits the gradient between a and b") {
  Graph g(DType::F64);
  Tensor a = g.param({2, 2}), b = g.param({2, 3});
  Tensor y = concat(a, b, 1);
  double seed[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  g.backward(y, seed);
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < 2; ++c) CHECK(g.grad<double>(a)[r * 2 + c] == seed[r * 5 + c]);
    for (int c = 0; c < 3; ++c) CHECK(g.grad<double>(b)[r * 3 + c] == seed[r * 5 + 2 + c]);
  }
}

TEST_CASE("the new ops are found by name and report their costs") {
  for (const char* n : {"embedding", "layer_norm", "gelu", "transpose", "slice", "concat"}) {
    CAPTURE(n);
    CHECK(std::string(op_name(op_from_name(n))) == n);
  }
  const Shape ln_in[3] = {{4, 8}, {8}, {8}};
  const OpMeta& ln = op_meta(OpKind::LayerNorm);
  CHECK(ln.workspace(ln_in, ln_in[0], layer_norm_attr()) == 8);  // mean and rstd of 4 rows
  CHECK(ln.flops(ln_in, ln_in[0], layer_norm_attr()) > 0);
  const Shape t_in[1] = {{3, 5}};
  const OpMeta& tr = op_meta(OpKind::Transpose);
  CHECK(tr.flops(t_in, Shape{5, 3}, transpose_attr(0, 1)) == 0);
  CHECK(tr.bytes(t_in, Shape{5, 3}, transpose_attr(0, 1)) == 2 * 4 * 15);
  CHECK(is_int_input(op_meta(OpKind::Embedding), 0));
  CHECK_FALSE(is_int_input(op_meta(OpKind::Embedding), 1));
}
