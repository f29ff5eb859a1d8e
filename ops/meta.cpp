// Metadata rows: name, arity, shape rule, FLOPs and bytes for each op kind.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "ops/examples.h"
#include "ops/geometry.h"
#include "ops/op.h"
#include "ops/seq_rules.h"

namespace lldl {

namespace ex = examples;

namespace {

[[noreturn]] void fail(const char* op, const std::string& msg) {
  throw ShapeError(std::string(op) + ": " + msg);
}
double f32_bytes(const Shape& s) { return 4.0 * static_cast<double>(s.numel()); }

// ---- shape rules -------------------------------------------------------
Shape same_as_input(const Shape* in, const OpAttr&) { return in[0]; }

Shape elementwise2(const char* op, const Shape* in) {
  if (in[0] != in[1])
    fail(op, "shapes differ: a is " + in[0].str() + ", b is " + in[1].str());
  return in[0];
}
Shape add_shape(const Shape* in, const OpAttr&) { return elementwise2("add", in); }
Shape sub_shape(const Shape* in, const OpAttr&) { return elementwise2("sub", in); }
Shape mul_shape(const Shape* in, const OpAttr&) { return elementwise2("mul", in); }

Shape matmul_shape(const Shape* in, const OpAttr& a) {
  const Shape &A = in[0], &B = in[1];
  if (A.ndim != 2 || B.ndim != 2)
    fail("matmul", "needs 2-D operands: a is " + A.str() + ", b is " + B.str());
  const MatmulDims d = matmul_dims(in, a);
  const int64_t kb = d.tb ? B[1] : B[0];  // d.K is a's
  if (d.K != kb)
    fail("matmul", std::string("inner dimensions differ: a") + (d.ta ? "^T" : "") + " is " +
                       std::to_string(d.M) + "x" + std::to_string(d.K) + ", b" +
                       (d.tb ? "^T" : "") + " is " + std::to_string(kb) + "x" +
                       std::to_string(d.N));
  return Shape{d.M, d.N};
}
double matmul_flops(const Shape* in, const Shape& out, const OpAttr& a) {
  return 2.0 * static_cast<double>(out.numel()) * static_cast<double>(matmul_dims(in, a).K);
}
double matmul_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(out);
}

// linear: x (M, K) @ op(w) + b, op(w) = w (K, N) or w^T when w is (N, K).
// linear_gelu checks its inputs by the same rules under its own name.
Shape linear_rule(const char* op, const Shape* in, const OpAttr& a);
Shape linear_shape(const Shape* in, const OpAttr& a) { return linear_rule("linear", in, a); }
Shape linear_gelu_shape(const Shape* in, const OpAttr& a) { return linear_rule("linear_gelu", in, a); }
Shape linear_rule(const char* op, const Shape* in, const OpAttr& a) {
  const Shape &x = in[0], &w = in[1], &b = in[2];
  const bool tb = a.matmul.trans_b;
  const std::string all =
      " (x is " + x.str() + ", w is " + w.str() + (tb ? " (trans_b)" : "") + ", b is " + b.str() + ")";
  if (a.matmul.trans_a)
    fail(op, "trans_a is not supported: x must be (M, K) as stored" + all);
  if (x.ndim != 2 || w.ndim != 2)
    fail(op, "needs a 2-D x (M, K) and a 2-D w (" + std::string(tb ? "N, K" : "K, N") + ")" + all);
  const MatmulDims d = matmul_dims(in, a);
  const int64_t m = d.M, k = d.K, kw = tb ? w[1] : w[0], n = d.N;
  if (k != kw)
    fail(op, "inner dimensions differ: x is " + std::to_string(m) + "x" + std::to_string(k) +
                       ", w" + (tb ? "^T" : "") + " is " + std::to_string(kw) + "x" +
                       std::to_string(n) + all);
  if (b.ndim != 1 || b[0] != n)
    fail(op, "bias must be a vector of the output's " + std::to_string(n) + " columns" + all);
  return Shape{m, n};
}
// 2MNK for the product, MN for the bias.
double linear_flops(const Shape* in, const Shape& out, const OpAttr&) {
  return static_cast<double>(out.numel()) * (2.0 * static_cast<double>(in[0][1]) + 1.0);
}
double linear_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(in[2]) + f32_bytes(out);
}
// linear's plus gelu's; bytes: linear's plus
// the pre-activation u written to the workspace.
double linear_gelu_flops(const Shape* in, const Shape& out, const OpAttr& a) {
  return linear_flops(in, out, a) + seq_rules::gelu_flops(in, out, a);
}
double linear_gelu_bytes(const Shape* in, const Shape& out, const OpAttr& a) {
  return linear_bytes(in, out, a) + f32_bytes(out);
}
// u (M, N) kept for backward, then du = dy gelu'(u) (M, N), which backward
// writes there before linear's gradients read it (a second backward of the
// same step still finds u).
int64_t linear_gelu_workspace(const Shape*, const Shape& out, const OpAttr&) { return 2 * out.numel(); }

