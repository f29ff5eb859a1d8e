// Bad inputs: every op refuses them with the right exception type and a
// message naming the op and the shapes, and a refused op leaves the graph as
// it was. Also stale handles, unknown kinds, labels out of range and anomaly
// mode (NaN/Inf detection naming the op).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "backends/cuda/device.h"

using namespace lldl;

namespace {

enum class Err { Shape, Type, Value };
std::string err_name(Err e) {
  return e == Err::Shape ? "ShapeError" : e == Err::Type ? "TypeError" : "ValueError";
}

// Runs f, which must throw E; returns the message ("" after a failed check).
template <class E, class F>
std::string message_of(F&& f, const std::string& expected) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected " << expected << ", got another exception: " << e.what());
    return "";
  }
  FAIL_CHECK("expected " << expected << ", nothing was thrown");
  return "";
}

template <class F>
std::string message_of(Err e, F&& f) {
  if (e == Err::Shape) return message_of<ShapeError>(f, "ShapeError");
  if (e == Err::Type) return message_of<TypeError>(f, "TypeError");
  return message_of<ValueError>(f, "ValueError");
}

void check_contains(const std::string& msg, const std::vector<std::string>& parts) {
  for (const std::string& p : parts)
    CHECK_MESSAGE(msg.find(p) != std::string::npos,
                  "expected the message to contain '" << p << "', it is '" << msg << "'");
}

Tensor labels_input(Graph& g, const Shape& s, int32_t value) {
  std::vector<int32_t> y(static_cast<size_t>(s.numel()), value);
  return g.input(s, y.data(), DType::I32);
}

// One bad input: the op, the input shapes and dtypes, the exception and what
// its message must contain (besides the op name).
struct BadInput {
  OpKind kind;
  std::string what;  // the mistake
  std::vector<Shape> shapes;
  Err err;
  std::vector<std::string> parts;
  OpAttr attr = no_attr();
  std::vector<DType> dtypes = {};  // empty: float32, int32 for labels
  int32_t label = 0;               // value of every int32 element

  DType dtype(size_t i) const {
    if (!dtypes.empty()) return dtypes[i];
    return is_int_input(op_meta(kind), int(i)) ? DType::I32 : DType::F32;
  }
};


