// Every op kind lldl knows, and one metadata row per kind.
//
// Adding an op: an enum entry here, its row in ops/meta.cpp (name, arity,
// shape rule, FLOPs, bytes, example inputs), one kernel pair per backend, its
// backward rule (in the kernel pair) and its tests. The static_assert in
// meta.cpp makes a forgotten row a compile error; tests/test_op_kinds.cpp
// fails for a kind without kernels or examples, tests/test_gradcheck.cpp for
// one with no gradient check. A unary elementwise op without attributes also
// goes into LLDL_UNARY_OPS below, which gives it its graph builder and its
// Python function.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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
  Conv2d,       // (x [N,C,H,W], w [OC,C,KH,KW], b [OC]) -> [N,OC,OH,OW]; attr.conv
  MaxPool2d,    // (x [N,C,H,W]) -> [N,C,OH,OW], max over windows; attr.pool
  AvgPool2d,    // (x [N,C,H,W]) -> [N,C,OH,OW], mean over windows; attr.pool
  Reshape,      // (x) -> same elements, shape attr.reshape; a view (no copy)
  Dropout,      // (x) -> x * mask / (1 - p) in training, mask hashed from attr.dropout.seed
  BatchNorm,    // (x [N, C(, H, W)], gamma [C], beta [C], running_mean [C], running_var [C])
  Embedding,    // (ids int32 [...] (ndim <= 3), table [V, C]) -> ids.shape + [C], rows of table
  LayerNorm,    // (x [..., C], gamma [C], beta [C]) -> x.shape, over the last dim; attr.layer_norm
  Gelu,         // tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  Transpose,    // (x) -> x with dims attr.transpose.dim0 and dim1 swapped (a contiguous copy)
  Slice,        // (x) -> elements [start, start + length) along attr.slice.axis (a copy)
  Concat,       // (a, b) -> a and b joined along attr.concat.axis, other dims equal
  Attention,    // (qkv [B, T, 3C]) -> [B, T, C], causal multi-head; attr.attention; ws: softmax P
  Lstm,         // (x [B,T,I], w_ih [4H,I], w_hh [4H,H], b [4H]) -> h [B,T,H]; ws: gates, cells
  Linear,       // (x [M,K], w [K,N] ([N,K] when attr.matmul.trans_b), b [N]) -> x @ op(w) + b:
                // matmul and bias_add fused (no pass over y for the bias, no copy of dy);
                // attr.matmul.trans_a must be 0
  LstmGates,    // (gx [B,T,4H], w_hh [4H,H]) -> h [B,T,H]: lstm with the input projection
                // x W_ih^T + b done by the caller (gx); ws: gates, cells
  Silu,         // x * sigmoid(x) (swish)
  LinearGelu,   // (x, w, b) as linear -> gelu(x @ op(w) + b): the GPT MLP's first half with its
                // bias + GELU fused after the GEMM; ws: u = x op(w) + b, then du (backward)
  Count
};
constexpr int kOpCount = static_cast<int>(OpKind::Count);
constexpr int kMaxInputs = 5;  // batch_norm: x, gamma, beta, running mean and variance

