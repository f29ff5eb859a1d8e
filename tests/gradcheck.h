// Gradient checking by finite differences, reusable for every op.
//
// A case names an op kind, the shapes and roles of its inputs and (optionally)
// how to build it; the helpers run it on a fresh graph in float64 or float32,
// compare the analytic gradients of sum(R * out) (R a random upstream
// gradient, fed to Graph::backward as the seed) with central differences,
// and report through doctest, naming the case, the input and the element.
//
//   float64 (PyTorch gradcheck): eps 1e-6, every Jacobian-vector entry
//     |a - n| <= 1e-5 + 1e-3 |n|.
//   float32 (ggml test-backend-ops): eps 0.1 (or smaller for curved ops),
//     2- or 4-point differences, mean |(n - a) / (n + a)| <= 1e-4 per input,
//     entries where both are ~0 skipped; any non-finite gradient fails.
//
// To re-run the forward for a perturbed input, the runner starts a new step
// (Graph::reset) and rebuilds the op from host-side values: parameters keep
// their handles (their data is overwritten), step inputs are created anew.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"

namespace lldl::gradcheck {

// How a case's input enters the graph.
enum class Leaf : uint8_t {
  Param,   // g.param(): persistent, collects a gradient
  Input,   // g.input() + set_requires_grad(): a step leaf with a gradient
  Const,   // g.input(): a step tensor without gradient
  Labels,  // int32 class labels in [0, classes): never differentiated
  Buffer,  // g.buffer(): persistent, no gradient (batch_norm running stats);
           // its values are rewritten before every forward, so an op that
           // updates it in place sees the same values on every run
};

struct InputSpec {
  Shape shape;
  Leaf leaf = Leaf::Param;
  double lo = -2.0, hi = 2.0;  // values are uniform in [lo, hi) ...
  double min_abs = 0.0;        // ... with |x| >= min_abs (keeps off a kink)
  // Instead: a shuffled grid of n values evenly spread over [lo, hi), no two
  // closer than (hi - lo) / n, so a finite-difference step smaller than half
  // of that never changes which element of a max-pool window is the largest.
  bool distinct = false;
  int64_t classes = 0;         // Labels only
  bool differentiable() const { return leaf == Leaf::Param || leaf == Leaf::Input; }
};

inline InputSpec param(Shape s, double lo = -2.0, double hi = 2.0) {
  return {s, Leaf::Param, lo, hi};
}
inline InputSpec step_input(Shape s, double lo = -2.0, double hi = 2.0) {
  return {s, Leaf::Input, lo, hi};
}
inline InputSpec constant(Shape s, double lo = -2.0, double hi = 2.0) {
  return {s, Leaf::Const, lo, hi};
}
inline InputSpec buffer(Shape s, double lo = -2.0, double hi = 2.0) {
  return {s, Leaf::Buffer, lo, hi};
}
inline InputSpec labels(Shape s, int64_t classes) {
  InputSpec i{s, Leaf::Labels};
  i.classes = classes;
  return i;
}

// Builds the op from the current step's input handles (in case order).
using BuildFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  OpCase(OpKind k, std::string n, std::vector<InputSpec> in, OpAttr a = no_attr())
      : kind(k), name(std::move(n)), inputs(std::move(in)), attr(a) {}

  OpKind kind;
  std::string name;  // what makes this case different, e.g. "3x7 @ 7x4"
  std::vector<InputSpec> inputs;
  OpAttr attr = no_attr();
  BuildFn build;  // empty: apply(kind, inputs, attr)
  // float32 check: step and formula. 2 points are exact for ops that are at
  // most quadratic in each element; curved ops need 4.
  double f32_eps = 0.1;
  int f32_points = 2;

  OpCase& curved(double eps = 0.1) {
    f32_points = 4;
    f32_eps = eps;
    return *this;
  }
  std::string label() const { return std::string(op_name(kind)) + " " + name; }
};

using Grads = std::vector<std::vector<double>>;  // one vector per input

// ---- criteria --------------------------------------------------------------

constexpr double kF64Eps = 1e-6;
constexpr double kF64Atol = 1e-5, kF64Rtol = 1e-3;
constexpr double kF32MaxAsymmetry = 1e-4;
// Entries where analytic and numeric are both below this are "both ~0" in
// float32 and skipped by the asymmetry mean (their ratio is noise).
constexpr double kF32Zero = 1e-6;

inline bool close_f64(double analytic, double numeric) {
  return std::abs(analytic - numeric) <= kF64Atol + kF64Rtol * std::abs(numeric);
}