std::vector<BadInput> bad_inputs() {
  using K = OpKind;
  const DType f32 = DType::F32, f64 = DType::F64, i32 = DType::I32;
  std::vector<BadInput> b = {
      {K::MatMul,
       "inner dimensions differ",
       {{32, 10}, {16, 1}},
       Err::Shape,
       {"matmul: inner dimensions differ: a is 32x10, b is 16x1"}},
      {K::MatMul,
       "inner dimensions differ, a transposed",
       {{10, 32}, {16, 1}},
       Err::Shape,
       {"a^T is 32x10", "b is 16x1"},
       matmul_attr(1, 0)},
      {K::MatMul,
       "inner dimensions differ, b transposed",
       {{32, 10}, {1, 16}},
       Err::Shape,
       {"a is 32x10", "b^T is 16x1"},
       matmul_attr(0, 1)},
      {K::MatMul, "1-D operand", {{10}, {10, 2}}, Err::Shape, {"2-D", "a is 10", "b is 10x2"}},
      {K::MatMul, "3-D operand", {{2, 3, 4}, {4, 2}}, Err::Shape, {"a is 2x3x4", "b is 4x2"}},
      {K::Linear, "bias length differs from N", {{4, 3}, {3, 5}, {6}}, Err::Shape,
       {"linear: bias must be a vector of the output's 5 columns", "x is 4x3", "w is 3x5", "b is 6"}},
      {K::Linear, "bias of length K, trans_b", {{4, 3}, {5, 3}, {3}}, Err::Shape,
       {"output's 5 columns", "w is 5x3 (trans_b)", "b is 3"}, matmul_attr(0, 1)},
      {K::Linear, "bias is a matrix", {{4, 3}, {3, 5}, {1, 5}}, Err::Shape,
       {"bias must be a vector", "b is 1x5"}},
      {K::Linear, "inner dimensions differ", {{4, 3}, {2, 5}, {5}}, Err::Shape,
       {"linear: inner dimensions differ: x is 4x3, w is 2x5"}},
      {K::Linear, "inner dimensions differ, trans_b", {{4, 3}, {5, 2}, {5}}, Err::Shape,
       {"linear: inner dimensions differ: x is 4x3, w^T is 2x5", "w is 5x2 (trans_b)"}, matmul_attr(0, 1)},
      {K::Linear, "w given untransposed with trans_b", {{4, 3}, {3, 5}, {5}}, Err::Shape,
       {"inner dimensions differ", "w^T is 5x3", "b is 5"}, matmul_attr(0, 1)},
      {K::Linear, "trans_a", {{3, 4}, {3, 5}, {5}}, Err::Shape,
       {"linear: trans_a is not supported", "x is 3x4", "w is 3x5", "b is 5"}, matmul_attr(1, 0)},
      {K::Linear, "3-D x", {{2, 4, 3}, {3, 5}, {5}}, Err::Shape,
       {"linear: needs a 2-D x (M, K) and a 2-D w (K, N)", "x is 2x4x3"}},
      {K::Linear, "1-D w", {{4, 3}, {3}, {1}}, Err::Shape, {"2-D w", "w is 3", "b is 1"}},
      {K::Linear, "float64 bias", {{4, 3}, {3, 5}, {5}}, Err::Type,
       {"linear: input 2 is float64, expected float32"}, no_attr(), {f32, f32, f64}},
      // linear_gelu: linear's rules under its own name.
      {K::LinearGelu, "bias length differs from N", {{4, 3}, {3, 5}, {6}}, Err::Shape,
       {"linear_gelu: bias must be a vector of the output's 5 columns", "x is 4x3", "w is 3x5", "b is 6"}},
      {K::LinearGelu, "inner dimensions differ, trans_b", {{4, 3}, {5, 2}, {5}}, Err::Shape,
       {"linear_gelu: inner dimensions differ: x is 4x3, w^T is 2x5", "w is 5x2 (trans_b)"}, matmul_attr(0, 1)},
      {K::LinearGelu, "3-D x", {{2, 4, 3}, {3, 5}, {5}}, Err::Shape,
       {"linear_gelu: needs a 2-D x (M, K) and a 2-D w (K, N)", "x is 2x4x3"}},
      {K::LinearGelu, "trans_a", {{3, 4}, {3, 5}, {5}}, Err::Shape,
       {"linear_gelu: trans_a is not supported"}, matmul_attr(1, 0)},
      {K::LinearGelu, "float64 bias", {{4, 3}, {3, 5}, {5}}, Err::Type,
       {"linear_gelu: input 2 is float64, expected float32"}, no_attr(), {f32, f32, f64}},
      {K::BiasAdd, "bias length differs", {{4, 5}, {6}}, Err::Shape, {"x is 4x5", "bias is 6"}},
      {K::BiasAdd, "bias is a matrix", {{4, 5}, {2, 5}}, Err::Shape, {"x is 4x5", "bias is 2x5"}},
      {K::BiasAdd, "scalar input", {Shape{}, Shape{1}}, Err::Shape, {"x is scalar", "bias is 1"}},
      {K::Add,
       "shapes differ",
       {{2, 3}, {3, 2}},
       Err::Shape,
       {"add: shapes differ: a is 2x3, b is 3x2"}},
      {K::Add, "ranks differ", {{2, 3}, {2, 3, 1}}, Err::Shape, {"a is 2x3", "b is 2x3x1"}},
      {K::Sub,
       "shapes differ",
       {{4, 1}, {1, 4}},
       Err::Shape,
       {"sub: shapes differ: a is 4x1, b is 1x4"}},
      {K::Mul, "shapes differ", {{5}, {6}}, Err::Shape, {"mul: shapes differ: a is 5, b is 6"}},
      {K::Sum,
       "axis past the rank",
       {{3, 4}},
       Err::Shape,
       {"sum: axis 2 is out of range for input 3x4"},
       reduce_attr(2)},
      {K::Sum, "negative axis other than -1", {{3, 4}}, Err::Shape, {"axis -2", "3x4"}, reduce_attr(-2)},
      {K::Mean, "axis past the rank", {{2, 3, 4}}, Err::Shape, {"mean: axis 3", "2x3x4"}, reduce_attr(3)},
      {K::Mean, "empty input", {{0, 3}}, Err::Shape, {"mean: input is empty (0x3)"}, reduce_attr(-1)},
      {K::Softmax,
       "empty last dimension",
       {{3, 0}},
       Err::Shape,
       {"softmax: needs a non-empty last dimension: input is 3x0"}},
      {K::Softmax, "scalar input", {Shape{}}, Err::Shape, {"input is scalar"}},
      {K::LogSoftmax,
       "empty last dimension",
       {{2, 0}},
       Err::Shape,
       {"log_softmax:", "input is 2x0"}},
      {K::LogSoftmax, "scalar input", {Shape{}}, Err::Shape, {"log_softmax:", "input is scalar"}},
      {K::MseLoss,
       "shapes differ",
       {{3, 4}, {4, 3}},
       Err::Shape,
       {"prediction is 3x4", "target is 4x3"}},
      {K::MseLoss, "empty batch", {{0, 3}, {0, 3}}, Err::Shape, {"mse_loss: empty batch (0x3)"}},
      {K::CrossEntropy,
       "shapes differ",
       {{3, 4}, {3, 5}},
       Err::Shape,
       {"logits are 3x4", "targets are 3x5"}},
      {K::CrossEntropy, "1-D logits", {{4}, {4}}, Err::Shape, {"logits must be 2-D, got 4"}},
      {K::CrossEntropy,
       "empty batch",
       {{0, 4}, {0, 4}},
       Err::Shape,
       {"cross_entropy: empty batch (0x4)"}},
      {K::CrossEntropy, "no classes", {{3, 0}, {3, 0}}, Err::Shape, {"empty batch (3x0)"}},
      {K::CrossEntropyLabels,
       "one label short",
       {{3, 4}, {2}},
       Err::Shape,
       {"logits are 3x4", "labels are 2"}},
      {K::CrossEntropyLabels,
       "labels are a matrix",
       {{3, 4}, {3, 2}},
       Err::Shape,
       {"logits are 3x4", "labels are 3x2"}},
      {K::CrossEntropyLabels,
       "1-D logits",
       {{4}, {4}},
       Err::Shape,
       {"cross_entropy_labels: logits must be 2-D, got 4"}},
      {K::CrossEntropyLabels,
       "empty batch",
       {{0, 4}, {0}},
       Err::Shape,
       {"cross_entropy_labels: empty batch (0x4)"}},
      {K::CrossEntropyLabels,
       "label past the class count",
       {{2, 3}, {2}},
       Err::Value,
       {"label 3", "3 classes", "2x3"},
       no_attr(),
       {},
       3},
      {K::CrossEntropyLabels,
       "negative label",
       {{2, 3}, {2}},
       Err::Value,
       {"label -1", "3 classes"},
       no_attr(),
       {},
       -1},
      {K::CrossEntropyLabels,
       "float labels",
       {{2, 3}, {2}},
       Err::Type,
       {"input 1 is float32, expected int32"},
       no_attr(),
       {f32, f32}},
      {K::CrossEntropy,
       "int32 targets through apply",
       {{2, 3}, {2, 3}},
       Err::Type,
       {"input 1 is int32, expected float32"},
       no_attr(),
       {f32, i32}},
      {K::Scale,
       "int32 input",
       {{2, 3}},
       Err::Type,
       {"input 0 is int32, expected float32"},
       no_attr(),
       {i32}},
      {K::Sigmoid,
       "int32 input",
       {{2, 3}},
       Err::Type,
       {"input 0 is int32, expected float32"},
       no_attr(),
       {i32}},
      {K::Tanh,
       "float64 input in a float32 graph",
       {{2, 3}},
       Err::Type,
       {"input 0 is float64, expected float32"},
       no_attr(),
       {f64}},
      {K::Relu, "int32 input", {{2, 3}}, Err::Type, {"input 0 is int32"}, no_attr(), {i32}},
      {K::Silu, "int32 input", {{2, 3}}, Err::Type, {"input 0 is int32, expected float32"},
       no_attr(), {i32}},
      {K::Silu, "float64 input in a float32 graph", {{4}}, Err::Type,
       {"input 0 is float64, expected float32"}, no_attr(), {f64}},
      {K::Identity, "int32 input", {{4}}, Err::Type, {"input 0 is int32"}, no_attr(), {i32}},
      {K::Add,
       "int32 second input",
       {{2, 2}, {2, 2}},
       Err::Type,
       {"input 1 is int32"},
       no_attr(),
       {f32, i32}},
      {K::Conv2d,
       "channels differ",
       {{64, 3, 28, 28}, {16, 1, 5, 5}, {16}},
       Err::Shape,
       {"conv2d: input has 3 channels but weight expects 1: x is 64x3x28x28, w is 16x1x5x5"},
       conv_attr(1, 2)},
      {K::Conv2d,
       "3-D x",
       {{3, 28, 28}, {16, 3, 5, 5}, {16}},
       Err::Shape,
       {"conv2d: x must be (N, C, H, W), got 3x28x28"},
       conv_attr(1, 0)},
      {K::Conv2d,
       "2-D weight",
       {{2, 1, 8, 8}, {16, 25}, {16}},
       Err::Shape,
       {"w must be (OC, C, KH, KW), got 16x25"},
       conv_attr(1, 0)},
      {K::Conv2d,
       "bias length differs from the output channels",
       {{2, 1, 8, 8}, {16, 1, 5, 5}, {8}},
       Err::Shape,
       {"bias must hold one value per output channel: w is 16x1x5x5 (16 output channels), b is 8"},
       conv_attr(1, 0)},
      {K::Conv2d, "bias is a matrix", {{2, 1, 8, 8}, {16, 1, 5, 5}, {1, 16}}, Err::Shape,
       {"b is 1x16"}, conv_attr(1, 0)},
      {K::Conv2d, "stride 0", {{2, 1, 8, 8}, {4, 1, 3, 3}, {4}}, Err::Shape,
       {"conv2d: stride must be >= 1, got 0"}, conv_attr(0, 0)},
      {K::Conv2d, "negative padding", {{2, 1, 8, 8}, {4, 1, 3, 3}, {4}}, Err::Shape,
       {"conv2d: padding must be >= 0, got -1"}, conv_attr(1, -1)},
      {K::Conv2d,
       "kernel larger than the input",
       {{1, 1, 3, 3}, {2, 1, 5, 5}, {2}},
       Err::Shape,
       {"conv2d: kernel 5x5 is larger than the padded input 3x3 (x is 1x1x3x3, padding 0)"},
       conv_attr(1, 0)},
      {K::Conv2d,
       "kernel wider than the padded input",
       {{1, 1, 8, 2}, {2, 1, 3, 5}, {2}},
       Err::Shape,
       {"kernel 3x5 is larger than the padded input 10x4", "padding 1"},
       conv_attr(1, 1)},
      {K::Conv2d, "empty kernel", {{1, 1, 8, 8}, {2, 1, 0, 3}, {2}}, Err::Shape,
       {"kernel must be at least 1x1: w is 2x1x0x3"}, conv_attr(1, 0)},
      {K::MaxPool2d, "3-D x", {{4, 5, 5}}, Err::Shape,
       {"max_pool2d: x must be (N, C, H, W), got 4x5x5"}, pool_attr(2)},
      {K::MaxPool2d, "kernel 0", {{1, 1, 4, 4}}, Err::Shape,
       {"max_pool2d: kernel must be >= 1, got 0"}, pool_attr(0)},
      {K::MaxPool2d, "negative stride", {{1, 1, 4, 4}}, Err::Shape,
       {"max_pool2d: stride must be >= 1 (or 0 for stride = kernel), got -2"}, pool_attr(2, -2)},
      {K::MaxPool2d, "kernel larger than the input", {{1, 1, 3, 3}}, Err::Shape,
       {"max_pool2d: kernel 4x4 is larger than the input 3x3 (x is 1x1x3x3)"}, pool_attr(4)},
      {K::MaxPool2d, "kernel wider than the input", {{2, 1, 5, 2}}, Err::Shape,
       {"kernel 3x3 is larger than the input 5x2"}, pool_attr(3, 1)},
      {K::AvgPool2d, "2-D x", {{4, 5}}, Err::Shape, {"avg_pool2d: x must be (N, C, H, W), got 4x5"},
       pool_attr(2)},
      {K::AvgPool2d, "negative kernel", {{1, 1, 4, 4}}, Err::Shape,
       {"avg_pool2d: kernel must be >= 1, got -1"}, pool_attr(-1)},
      {K::AvgPool2d, "kernel larger than the input", {{1, 2, 2, 6}}, Err::Shape,
       {"avg_pool2d: kernel 3x3 is larger than the input 2x6 (x is 1x2x2x6)"}, pool_attr(3)},
      {K::Reshape, "element count differs", {{2, 3, 4}}, Err::Shape,
       {"reshape: cannot view x of 2x3x4 (24 elements) as 5x5 (25 elements)"}, reshape_attr(5, 5)},
      {K::Reshape, "negative dimension", {{2, 3, 4}}, Err::Shape,
       {"reshape: target dimension 0 is -2"}, reshape_attr(-2, 12)},
      {K::Reshape, "a dimension after an unused slot", {{2, 3, 4}}, Err::Shape,
       {"reshape: target dimension 2 is 4"}, reshape_attr(6, -1, 4)},
      {K::Reshape, "int32 input", {{2, 3}}, Err::Type, {"reshape: input 0 is int32"}, reshape_attr(3, 2),
       {i32}},
      {K::Conv2d, "float64 weight", {{1, 1, 4, 4}, {1, 1, 3, 3}, {1}}, Err::Type,
       {"conv2d: input 1 is float64, expected float32"}, conv_attr(1, 0), {f32, f64, f32}},
      {K::Dropout,
       "p = 1",
       {{3, 4}},
       Err::Value,
       {"dropout: p must be in [0, 1), got p = 1", "x is 3x4"},
       dropout_attr(1.0f, true, 1)},
      {K::Dropout, "negative p", {{3, 4}}, Err::Value, {"got p = -0.25"}, dropout_attr(-0.25f, true, 1)},
      {K::Dropout, "NaN p, even in eval", {{3, 4}}, Err::Value, {"got p = nan"},
       dropout_attr(std::numeric_limits<float>::quiet_NaN(), false, 1)},
      {K::Dropout, "int32 input", {{2, 3}}, Err::Type, {"input 0 is int32"}, dropout_attr(0.5f, true, 1), {i32}},
      {K::BatchNorm,
       "gamma length differs from the channel count",
       {{4, 3}, {4}, {3}, {3}, {3}},
       Err::Shape,
       {"batch_norm: gamma must hold one value per channel: x is 4x3 (3 channels), gamma is 4"},
       batch_norm_attr(true)},
      {K::BatchNorm,
       "running_var length differs, 4-D x",
       {{2, 3, 4, 4}, {3}, {3}, {3}, {2}},
       Err::Shape,
       {"running_var", "x is 2x3x4x4 (3 channels)", "running_var is 2"},
       batch_norm_attr(false)},
      {K::BatchNorm,
       "beta is a matrix",
       {{4, 3}, {3}, {1, 3}, {3}, {3}},
       Err::Shape,
       {"beta", "x is 4x3", "beta is 1x3"},
       batch_norm_attr(true)},
      {K::BatchNorm,
       "3-D x",
       {{2, 3, 4}, {3}, {3}, {3}, {3}},
       Err::Shape,
       {"batch_norm: x must be (N, C) or (N, C, H, W), got 2x3x4"},
       batch_norm_attr(true)},
      {K::BatchNorm, "1-D x", {{3}, {3}, {3}, {3}, {3}}, Err::Shape, {"got 3"}, batch_norm_attr(false)},
      {K::BatchNorm,
       "training on one sample of (N, C)",
       {{1, 3}, {3}, {3}, {3}, {3}},
       Err::Value,
       {"batch_norm: training needs more than one value per channel, got 1 (x is 1x3)"},
       batch_norm_attr(true)},
      {K::BatchNorm,
       "training on a 1x1 image batch of one",
       {{1, 2, 1, 1}, {2}, {2}, {2}, {2}},
       Err::Value,
       {"more than one value per channel", "x is 1x2x1x1"},
       batch_norm_attr(true)},
      {K::BatchNorm,
       "negative eps",
       {{4, 3}, {3}, {3}, {3}, {3}},
       Err::Value,
       {"batch_norm: eps must be finite and >= 0, got eps = -1"},
       batch_norm_attr(false, 0.1f, -1.0f)},
      {K::BatchNorm,
       "momentum above 1",
       {{4, 3}, {3}, {3}, {3}, {3}},
       Err::Value,
       {"batch_norm: momentum must be in [0, 1], got momentum = 1.5"},
       batch_norm_attr(true, 1.5f)},
      {K::BatchNorm,
       "float64 running_mean",
       {{4, 3}, {3}, {3}, {3}, {3}},
       Err::Type,
       {"batch_norm: input 3 is float64, expected float32"},
       batch_norm_attr(true),
       {f32, f32, f32, f64, f32}},
      // embedding (ids int32, table (V, C))
      {K::Embedding, "token id past the vocabulary", {{2, 3}, {5, 4}}, Err::Value,
       {"embedding: token id 5 at position 0 is out of range for a vocabulary of 5 (table is 5x4)"},
       no_attr(), {}, 5},
      {K::Embedding, "negative token id", {{4}, {7, 2}}, Err::Value,
       {"token id -1 at position 0", "vocabulary of 7", "table is 7x2"}, no_attr(), {}, -1},
      {K::Embedding, "float ids", {{2, 3}, {5, 4}}, Err::Type,
       {"embedding: input 0 is float32, expected int32"}, no_attr(), {f32, f32}},
      {K::Embedding, "int32 table", {{2, 3}, {5, 4}}, Err::Type,
       {"embedding: input 1 is int32, expected float32"}, no_attr(), {i32, i32}},
      {K::Embedding, "1-D table", {{2, 3}, {5}}, Err::Shape,
       {"embedding: table must be (V, C), got 5 (ids are 2x3)"}},
      {K::Embedding, "3-D table", {{4}, {5, 4, 2}}, Err::Shape, {"table must be (V, C), got 5x4x2"}},
      {K::Embedding, "4-D ids (a 5-D output)", {{2, 2, 2, 2}, {5, 4}}, Err::Shape,
       {"embedding: ids may have at most 3 dims", "got 2x2x2x2", "table is 5x4"}},
      // layer_norm (x [..., C], gamma [C], beta [C])
      {K::LayerNorm, "gamma length differs from the features", {{4, 3}, {4}, {3}}, Err::Shape,
       {"layer_norm: gamma must hold one value per feature: x is 4x3 (3 features), gamma is 4"},
       layer_norm_attr()},
      {K::LayerNorm, "beta is a matrix", {{2, 3, 5}, {5}, {1, 5}}, Err::Shape,
       {"layer_norm: beta must hold one value per feature: x is 2x3x5 (5 features), beta is 1x5"},
       layer_norm_attr()},
      {K::LayerNorm, "scalar x", {Shape{}, {1}, {1}}, Err::Shape,
       {"layer_norm: x needs a non-empty last dimension, got scalar"}, layer_norm_attr()},
      {K::LayerNorm, "empty last dimension", {{3, 0}, {0}, {0}}, Err::Shape,
       {"layer_norm: x needs a non-empty last dimension, got 3x0"}, layer_norm_attr()},
      {K::LayerNorm, "negative eps", {{4, 3}, {3}, {3}}, Err::Value,
       {"layer_norm: eps must be finite and >= 0, got eps = -0.001 (x is 4x3)"},
       layer_norm_attr(-1e-3f)},
      {K::LayerNorm, "NaN eps", {{4, 3}, {3}, {3}}, Err::Value, {"layer_norm:", "eps = nan"},
       layer_norm_attr(std::numeric_limits<float>::quiet_NaN())},
      {K::LayerNorm, "float64 gamma", {{4, 3}, {3}, {3}}, Err::Type,
       {"layer_norm: input 1 is float64, expected float32"}, layer_norm_attr(), {f32, f64, f32}},
      // gelu
      {K::Gelu, "int32 input", {{2, 3}}, Err::Type, {"gelu: input 0 is int32, expected float32"},
       no_attr(), {i32}},
      {K::Gelu, "float64 input in a float32 graph", {{4}}, Err::Type, {"gelu: input 0 is float64"},
       no_attr(), {f64}},
      // transpose
      {K::Transpose, "dim past the rank", {{3, 4}}, Err::Shape,
       {"transpose: dim1 2 is out of range for x of 3x4 (2 dims)"}, transpose_attr(0, 2)},
      {K::Transpose, "negative dim past the rank", {{2, 3, 4}}, Err::Shape,
       {"transpose: dim0 -4 is out of range for x of 2x3x4 (3 dims)"}, transpose_attr(-4, 1)},
      {K::Transpose, "scalar x", {Shape{}}, Err::Shape,
       {"transpose: dim0 0 is out of range for x of scalar (0 dims)"}, transpose_attr(0, 0)},
      // slice
      {K::Slice, "axis past the rank", {{3, 4}}, Err::Shape,
       {"slice: axis 2 is out of range for x of 3x4 (2 dims)"}, slice_attr(2, 0, 1)},
      {K::Slice, "length 0", {{3, 4}}, Err::Shape,
       {"slice: length must be >= 1, got 0 (x is 3x4, axis 1)"}, slice_attr(1, 0, 0)},
      {K::Slice, "negative length", {{3, 4}}, Err::Shape, {"length must be >= 1, got -2"},
       slice_attr(0, 1, -2)},
      {K::Slice, "runs past the end", {{3, 4}}, Err::Shape,
       {"slice: elements [2, 5) of axis 1 are out of range: x is 3x4 (4 along that axis)"},
       slice_attr(-1, 2, 3)},
      {K::Slice, "negative start", {{3, 4}}, Err::Shape, {"elements [-1, 1) of axis 0", "x is 3x4"},
       slice_attr(0, -1, 2)},
      {K::Slice, "start at the end", {{3, 4}}, Err::Shape, {"elements [3, 4) of axis 0"},
       slice_attr(0, 3, 1)},
      // concat
      {K::Concat, "another dim differs", {{2, 3}, {3, 3}}, Err::Shape,
       {"concat: dims other than axis 1 must be equal: a is 2x3, b is 3x3 (dim 0 differs)"},
       concat_attr(1)},
      {K::Concat, "ranks differ", {{2, 3}, {2, 3, 1}}, Err::Shape,
       {"concat: a and b need the same rank (at least 1): a is 2x3, b is 2x3x1"}, concat_attr(0)},
      {K::Concat, "scalars", {Shape{}, Shape{}}, Err::Shape, {"same rank (at least 1)", "a is scalar"},
       concat_attr(0)},
      {K::Concat, "axis past the rank", {{2, 3}, {2, 3}}, Err::Shape,
       {"concat: axis -3 is out of range for a of 2x3 and b of 2x3 (2 dims)"}, concat_attr(-3)},
      {K::Concat, "int32 b", {{2, 3}, {2, 3}}, Err::Type, {"concat: input 1 is int32"},
       concat_attr(0), {f32, i32}},
      {K::Attention, "2-D qkv", {{4, 12}}, Err::Shape,
       {"causal_attention: qkv must be (B, T, 3*n_embd), got 4x12"}, attention_attr(1)},
      {K::Attention, "last dimension not a multiple of 3", {{2, 4, 10}}, Err::Shape,
       {"qkv's last dimension must be a positive multiple of 3", "got 10 (qkv is 2x4x10)"},
       attention_attr(1)},
      {K::Attention, "empty last dimension", {{2, 4, 0}}, Err::Shape,
       {"positive multiple of 3", "qkv is 2x4x0"}, attention_attr(1)},
      {K::Attention, "n_embd not divisible by n_head", {{2, 4, 30}}, Err::Shape,
       {"causal_attention: n_embd 10 is not divisible by n_head 3 (qkv is 2x4x30)"},
       attention_attr(3)},
      {K::Attention, "n_head 0", {{2, 4, 12}}, Err::Shape,
       {"causal_attention: n_head must be >= 1, got 0"}, attention_attr(0)},
      {K::Attention, "negative n_head", {{2, 4, 12}}, Err::Shape, {"n_head must be >= 1, got -2"},
       attention_attr(-2)},
      {K::Attention, "int32 qkv", {{2, 4, 12}}, Err::Type,
       {"causal_attention: input 0 is int32, expected float32"}, attention_attr(1), {i32}},
      {K::Lstm, "2-D x", {{4, 3}, {8, 3}, {8, 2}, {8}}, Err::Shape,
       {"lstm: x must be (B, T, I), got 4x3", "w_ih is 8x3", "w_hh is 8x2", "b is 8"}},
      {K::Lstm, "w_ih rows not a multiple of 4", {{2, 5, 3}, {6, 3}, {8, 2}, {8}}, Err::Shape,
       {"lstm: w_ih must be (4H, I)", "got 6x3", "x is 2x5x3"}},
      {K::Lstm, "w_ih columns differ from I", {{2, 5, 3}, {8, 4}, {8, 2}, {8}}, Err::Shape,
       {"lstm: w_ih has 4 input columns but x has I = 3 features", "x is 2x5x3", "w_ih is 8x4"}},
      {K::Lstm, "w_hh not (4H, H)", {{2, 5, 3}, {8, 3}, {8, 3}, {8}}, Err::Shape,
       {"lstm: w_hh must be (4H, H) = 8x2 for H = 2, got 8x3"}},
      {K::Lstm, "w_hh transposed", {{2, 5, 3}, {8, 3}, {2, 8}, {8}}, Err::Shape,
       {"w_hh must be (4H, H) = 8x2 for H = 2, got 2x8"}},
      {K::Lstm, "b of length H", {{2, 5, 3}, {8, 3}, {8, 2}, {2}}, Err::Shape,
       {"lstm: b must be (4H) = 8 for H = 2, got 2", "b is 2"}},
      {K::Lstm, "b is a matrix", {{2, 5, 3}, {8, 3}, {8, 2}, {1, 8}}, Err::Shape,
       {"b must be (4H) = 8 for H = 2, got 1x8"}},
      {K::Lstm, "empty w_ih", {{2, 5, 3}, {0, 3}, {0, 0}, {0}}, Err::Shape,
       {"w_ih must be (4H, I) with H >= 1", "got 0x3"}},
      {K::Lstm, "float64 w_hh", {{2, 5, 3}, {8, 3}, {8, 2}, {8}}, Err::Type,
       {"lstm: input 2 is float64, expected float32"}, no_attr(), {f32, f32, f64, f32}},
      {K::LstmGates, "2-D gx", {{4, 8}, {8, 2}}, Err::Shape,
       {"lstm_gates: gx must be (B, T, 4H) with H >= 1", "got 4x8", "w_hh is 8x2"}},
      {K::LstmGates, "gx width not a multiple of 4", {{2, 5, 6}, {8, 2}}, Err::Shape,
       {"lstm_gates: gx must be (B, T, 4H)", "got 2x5x6"}},
      {K::LstmGates, "empty gates", {{2, 5, 0}, {0, 0}}, Err::Shape,
       {"gx must be (B, T, 4H) with H >= 1", "got 2x5x0"}},
      {K::LstmGates, "w_hh not (4H, H)", {{2, 5, 8}, {8, 3}}, Err::Shape,
       {"lstm_gates: w_hh must be (4H, H) = 8x2 for H = 2, got 8x3", "gx is 2x5x8"}},
      {K::LstmGates, "w_hh transposed", {{2, 5, 8}, {2, 8}}, Err::Shape,
       {"w_hh must be (4H, H) = 8x2 for H = 2, got 2x8"}},
      {K::LstmGates, "float64 gx", {{2, 5, 8}, {8, 2}}, Err::Type,
       {"lstm_gates: input 0 is float64, expected float32"}, no_attr(), {f64, f32}},
  };
  return b;
}