Shape bias_shape(const Shape* in, const OpAttr&) {
  const Shape &x = in[0], &b = in[1];
  bool vec = b.ndim == 1 || (b.ndim == 2 && b[0] == 1);
  if (x.ndim < 1 || !vec || b.last() != x.last())
    fail("bias_add", "bias must be a vector of the input's last dimension: x is " + x.str() +
                         ", bias is " + b.str());
  return x;
}

Shape reduce_shape(const char* op, const Shape* in, const OpAttr& a) {
  int axis = a.reduce.axis;
  if (axis == -1) return Shape{};
  if (axis < 0 || axis >= in[0].ndim)
    fail(op, "axis " + std::to_string(axis) + " is out of range for input " + in[0].str());
  Shape out = in[0];
  out.d[axis] = 1;
  return out;
}
Shape sum_shape(const Shape* in, const OpAttr& a) { return reduce_shape("sum", in, a); }
Shape mean_shape(const Shape* in, const OpAttr& a) {
  if (in[0].numel() == 0) fail("mean", "input is empty (" + in[0].str() + ")");
  return reduce_shape("mean", in, a);
}

Shape lastdim_shape(const char* op, const Shape* in) {
  if (in[0].ndim < 1 || in[0].last() == 0)
    fail(op, "needs a non-empty last dimension: input is " + in[0].str());
  return in[0];
}
Shape softmax_shape(const Shape* in, const OpAttr&) { return lastdim_shape("softmax", in); }
Shape log_softmax_shape(const Shape* in, const OpAttr&) {
  return lastdim_shape("log_softmax", in);
}

Shape mse_shape(const Shape* in, const OpAttr&) {
  if (in[0] != in[1])
    fail("mse_loss", "prediction and target shapes differ: prediction is " + in[0].str() +
                         ", target is " + in[1].str());
  if (in[0].numel() == 0) fail("mse_loss", "empty batch (" + in[0].str() + ")");
  return Shape{};
}
Shape ce_shape(const Shape* in, const OpAttr&) {
  if (in[0].ndim != 2) fail("cross_entropy", "logits must be 2-D, got " + in[0].str());
  if (in[0] != in[1])
    fail("cross_entropy", "logits and targets shapes differ: logits are " + in[0].str() +
                              ", targets are " + in[1].str());
  if (in[0][0] == 0 || in[0][1] == 0) fail("cross_entropy", "empty batch (" + in[0].str() + ")");
  return Shape{};
}
Shape ce_labels_shape(const Shape* in, const OpAttr&) {
  const Shape &x = in[0], &y = in[1];
  if (x.ndim != 2) fail("cross_entropy_labels", "logits must be 2-D, got " + x.str());
  bool vec = y.ndim == 1 || (y.ndim == 2 && y[1] == 1);
  if (!vec || y[0] != x[0])
    fail("cross_entropy_labels", "labels must be a vector of one label per row: logits are " +
                                     x.str() + ", labels are " + y.str());
  if (x[0] == 0 || x[1] == 0) fail("cross_entropy_labels", "empty batch (" + x.str() + ")");
  return Shape{};
}

// A float for a message: "0.5", "1e-05", "nan".
std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

Shape dropout_shape(const Shape* in, const OpAttr& a) {
  const float p = a.dropout.p;
  if (!(p >= 0.0f && p < 1.0f))  // also refuses NaN
    throw ValueError("dropout: p must be in [0, 1), got p = " + num(p) + " (x is " + in[0].str() +
                     ")");
  return in[0];
}

// Values per channel that batch statistics average over: N (x 2-D) or N*H*W.
int64_t bn_count(const Shape& x) { return bn_dims(&x).count(); }

