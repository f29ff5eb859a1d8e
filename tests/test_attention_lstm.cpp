// causal_attention and lstm against straightforward reference loops in
// double: forward values, what the workspace holds and how large it is,
// causality, float32 against float64, gradients of shapes too large for the
// full-Jacobian table (sampled central differences, threaded paths), and the
// inference step lstm_step against the op.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/direct.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

using namespace lldl;
using namespace lldl::gradcheck;

namespace {

using Vec = std::vector<double>;

// Uniform values in [lo, hi), float32-representable so both precisions see
// the same numbers.
Vec random_values(int64_t n, Rng& rng, double lo = -1.0, double hi = 1.0) {
  Vec v(static_cast<size_t>(n));
  for (double& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

template <class T>
Tensor input_of(Graph& g, const Shape& s, const Vec& v) {
  std::vector<T> x(v.begin(), v.end());
  return g.input(s, x.data(), lldl::dtype_of<T>());
}

template <class T>
Vec values_of(Graph& g, Tensor t) {
  const T* p = g.data<T>(t);
  return Vec(p, p + g.shape(t).numel());
}

// The workspace tensor of the graph's last tape entry.
Tensor last_workspace(Graph& g) {
  REQUIRE(!g.tape().empty());
  REQUIRE(g.tape().back().ws != kNoTensor);
  return Tensor{&g, g.tape().back().ws, g.step()};
}

// Every |got - want| <= tol (1 + |want|); reports the first miss.
void check_close(const Vec& got, const Vec& want, double tol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])))) {
      FAIL_CHECK(what << " element " << i << ": got " << got[i] << ", expected " << want[i]
                      << " (tolerance " << tol << ")");
      return;
    }
}

// ||a - b|| / ||b|| and max |a - b| / max |b|, both at most tol.
void check_relative(const Vec& a, const Vec& b, double tol, const std::string& what) {
  double d2 = 0, b2 = 0, dmax = 0, bmax = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = a[i] - b[i];
    d2 += d * d;
    b2 += b[i] * b[i];
    dmax = std::max(dmax, std::abs(d));
    bmax = std::max(bmax, std::abs(b[i]));
  }
  CHECK_MESSAGE(std::sqrt(d2) <= tol * std::sqrt(b2),
                what << ": relative L2 difference " << std::sqrt(d2 / b2) << ", expected <= " << tol);
  CHECK_MESSAGE(dmax <= tol * bmax,
                what << ": max difference " << dmax << " vs max |value| " << bmax);
}

// ---- references ------------------------------------------------------------------

struct AttnDims {
  int64_t B, T, C, NH;
  int64_t D() const { return C / NH; }
  Shape qkv() const { return {B, T, 3 * C}; }
  std::string str() const {
    return "B " + std::to_string(B) + ", T " + std::to_string(T) + ", C " + std::to_string(C) +
           ", n_head " + std::to_string(NH);
  }
};

// y (B, T, C) and the probabilities P (B, NH, T, T) (zero above the
// diagonal), straight from the definition.
void ref_attention(const AttnDims& d, const Vec& qkv, Vec& y, Vec& P) {
  const int64_t B = d.B, T = d.T, C = d.C, NH = d.NH, D = d.D();
  y.assign(static_cast<size_t>(B * T * C), 0.0);
  P.assign(static_cast<size_t>(B * NH * T * T), 0.0);
  auto q = [&](int64_t b, int64_t t, int64_t j) { return qkv[(b * T + t) * 3 * C + j]; };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t t = 0; t < T; ++t) {
        double* p = &P[((b * NH + h) * T + t) * T];
        double m = -1e300;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t j = 0; j < D; ++j) dot += q(b, t, h * D + j) * q(b, s, C + h * D + j);
          p[s] = dot / std::sqrt(static_cast<double>(D));
          m = std::max(m, p[s]);
        }
        double z = 0;
        for (int64_t s = 0; s <= t; ++s) z += (p[s] = std::exp(p[s] - m));
        for (int64_t s = 0; s <= t; ++s) p[s] /= z;
        for (int64_t j = 0; j < D; ++j) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s) acc += p[s] * q(b, s, 2 * C + h * D + j);
          y[(b * T + t) * C + h * D + j] = acc;
        }
      }
}