// A valid set of inputs per kind (for the generic type and arity checks):
// its first example (ops/examples.h).
const OpExample& valid_example(OpKind k) {
  const OpExamples& e = op_meta(k).examples;
  REQUIRE_MESSAGE(e.count > 0, op_name(k) << " has no example inputs");
  return *e.begin();
}
std::vector<Shape> valid_shapes(OpKind k) { return example_shapes(valid_example(k)); }

}  // namespace

TEST_CASE("every op kind has at least one bad-input case") {
  std::vector<int> n(kOpCount, 0);
  for (const BadInput& b : bad_inputs()) n[static_cast<int>(b.kind)]++;
  for (int k = 0; k < kOpCount; ++k)
    CHECK_MESSAGE(n[k] > 0, "op kind '" << std::string(op_name(static_cast<OpKind>(k)))
                                        << "' has no case in bad_inputs()");
}

TEST_CASE("bad inputs raise the right error naming the op and the shapes, graph unchanged") {
  for (const BadInput& b : bad_inputs()) {
    // Label values are checked for cross_entropy(), whose name they carry.
    std::string op = b.err == Err::Value && b.kind == OpKind::CrossEntropyLabels
                         ? "cross_entropy"
                         : op_name(b.kind);
    INFO(std::string(op_name(b.kind)) << ": " << b.what << " (expects " << err_name(b.err) << ")");
    Graph g;
    Tensor ok = g.input({2, 2});
    std::vector<Tensor> in;
    for (size_t i = 0; i < b.shapes.size(); ++i)
      in.push_back(b.dtype(i) == DType::I32 ? labels_input(g, b.shapes[i], b.label)
                                            : g.input(b.shapes[i], b.dtype(i)));
    const size_t tape = g.tape().size(), tensors = g.num_step_tensors();
    std::string msg = message_of(b.err, [&] { apply(b.kind, in.data(), int(in.size()), b.attr); });
    check_contains(msg, {op});
    check_contains(msg, b.parts);
    CHECK_MESSAGE(g.tape().size() == tape, "a refused op must not reach the tape");
    CHECK_MESSAGE(g.num_step_tensors() == tensors, "a refused op must not allocate its output");
    Tensor y = sigmoid(ok);
    CHECK_MESSAGE(g.tape().size() == tape + 1, "the next op records normally");
    CHECK(g.data(y)[0] == 0.5f);
  }
}

