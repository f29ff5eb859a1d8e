// Shape rules, costs and value checks of the sequence-model ops. Errors name
// the op and the shapes; bad values (eps, token ids) are ValueError.
#include "ops/seq_rules.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "core/error.h"

namespace lldl::seq_rules {

namespace {

[[noreturn]] void fail(const char* op, const std::string& msg) {
  throw ShapeError(std::string(op) + ": " + msg);
}
std::string i2s(int64_t v) { return std::to_string(v); }
double f32_bytes(const Shape& s) { return 4.0 * static_cast<double>(s.numel()); }

// Throws unless `axis` names a dimension of x ([-ndim, ndim)).
void check_axis(const char* op, const char* what, int64_t axis, const Shape& x) {
  if (axis < -x.ndim || axis >= x.ndim)
    fail(op, std::string(what) + " " + i2s(axis) + " is out of range for x of " + x.str() + " (" +
                 i2s(x.ndim) + " dims)");
}

}  // namespace

// ---- embedding: ids int32 [...] (ndim <= 3), table [V, C] -> ids.shape + [C]
Shape embedding_shape(const Shape* in, const OpAttr&) {
  const Shape &ids = in[0], &table = in[1];
  if (table.ndim != 2)
    fail("embedding", "table must be (V, C), got " + table.str() + " (ids are " + ids.str() + ")");
  if (ids.ndim > 3)
    fail("embedding", "ids may have at most 3 dims (the output adds one), got " + ids.str() +
                          " (table is " + table.str() + ")");
  Shape out = ids;
  out.d[out.ndim++] = table[1];
  return out;
}

// Token ids index the table's rows, so they are range-checked on the host
// before any kernel runs.
void embedding_check(const Shape* in, const void* const* data, const OpAttr&) {
  const int32_t* ids = static_cast<const int32_t*>(data[0]);
  const int64_t V = in[1][0];
  for (int64_t i = 0; i < in[0].numel(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw ValueError("embedding: token id " + i2s(ids[i]) + " at position " + i2s(i) +
                       " is out of range for a vocabulary of " + i2s(V) + " (table is " +
                       in[1].str() + ")");
}

// The ids, then one table row read and one output row written per id.
double embedding_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return 4.0 * static_cast<double>(in[0].numel()) + 2.0 * f32_bytes(out);
}

// ---- layer_norm: x [..., C], gamma [C], beta [C] -> x.shape ---------------
Shape layer_norm_shape(const Shape* in, const OpAttr& a) {
  const Shape &x = in[0], &gamma = in[1], &beta = in[2];
  if (x.ndim < 1 || x.last() == 0)
    fail("layer_norm", "x needs a non-empty last dimension, got " + x.str());
  const int64_t C = x.last();
  if (gamma.ndim != 1 || gamma[0] != C)
    fail("layer_norm", "gamma must hold one value per feature: x is " + x.str() + " (" + i2s(C) +
                           " features), gamma is " + gamma.str());
  if (beta.ndim != 1 || beta[0] != C)
    fail("layer_norm", "beta must hold one value per feature: x is " + x.str() + " (" + i2s(C) +
                           " features), beta is " + beta.str());
  const float eps = a.layer_norm.eps;
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", eps);
    throw ValueError(std::string("layer_norm: eps must be finite and >= 0, got eps = ") + b +
                     " (x is " + x.str() + ")");
  }
  return x;
}
// Mean and variance (3 per element), normalisation and affine (4).
double layer_norm_flops(const Shape* in, const Shape&, const OpAttr&) {
  return 7.0 * static_cast<double>(in[0].numel());
}
double layer_norm_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(in[2]) + f32_bytes(out) +
         8.0 * static_cast<double>(in[0].rows());  // the workspace
}
// Per row: the mean, then 1/sqrt(var + eps) (2 * rows elements).
int64_t layer_norm_workspace(const Shape* in, const Shape&, const OpAttr&) {
  return 2 * in[0].rows();
}

// x^3 and the polynomial (5), tanh (counted as 4, as for tanh), the rest (3).
double gelu_flops(const Shape*, const Shape& out, const OpAttr&) {
  return 12.0 * static_cast<double>(out.numel());
}

// ---- transpose, slice, concat ---------------------------------------------
Shape transpose_shape(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  check_axis("transpose", "dim0", a.transpose.dim0, x);
  check_axis("transpose", "dim1", a.transpose.dim1, x);
  const int d0 = resolve_axis(a.transpose.dim0, x.ndim), d1 = resolve_axis(a.transpose.dim1, x.ndim);
  Shape out = x;
  out.d[d0] = x[d1];
  out.d[d1] = x[d0];
  return out;
}

Shape slice_shape(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  check_axis("slice", "axis", a.slice.axis, x);
  const int ax = resolve_axis(a.slice.axis, x.ndim);
  const int64_t start = a.slice.start, length = a.slice.length, n = x[ax];
  if (length < 1)
    fail("slice", "length must be >= 1, got " + i2s(length) + " (x is " + x.str() + ", axis " +
                      i2s(ax) + ")");
  if (start < 0 || start + length > n)
    fail("slice", "elements [" + i2s(start) + ", " + i2s(start + length) + ") of axis " + i2s(ax) +
                      " are out of range: x is " + x.str() + " (" + i2s(n) + " along that axis)");
  Shape out = x;
  out.d[ax] = length;
  return out;
}

Shape concat_shape(const Shape* in, const OpAttr& a) {
  const Shape &x = in[0], &y = in[1];
  if (x.ndim < 1 || x.ndim != y.ndim)
    fail("concat", "a and b need the same rank (at least 1): a is " + x.str() + ", b is " + y.str());
  const int64_t axis = a.concat.axis;
  if (axis < -x.ndim || axis >= x.ndim)
    fail("concat", "axis " + i2s(axis) + " is out of range for a of " + x.str() + " and b of " +
                       y.str() + " (" + i2s(x.ndim) + " dims)");
  const int ax = resolve_axis(a.concat.axis, x.ndim);
  for (int i = 0; i < x.ndim; ++i)
    if (i != ax && x[i] != y[i])
      fail("concat", "dims other than axis " + i2s(ax) + " must be equal: a is " + x.str() +
                         ", b is " + y.str() + " (dim " + i2s(i) + " differs)");
  Shape out = x;
  out.d[ax] = x[ax] + y[ax];
  return out;
}

double copy_bytes(const Shape*, const Shape& out, const OpAttr&) { return 2.0 * f32_bytes(out); }
double concat_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(out);
}

}  // namespace lldl::seq_rules