struct LstmDims {
  int64_t B, T, I, H;
  std::string str() const {
    return "B " + std::to_string(B) + ", T " + std::to_string(T) + ", I " + std::to_string(I) +
           ", H " + std::to_string(H);
  }
};
struct LstmValues {
  Vec x, w_ih, w_hh, b;
};
LstmValues lstm_values(const LstmDims& d, Rng& rng) {
  return {random_values(d.B * d.T * d.I, rng, -2, 2), random_values(4 * d.H * d.I, rng),
          random_values(4 * d.H * d.H, rng), random_values(4 * d.H, rng)};
}

// x, w_ih, w_hh and b as float32 leaves that want gradients.
std::array<Tensor, 4> lstm_leaves(Graph& g, const LstmDims& d, const LstmValues& v) {
  std::array<Tensor, 4> t = {input_of<float>(g, {d.B, d.T, d.I}, v.x),
                             input_of<float>(g, {4 * d.H, d.I}, v.w_ih),
                             input_of<float>(g, {4 * d.H, d.H}, v.w_hh),
                             input_of<float>(g, {4 * d.H}, v.b)};
  for (Tensor x : t) g.set_requires_grad(x);
  return t;
}

// h and c (B, T, H) and the activated gates (B, T, 4H), from the definition.
void ref_lstm(const LstmDims& d, const LstmValues& v, Vec& h, Vec& c, Vec& gates) {
  const int64_t B = d.B, T = d.T, I = d.I, H = d.H;
  h.assign(static_cast<size_t>(B * T * H), 0.0);
  c = h;
  gates.assign(static_cast<size_t>(B * T * 4 * H), 0.0);
  auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      double* g = &gates[(b * T + t) * 4 * H];
      for (int64_t r = 0; r < 4 * H; ++r) {
        double z = v.b[r];
        for (int64_t k = 0; k < I; ++k) z += v.x[(b * T + t) * I + k] * v.w_ih[r * I + k];
        if (t > 0)
          for (int64_t k = 0; k < H; ++k) z += h[(b * T + t - 1) * H + k] * v.w_hh[r * H + k];
        g[r] = r >= 2 * H && r < 3 * H ? std::tanh(z) : sigmoid(z);
      }
      for (int64_t j = 0; j < H; ++j) {
        double cp = t > 0 ? c[(b * T + t - 1) * H + j] : 0.0;
        double cj = g[H + j] * cp + g[j] * g[2 * H + j];
        c[(b * T + t) * H + j] = cj;
        h[(b * T + t) * H + j] = g[3 * H + j] * std::tanh(cj);
      }
    }
}

template <class T>
Tensor record_lstm(Graph& g, const LstmDims& d, const LstmValues& v) {
  return lstm(input_of<T>(g, {d.B, d.T, d.I}, v.x), input_of<T>(g, {4 * d.H, d.I}, v.w_ih),
              input_of<T>(g, {4 * d.H, d.H}, v.w_hh), input_of<T>(g, {4 * d.H}, v.b));
}

// Analytic gradients of sum(R * out) in float64 against central differences
// for `samples` random elements of every differentiable input: for shapes
// too large for the full Jacobian of test_gradcheck.cpp.
void check_sampled_gradients(const OpCase& c, int samples) {
  INFO("sampled float64 gradient check of " << c.label());
  Rng rng(case_seed(c, 5));
  Grads vals;
  for (const InputSpec& s : c.inputs) vals.push_back(random_values(s.shape.numel(), rng, s.lo, s.hi));
  Runner<double> run(c, vals);
  Vec R = random_normal(run.output_numel(), rng);
  Grads a = run.analytic(R);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].differentiable()) continue;
    for (int k = 0; k < samples; ++k) {
      const size_t j = rng.below(static_cast<uint64_t>(vals[i].size()));
      const double x0 = run.values()[i][j];
      auto f = [&](double h) {
        run.values()[i][j] = x0 + h;
        return run.weighted_output(R);
      };
      const double n = central_difference(f, kF64Eps, 2);
      run.values()[i][j] = x0;
      CHECK_MESSAGE(close_f64(a[i][j], n), "input " << i << " (" << c.inputs[i].shape.str()
                                                    << ") element " << j << ": analytic "
                                                    << a[i][j] << ", numeric " << n);
    }
  }
}