// Mean of |(n - a) / (n + a)| over entries not both ~0; 0 when all are ~0.
inline double mean_abs_asymmetry(const std::vector<double>& a, const std::vector<double>& n) {
  double s = 0;
  int64_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i]) < kF32Zero && std::abs(n[i]) < kF32Zero) continue;
    s += std::abs((n[i] - a[i]) / (n[i] + a[i]));
    ++count;
  }
  return count ? s / static_cast<double>(count) : 0.0;
}

// Central differences of f at step h: 2 points, (f(h) - f(-h)) / 2h, or
// 4 points, (f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12h.
inline double central_difference(const std::function<double(double)>& f, double h, int points) {
  if (points == 2) return (f(h) - f(-h)) / (2 * h);
  return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h);
}

// ---- inputs ----------------------------------------------------------------

inline std::vector<double> random_normal(int64_t n, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = rng.normal();
  return v;
}

// Values for every input of a case; float32-representable, so both checks
// see the same numbers.
inline Grads make_values(const OpCase& c, Rng& rng) {
  Grads vals;
  for (const InputSpec& s : c.inputs) {
    std::vector<double> v(static_cast<size_t>(s.shape.numel()));
    if (s.distinct) {
      const double step = (s.hi - s.lo) / static_cast<double>(v.size());
      for (size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<float>(s.lo + step * (static_cast<double>(i) + 0.5));
      for (size_t i = v.size(); i > 1; --i)  // Fisher-Yates
        std::swap(v[i - 1], v[rng.below(static_cast<uint64_t>(i))]);
      vals.push_back(std::move(v));
      continue;
    }
    for (double& x : v) {
      if (s.leaf == Leaf::Labels) {
        x = static_cast<double>(rng.below(static_cast<uint64_t>(s.classes)));
        continue;
      }
      do x = static_cast<double>(static_cast<float>(rng.uniform(s.lo, s.hi)));
      while (std::abs(x) < s.min_abs);
    }
    vals.push_back(std::move(v));
  }
  return vals;
}

template <class T>
constexpr DType dtype_of() {
  return sizeof(T) == 8 ? DType::F64 : DType::F32;
}

// ---- runner ------------------------------------------------------------------

// Owns a graph of element type T for one case and rebuilds the op on demand.
template <class T>
class Runner {
 public:
  Runner(const OpCase& c, Grads values)
      : c_(c), g_(dtype_of<T>(), Backend::CPU, size_t(1) << 16), vals_(std::move(values)) {
    params_.resize(c.inputs.size());
    for (size_t i = 0; i < c.inputs.size(); ++i)
      if (c.inputs[i].leaf == Leaf::Param)
        params_[i] = g_.param(c.inputs[i].shape, "in" + std::to_string(i));
      else if (c.inputs[i].leaf == Leaf::Buffer)
        params_[i] = g_.buffer(c.inputs[i].shape, dtype_of<T>());
  }

  Graph& graph() { return g_; }
  Grads& values() { return vals_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }

  // Starts a new step (zeroing parameter gradients), creates the inputs from
  // the current values and records the op; returns its output.
  Tensor forward() {
    g_.reset();
    tensors_.clear();
    for (size_t i = 0; i < c_.inputs.size(); ++i) {
      const InputSpec& s = c_.inputs[i];
      const std::vector<double>& v = vals_[i];
      if (s.leaf == Leaf::Labels) {
        std::vector<int32_t> y(v.begin(), v.end());
        tensors_.push_back(g_.input(s.shape, y.data(), DType::I32));
        continue;
      }
      std::vector<T> x(v.begin(), v.end());
      if (s.leaf == Leaf::Param || s.leaf == Leaf::Buffer) {
        std::memcpy(g_.data<T>(params_[i]), x.data(), x.size() * sizeof(T));
        tensors_.push_back(params_[i]);
        continue;
      }
      tensors_.push_back(g_.input(s.shape, x.data(), dtype_of<T>()));
      if (s.leaf == Leaf::Input) g_.set_requires_grad(tensors_.back());
    }
    if (c_.build) return c_.build(tensors_);
    return apply(c_.kind, tensors_.data(), static_cast<int>(tensors_.size()), c_.attr);
  }

  // sum(R * out) for the current values, accumulated in double.
  double weighted_output(const std::vector<double>& R) {
    Tensor out = forward();
    const T* y = g_.data<T>(out);
    double s = 0;
    for (size_t i = 0; i < R.size(); ++i) s += R[i] * static_cast<double>(y[i]);
    return s;
  }

  // Gradient of every differentiable input (empty vectors for the others)
  // left by the last backward().
  Grads read_grads() {
    Grads gr(c_.inputs.size());
    for (size_t i = 0; i < c_.inputs.size(); ++i)
      if (c_.inputs[i].differentiable()) {
        const T* d = g_.grad<T>(tensors_[i]);
        gr[i].assign(d, d + c_.inputs[i].shape.numel());
      }
    return gr;
  }

  // Analytic gradients of sum(R * out): backward with seed R.
  Grads analytic(const std::vector<double>& R) {
    Tensor out = forward();
    std::vector<T> seed(R.begin(), R.end());
    g_.backward(out, seed.data());
    return read_grads();
  }

  // Numeric gradients of sum(R * out) by central differences.
  Grads numeric(const std::vector<double>& R, double h, int points) {
    Grads gr(c_.inputs.size());
    for (size_t i = 0; i < c_.inputs.size(); ++i) {
      if (!c_.inputs[i].differentiable()) continue;
      for (size_t j = 0; j < vals_[i].size(); ++j) {
        const double x0 = vals_[i][j];
        auto f = [&](double d) {
          vals_[i][j] = x0 + d;
          return weighted_output(R);
        };
        gr[i].push_back(central_difference(f, h, points));
        vals_[i][j] = x0;
      }
    }
    return gr;
  }

  // Number of elements of the op's output for these input shapes.
  int64_t output_numel() { return g_.shape(forward()).numel(); }

 private:
  const OpCase& c_;
  Graph g_;
  Grads vals_;
  std::vector<Tensor> params_;   // persistent handles (params, buffers), by input index
  std::vector<Tensor> tensors_;  // this step's handles, by input index
};

// ---- checks ------------------------------------------------------------------

inline uint64_t case_seed(const OpCase& c, uint64_t salt) {
  uint64_t h = 1469598103934665603ull ^ salt;  // FNV-1a over the label
  for (char ch : c.label()) h = (h ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
  return h;
}

// Full Jacobian-vector check in float64: for every element of every
// differentiable input, numeric d sum(R*out)/dx vs the analytic gradient.
inline void check_f64(const OpCase& c) {
  INFO("float64 gradient check of " << c.label());
  Rng rng(case_seed(c, 64));
  Runner<double> run(c, make_values(c, rng));
  std::vector<double> R = random_normal(run.output_numel(), rng);
  Grads a = run.analytic(R);
  Grads n = run.numeric(R, kF64Eps, 2);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].differentiable()) continue;
    int bad = 0;
    std::ostringstream first;
    for (size_t j = 0; j < a[i].size(); ++j) {
      if (close_f64(a[i][j], n[i][j])) continue;
      if (!bad++)
        first << "input " << i << " (" << c.inputs[i].shape.str() << ") element " << j
              << ": analytic " << a[i][j] << ", numeric " << n[i][j];
    }
    CHECK_MESSAGE(bad == 0, bad << " Jacobian entries outside |a-n| <= 1e-5 + 1e-3|n|; first: "
                                << first.str());
  }
}