Shape batch_norm_shape(const Shape* in, const OpAttr& a) {
  static const char* names[] = {"x", "gamma", "beta", "running_mean", "running_var"};
  const Shape& x = in[0];
  if (x.ndim != 2 && x.ndim != 4)
    fail("batch_norm", "x must be (N, C) or (N, C, H, W), got " + x.str());
  const int64_t C = x[1];
  for (int i = 1; i < 5; ++i)
    if (in[i].ndim != 1 || in[i][0] != C)
      fail("batch_norm", std::string(names[i]) + " must hold one value per channel: x is " +
                             x.str() + " (" + std::to_string(C) + " channels), " + names[i] +
                             " is " + in[i].str());
  const float eps = a.batch_norm.eps, momentum = a.batch_norm.momentum;
  if (!(eps >= 0.0f) || !std::isfinite(eps))
    throw ValueError("batch_norm: eps must be finite and >= 0, got eps = " + num(eps));
  if (!(momentum >= 0.0f && momentum <= 1.0f))
    throw ValueError("batch_norm: momentum must be in [0, 1], got momentum = " + num(momentum));
  // Like PyTorch: the unbiased variance of a single value is undefined.
  if (a.batch_norm.training && bn_count(x) <= 1)
    throw ValueError("batch_norm: training needs more than one value per channel, got " +
                     std::to_string(bn_count(x)) + " (x is " + x.str() + ")");
  return x;
}

// ---- convolution, pooling, reshape (shape rules and costs) ----------------
std::string i2s(int64_t v) { return std::to_string(v); }

Shape conv2d_shape(const Shape* in, const OpAttr& a) {
  const Shape &x = in[0], &w = in[1], &b = in[2];
  if (x.ndim != 4) fail("conv2d", "x must be (N, C, H, W), got " + x.str());
  if (w.ndim != 4) fail("conv2d", "w must be (OC, C, KH, KW), got " + w.str());
  if (x[1] != w[1])
    fail("conv2d", "input has " + i2s(x[1]) + " channels but weight expects " + i2s(w[1]) +
                       ": x is " + x.str() + ", w is " + w.str());
  if (b.ndim != 1 || b[0] != w[0])
    fail("conv2d", "bias must hold one value per output channel: w is " + w.str() + " (" +
                       i2s(w[0]) + " output channels), b is " + b.str());
  const int64_t s = a.conv.stride, p = a.conv.padding;
  if (s < 1) fail("conv2d", "stride must be >= 1, got " + i2s(s));
  if (p < 0) fail("conv2d", "padding must be >= 0, got " + i2s(p));
  if (w[2] < 1 || w[3] < 1) fail("conv2d", "kernel must be at least 1x1: w is " + w.str());
  const int64_t H = x[2] + 2 * p, W = x[3] + 2 * p;
  if (w[2] > H || w[3] > W)
    fail("conv2d", "kernel " + i2s(w[2]) + "x" + i2s(w[3]) + " is larger than the padded input " +
                       i2s(H) + "x" + i2s(W) + " (x is " + x.str() + ", padding " + i2s(p) + ")");
  const ConvGeom g = conv_geom(in, a);
  return Shape{g.N, g.OC, g.OH, g.OW};
}
double conv2d_flops(const Shape* in, const Shape& out, const OpAttr& a) {
  return 2.0 * static_cast<double>(out.numel()) * static_cast<double>(conv_geom(in, a).K());
}
double conv2d_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(in[2]) + f32_bytes(out);
}

Shape pool_shape(const char* op, const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  if (x.ndim != 4) fail(op, "x must be (N, C, H, W), got " + x.str());
  const int64_t k = a.pool.kernel, s = a.pool.stride ? a.pool.stride : k;
  if (k < 1) fail(op, "kernel must be >= 1, got " + i2s(k));
  if (s < 1) fail(op, "stride must be >= 1 (or 0 for stride = kernel), got " + i2s(s));
  if (k > x[2] || k > x[3])
    fail(op, "kernel " + i2s(k) + "x" + i2s(k) + " is larger than the input " + i2s(x[2]) + "x" +
                 i2s(x[3]) + " (x is " + x.str() + ")");
  const PoolGeom g = pool_geom(in, a);
  return Shape{x[0], x[1], g.OH, g.OW};
}
Shape max_pool_shape(const Shape* in, const OpAttr& a) { return pool_shape("max_pool2d", in, a); }
Shape avg_pool_shape(const Shape* in, const OpAttr& a) { return pool_shape("avg_pool2d", in, a); }
double pool_flops(const Shape*, const Shape& out, const OpAttr& a) {
  return static_cast<double>(out.numel()) * a.pool.kernel * a.pool.kernel;
}
// max_pool2d keeps, per window, which element is its (first) maximum: the
// CPU backward routes the gradient there without reading x again.
int64_t max_pool_workspace(const Shape*, const Shape& out, const OpAttr&) { return out.numel(); }