const AttnDims kAttnShapes[] = {
    {1, 1, 4, 1},   // one key: y = v
    {2, 5, 12, 3},  //
    {3, 7, 16, 2},  //
    {1, 17, 8, 8},  // D = 1
    {2, 40, 64, 4}, // enough work for OpenMP threads over (b, h)
};
const LstmDims kLstmShapes[] = {
    {1, 1, 3, 2},    // one step
    {2, 5, 4, 3},    //
    {3, 9, 1, 1},    // I = H = 1
    {16, 6, 10, 64}, // threaded cell updates and Eigen's blocked GEMM
};

}  // namespace

// ---- causal_attention ------------------------------------------------------------

TEST_CASE_TEMPLATE("causal_attention matches the reference loops, and P is in its workspace", T,
                   float, double) {
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-6;
  for (const AttnDims& d : kAttnShapes) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.B * 1000 + d.T * 10 + d.NH));
    Vec qkv = random_values(d.qkv().numel(), rng, -2, 2);
    Vec y_ref, P_ref;
    ref_attention(d, qkv, y_ref, P_ref);
    Graph g(lldl::dtype_of<T>());
    Tensor y = causal_attention(input_of<T>(g, d.qkv(), qkv), static_cast<int>(d.NH));
    CHECK(g.shape(y) == Shape{d.B, d.T, d.C});
    check_close(values_of<T>(g, y), y_ref, tol, "y");
    // The upper triangle of P is zero, so this also checks the mask.
    check_close(values_of<T>(g, last_workspace(g)), P_ref, tol, "workspace P");
  }
}

TEST_CASE("causal_attention: y at time s does not depend on qkv at any later time") {
  const AttnDims d{2, 9, 8, 2};
  Rng rng(17);
  Vec qkv = random_values(d.qkv().numel(), rng, -2, 2);
  Graph g;
  const Vec y0 = values_of<float>(g, causal_attention(input_of<float>(g, d.qkv(), qkv), 2));
  for (int64_t s : {0, 3, 7}) {
    CAPTURE(s);
    Vec changed = qkv;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t t = s + 1; t < d.T; ++t)
        for (int64_t j = 0; j < 3 * d.C; ++j) changed[(b * d.T + t) * 3 * d.C + j] += 0.5 + 0.1 * j;
    const Vec y1 = values_of<float>(g, causal_attention(input_of<float>(g, d.qkv(), changed), 2));
    int64_t later_changed = 0;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t t = 0; t < d.T; ++t)
        for (int64_t j = 0; j < d.C; ++j) {
          const size_t i = static_cast<size_t>((b * d.T + t) * d.C + j);
          if (t <= s && y1[i] != y0[i]) {
            FAIL_CHECK("y[" << b << ", " << t << ", " << j << "] changed from " << y0[i] << " to "
                            << y1[i] << " although only times > " << s << " changed");
            return;
          }
          later_changed += t > s && y1[i] != y0[i];
        }
    CHECK_MESSAGE(later_changed > 0, "the later outputs should see the change");
  }
}

TEST_CASE("causal_attention keeps exactly the B x n_head x T x T probabilities as workspace") {
  const AttnDims d{2, 8, 8, 2};  // out 512 bytes, P 1024 bytes: no alignment padding
  const OpMeta& m = op_meta(OpKind::Attention);
  const bool has_workspace = m.workspace != nullptr;
  REQUIRE_MESSAGE(has_workspace, "expected a workspace function");
  const Shape in[1] = {d.qkv()}, out{d.B, d.T, d.C};
  CHECK(m.workspace(in, out, attention_attr(2)) == d.B * d.NH * d.T * d.T);
  Graph g;
  Tensor qkv = g.input(d.qkv());
  const size_t before = g.arena().stats(Region::Step).in_use;
  causal_attention(qkv, 2);
  const size_t grown = g.arena().stats(Region::Step).in_use - before;
  CHECK(g.shape(last_workspace(g)) == Shape{d.B * d.NH * d.T * d.T});
  CHECK_MESSAGE(grown == 4 * static_cast<size_t>(out.numel() + d.B * d.NH * d.T * d.T),
                "the step region grew by " << grown << " bytes, expected the output and P only");
}