TEST_CASE("every op refuses an int32 or float64 tensor where float32 is expected") {
  for (int k = 0; k < kOpCount; ++k) {
    OpKind kind = static_cast<OpKind>(k);
    std::vector<Shape> shapes = valid_shapes(kind);
    for (size_t bad = 0; bad < shapes.size(); ++bad) {
      if (is_int_input(op_meta(kind), int(bad))) continue;  // labels, token ids
      for (DType wrong : {DType::I32, DType::F64}) {
        INFO(std::string(op_name(kind))
             << ": input " << bad << " is " << std::string(dtype_name(wrong)));
        Graph g;
        std::vector<Tensor> in;
        for (size_t i = 0; i < shapes.size(); ++i) {
          bool labels = is_int_input(op_meta(kind), int(i));
          in.push_back(labels ? labels_input(g, shapes[i], 0)
                              : g.input(shapes[i], i == bad ? wrong : DType::F32));
        }
        std::string msg = message_of<TypeError>(
            [&] { apply(kind, in.data(), int(in.size()), valid_example(kind).attr); }, "TypeError");
        check_contains(msg, {op_name(kind), "input " + std::to_string(bad) + " is " +
                                                dtype_name(wrong) + ", expected float32"});
        CHECK(g.tape().empty());
      }
    }
  }
}

