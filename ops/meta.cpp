// Metadata rows: name, arity, shape rule, FLOPs and bytes for each op kind.
#include <string>

#include "core/error.h"
#include "ops/op.h"

namespace lldl {

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
  int64_t m = a.matmul.trans_a ? A[1] : A[0], ka = a.matmul.trans_a ? A[0] : A[1];
  int64_t kb = a.matmul.trans_b ? B[1] : B[0], n = a.matmul.trans_b ? B[0] : B[1];
  if (ka != kb)
    fail("matmul", std::string("inner dimensions differ: a") + (a.matmul.trans_a ? "^T" : "") +
                       " is " + std::to_string(m) + "x" + std::to_string(ka) + ", b" +
                       (a.matmul.trans_b ? "^T" : "") + " is " + std::to_string(kb) + "x" +
                       std::to_string(n));
  return Shape{m, n};
}
double matmul_flops(const Shape* in, const Shape& out, const OpAttr& a) {
  int64_t k = a.matmul.trans_a ? in[0][0] : in[0][1];
  return 2.0 * static_cast<double>(out.numel()) * static_cast<double>(k);
}
double matmul_bytes(const Shape* in, const Shape& out, const OpAttr&) {
  return f32_bytes(in[0]) + f32_bytes(in[1]) + f32_bytes(out);
}

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

// Rows in OpKind order.
constexpr OpMeta kMeta[] = {
    {"matmul", 2, matmul_shape, matmul_flops, matmul_bytes},
    {"bias_add", 2, bias_shape, per_out<1>, binary_bytes},
    {"add", 2, add_shape, per_out<1>, binary_bytes},
    {"sub", 2, sub_shape, per_out<1>, binary_bytes},
    {"mul", 2, mul_shape, per_out<1>, binary_bytes},
    {"scale", 1, same_as_input, per_out<1>, unary_bytes},
    {"sum", 1, sum_shape, per_in<1>, unary_bytes},
    {"mean", 1, mean_shape, per_in<1>, unary_bytes},
    {"sigmoid", 1, same_as_input, per_out<4>, unary_bytes},
    {"tanh", 1, same_as_input, per_out<4>, unary_bytes},
    {"relu", 1, same_as_input, per_out<1>, unary_bytes},
    {"identity", 1, same_as_input, per_out<0>, unary_bytes},
    {"softmax", 1, softmax_shape, per_out<5>, unary_bytes},
    {"log_softmax", 1, log_softmax_shape, per_out<5>, unary_bytes},
    {"mse_loss", 2, mse_shape, per_in<3>, binary_bytes},
    {"cross_entropy", 2, ce_shape, per_in<7>, binary_bytes},
    {"cross_entropy_labels", 2, ce_labels_shape, per_in<5>, labels_bytes},
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

OpKind op_from_name(const char* name) {
  std::string all;
  for (int i = 0; i < kOpCount; ++i) {
    if (std::string(kMeta[i].name) == name) return static_cast<OpKind>(i);
    all += (i ? ", " : "") + std::string(kMeta[i].name);
  }
  throw ValueError(std::string("unknown op name '") + name + "' (known: " + all + ")");
}

}  // namespace lldl