Shape reshape_shape(const Shape* in, const OpAttr& a) {
  const int32_t* d = a.reshape.dims;
  int n = 0;
  while (n < 4 && d[n] != -1) ++n;
  for (int i = 0; i < 4; ++i)
    if ((i < n && d[i] < 0) || (i >= n && d[i] != -1))
      fail("reshape", "target dimension " + i2s(i) + " is " + i2s(d[i]) +
                          " (dimensions must be >= 0, unused trailing ones -1)");
  int64_t dims[4] = {d[0], d[1], d[2], d[3]};
  Shape out = make_shape(dims, n, "reshape");
  if (out.numel() != in[0].numel())
    fail("reshape", "cannot view x of " + in[0].str() + " (" + i2s(in[0].numel()) +
                        " elements) as " + out.str() + " (" + i2s(out.numel()) + " elements)");
  return out;
}
double zero_cost(const Shape*, const Shape&, const OpAttr&) { return 0.0; }

// ---- causal attention and LSTM (shape rules, costs, workspaces) ------------
Shape attention_shape(const Shape* in, const OpAttr& a) {
  const Shape& x = in[0];
  if (x.ndim != 3) fail("causal_attention", "qkv must be (B, T, 3*n_embd), got " + x.str());
  if (x[2] == 0 || x[2] % 3 != 0)
    fail("causal_attention", "qkv's last dimension must be a positive multiple of 3 (q, k, v "
                             "side by side), got " + i2s(x[2]) + " (qkv is " + x.str() + ")");
  const int64_t C = x[2] / 3, nh = a.attention.n_head;
  if (nh < 1) fail("causal_attention", "n_head must be >= 1, got " + i2s(nh));
  if (C % nh != 0)
    fail("causal_attention", "n_embd " + i2s(C) + " is not divisible by n_head " + i2s(nh) +
                                 " (qkv is " + x.str() + ")");
  const AttnGeom g = attn_geom(in, a);
  return Shape{g.B, g.T, g.C};
}
// Causal entries (s <= t) over every batch row and head.
double attention_entries(const Shape& x, const OpAttr& a) {
  const double T = static_cast<double>(x[1]);
  return static_cast<double>(x[0]) * a.attention.n_head * T * (T + 1) / 2;
}
// Per causal entry: q.k (2D), p v (2D) and the softmax (max, exp, sum, scale).
double attention_flops(const Shape* in, const Shape& out, const OpAttr& a) {
  const double D = static_cast<double>(out[2]) / a.attention.n_head;
  return attention_entries(in[0], a) * (4 * D + 5);
}
// Softmax probabilities P (B, n_head, T, T) for backward; only s <= t is used.
int64_t attention_workspace(const Shape* in, const Shape&, const OpAttr& a) {
  return attn_geom(in, a).workspace();
}
double attention_bytes(const Shape* in, const Shape& out, const OpAttr& a) {
  return f32_bytes(in[0]) + f32_bytes(out) +
         4.0 * static_cast<double>(attention_workspace(in, out, a));
}