TEST_CASE("every op refuses the wrong number of inputs") {
  for (int k = 0; k < kOpCount; ++k) {
    OpKind kind = static_cast<OpKind>(k);
    int arity = op_meta(kind).arity;
    Graph g;
    Tensor in[kMaxInputs];
    for (Tensor& t : in) t = g.input({2, 3});
    for (int n : {arity - 1, arity + 1}) {
      if (n < 1 || n > kMaxInputs) continue;
      INFO(std::string(op_name(kind)) << " given " << n << " input(s)");
      std::string msg =
          message_of<ValueError>([&] { apply(kind, in, n, no_attr()); }, "ValueError");
      check_contains(msg, {std::string(op_name(kind)) + ": takes " + std::to_string(arity) +
                           " input(s), got " + std::to_string(n)});
      CHECK(g.tape().empty());
    }
  }
}

TEST_CASE("an unknown op kind raises ValueError") {
  Graph g;
  Tensor x = g.input({2, 2});
  const OpKind bogus = static_cast<OpKind>(200);
  check_contains(message_of<ValueError>([&] { apply(bogus, &x, 1, no_attr()); }, "ValueError"),
                 {"unknown op kind 200"});
  check_contains(message_of<ValueError>([&] { g.record(bogus, &x, 1, no_attr()); }, "ValueError"),
                 {"unknown op kind 200"});
  check_contains(message_of<ValueError>([&] { op_meta(OpKind::Count); }, "ValueError"),
                 {"unknown op kind " + std::to_string(kOpCount)});
  check_contains(message_of<ValueError>([&] { op_from_name("conv3d"); }, "ValueError"),
                 {"conv3d", "matmul", "cross_entropy_labels", "conv2d"});
  CHECK(op_from_name("log_softmax") == OpKind::LogSoftmax);
  CHECK(g.tape().empty());
}