TEST_CASE("causal_attention in float32 matches float64 within 1e-5 relative (GPT-sized head)") {
  for (const AttnDims& d : {AttnDims{2, 128, 128, 4}, AttnDims{1, 64, 96, 3}}) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.T));
    Vec qkv = random_values(d.qkv().numel(), rng, -2, 2);
    Graph g32(DType::F32), g64(DType::F64);
    const int nh = static_cast<int>(d.NH);
    Vec y32 = values_of<float>(g32, causal_attention(input_of<float>(g32, d.qkv(), qkv), nh));
    Vec y64 = values_of<double>(g64, causal_attention(input_of<double>(g64, d.qkv(), qkv), nh));
    check_relative(y32, y64, 1e-5, "float32 y");
  }
}

TEST_CASE("causal_attention gradients on threaded shapes match central differences") {
  check_sampled_gradients(OpCase{OpKind::Attention, "B 2, T 40, C 64, 4 heads",
                                 {param({2, 40, 192})}, attention_attr(4)},
                          40);
  check_sampled_gradients(OpCase{OpKind::Attention, "B 4, T 16, C 32, 1 head",
                                 {step_input({4, 16, 96})}, attention_attr(1)},
                          40);
}

// ---- lstm ----------------------------------------------------------------------------

TEST_CASE_TEMPLATE("lstm matches the reference loops, gates and cells in its workspace", T, float,
                   double) {
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-6;
  for (const LstmDims& d : kLstmShapes) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.B * 100 + d.T));
    const LstmValues v = lstm_values(d, rng);
    Vec h_ref, c_ref, gates_ref;
    ref_lstm(d, v, h_ref, c_ref, gates_ref);
    Graph g(lldl::dtype_of<T>());
    Tensor h = record_lstm<T>(g, d, v);
    CHECK(g.shape(h) == Shape{d.B, d.T, d.H});
    check_close(values_of<T>(g, h), h_ref, tol, "h");
    const Vec ws = values_of<T>(g, last_workspace(g));
    REQUIRE(ws.size() == gates_ref.size() + c_ref.size());
    check_close(Vec(ws.begin(), ws.begin() + static_cast<long>(gates_ref.size())), gates_ref, tol,
                "workspace gates");
    check_close(Vec(ws.begin() + static_cast<long>(gates_ref.size()), ws.end()), c_ref, tol,
                "workspace c");
  }
}

TEST_CASE_TEMPLATE("lstm_step run T times reproduces the lstm op", T, float, double) {
  const double tol = sizeof(T) == 8 ? 1e-13 : 1e-6;
  for (const LstmDims& d : {LstmDims{3, 7, 5, 6}, LstmDims{1, 4, 2, 1}, LstmDims{16, 5, 10, 64}}) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.H));
    const LstmValues v = lstm_values(d, rng);
    Graph g(lldl::dtype_of<T>());
    const Vec h_op = values_of<T>(g, record_lstm<T>(g, d, v));
    const Vec c_op = values_of<T>(g, last_workspace(g));
    std::vector<T> w_ih(v.w_ih.begin(), v.w_ih.end()), w_hh(v.w_hh.begin(), v.w_hh.end()),
        b(v.b.begin(), v.b.end());
    std::vector<T> h(static_cast<size_t>(d.B * d.H), T(0)), c = h, x(static_cast<size_t>(d.B * d.I));
    std::vector<T> scratch;
    for (int64_t t = 0; t < d.T; ++t) {
      for (int64_t r = 0; r < d.B; ++r)
        for (int64_t k = 0; k < d.I; ++k) x[r * d.I + k] = static_cast<T>(v.x[(r * d.T + t) * d.I + k]);
      lstm_step(x.data(), w_ih.data(), w_hh.data(), b.data(), h.data(), c.data(), d.B, d.I, d.H,
                scratch);
      Vec want_h, want_c;
      for (int64_t r = 0; r < d.B; ++r)
        for (int64_t j = 0; j < d.H; ++j) {
          want_h.push_back(h_op[(r * d.T + t) * d.H + j]);
          want_c.push_back(c_op[d.B * d.T * 4 * d.H + (r * d.T + t) * d.H + j]);
        }
      check_close(Vec(h.begin(), h.end()), want_h, tol, "h after step " + std::to_string(t));
      check_close(Vec(c.begin(), c.end()), want_c, tol, "c after step " + std::to_string(t));
    }
  }
}