// float32 check of the real kernels: mean absolute asymmetry per input.
inline void check_f32(const OpCase& c) {
  INFO("float32 gradient check of " << c.label() << " (eps " << c.f32_eps << ", " << c.f32_points
                                    << "-point)");
  Rng rng(case_seed(c, 32));
  Runner<float> run(c, make_values(c, rng));
  std::vector<double> R = random_normal(run.output_numel(), rng);
  for (double& r : R) r = static_cast<float>(r);
  Grads a = run.analytic(R);
  Grads n = run.numeric(R, c.f32_eps, c.f32_points);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].differentiable()) continue;
    INFO("input " << i << " (" << c.inputs[i].shape.str() << ")");
    int non_finite = 0;
    for (size_t j = 0; j < a[i].size(); ++j)
      non_finite += !std::isfinite(a[i][j]) || !std::isfinite(n[i][j]);
    CHECK_MESSAGE(non_finite == 0, "expected finite gradients, " << non_finite << " are not");
    double asym = mean_abs_asymmetry(a[i], n[i]);
    CHECK_MESSAGE(asym <= kF32MaxAsymmetry,
                  "mean |(n-a)/(n+a)| is " << asym << ", expected <= " << kF32MaxAsymmetry);
  }
}

}  // namespace lldl::gradcheck
