#include "autograd/init.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace lldl {

namespace {
template <class F>
void fill(Graph& g, Tensor t, F&& next) {
  const TensorDesc& d = g.desc(t);
  int64_t n = d.shape.numel();
  if (d.dtype == DType::F32 && !device(g.backend()).host_memory) {
    // Device memory: draw the same values on the host, then copy them over.
    std::vector<float> host(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) host[i] = static_cast<float>(next());
    g.from_host(t, host.data());
  } else if (d.dtype == DType::F32) {
    float* p = static_cast<float*>(d.data);
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(next());
  } else if (d.dtype == DType::F64) {
    double* p = static_cast<double*>(d.data);
    for (int64_t i = 0; i < n; ++i) p[i] = next();
  } else {
    throw TypeError("init: cannot initialise an int32 tensor");
  }
}
}  // namespace

void init_uniform(Graph& g, Tensor t, double lo, double hi, uint64_t seed) {
  Rng r(seed);
  fill(g, t, [&] { return r.uniform(lo, hi); });
}

void init_normal(Graph& g, Tensor t, double mean, double std, uint64_t seed) {
  Rng r(seed);
  fill(g, t, [&] { return mean + std * r.normal(); });
}

void init_param(Graph& g, Tensor t, Init how, uint64_t seed, int64_t fan_in, int64_t fan_out) {
  const Shape& s = g.shape(t);
  if (fan_in <= 0) fan_in = s.ndim ? s[0] : 1;
  if (fan_out <= 0) fan_out = s.ndim ? s.last() : 1;
  double fi = static_cast<double>(fan_in), fo = static_cast<double>(fan_out);
  switch (how) {
    case Init::Zeros: fill(g, t, [] { return 0.0; }); return;
    case Init::XavierUniform: {
      double a = std::sqrt(6.0 / (fi + fo));
      return init_uniform(g, t, -a, a, seed);
    }
    case Init::XavierNormal: return init_normal(g, t, 0.0, std::sqrt(2.0 / (fi + fo)), seed);
    case Init::HeUniform: {
      double a = std::sqrt(6.0 / fi);
      return init_uniform(g, t, -a, a, seed);
    }
    case Init::HeNormal: return init_normal(g, t, 0.0, std::sqrt(2.0 / fi), seed);
  }
  throw ValueError("init: unknown initialisation " + std::to_string(int(how)));
}

}  // namespace lldl