TEST_CASE("lstm_step refuses a hidden size below 1") {
  float x = 0, w = 0, h = 0, c = 0;
  std::vector<float> scratch;
  CHECK_THROWS_AS(lstm_step(&x, &w, &w, &w, &h, &c, 1, 1, 0, scratch), ShapeError);
}

TEST_CASE("lstm keeps exactly the gates (B, T, 4H) and cells (B, T, H) as workspace") {
  const LstmDims d{2, 4, 3, 8};  // out 256 bytes, workspace 1280 bytes
  const OpMeta& m = op_meta(OpKind::Lstm);
  const bool has_workspace = m.workspace != nullptr;
  REQUIRE_MESSAGE(has_workspace, "expected a workspace function");
  const Shape in[4] = {{d.B, d.T, d.I}, {4 * d.H, d.I}, {4 * d.H, d.H}, {4 * d.H}};
  const Shape out{d.B, d.T, d.H};
  CHECK(m.workspace(in, out, no_attr()) == 5 * d.B * d.T * d.H);
  Graph g;
  Tensor x = g.input(in[0]), w_ih = g.param(in[1]), w_hh = g.param(in[2]), b = g.param(in[3]);
  const size_t before = g.arena().stats(Region::Step).in_use;
  lstm(x, w_ih, w_hh, b);
  const size_t grown = g.arena().stats(Region::Step).in_use - before;
  CHECK(g.shape(last_workspace(g)) == Shape{5 * d.B * d.T * d.H});
  CHECK_MESSAGE(grown == 4 * static_cast<size_t>(6 * out.numel()),
                "the step region grew by " << grown << " bytes, expected h, gates and c only");
}

TEST_CASE("lstm in float32 matches float64 within 1e-5 relative") {
  for (const LstmDims& d : {LstmDims{16, 32, 16, 64}, LstmDims{4, 50, 8, 12}}) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.T));
    const LstmValues v = lstm_values(d, rng);
    Graph g32(DType::F32), g64(DType::F64);
    check_relative(values_of<float>(g32, record_lstm<float>(g32, d, v)),
                   values_of<double>(g64, record_lstm<double>(g64, d, v)), 1e-5, "float32 h");
  }
}

TEST_CASE("lstm gradients on threaded shapes match central differences") {
  const int64_t B = 16, T = 6, I = 10, H = 64;
  check_sampled_gradients(OpCase{OpKind::Lstm, "B 16, T 6, I 10, H 64",
                                 {param({B, T, I}, -2, 2), param({4 * H, I}, -0.5, 0.5),
                                  param({4 * H, H}, -0.3, 0.3), param({4 * H}, -1, 1)}},
                          30);
  check_sampled_gradients(OpCase{OpKind::Lstm, "B 2, T 12, I 3, H 5",
                                 {step_input({2, 12, 3}), param({20, 3}), param({20, 5}),
                                  param({20})}},
                          30);
}

TEST_CASE("lstm gives the same h and gradients on 1, 2, 3 and 5 threads") {
  // The recurrent products split hidden units across one OpenMP team (above
  // a size threshold these shapes pass): every sum runs in the same order
  // whatever the split, so results match bit for bit. H 70 and 37 leave a
  // partial unit block, B 13 a partial row tile; 5 threads on H 37 leave some
  // threads without units.
  const int saved = get_num_threads();
  for (const LstmDims& d : {LstmDims{13, 7, 9, 70}, LstmDims{32, 5, 16, 37}}) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.H));
    const LstmValues v = lstm_values(d, rng);
    Vec ref_h, ref_c, ref_gates;
    ref_lstm(d, v, ref_h, ref_c, ref_gates);
    const Vec R = random_values(d.B * d.T * d.H, rng);
    std::vector<Vec> first;
    for (int threads : {1, 2, 3, 5}) {
      CAPTURE(threads);
      set_num_threads(threads);
      Graph g;
      const auto [x, w_ih, w_hh, b] = lstm_leaves(g, d, v);
      Tensor h = lstm(x, w_ih, w_hh, b);
      const Vec hv = values_of<float>(g, h);
      check_close(hv, ref_h, 2e-5, "h");
      g.backward(sum(mul(h, input_of<float>(g, g.shape(h), R))));
      std::vector<Vec> got{hv};
      for (Tensor t : {x, w_ih, w_hh, b})
        got.emplace_back(g.grad(t), g.grad(t) + g.shape(t).numel());
      if (first.empty()) {
        first = got;
        continue;
      }
      for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);  // 0: h, then the gradients of x, w_ih, w_hh, b
        CHECK(got[i] == first[i]);
      }
    }
  }
  set_num_threads(saved);
}