// The unary elementwise ops without attributes: X(kind, builder, doc). The
// graph builders (autograd/functions.h) and the Python functions
// (bindings/graph.cpp) are generated from this list.
#define LLDL_UNARY_OPS(X)                                                          \
  X(Sigmoid, sigmoid, "1 / (1 + exp(-x)), elementwise")                            \
  X(Tanh, tanh, "tanh(x), elementwise")                                            \
  X(Relu, relu, "max(x, 0), elementwise (gradient 0 at 0)")                        \
  X(Identity, identity, "x itself (a copy); its gradient passes straight through") \
  X(Gelu, gelu, "GELU, tanh approximation (PyTorch approximate='tanh'): "          \
                "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))")                 \
  X(Silu, silu, "x * sigmoid(x), elementwise (SiLU, swish)")

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
  struct {
    float p;           // drop probability, in [0, 1)
    uint8_t training;  // 0: identity
    uint64_t seed;     // the mask is a pure function of (seed, element index)
  } dropout;
  struct {
    float momentum, eps;
    uint8_t training;  // 1: batch statistics, running buffers updated in place
  } batch_norm;
  struct {
    int32_t stride, padding;  // stride >= 1, zero padding >= 0 on every side
  } conv;
  struct {
    int32_t kernel, stride;  // square windows; stride 0 means stride = kernel
  } pool;
  struct {
    int32_t n_head;  // >= 1, divides n_embd = C
  } attention;
  struct {
    // Target dimensions; unused trailing slots are -1 (all -1: a scalar).
    // int32 keeps the union at 16 bytes; reshape() refuses larger dims.
    int32_t dims[4];
  } reshape;
  struct {
    float eps;  // added to the variance, >= 0
  } layer_norm;
  // Dims and axes may be negative (counted from the end); the shape rule and
  // the kernels resolve them against the input's rank.
  struct {
    int32_t dim0, dim1;
  } transpose;
  struct {
    int32_t axis;
    int32_t start, length;  // slice() refuses values that do not fit
  } slice;
  struct {
    int32_t axis;
  } concat;
  uint8_t raw[16];
};
static_assert(sizeof(OpAttr) == 16);

inline OpAttr no_attr() {
  OpAttr a{};
  return a;
}

// Attribute builders, one per op family, shared by the graph API and tests.
inline OpAttr matmul_attr(bool trans_a, bool trans_b) {
  OpAttr a{};
  a.matmul.trans_a = trans_a;
  a.matmul.trans_b = trans_b;
  return a;
}
inline OpAttr scale_attr(float alpha) {
  OpAttr a{};
  a.scale.alpha = alpha;
  return a;
}
inline OpAttr reduce_attr(int axis) {
  OpAttr a{};
  a.reduce.axis = axis;
  return a;
}
inline OpAttr conv_attr(int stride, int padding) {
  OpAttr a{};
  a.conv.stride = stride;
  a.conv.padding = padding;
  return a;
}
inline OpAttr pool_attr(int kernel, int stride = 0) {
  OpAttr a{};
  a.pool.kernel = kernel;
  a.pool.stride = stride;  // 0: the shape rule and kernels use stride = kernel
  return a;
}
// Target dims as given (no range check: reshape() checks, tests pass bad ones).
inline OpAttr reshape_attr(int32_t d0, int32_t d1 = -1, int32_t d2 = -1, int32_t d3 = -1) {
  OpAttr a{};
  a.reshape.dims[0] = d0;
  a.reshape.dims[1] = d1;
  a.reshape.dims[2] = d2;
  a.reshape.dims[3] = d3;
  return a;
}
inline OpAttr dropout_attr(float p, bool training, uint64_t seed) {
  OpAttr a{};
  a.dropout.p = p;
  a.dropout.training = training;
  a.dropout.seed = seed;
  return a;
}
inline OpAttr attention_attr(int n_head) {
  OpAttr a{};
  a.attention.n_head = n_head;
  return a;
}
inline OpAttr batch_norm_attr(bool training, float momentum = 0.1f, float eps = 1e-5f) {
  OpAttr a{};
  a.batch_norm.training = training;
  a.batch_norm.momentum = momentum;
  a.batch_norm.eps = eps;
  return a;
}

inline OpAttr layer_norm_attr(float eps = 1e-5f) {
  OpAttr a{};
  a.layer_norm.eps = eps;
  return a;
}
inline OpAttr transpose_attr(int32_t dim0, int32_t dim1) {
  OpAttr a{};
  a.transpose.dim0 = dim0;
  a.transpose.dim1 = dim1;
  return a;
}
inline OpAttr slice_attr(int32_t axis, int32_t start, int32_t length) {
  OpAttr a{};
  a.slice.axis = axis;
  a.slice.start = start;
  a.slice.length = length;
  return a;
}
inline OpAttr concat_attr(int32_t axis) {
  OpAttr a{};
  a.concat.axis = axis;
  return a;
}