TEST_CASE("a tensor handle from an earlier step raises ValueError mentioning reset") {
  Graph g;
  Tensor w = g.param({2, 2}, "w");
  Tensor x = g.input({2, 2});
  Tensor y = add(x, w);
  g.reset();
  for (Tensor stale : {x, y}) {
    check_contains(message_of<ValueError>([&] { sigmoid(stale); }, "ValueError"), {"reset"});
    check_contains(message_of<ValueError>([&] { add(w, stale); }, "ValueError"), {"reset"});
    check_contains(message_of<ValueError>([&] { g.data(stale); }, "ValueError"), {"reset"});
    check_contains(message_of<ValueError>([&] { g.shape(stale); }, "ValueError"), {"reset"});
  }
  CHECK(g.tape().empty());
  // Parameters persist across steps.
  Tensor z = sigmoid(w);
  CHECK(g.shape(z) == Shape{2, 2});
}

TEST_CASE("empty handles and tensors of another graph raise ValueError") {
  Graph g, h;
  Tensor x = g.input({2, 2}), other = h.input({2, 2});
  check_contains(message_of<ValueError>([&] { add(x, other); }, "ValueError"),
                 {"add", "different graphs"});
  check_contains(message_of<ValueError>([&] { g.data(other); }, "ValueError"), {"another graph"});
  check_contains(message_of<ValueError>([&] { sigmoid(Tensor{}); }, "ValueError"),
                 {"sigmoid", "empty"});
  check_contains(message_of<ValueError>([&] { mul(x, Tensor{}); }, "ValueError"), {"mul"});
  check_contains(message_of<ValueError>([&] { cross_entropy(x, Tensor{}); }, "ValueError"),
                 {"cross_entropy", "targets are empty"});
  CHECK(g.tape().empty());
  CHECK(h.tape().empty());
}

