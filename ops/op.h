// Every op kind lldl knows, and one metadata row per kind.
//
// Adding an op: an enum entry here, its row in ops/meta.cpp (name, arity,
// shape rule, FLOPs, bytes), one kernel pair per backend, its backward rule
// (in the kernel pair) and its tests. The static_assert in meta.cpp makes a
// forgotten row a compile error; tests/test_gradcheck.cpp fails for a kind
// with no gradient check.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace lldl {

enum class OpKind : uint8_t {
  MatMul,       // (a, b) -> op(a) @ op(b); attr.matmul selects transposes
  BiasAdd,      // (x [..., n], b [n]) -> x + b broadcast over rows
  Add,          // (a, b) -> a + b, same shapes
  Sub,          // (a, b) -> a - b
  Mul,          // (a, b) -> a * b elementwise
  Scale,        // (x) -> alpha * x
  Sum,          // (x) -> sum over attr.reduce.axis (-1: all, keeps dims)
  Mean,         // (x) -> mean over attr.reduce.axis
  Sigmoid,
  Tanh,
  Relu,
  Identity,
  Softmax,      // over the last dimension, max-subtracted
  LogSoftmax,   // over the last dimension
  MseLoss,      // (pred, target) -> mean((pred - target)^2), scalar
  CrossEntropy,        // (logits [n, c], targets [n, c] one-hot or soft) -> scalar mean
  CrossEntropyLabels,  // (logits [n, c], labels int32 [n]) -> scalar mean
  Count
};
constexpr int kOpCount = static_cast<int>(OpKind::Count);
constexpr int kMaxInputs = 3;

// Small attribute payload of a tape entry (plain data, no pointers).
union OpAttr {
  struct {
    uint8_t trans_a, trans_b;
  } matmul;
  struct {
    float alpha;
  } scale;
  struct {
    int32_t axis;  // -1 reduces everything to a scalar
  } reduce;
  uint8_t raw[16];
};
static_assert(sizeof(OpAttr) == 16);

inline OpAttr no_attr() {
  OpAttr a{};
  return a;
}

struct OpMeta {
  const char* name;
  int arity;
  // Validates the inputs and returns the output shape; throws ShapeError with
  // a message naming the op and the shapes.
  Shape (*shape)(const Shape* in, const OpAttr& attr);
  // Forward FLOPs and bytes moved (float32), for the profiler.
  double (*flops)(const Shape* in, const Shape& out, const OpAttr& attr);
  double (*bytes)(const Shape* in, const Shape& out, const OpAttr& attr);
};

// Throws ValueError for a kind outside the enum.
const OpMeta& op_meta(OpKind k);
inline const char* op_name(OpKind k) { return op_meta(k).name; }
// Looks an op up by name ("matmul"); throws ValueError listing the names.
OpKind op_from_name(const char* name);

}  // namespace lldl