Shape lstm_shape(const Shape* in, const OpAttr&) {
  const Shape &x = in[0], &wih = in[1], &whh = in[2], &b = in[3];
  const std::string all = " (x is " + x.str() + ", w_ih is " + wih.str() + ", w_hh is " +
                          whh.str() + ", b is " + b.str() + ")";
  if (x.ndim != 3) fail("lstm", "x must be (B, T, I), got " + x.str() + all);
  if (wih.ndim != 2 || wih[0] == 0 || wih[0] % 4 != 0)
    fail("lstm", "w_ih must be (4H, I) with H >= 1 (gates i, f, g, o stacked), got " +
                     wih.str() + all);
  const int64_t H = wih[0] / 4;
  if (wih[1] != x[2])
    fail("lstm", "w_ih has " + i2s(wih[1]) + " input columns but x has I = " + i2s(x[2]) +
                     " features" + all);
  if (whh.ndim != 2 || whh[0] != 4 * H || whh[1] != H)
    fail("lstm", "w_hh must be (4H, H) = " + i2s(4 * H) + "x" + i2s(H) + " for H = " + i2s(H) +
                     ", got " + whh.str() + all);
  if (b.ndim != 1 || b[0] != 4 * H)
    fail("lstm", "b must be (4H) = " + i2s(4 * H) + " for H = " + i2s(H) + ", got " + b.str() +
                     all);
  const LstmGeom g = lstm_geom(OpKind::Lstm, in);
  return Shape{g.B, g.T, g.H};
}
// lstm_gates: gx (B, T, 4H), the pre-activation input gates, w_hh (4H, H).
Shape lstm_gates_shape(const Shape* in, const OpAttr&) {
  const Shape &gx = in[0], &whh = in[1];
  const std::string all = " (gx is " + gx.str() + ", w_hh is " + whh.str() + ")";
  if (gx.ndim != 3 || gx[2] == 0 || gx[2] % 4 != 0)
    fail("lstm_gates", "gx must be (B, T, 4H) with H >= 1 (gates i, f, g, o stacked), got " +
                           gx.str() + all);
  const int64_t H = gx[2] / 4;
  if (whh.ndim != 2 || whh[0] != 4 * H || whh[1] != H)
    fail("lstm_gates", "w_hh must be (4H, H) = " + i2s(4 * H) + "x" + i2s(H) + " for H = " +
                           i2s(H) + ", got " + whh.str() + all);
  const LstmGeom g = lstm_geom(OpKind::LstmGates, in);
  return Shape{g.B, g.T, g.H};
}
// Per (b, t, j): the GEMMs (8 (I + H); lstm_gates only the recurrent 8 H),
// bias and gate activations (~20) and the cell update (~8).
double lstm_flops(const Shape* in, const Shape& out, const OpAttr&) {
  return static_cast<double>(out.numel()) * (8.0 * static_cast<double>(in[0][2] + out[2]) + 28);
}
// Activated gates (B, T, 4H) then cell states c (B, T, H); backward reads
// h_{t-1} from the output itself.
double lstm_gates_flops(const Shape*, const Shape& out, const OpAttr&) {
  return static_cast<double>(out.numel()) * (8.0 * static_cast<double>(out[2]) + 28);
}
template <OpKind Kind>
int64_t lstm_workspace(const Shape* in, const Shape&, const OpAttr&) {
  return lstm_geom(Kind, in).workspace();
}
template <OpKind Kind, int Arity>
double lstm_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  double s = f32_bytes(out) + 4.0 * static_cast<double>(lstm_geom(Kind, in).workspace());
  for (int i = 0; i < Arity; ++i) s += f32_bytes(in[i]);
  return s;
}

// ---- costs ---------------------------------------------------------------
template <int PerElem>
double per_out(const Shape*, const Shape& out, const OpAttr&) {
  return PerElem * static_cast<double>(out.numel());
}
template <int PerElem>
double per_in(const Shape* in, const Shape&, const OpAttr&) {
  return PerElem * static_cast<double>(in[0].numel());
}
double unary_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(out);
}
double binary_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(out);
}
double labels_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + 4.0 * static_cast<double>(in[1].numel()) + f32_bytes(out);
}
// Training: mean, variance (3 per element) and the affine normalisation (4);
// eval: the normalisation only.
double bn_flops(const Shape* in, const Shape&, const OpAttr& a) {
  return (a.batch_norm.training ? 8.0 : 4.0) * static_cast<double>(in[0].numel());
}
// x in, out; the four per-channel vectors read, the two running ones written
// back in training.
double bn_bytes(const Shape* in, const Shape& out, const OpAttr& a) {
  return f32_bytes(in[0]) + f32_bytes(out) +
         (a.batch_norm.training ? 6.0 : 4.0) * f32_bytes(in[1]);
}

// Class labels index the logits, so they are range-checked on the host before
// any kernel runs.
void check_labels(const Shape* in, const void* const* data, const OpAttr&) {
  const int32_t* y = static_cast<const int32_t*>(data[1]);
  for (int64_t i = 0; i < in[1].numel(); ++i)
    if (y[i] < 0 || y[i] >= in[0][1])
      throw ValueError("cross_entropy: label " + std::to_string(y[i]) + " at row " +
                       std::to_string(i) + " is out of range for " + std::to_string(in[0][1]) +
                       " classes (logits are " + in[0].str() + ")");
}