TEST_CASE("cross_entropy refuses a label out of range, naming the label and the class count") {
  Graph g;
  Tensor logits = g.input({3, 4});
  int32_t y[3] = {0, 4, 1};
  Tensor labels = g.input({3}, y, DType::I32);
  SUBCASE("through cross_entropy()") {
    check_contains(message_of<ValueError>([&] { cross_entropy(logits, labels); }, "ValueError"),
                   {"cross_entropy", "label 4 at row 1", "4 classes", "3x4"});
  }
  SUBCASE("through apply(), before any kernel reads the logits") {
    Tensor in[2] = {logits, labels};
    check_contains(message_of<ValueError>(
                       [&] { apply(OpKind::CrossEntropyLabels, in, 2, no_attr()); }, "ValueError"),
                   {"cross_entropy", "label 4", "4 classes"});
  }
  CHECK(g.tape().empty());
  y[1] = 3;  // the input holds a copy: make a new one
  Tensor fixed = g.input({3}, y, DType::I32);
  Tensor loss = cross_entropy(logits, fixed);
  CHECK(g.item(loss) == doctest::Approx(std::log(4.0)));
}

TEST_CASE("int32 tensors have no gradient, a float32 tensor is not read as double") {
  Graph g;
  int32_t y[2] = {0, 1};
  Tensor labels = g.input({2}, y, DType::I32);
  check_contains(message_of<TypeError>([&] { g.set_requires_grad(labels); }, "TypeError"),
                 {"int32"});
  check_contains(message_of<TypeError>([&] { g.data<double>(g.input({2})); }, "TypeError"),
                 {"float32"});
}

TEST_CASE("backward refuses a non-scalar loss and an output without gradient") {
  Graph g;
  Tensor w = g.param({2, 3});
  Tensor x = g.input({2, 3});
  check_contains(message_of<ShapeError>([&] { g.backward(mul(w, x)); }, "ShapeError"),
                 {"backward", "2x3"});
  check_contains(message_of<ValueError>([&] { g.backward(sum(x)); }, "ValueError"),
                 {"backward", "does not depend"});
  Tensor s = g.param({1});
  check_contains(message_of<ValueError>([&] { g.backward(s); }, "ValueError"),
                 {"backward", "computed in this step"});
  check_contains(message_of<ValueError>([&] { g.grad(x); }, "ValueError"), {"no gradient"});
}