TEST_CASE("lstm_gates on linear's x W_ih^T + b is lstm: h, workspace and every gradient") {
  // The same LSTM written as linear (the input projection over all B T rows)
  // then lstm_gates; sums run in another order (the bias last), so values
  // agree to float rounding. On 1 and 2 threads, and 3 and 5 for the split
  // of units (bit for bit among themselves, as lstm's).
  const int saved = get_num_threads();
  for (const LstmDims& d : {LstmDims{13, 7, 9, 70}, LstmDims{3, 5, 4, 6}}) {
    INFO(d.str());
    Rng rng(static_cast<uint64_t>(d.H) + 1);
    const LstmValues v = lstm_values(d, rng);
    const Vec R = random_values(d.B * d.T * d.H, rng);
    std::vector<Vec> first;
    for (int threads : {1, 2, 3, 5}) {
      CAPTURE(threads);
      set_num_threads(threads);
      std::vector<Vec> want, got;
      for (bool gates : {false, true}) {
        Graph g;
        const auto [x, w_ih, w_hh, b] = lstm_leaves(g, d, v);
        Tensor h;
        if (gates) {
          Tensor gx = reshape(linear(reshape(x, {d.B * d.T, d.I}), w_ih, b, /*trans_b=*/true),
                              {d.B, d.T, 4 * d.H});
          h = lstm_gates(gx, w_hh);
          CHECK(g.shape(last_workspace(g)) == Shape{5 * d.B * d.T * d.H});
        } else {
          h = lstm(x, w_ih, w_hh, b);
        }
        g.backward(sum(mul(h, input_of<float>(g, g.shape(h), R))));
        std::vector<Vec>& out = gates ? got : want;
        out.push_back(values_of<float>(g, h));
        for (Tensor t : {x, w_ih, w_hh, b})
          out.emplace_back(g.grad(t), g.grad(t) + g.shape(t).numel());
      }
      for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);  // 0: h, then the gradients of x, w_ih, w_hh, b
        check_close(got[i], want[i], 1e-5, "lstm_gates against lstm");
      }
      if (first.empty()) first = got;
      else
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == first[i]);
    }
  }
  set_num_threads(saved);
}

TEST_CASE("lstm_gates adds to a gradient of gx that another consumer has begun") {
  // gx feeds lstm_gates and a second term, so its gradient is not written in
  // place: the kernel's dG must be added to the other term's R2.
  const int64_t B = 4, T = 6, H = 40;
  Rng rng(5);
  const Vec gxv = random_values(B * T * 4 * H, rng), whh = random_values(4 * H * H, rng, -0.3, 0.3),
            R = random_values(B * T * H, rng), R2 = random_values(B * T * 4 * H, rng);
  std::vector<Vec> grads;
  for (bool second : {false, true}) {
    Graph g;
    Tensor gx = input_of<float>(g, {B, T, 4 * H}, gxv), w = input_of<float>(g, {4 * H, H}, whh);
    g.set_requires_grad(gx);
    g.set_requires_grad(w);
    Tensor loss = sum(mul(lstm_gates(gx, w), input_of<float>(g, {B, T, H}, R)));
    if (second) loss = add(loss, sum(mul(gx, input_of<float>(g, {B, T, 4 * H}, R2))));
    g.backward(loss);
    grads.emplace_back(g.grad(gx), g.grad(gx) + B * T * 4 * H);
    grads.emplace_back(g.grad(w), g.grad(w) + 4 * H * H);
  }
  Vec want = grads[0];
  for (size_t i = 0; i < want.size(); ++i) want[i] += R2[i];
  check_close(grads[2], want, 1e-6, "dgx with a second consumer");
  CHECK(grads[3] == grads[1]);  // dW_hh is untouched by the second term
}