// One valid set of inputs of an op kind, for tests and benchmarks: the
// cross-backend cases (tests/cuda_cases.h), the type checks of
// tests/test_op_errors.cpp, bench/bench_cuda.cpp and bench/study_ops.h.
struct OpExample {
  const char* shapes;     // input shapes separated by spaces: "5x7 7x3"
  OpAttr attr = no_attr();
  const char* note = "";  // what the case exercises ("overlapping windows")
  bool large = false;     // on a GPU and in benchmarks only (slow on the host)
  double lo = -2.0, hi = 2.0;  // float inputs uniform in [lo, hi)
  int64_t classes = 0;         // int32 inputs uniform in [0, classes)
};
// The input shapes of an example ("5x7 7x3" -> {5x7, 7x3}).
std::vector<Shape> example_shapes(const OpExample& e);
// "5x7 7x3, overlapping windows": the shapes and the note, for messages.
std::string example_label(const OpExample& e);

// A kind's examples: a view of a static array (C++17, for nvcc, so no span).
struct OpExamples {
  const OpExample* first = nullptr;
  int count = 0;
  constexpr OpExamples() = default;
  template <size_t N>
  constexpr OpExamples(const OpExample (&a)[N]) : first(a), count(static_cast<int>(N)) {}
  const OpExample* begin() const { return first; }
  const OpExample* end() const { return first + count; }
};

struct OpMeta {
  const char* name;
  int arity;
  // Validates the inputs and returns the output shape; throws ShapeError with
  // a message naming the op and the shapes.
  Shape (*shape)(const Shape* in, const OpAttr& attr);
  // Forward FLOPs and bytes moved (float32), for the profiler.
  double (*flops)(const Shape* in, const Shape& out, const OpAttr& attr);
  double (*bytes)(const Shape* in, const Shape& out, const OpAttr& attr);
  // A view: Graph::record makes the output alias input 0's data instead of
  // allocating it, and the forward kernel does nothing (reshape). Gradients
  // stay separate buffers.
  bool view = false;
  // Bit i set: input i is int32 (labels, token ids) and never has a gradient;
  // the other inputs have the graph's compute dtype.
  uint8_t int_inputs = 0;
  // Host-side check of input values before any kernel runs (label and token
  // id ranges); throws ValueError naming the op, the value and where it is.
  // data[i] points at input i's elements for the int32 inputs (the only ones
  // a check may read: a GPU graph copies just those to the host); the
  // others may be null. Null: no value check.
  void (*check)(const Shape* in, const void* const* data, const OpAttr& attr) = nullptr;
  // Elements (of the compute dtype) of per-entry scratch that the forward
  // kernel fills and the backward kernel reads (attention probabilities, LSTM
  // gates and cell states): allocated in the step region next to the output
  // and passed as KernelArgs::ws. Null: no workspace. Only what backward
  // needs belongs here.
  int64_t (*workspace)(const Shape* in, const Shape& out, const OpAttr& attr) = nullptr;
  // Example inputs (ops/examples.h), smallest first; every kind has some.
  OpExamples examples = {};
};

// A dim or axis as given (negative counts from the end) resolved against a
// rank; the shape rules have checked that it is in [-ndim, ndim).
inline int resolve_axis(int32_t axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

// True when input i of kind k is an int32 input.
inline bool is_int_input(const OpMeta& m, int i) { return (m.int_inputs >> i) & 1; }

// Throws ValueError for a kind outside the enum.
const OpMeta& op_meta(OpKind k);
inline const char* op_name(OpKind k) { return op_meta(k).name; }
// Looks an op up by name ("matmul"); throws ValueError listing the names.
OpKind op_from_name(const char* name);

}  // namespace lldl