TEST_CASE("graphs refuse a non-float dtype and a backend that is not built") {
  check_contains(message_of<TypeError>([] { Graph g(DType::I32); }, "TypeError"),
                 {"float32 or float64", "int32"});
  if (cuda_available()) {
    // With a device the graph is built; float64 is still refused there.
    Graph g(DType::F32, Backend::CUDA);
    CHECK(g.backend() == Backend::CUDA);
    check_contains(message_of<TypeError>([] { Graph g(DType::F64, Backend::CUDA); }, "TypeError"),
                   {"cuda", "float32", "float64"});
  } else {
    // Without one the error says why (the same words as cuda_status()).
    check_contains(
        message_of<UnavailableError>([] { Graph g(DType::F32, Backend::CUDA); }, "UnavailableError"),
        {"cuda", "not available", cuda_status()});
  }
}

TEST_CASE("bad shapes are refused when built") {
  int64_t neg[2] = {3, -1}, many[5] = {1, 1, 1, 1, 1};
  check_contains(message_of<ShapeError>([&] { make_shape(neg, 2, "input"); }, "ShapeError"),
                 {"input", "negative", "-1"});
  check_contains(message_of<ShapeError>([&] { make_shape(many, 5, "input"); }, "ShapeError"),
                 {"input", "rank 5"});
}

// ---- anomaly mode ---------------------------------------------------------------

namespace {
const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
}  // namespace

TEST_CASE("anomaly mode names the first op whose output holds NaN or Inf") {
  Graph g;
  g.set_anomaly_mode(true);
  float xv[6] = {0.5f, -1, 2, 0, 1, -3};
  Tensor x = g.input({2, 3}, xv, DType::F32);

  SUBCASE("log_softmax is fine, mul by an infinite input is not") {
    Tensor ls = log_softmax(x);
    float iv[6] = {1, 1, kInf, 1, 1, 1};
    Tensor inf = g.input({2, 3}, iv, DType::F32);
    std::string msg = message_of<ValueError>([&] { mul(ls, inf); }, "ValueError");
    check_contains(msg, {"anomaly", "'mul'", "NaN or Inf", "output", "2x3"});
    CHECK_MESSAGE(msg.find("log_softmax") == std::string::npos, "log_softmax was fine: " << msg);
  }
  SUBCASE("a NaN input to sigmoid") {
    float nv[3] = {0, kNaN, 1};
    Tensor nan = g.input({1, 3}, nv, DType::F32);
    check_contains(message_of<ValueError>([&] { sigmoid(nan); }, "ValueError"),
                   {"'sigmoid'", "NaN or Inf", "1x3"});
  }
  SUBCASE("finite inputs that overflow in scale") {
    float big[2] = {1e30f, 1};
    Tensor b = g.input({2}, big, DType::F32);
    check_contains(message_of<ValueError>([&] { scale(b, 1e10f); }, "ValueError"), {"'scale'"});
  }
  SUBCASE("an infinite upstream gradient names the op in backward") {
    Tensor w = g.param({2, 3});
    Tensor y = tanh(add(x, w));
    float seed[6] = {1, 1, 1, kInf, 1, 1};
    check_contains(message_of<ValueError>([&] { g.backward(y, seed); }, "ValueError"),
                   {"'tanh'", "input gradient"});
  }
  // The graph stays usable after the error.
  Tensor ok = sigmoid(x);
  CHECK(std::isfinite(g.data(ok)[0]));
}

TEST_CASE("without anomaly mode NaN and Inf pass through without an error") {
  Graph g;
  CHECK_FALSE(g.anomaly_mode());
  float xv[3] = {0.5f, kNaN, 1e30f}, iv[3] = {kInf, 1, 1};
  Tensor x = g.input({1, 3}, xv, DType::F32);
  g.set_requires_grad(x);
  Tensor inf = g.input({1, 3}, iv, DType::F32);
  Tensor y;
  CHECK_NOTHROW(y = sum(mul(scale(sigmoid(x), 1.0f), inf)));
  CHECK_NOTHROW(y = sum(add(mul(log_softmax(x), inf), scale(x, 1e10f))));
  CHECK_FALSE(std::isfinite(g.item(y)));
  CHECK_NOTHROW(g.backward(y));
  CHECK_FALSE(std::isfinite(g.grad(x)[1]));
}

TEST_CASE("reading a tensor as the wrong element type raises TypeError") {
  Graph g;
  Tensor labels = g.input(Shape{3}, DType::I32);
  CHECK_THROWS_AS(g.data<float>(labels), TypeError);
  CHECK_NOTHROW(g.data<int32_t>(labels));
  Tensor w = g.param({2, 2}, "w");
  CHECK_THROWS_AS(g.data<double>(w), TypeError);
  CHECK_THROWS_AS(g.grad<int32_t>(w), TypeError);
}

TEST_CASE("silu is x sigmoid(x) far into both tails, with PyTorch's infinities") {
  Graph g;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  float xs[8] = {-100.0f, -20.0f, -1.5f, 0.0f, 0.75f, 30.0f, inf, -inf};
  const float* y = g.data(silu(g.input({8}, xs, DType::F32)));
  for (int i = 0; i < 6; ++i) {
    const double x = xs[i], want = x / (1.0 + std::exp(-x));
    INFO("silu(" << x << ") = " << y[i] << ", expected " << want);
    CHECK(std::abs(y[i] - want) <= 1e-6 * std::abs(want) + 1e-30);
  }
  CHECK(y[6] == inf);        // inf * sigmoid(inf) = inf
  CHECK(std::isnan(y[7]));   // -inf * sigmoid(-inf) = -inf * 0, NaN in PyTorch too
  float n[1] = {nan};
  CHECK(std::isnan(g.data(silu(g.input({1}, n, DType::F32)))[0]));
}

TEST_CASE("relu propagates NaN and clamps -inf, as PyTorch does") {
  Graph g;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  float xs[5] = {nan, -1.0f, 2.0f, inf, -inf};
  const float* y = g.data(relu(g.input({5}, xs, DType::F32)));
  CHECK(std::isnan(y[0]));
  CHECK(y[1] == 0.0f);
  CHECK(y[2] == 2.0f);
  CHECK(y[3] == inf);
  CHECK(y[4] == 0.0f);
}