// Rows in OpKind order, each field named (unnamed ones keep OpMeta's defaults).
constexpr OpMeta kMeta[] = {
    {.name = "matmul", .arity = 2, .shape = matmul_shape, .flops = matmul_flops,
     .bytes = matmul_bytes, .examples = ex::kMatMul},
    {.name = "bias_add", .arity = 2, .shape = bias_shape, .flops = per_out<1>,
     .bytes = binary_bytes, .examples = ex::kBiasAdd},
    {.name = "add", .arity = 2, .shape = add_shape, .flops = per_out<1>, .bytes = binary_bytes,
     .examples = ex::kBinary},
    {.name = "sub", .arity = 2, .shape = sub_shape, .flops = per_out<1>, .bytes = binary_bytes,
     .examples = ex::kBinary},
    {.name = "mul", .arity = 2, .shape = mul_shape, .flops = per_out<1>, .bytes = binary_bytes,
     .examples = ex::kBinary},
    {.name = "scale", .arity = 1, .shape = same_as_input, .flops = per_out<1>,
     .bytes = unary_bytes, .examples = ex::kScale},
    {.name = "sum", .arity = 1, .shape = sum_shape, .flops = per_in<1>, .bytes = unary_bytes,
     .examples = ex::kSum},
    {.name = "mean", .arity = 1, .shape = mean_shape, .flops = per_in<1>, .bytes = unary_bytes,
     .examples = ex::kMean},
    {.name = "sigmoid", .arity = 1, .shape = same_as_input, .flops = per_out<4>,
     .bytes = unary_bytes, .examples = ex::kUnary},
    {.name = "tanh", .arity = 1, .shape = same_as_input, .flops = per_out<4>,
     .bytes = unary_bytes, .examples = ex::kUnary},
    {.name = "relu", .arity = 1, .shape = same_as_input, .flops = per_out<1>,
     .bytes = unary_bytes, .examples = ex::kUnary},
    {.name = "identity", .arity = 1, .shape = same_as_input, .flops = per_out<0>,
     .bytes = unary_bytes, .examples = ex::kUnary},
    {.name = "softmax", .arity = 1, .shape = softmax_shape, .flops = per_out<5>,
     .bytes = unary_bytes, .examples = ex::kSoftmax},
    {.name = "log_softmax", .arity = 1, .shape = log_softmax_shape, .flops = per_out<5>,
     .bytes = unary_bytes, .examples = ex::kLogSoftmax},
    {.name = "mse_loss", .arity = 2, .shape = mse_shape, .flops = per_in<3>,
     .bytes = binary_bytes, .examples = ex::kMseLoss},
    {.name = "cross_entropy", .arity = 2, .shape = ce_shape, .flops = per_in<7>,
     .bytes = binary_bytes, .examples = ex::kCrossEntropy},
    {.name = "cross_entropy_labels", .arity = 2, .shape = ce_labels_shape, .flops = per_in<5>,
     .bytes = labels_bytes, .int_inputs = 0b10, .check = check_labels,
     .examples = ex::kCrossEntropyLabels},
    {.name = "conv2d", .arity = 3, .shape = conv2d_shape, .flops = conv2d_flops,
     .bytes = conv2d_bytes, .examples = ex::kConv2d},
    {.name = "max_pool2d", .arity = 1, .shape = max_pool_shape, .flops = pool_flops,
     .bytes = unary_bytes, .workspace = max_pool_workspace, .examples = ex::kPool},
    {.name = "avg_pool2d", .arity = 1, .shape = avg_pool_shape, .flops = pool_flops,
     .bytes = unary_bytes, .examples = ex::kPool},
    {.name = "reshape", .arity = 1, .shape = reshape_shape, .flops = zero_cost,
     .bytes = zero_cost, .view = true, .examples = ex::kReshape},
    {.name = "dropout", .arity = 1, .shape = dropout_shape, .flops = per_out<1>,
     .bytes = unary_bytes, .examples = ex::kDropout},
    {.name = "batch_norm", .arity = 5, .shape = batch_norm_shape, .flops = bn_flops,
     .bytes = bn_bytes, .examples = ex::kBatchNorm},
    {.name = "embedding", .arity = 2, .shape = seq_rules::embedding_shape, .flops = zero_cost,
     .bytes = seq_rules::embedding_bytes, .int_inputs = 0b1, .check = seq_rules::embedding_check,
     .examples = ex::kEmbedding},
    {.name = "layer_norm", .arity = 3, .shape = seq_rules::layer_norm_shape,
     .flops = seq_rules::layer_norm_flops, .bytes = seq_rules::layer_norm_bytes,
     .workspace = seq_rules::layer_norm_workspace, .examples = ex::kLayerNorm},
    {.name = "gelu", .arity = 1, .shape = same_as_input, .flops = seq_rules::gelu_flops,
     .bytes = unary_bytes, .examples = ex::kGelu},
    {.name = "transpose", .arity = 1, .shape = seq_rules::transpose_shape, .flops = zero_cost,
     .bytes = seq_rules::copy_bytes, .examples = ex::kTranspose},
    {.name = "slice", .arity = 1, .shape = seq_rules::slice_shape, .flops = zero_cost,
     .bytes = seq_rules::copy_bytes, .examples = ex::kSlice},
    {.name = "concat", .arity = 2, .shape = seq_rules::concat_shape, .flops = zero_cost,
     .bytes = seq_rules::concat_bytes, .examples = ex::kConcat},
    {.name = "causal_attention", .arity = 1, .shape = attention_shape, .flops = attention_flops,
     .bytes = attention_bytes, .workspace = attention_workspace, .examples = ex::kAttention},
    {.name = "lstm", .arity = 4, .shape = lstm_shape, .flops = lstm_flops,
     .bytes = lstm_bytes<OpKind::Lstm, 4>, .workspace = lstm_workspace<OpKind::Lstm>,
     .examples = ex::kLstm},
    {.name = "linear", .arity = 3, .shape = linear_shape, .flops = linear_flops,
     .bytes = linear_bytes, .examples = ex::kLinear},
    {.name = "lstm_gates", .arity = 2, .shape = lstm_gates_shape, .flops = lstm_gates_flops,
     .bytes = lstm_bytes<OpKind::LstmGates, 2>,
     .workspace = lstm_workspace<OpKind::LstmGates>, .examples = ex::kLstmGates},
    // exp, add, divide (as sigmoid's 4) and the product.
    {.name = "silu", .arity = 1, .shape = same_as_input, .flops = per_out<5>,
     .bytes = unary_bytes, .examples = ex::kUnary},
    {.name = "linear_gelu", .arity = 3, .shape = linear_gelu_shape, .flops = linear_gelu_flops,
     .bytes = linear_gelu_bytes, .workspace = linear_gelu_workspace, .examples = ex::kLinearGelu},
};
static_assert(sizeof(kMeta) / sizeof(kMeta[0]) == kOpCount,
              "every OpKind needs its metadata row in ops/meta.cpp");

}  // namespace

const OpMeta& op_meta(OpKind k) {
  int i = static_cast<int>(k);
  if (i < 0 || i >= kOpCount)
    throw ValueError("unknown op kind " + std::to_string(i) + " (there are " +
                     std::to_string(kOpCount) + " kinds)");
  return kMeta[i];
}

std::vector<Shape> example_shapes(const OpExample& e) {
  std::vector<Shape> v;
  const char* p = e.shapes;
  while (*p) {
    if (*p == ' ') {
      ++p;
      continue;
    }
    int64_t dims[kMaxDims];
    int n = 0;
    for (;;) {
      char* end = nullptr;
      const long long d = std::strtoll(p, &end, 10);
      if (end == p || n == kMaxDims)
        throw ValueError(std::string("example shapes '") + e.shapes + "' are not like '5x7 7'");
      dims[n++] = d;
      p = end;
      if (*p != 'x') break;
      ++p;
    }
    v.push_back(make_shape(dims, n, "example"));
  }
  return v;
}

std::string example_label(const OpExample& e) {
  return *e.note ? std::string(e.shapes) + ", " + e.note : std::string(e.shapes);
}

OpKind op_from_name(const char* name) {
  std::string all;
  for (int i = 0; i < kOpCount; ++i) {
    if (std::string(kMeta[i].name) == name) return static_cast<OpKind>(i);
    all += (i ? ", " : "") + std::string(kMeta[i].name);
  }
  throw ValueError(std::string("unknown op name '") + name + "' (known: " + all + ")");
}

}  // namespace lldl
