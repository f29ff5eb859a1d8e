// Gradient checks for every op kind: float64 full Jacobian (PyTorch
// gradcheck), float32 kernels (ggml test-backend-ops), backward determinism,
// zero upstream gradients, gradient shapes and tensors used twice.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/gradcheck.h"

using namespace lldl;
using namespace lldl::gradcheck;

namespace {

OpAttr view_as(const Shape& s) {
  auto d = [&](int i) { return i < s.ndim ? static_cast<int32_t>(s[i]) : -1; };
  return reshape_attr(d(0), d(1), d(2), d(3));
}
// Values no two of which a finite-difference step can swap (max-pool).
InputSpec distinct(InputSpec s) {
  s.distinct = true;
  return s;
}

// A case whose single input is used twice: op(x, x).
OpCase twice(OpKind k, const std::string& name, InputSpec x, OpAttr attr = no_attr()) {
  OpCase c{k, name, {x}, attr};
  c.build = [k, attr](const std::vector<Tensor>& in) {
    Tensor both[2] = {in[0], in[0]};
    return apply(k, both, 2, attr);
  };
  return c;
}

// The table: several cases per op kind, keyed by kind. Inputs stay at <= 60
// elements so the full Jacobian is cheap (also under the sanitizers).
std::vector<OpCase> make_cases() {
  std::vector<OpCase> cs;
  using K = OpKind;

  // matmul: all four transpose combinations (M=3, K=7, N=4), row and column
  // vectors, an outer product (K=1), a constant left operand, x @ x.
  cs.push_back({K::MatMul, "3x7 @ 7x4", {param({3, 7}), param({7, 4})}, matmul_attr(0, 0)});
  cs.push_back({K::MatMul, "(7x3)^T @ 7x4", {param({7, 3}), step_input({7, 4})}, matmul_attr(1, 0)});
  cs.push_back({K::MatMul, "3x7 @ (4x7)^T", {step_input({3, 7}), param({4, 7})}, matmul_attr(0, 1)});
  cs.push_back({K::MatMul, "(7x3)^T @ (4x7)^T", {param({7, 3}), param({4, 7})}, matmul_attr(1, 1)});
  cs.push_back({K::MatMul, "1x5 @ 5x3", {param({1, 5}), param({5, 3})}, matmul_attr(0, 0)});
  cs.push_back({K::MatMul, "4x6 @ 6x1", {param({4, 6}), param({6, 1})}, matmul_attr(0, 0)});
  cs.push_back({K::MatMul, "5x1 @ 1x4 (outer product)", {param({5, 1}), param({1, 4})}, matmul_attr(0, 0)});
  cs.push_back({K::MatMul, "const 3x7 @ 7x4", {constant({3, 7}), param({7, 4})}, matmul_attr(0, 0)});
  cs.push_back(twice(K::MatMul, "x @ x, x 4x4", param({4, 4}), matmul_attr(0, 0)));
  cs.push_back(twice(K::MatMul, "x^T @ x, x 5x3", step_input({5, 3}), matmul_attr(1, 0)));

  // linear (x, w, b): plain and trans_b, one row, K = 1, N = 1, a constant
  // x, only the bias differentiated, only w, x as both operands.
  cs.push_back({K::Linear, "3x7 @ 7x4 + 4", {param({3, 7}), param({7, 4}), param({4})}, matmul_attr(0, 0)});
  cs.push_back({K::Linear, "3x7 @ (4x7)^T + 4", {step_input({3, 7}), param({4, 7}), param({4})},
                matmul_attr(0, 1)});
  cs.push_back({K::Linear, "1x5 @ 5x3 + 3 (one row)", {param({1, 5}), param({5, 3}), step_input({3})},
                matmul_attr(0, 0)});
  cs.push_back({K::Linear, "1x5 @ (3x5)^T + 3 (one row)", {param({1, 5}), param({3, 5}), param({3})},
                matmul_attr(0, 1)});
  cs.push_back({K::Linear, "6x1 @ 1x5 + 5 (K 1)", {param({6, 1}), param({1, 5}), param({5})}, matmul_attr(0, 0)});
  cs.push_back({K::Linear, "4x6 @ 6x1 + 1 (N 1)", {param({4, 6}), param({6, 1}), param({1})}, matmul_attr(0, 0)});
  cs.push_back({K::Linear, "const 3x7 @ 7x4 + 4", {constant({3, 7}), param({7, 4}), param({4})},
                matmul_attr(0, 0)});
  cs.push_back({K::Linear, "bias only, const 3x7 @ const 7x4 + 4",
                {constant({3, 7}), constant({7, 4}), param({4})}, matmul_attr(0, 0)});
  cs.push_back({K::Linear, "w only, const 5x3 @ (2x3)^T + const 2",
                {constant({5, 3}), param({2, 3}), constant({2})}, matmul_attr(0, 1)});
  OpCase lin_twice{K::Linear, "x @ x^T + b, x 3x5", {param({3, 5}), param({3})}};
  lin_twice.build = [](const std::vector<Tensor>& in) { return linear(in[0], in[0], in[1], true); };
  cs.push_back(lin_twice);

  // linear_gelu: linear's cases through GELU's curve; plain, trans_b, one
  // row, only the bias differentiated. Steps of 0.05: a step in w moves u
  // by up to K times it, where GELU's curvature is large.
  cs.push_back(OpCase{K::LinearGelu, "gelu(3x7 @ 7x4 + 4)", {param({3, 7}), param({7, 4}), param({4})},
                      matmul_attr(0, 0)}.curved(0.05));
  cs.push_back(OpCase{K::LinearGelu, "gelu(3x7 @ (4x7)^T + 4)", {step_input({3, 7}), param({4, 7}), param({4})},
                      matmul_attr(0, 1)}.curved(0.05));
  cs.push_back(OpCase{K::LinearGelu, "gelu(1x5 @ 5x3 + 3) (one row)", {param({1, 5}), param({5, 3}), step_input({3})},
                      matmul_attr(0, 0)}.curved(0.05));
  cs.push_back(OpCase{K::LinearGelu, "bias only, gelu(const 3x7 @ const 7x4 + 4)",
                      {constant({3, 7}), constant({7, 4}), param({4})}, matmul_attr(0, 0)}.curved(0.05));

  // bias_add: 2-D, row, column, a (1,n) bias, 3-D and 1-D inputs.
  cs.push_back({K::BiasAdd, "3x7 + 7", {param({3, 7}), param({7})}});
  cs.push_back({K::BiasAdd, "1x5 + 5", {param({1, 5}), step_input({5})}});
  cs.push_back({K::BiasAdd, "6x1 + 1", {step_input({6, 1}), param({1})}});
  cs.push_back({K::BiasAdd, "4x3 + 1x3", {param({4, 3}), param({1, 3})}});
  cs.push_back({K::BiasAdd, "2x3x4 + 4", {param({2, 3, 4}), param({4})}});
  cs.push_back({K::BiasAdd, "5 + 5", {param({5}), param({5})}});
  cs.push_back({K::BiasAdd, "const 3x7 + 7", {constant({3, 7}), param({7})}});

  // add, sub, mul: odd sizes, row, column, 3-D, a constant operand, x op x.
  for (K k : {K::Add, K::Sub, K::Mul}) {
    cs.push_back({k, "3x7", {param({3, 7}), param({3, 7})}});
    cs.push_back({k, "1x9", {param({1, 9}), step_input({1, 9})}});
    cs.push_back({k, "8x1", {step_input({8, 1}), param({8, 1})}});
    cs.push_back({k, "2x3x4", {param({2, 3, 4}), param({2, 3, 4})}});
    cs.push_back({k, "3x7 with constant b", {param({3, 7}), constant({3, 7})}});
    cs.push_back(twice(k, "x with x, x 3x5", param({3, 5})));
  }

  cs.push_back({K::Scale, "3x7 * -1.5", {param({3, 7})}, scale_attr(-1.5f)});
  cs.push_back({K::Scale, "1x6 * 0.5", {step_input({1, 6})}, scale_attr(0.5f)});
  cs.push_back({K::Scale, "6x1 * 3", {param({6, 1})}, scale_attr(3.0f)});

  // sum, mean: axis 0, 1 and -1 (everything) on 2-D, rows and columns, and
  // every axis of a 3-D input.
  for (K k : {K::Sum, K::Mean}) {
    for (int ax : {0, 1, -1}) {
      std::string a = " axis " + std::to_string(ax);
      cs.push_back({k, "3x7" + a, {param({3, 7})}, reduce_attr(ax)});
      cs.push_back({k, "1x6" + a, {param({1, 6})}, reduce_attr(ax)});
      cs.push_back({k, "6x1" + a, {step_input({6, 1})}, reduce_attr(ax)});
    }
    for (int ax : {0, 1, 2, -1})
      cs.push_back({k, "2x3x4 axis " + std::to_string(ax), {param({2, 3, 4})}, reduce_attr(ax)});
  }

  // Activations. relu stays |x| >= 0.3, away from its kink even at the
  // float32 step (2 x 0.1).
  for (K k : {K::Sigmoid, K::Tanh, K::Relu, K::Identity, K::Silu}) {
    double lo = k == K::Sigmoid || k == K::Silu ? -4 : -2, hi = -lo;
    for (Shape s : {Shape{3, 7}, Shape{1, 8}, Shape{8, 1}, Shape{2, 3, 4}}) {
      OpCase c{k, s.str(), {param(s, lo, hi)}};
      if (k == K::Relu) c.inputs[0].min_abs = 0.3;
      if (k == K::Sigmoid || k == K::Tanh || k == K::Silu) c.curved();
      cs.push_back(c);
    }
  }
  cs.push_back(OpCase{K::Tanh, "step input 3x5", {step_input({3, 5})}}.curved());

  // softmax, log_softmax over the last dimension; an Nx1 input has a
  // constant output (gradient zero), 3-D inputs have 6 rows.
  for (K k : {K::Softmax, K::LogSoftmax}) {
    for (Shape s : {Shape{3, 7}, Shape{1, 6}, Shape{6, 1}, Shape{2, 3, 4}, Shape{9}})
      cs.push_back(OpCase{k, s.str(), {param(s, -3, 3)}}.curved());
  }

  cs.push_back({K::MseLoss, "3x7", {param({3, 7}), param({3, 7})}});
  cs.push_back({K::MseLoss, "1x6", {param({1, 6}), step_input({1, 6})}});
  cs.push_back({K::MseLoss, "6x1", {step_input({6, 1}), param({6, 1})}});
  cs.push_back({K::MseLoss, "2x3x4 with constant target", {param({2, 3, 4}), constant({2, 3, 4})}});
  cs.push_back(twice(K::MseLoss, "pred = target 3x4 (loss 0)", param({3, 4})));

  // cross_entropy with soft targets (differentiated too) and constant ones.
  cs.push_back(
      OpCase{K::CrossEntropy, "3x7 soft", {param({3, 7}, -3, 3), param({3, 7}, 0, 1)}}.curved());
  cs.push_back(OpCase{K::CrossEntropy, "1x5 soft", {param({1, 5}, -3, 3), step_input({1, 5}, 0, 1)}}
                   .curved());
  cs.push_back(
      OpCase{K::CrossEntropy, "6x1 soft (one class)", {param({6, 1}, -3, 3), param({6, 1}, 0, 1)}}
          .curved());
  cs.push_back(OpCase{
      K::CrossEntropy, "4x5 constant targets", {step_input({4, 5}, -3, 3), constant({4, 5}, 0, 1)}}
                   .curved());

  cs.push_back(
      OpCase{K::CrossEntropyLabels, "3x7", {param({3, 7}, -3, 3), labels({3}, 7)}}.curved());
  cs.push_back(
      OpCase{K::CrossEntropyLabels, "1x5", {param({1, 5}, -3, 3), labels({1}, 5)}}.curved());
  cs.push_back(
      OpCase{K::CrossEntropyLabels, "6x1 (one class)", {param({6, 1}, -3, 3), labels({6}, 1)}}
          .curved());
  cs.push_back(OpCase{
      K::CrossEntropyLabels, "5x4, labels 5x1", {step_input({5, 4}, -3, 3), labels({5, 1}, 4)}}
                   .curved());

  // conv2d (x, w, b): bilinear in x and w, so 2-point differences are exact.
  // Padding 0, 1, 2; strides 1, 2, 3; square and non-square inputs and
  // kernels; the 1x1 kernel without im2col and a 1x1 kernel with stride 2;
  // batch 1 and 2; a constant weight.
  cs.push_back({K::Conv2d, "x 2x1x5x5, w 3x1x3x3", {param({2, 1, 5, 5}), param({3, 1, 3, 3}),
                param({3})}, conv_attr(1, 0)});
  cs.push_back({K::Conv2d, "x 1x2x5x5, w 2x2x3x3, stride 2, padding 1",
                {step_input({1, 2, 5, 5}), param({2, 2, 3, 3}), param({2})}, conv_attr(2, 1)});
  cs.push_back({K::Conv2d, "x 1x1x4x6 (non-square), w 2x1x5x5, padding 2",
                {param({1, 1, 4, 6}), param({2, 1, 5, 5}), param({2})}, conv_attr(1, 2)});
  cs.push_back({K::Conv2d, "x 2x3x3x3, w 4x3x1x1 (1x1, no im2col)",
                {param({2, 3, 3, 3}), param({4, 3, 1, 1}), param({4})}, conv_attr(1, 0)});
  cs.push_back({K::Conv2d, "x 1x2x5x5, w 3x2x1x1, stride 2",
                {param({1, 2, 5, 5}), param({3, 2, 1, 1}), step_input({3})}, conv_attr(2, 0)});
  cs.push_back({K::Conv2d, "x 1x1x7x5 (odd), w 2x1x3x2, stride 2, padding 1",
                {param({1, 1, 7, 5}), param({2, 1, 3, 2}), param({2})}, conv_attr(2, 1)});
  cs.push_back({K::Conv2d, "x 1x1x7x7, w 1x1x2x2, stride 3 (rows 2, 5, 6 unused)",
                {param({1, 1, 7, 7}), param({1, 1, 2, 2}), param({1})}, conv_attr(3, 0)});
  cs.push_back({K::Conv2d, "x 2x2x3x4, constant w 2x2x3x3, padding 1",
                {step_input({2, 2, 3, 4}), constant({2, 2, 3, 3}), param({2})}, conv_attr(1, 1)});

  // max_pool2d: piecewise linear; distinct values at least 0.08 apart and a
  // step of 0.02 keep every window's maximum where it is.
  auto maxpool = [&](const std::string& name, InputSpec x, OpAttr a) {
    OpCase c{K::MaxPool2d, name, {distinct(x)}, a};
    c.f32_eps = 0.02;
    cs.push_back(c);
  };
  maxpool("x 1x2x4x4, k 2", param({1, 2, 4, 4}), pool_attr(2));
  maxpool("x 2x1x5x5, k 2 (last row and column unused)", param({2, 1, 5, 5}), pool_attr(2));
  maxpool("x 1x2x5x5, k 3, stride 1 (overlapping)", step_input({1, 2, 5, 5}), pool_attr(3, 1));
  maxpool("x 1x1x5x7 (non-square), k 3, stride 2", param({1, 1, 5, 7}), pool_attr(3, 2));
  maxpool("x 1x3x3x3, k 1 (identity)", param({1, 3, 3, 3}), pool_attr(1));

  cs.push_back({K::AvgPool2d, "x 1x2x4x4, k 2", {param({1, 2, 4, 4})}, pool_attr(2)});
  cs.push_back({K::AvgPool2d, "x 2x1x5x5, k 2, stride 1 (overlapping)",
                {step_input({2, 1, 5, 5})}, pool_attr(2, 1)});
  cs.push_back({K::AvgPool2d, "x 1x1x5x7 (non-square), k 3, stride 2", {param({1, 1, 5, 7})},
                pool_attr(3, 2)});
  cs.push_back({K::AvgPool2d, "x 1x3x4x4, k 4 (global)", {param({1, 3, 4, 4})}, pool_attr(4)});

  // reshape: a view whose gradient still has its own buffer; x + reshape(x)
  // must give x both contributions.
  cs.push_back({K::Reshape, "2x3x4 -> 6x4", {param({2, 3, 4})}, view_as({6, 4})});
  cs.push_back({K::Reshape, "3x5 -> 15", {step_input({3, 5})}, view_as({15})});
  cs.push_back({K::Reshape, "1 -> scalar", {param({1})}, view_as(Shape{})});
  OpCase flat{K::Reshape, "flatten 2x2x3x3 -> 2x18", {param({2, 2, 3, 3})}};
  flat.build = [](const std::vector<Tensor>& in) { return flatten(in[0]); };
  cs.push_back(flat);
  OpCase both{K::Reshape, "x + reshape(x), x 4x6", {param({4, 6})}};
  both.build = [](const std::vector<Tensor>& in) {
    return add(in[0], reshape(reshape(in[0], {2, 12}), {4, 6}));
  };
  cs.push_back(both);

  // dropout: with a fixed seed the mask is fixed, so the op is linear in x
  // (exact central differences); training at several p, eval and p = 0.
  cs.push_back({K::Dropout, "3x7 p 0.5 training", {param({3, 7})}, dropout_attr(0.5f, true, 7)});
  cs.push_back({K::Dropout, "2x3x4 p 0.2 training", {step_input({2, 3, 4})}, dropout_attr(0.2f, true, 11)});
  cs.push_back({K::Dropout, "1x9 p 0.8 training", {param({1, 9})}, dropout_attr(0.8f, true, 3)});
  cs.push_back({K::Dropout, "4x5 p 0 training (identity)", {param({4, 5})}, dropout_attr(0.0f, true, 5)});
  cs.push_back({K::Dropout, "4x5 p 0.5 eval (identity)", {param({4, 5})}, dropout_attr(0.5f, false, 5)});

  // batch_norm: training w.r.t. x, gamma and beta on (N, C) and (N, C, H, W)
  // (the running buffers are persistent buffers, restored before every
  // forward by the runner, and the output does not depend on them in
  // training); eval w.r.t. everything, running statistics included.
  // running_var stays in [0.5, 2) so eval's 1/sqrt(var + eps) is smooth.
  // float32 step 0.05: at 0.01 rounding noise dominates the small x gradients
  // (batch norm projects out their mean and the xhat direction).
  auto bn_in = [](InputSpec x, InputSpec gamma, InputSpec beta, InputSpec mean, InputSpec var) {
    return std::vector<InputSpec>{x, gamma, beta, mean, var};
  };
  cs.push_back(OpCase{K::BatchNorm, "6x3 training",
                      bn_in(param({6, 3}), param({3}), param({3}), buffer({3}),
                            buffer({3}, 0.5, 2)),
                      batch_norm_attr(true)}
                   .curved(0.05));
  cs.push_back(OpCase{K::BatchNorm, "2x2x3x3 training",
                      bn_in(step_input({2, 2, 3, 3}), param({2}), param({2}), buffer({2}),
                            buffer({2}, 0.5, 2)),
                      batch_norm_attr(true, 0.5f, 1e-3f)}
                   .curved(0.05));
  cs.push_back(OpCase{K::BatchNorm, "3x2x1x4 training, momentum 0, constant gamma and beta",
                      bn_in(param({3, 2, 1, 4}), constant({2}), constant({2}), buffer({2}),
                            buffer({2}, 0.5, 2)),
                      batch_norm_attr(true, 0.0f)}
                   .curved(0.05));
  cs.push_back(OpCase{K::BatchNorm, "3x4 training (three values per channel)",
                      bn_in(param({3, 4}), param({4}), param({4}), buffer({4}),
                            buffer({4}, 0.5, 2)),
                      batch_norm_attr(true)}
                   .curved(0.05));
  cs.push_back(OpCase{K::BatchNorm, "5x3 eval",
                      bn_in(param({5, 3}), param({3}), param({3}), buffer({3}),
                            buffer({3}, 0.5, 2)),
                      batch_norm_attr(false)}
                   .curved(0.05));
  cs.push_back(OpCase{K::BatchNorm, "2x2x2x3 eval, running statistics differentiated",
                      bn_in(param({2, 2, 2, 3}), param({2}), step_input({2}), step_input({2}),
                            step_input({2}, 0.5, 2)),
                      batch_norm_attr(false)}
                   .curved(0.05));
  cs.push_back(OpCase{K::BatchNorm, "1x3 eval (one sample)",
                      bn_in(param({1, 3}), param({3}), param({3}), buffer({3}),
                            buffer({3}, 0.5, 2)),
                      batch_norm_attr(false)}
                   .curved(0.05));

  // embedding: linear in the table; more ids than rows, so ids repeat and
  // their gradients must accumulate. ids of 1, 2 and 3 dims, a one-row and a
  // one-column table, a constant table with a differentiable layer after it.
  cs.push_back({K::Embedding, "ids 2x3, table 5x4 (repeats)", {labels({2, 3}, 5), param({5, 4})}});
  cs.push_back({K::Embedding, "ids 7, table 3x2", {labels({7}, 3), step_input({3, 2})}});
  cs.push_back({K::Embedding, "ids 4, table 1x5 (one row)", {labels({4}, 1), param({1, 5})}});
  cs.push_back({K::Embedding, "ids 6x1, table 4x1 (one column)", {labels({6, 1}, 4), param({4, 1})}});
  cs.push_back({K::Embedding, "ids 2x2x3, table 6x3 (4-D output)", {labels({2, 2, 3}, 6), param({6, 3})}});
  OpCase emb_then{K::Embedding, "ids 5, table 3x4, then mul", {labels({5}, 3), param({3, 4}), param({5, 4})}};
  emb_then.build = [](const std::vector<Tensor>& in) { return mul(embedding(in[0], in[1]), in[2]); };
  cs.push_back(emb_then);

  // layer_norm over the last dimension: rows of 7 and 1x6, a one-feature
  // row (xhat = 0: x gets no gradient), 3-D input, a 1-D input (one row),
  // constant gamma and beta, a large eps.
  auto ln_in = [](InputSpec x, InputSpec gamma, InputSpec beta) {
    return std::vector<InputSpec>{x, gamma, beta};
  };
  cs.push_back(OpCase{K::LayerNorm, "3x7", ln_in(param({3, 7}), param({7}), param({7})),
                      layer_norm_attr()}.curved(0.05));
  cs.push_back(OpCase{K::LayerNorm, "1x6", ln_in(step_input({1, 6}), param({6}), param({6})),
                      layer_norm_attr()}.curved(0.05));
  cs.push_back(OpCase{K::LayerNorm, "6x1 (one feature)", ln_in(param({6, 1}), param({1}), param({1})),
                      layer_norm_attr()}.curved(0.05));
  cs.push_back(OpCase{K::LayerNorm, "2x3x4", ln_in(param({2, 3, 4}), param({4}), step_input({4})),
                      layer_norm_attr()}.curved(0.05));
  cs.push_back(OpCase{K::LayerNorm, "5 (1-D), eps 0.5", ln_in(param({5}), param({5}), param({5})),
                      layer_norm_attr(0.5f)}.curved(0.05));
  cs.push_back(OpCase{K::LayerNorm, "4x3 constant gamma and beta",
                      ln_in(param({4, 3}), constant({3}), constant({3})), layer_norm_attr()}
                   .curved(0.05));

  // gelu: curved everywhere; wide enough to reach both tails.
  for (Shape s : {Shape{3, 7}, Shape{1, 8}, Shape{8, 1}, Shape{2, 3, 4}})
    cs.push_back(OpCase{K::Gelu, s.str(), {param(s, -4, 4)}}.curved());
  cs.push_back(OpCase{K::Gelu, "step input 3x5", {step_input({3, 5}, -4, 4)}}.curved());

  // transpose: 2-D, row and column vectors, outer and inner dims of 3-D and
  // 4-D inputs, negative dims, dim0 > dim1, a dim with itself.
  cs.push_back({K::Transpose, "3x4 (0, 1)", {param({3, 4})}, transpose_attr(0, 1)});
  cs.push_back({K::Transpose, "1x5 (0, 1)", {param({1, 5})}, transpose_attr(0, 1)});
  cs.push_back({K::Transpose, "5x1 (1, 0)", {step_input({5, 1})}, transpose_attr(1, 0)});
  cs.push_back({K::Transpose, "2x3x4 (0, 2)", {param({2, 3, 4})}, transpose_attr(0, 2)});
  cs.push_back({K::Transpose, "2x3x4 (-1, -2)", {param({2, 3, 4})}, transpose_attr(-1, -2)});
  cs.push_back({K::Transpose, "2x1x3x2 (1, 3)", {param({2, 1, 3, 2})}, transpose_attr(1, 3)});
  cs.push_back({K::Transpose, "2x3 (1, 1) (a copy)", {param({2, 3})}, transpose_attr(1, 1)});
  cs.push_back(OpCase{K::Transpose, "x + transpose(x), x 4x4", {param({4, 4})}});
  cs.back().build = [](const std::vector<Tensor>& in) { return add(in[0], transpose(in[0], 0, 1)); };

  // slice: inner and outer axes, the whole axis, one element, negative axis.
  cs.push_back({K::Slice, "4x5 axis 1 [1, 4)", {param({4, 5})}, slice_attr(1, 1, 3)});
  cs.push_back({K::Slice, "1x6 axis 1 [0, 6) (all)", {param({1, 6})}, slice_attr(1, 0, 6)});
  cs.push_back({K::Slice, "6x1 axis 0 [2, 5)", {step_input({6, 1})}, slice_attr(0, 2, 3)});
  cs.push_back({K::Slice, "2x3x4 axis -1 [3, 4)", {param({2, 3, 4})}, slice_attr(-1, 3, 1)});
  cs.push_back({K::Slice, "2x3x4 axis 0 [1, 2)", {param({2, 3, 4})}, slice_attr(0, 1, 1)});
  cs.push_back({K::Slice, "2x4x2x3 axis 1 [1, 3)", {param({2, 4, 2, 3})}, slice_attr(1, 1, 2)});

  // concat: both axes of 2-D, row and column vectors, a middle axis of a 3-D
  // input, negative axis, a constant operand, x with itself.
  cs.push_back({K::Concat, "2x3 + 2x4 axis 1", {param({2, 3}), param({2, 4})}, concat_attr(1)});
  cs.push_back({K::Concat, "1x3 + 2x3 axis 0", {param({1, 3}), step_input({2, 3})}, concat_attr(0)});
  cs.push_back({K::Concat, "3x1 + 3x2 axis -1", {param({3, 1}), param({3, 2})}, concat_attr(-1)});
  cs.push_back({K::Concat, "1x4 + 1x4 axis 0", {param({1, 4}), param({1, 4})}, concat_attr(0)});
  cs.push_back({K::Concat, "2x3x4 + 2x1x4 axis 1", {param({2, 3, 4}), param({2, 1, 4})}, concat_attr(1)});
  cs.push_back({K::Concat, "5 + const 2 axis 0", {param({5}), constant({2})}, concat_attr(0)});
  cs.push_back(twice(K::Concat, "x with x axis 1, x 3x2", param({3, 2}), concat_attr(1)));
  // causal_attention (qkv (B, T, 3C), n_head): T = 1 (softmax over one key,
  // y = v), one head, several heads, D = 1 and 2, batch 1 and 2.
  auto attn = [&](const std::string& name, InputSpec qkv, int n_head) {
    cs.push_back(OpCase{K::Attention, name, {qkv}, attention_attr(n_head)}.curved(0.05));
  };
  attn("B 1, T 1, C 4, one head", param({1, 1, 12}), 1);
  attn("B 1, T 5, C 4, one head", param({1, 5, 12}, -1.5, 1.5), 1);
  attn("B 2, T 3, C 2, two heads (D 1)", step_input({2, 3, 6}), 2);
  attn("B 1, T 3, C 6, three heads (D 2)", param({1, 3, 18}), 3);
  attn("B 2, T 2, C 4, two heads", param({2, 2, 12}), 2);

  // lstm (x (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H)): T = 1 (w_hh
  // unused: zero gradient), B = 1, H = 1, several steps and batch rows, a
  // constant input sequence.
  auto lstm_in = [](int64_t B, int64_t T, int64_t I, int64_t H, Leaf x_leaf = Leaf::Param) {
    InputSpec x = param({B, T, I});
    x.leaf = x_leaf;
    return std::vector<InputSpec>{x, param({4 * H, I}, -1, 1), param({4 * H, H}, -1, 1),
                                  param({4 * H}, -1, 1)};
  };
  cs.push_back(OpCase{K::Lstm, "B 1, T 1, I 3, H 2", lstm_in(1, 1, 3, 2)}.curved(0.05));
  cs.push_back(OpCase{K::Lstm, "B 2, T 3, I 2, H 2", lstm_in(2, 3, 2, 2)}.curved(0.05));
  cs.push_back(OpCase{K::Lstm, "B 1, T 4, I 3, H 3", lstm_in(1, 4, 3, 3, Leaf::Input)}.curved(0.05));
  cs.push_back(OpCase{K::Lstm, "B 3, T 2, I 2, H 1", lstm_in(3, 2, 2, 1)}.curved(0.05));
  cs.push_back(
      OpCase{K::Lstm, "B 2, T 3, I 2, H 2, constant x", lstm_in(2, 3, 2, 2, Leaf::Const)}.curved(0.05));
  // lstm_gates (gx (B, T, 4H), w_hh (4H, H)): the same shapes of sequence,
  // gx a leaf whose gradient is written in place, an input, or a constant.
  auto gates_in = [](int64_t B, int64_t T, int64_t H, Leaf gx_leaf = Leaf::Param) {
    InputSpec gx = param({B, T, 4 * H}, -1.5, 1.5);
    gx.leaf = gx_leaf;
    return std::vector<InputSpec>{gx, param({4 * H, H}, -1, 1)};
  };
  cs.push_back(OpCase{K::LstmGates, "B 1, T 1, H 2", gates_in(1, 1, 2)}.curved(0.05));
  cs.push_back(OpCase{K::LstmGates, "B 2, T 3, H 2", gates_in(2, 3, 2)}.curved(0.05));
  cs.push_back(OpCase{K::LstmGates, "B 1, T 4, H 3", gates_in(1, 4, 3, Leaf::Input)}.curved(0.05));
  cs.push_back(OpCase{K::LstmGates, "B 3, T 2, H 1", gates_in(3, 2, 1)}.curved(0.05));
  cs.push_back(OpCase{K::LstmGates, "B 2, T 3, H 2, constant gx", gates_in(2, 3, 2, Leaf::Const)}.curved());
  return cs;
}

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> cs = make_cases();
  return cs;
}

}  // namespace

TEST_CASE("every op kind has a gradient-check case") {
  std::vector<int> per_kind(kOpCount, 0);
  for (const OpCase& c : cases()) {
    REQUIRE(static_cast<int>(c.kind) < kOpCount);
    per_kind[static_cast<int>(c.kind)]++;
  }
  for (int k = 0; k < kOpCount; ++k)
    CHECK_MESSAGE(per_kind[k] >= 3, "op kind '" << std::string(op_name(static_cast<OpKind>(k)))
                                                << "' has " << per_kind[k]
                                                << " gradient-check case(s), expected at least 3"
                                                   " (add them to make_cases)");
}

TEST_CASE("every case keeps its inputs small enough for a full Jacobian") {
  for (const OpCase& c : cases())
    for (const InputSpec& s : c.inputs)
      CHECK_MESSAGE(s.shape.numel() <= 60,
                    c.label() << ": input " << s.shape.str() << " has more than 60 elements");
}

TEST_CASE("float64 gradients match central differences entry by entry (full Jacobian)") {
  for (const OpCase& c : cases()) check_f64(c);
}

TEST_CASE("float32 kernel gradients match finite differences (mean asymmetry <= 1e-4)") {
  for (const OpCase& c : cases()) check_f32(c);
}

TEST_CASE_TEMPLATE("backward twice with zero_grad between gives bitwise identical gradients", T,
                   float, double) {
  for (const OpCase& c : cases()) {
    INFO(c.label());
    Rng rng(case_seed(c, 7));
    Runner<T> run(c, make_values(c, rng));
    Graph& g = run.graph();
    Tensor out = run.forward();
    std::vector<T> seed(static_cast<size_t>(g.shape(out).numel()));
    for (T& s : seed) s = static_cast<T>(rng.normal());
    g.backward(out, seed.data());
    Grads first = run.read_grads();
    g.zero_grad();
    g.backward(out, seed.data());
    Grads second = run.read_grads();
    for (size_t i = 0; i < first.size(); ++i) {
      INFO("input " << i << " (" << c.inputs[i].shape.str() << ")");
      REQUIRE(first[i].size() == second[i].size());
      for (size_t j = 0; j < first[i].size(); ++j)
        if (std::memcmp(&first[i][j], &second[i][j], sizeof(double)) != 0) {
          FAIL_CHECK("element " << j << ": first backward " << first[i][j] << ", second "
                                << second[i][j] << "; expected bitwise equal");
          break;
        }
    }
  }
}

TEST_CASE("leaf gradients accumulate over backward calls until zero_grad") {
  Graph g(DType::F64);
  Tensor w = g.param({2, 3});
  double xv[6] = {1, -2, 3, -4, 5, -6}, wv[6] = {0.5, 1.5, -2, 0.25, 3, -1};
  std::memcpy(g.data<double>(w), wv, sizeof wv);
  Tensor x = g.input({2, 3}, xv, DType::F64);
  g.set_requires_grad(x);
  Tensor y = sum(mul(w, x));
  g.backward(y);
  g.backward(y);
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK_MESSAGE(g.grad<double>(w)[i] == 2 * xv[i], "parameter: d/dw = x, twice");
    CHECK_MESSAGE(g.grad<double>(x)[i] == 2 * wv[i], "step input: d/dx = w, twice");
  }
  g.zero_grad();
  for (int i = 0; i < 6; ++i) {
    CAPTURE(i);
    CHECK_MESSAGE(g.grad<double>(w)[i] == 0.0, "parameter gradient cleared by zero_grad");
    CHECK_MESSAGE(g.grad<double>(x)[i] == 0.0, "step input gradient cleared by zero_grad");
  }
}

TEST_CASE_TEMPLATE("a zero upstream gradient gives all-zero input gradients", T, float, double) {
  for (const OpCase& c : cases()) {
    INFO(c.label());
    Rng rng(case_seed(c, 0));
    Runner<T> run(c, make_values(c, rng));
    Graph& g = run.graph();
    Tensor out = run.forward();
    std::vector<T> seed(static_cast<size_t>(g.shape(out).numel()), T(0));
    g.backward(out, seed.data());
    Grads gr = run.read_grads();
    for (size_t i = 0; i < gr.size(); ++i)
      for (size_t j = 0; j < gr[i].size(); ++j)
        if (gr[i][j] != 0.0) {
          FAIL_CHECK("input " << i << " element " << j << ": gradient " << gr[i][j]
                              << ", expected 0");
          break;
        }
  }
}

TEST_CASE("each gradient has its input's shape and only differentiable inputs get one") {
  for (const OpCase& c : cases()) {
    INFO(c.label());
    Rng rng(case_seed(c, 1));
    Runner<double> run(c, make_values(c, rng));
    Graph& g = run.graph();
    Tensor out = run.forward();
    std::vector<double> seed(static_cast<size_t>(g.shape(out).numel()), 1.0);
    g.backward(out, seed.data());
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      Tensor t = run.tensors()[i];
      INFO("input " << i);
      CHECK_MESSAGE(g.shape(t) == c.inputs[i].shape,
                    "tensor is " << g.shape(t).str() << ", expected " << c.inputs[i].shape.str());
      if (c.inputs[i].differentiable()) {
        CHECK_MESSAGE(g.desc(t).grad != nullptr, "expected a gradient");
      } else if (c.inputs[i].leaf == Leaf::Labels) {
        CHECK_THROWS_AS(g.grad<double>(t), TypeError);  // int32 labels: no gradient
      } else {
        CHECK_THROWS_AS(g.grad<double>(t), ValueError);  // constant: no gradient
      }
    }
  }
}

TEST_CASE("a tensor used twice receives both contributions") {
  Graph g(DType::F64);
  Rng rng(42);
  const int n = 4;
  Tensor x = g.param({n, n});
  double* xv = g.data<double>(x);
  for (int i = 0; i < n * n; ++i) xv[i] = rng.uniform(-1, 1);
  std::vector<double> R = random_normal(n * n, rng);

  SUBCASE("add(x, x): dx = 2 R") {
    g.backward(add(x, x), R.data());
    for (int i = 0; i < n * n; ++i) {
      CAPTURE(i);
      CHECK(g.grad<double>(x)[i] == doctest::Approx(2 * R[i]));
    }
  }
  SUBCASE("sub(x, x): dx = 0") {
    g.backward(sub(x, x), R.data());
    for (int i = 0; i < n * n; ++i) {
      CAPTURE(i);
      CHECK(g.grad<double>(x)[i] == 0.0);
    }
  }
  SUBCASE("mul(x, x): dx = 2 x R") {
    g.backward(mul(x, x), R.data());
    for (int i = 0; i < n * n; ++i) {
      CAPTURE(i);
      CHECK(g.grad<double>(x)[i] == doctest::Approx(2 * xv[i] * R[i]));
    }
  }
  SUBCASE("matmul(x, x): dx = R x^T + x^T R") {
    g.backward(matmul(x, x), R.data());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        double want = 0;
        for (int k = 0; k < n; ++k)
          want += R[i * n + k] * xv[j * n + k] + xv[k * n + i] * R[k * n + j];
        CAPTURE(i);
        CAPTURE(j);
        CHECK(g.grad<double>(x)[i * n + j] == doctest::Approx(want));
      }
  }
  SUBCASE("through two paths: sum(sigmoid(x) + x) gets s(1-s) + 1") {
    g.backward(sum(add(sigmoid(x), x)));
    for (int i = 0; i < n * n; ++i) {
      double s = 1 / (1 + std::exp(-xv[i]));
      CAPTURE(i);
      CHECK(g.grad<double>(x)[i] == doctest::Approx(s * (1 - s) + 1));
    }
  }
}

// linear against bias_add(matmul(...)) with every input an intermediate, so
// its backward is told to overwrite stale gradients (gin_fresh): backward
// twice in one step must give the intermediates the same gradients twice and
// the leaves twice the first. Sizes on both sides of the small-GEMM and
// threaded column-sum thresholds.
TEST_CASE("linear equals bias_add of matmul and overwrites stale intermediate gradients") {
  struct Dims {
    int64_t M, K, N;
  };
  for (Dims d : {Dims{5, 7, 3}, Dims{512, 16, 80}, Dims{96, 80, 72}})
    for (bool tb : {false, true}) {
      const std::string label = "M " + std::to_string(d.M) + ", K " + std::to_string(d.K) + ", N " +
                                std::to_string(d.N) + (tb ? ", trans_b" : "");
      INFO(label);
      Rng rng(d.M * 100 + d.N + tb);
      const Shape ws = tb ? Shape{d.N, d.K} : Shape{d.K, d.N};
      std::vector<double> xv = random_normal(d.M * d.K, rng), wv = random_normal(ws.numel(), rng),
                          bv = random_normal(d.N, rng);
      struct Out {
        std::vector<double> y, gx, gw, gb, gxi, gwi, gbi;
      };
      auto run = [&](bool fused, int backwards) {
        Graph g(DType::F64);
        Tensor x0 = g.param({d.M, d.K}), w0 = g.param(ws), b0 = g.param({d.N});
        std::memcpy(g.data<double>(x0), xv.data(), xv.size() * 8);
        std::memcpy(g.data<double>(w0), wv.data(), wv.size() * 8);
        std::memcpy(g.data<double>(b0), bv.data(), bv.size() * 8);
        Tensor x = tanh(x0), w = scale(w0, 1.5f), b = scale(b0, 0.5f);
        Tensor y = fused ? linear(x, w, b, tb) : bias_add(matmul(x, w, false, tb), b);
        Tensor loss = sum(mul(y, y));
        for (int i = 0; i < backwards; ++i) g.backward(loss);
        auto v = [&](const double* p, int64_t n) { return std::vector<double>(p, p + n); };
        return Out{v(g.data<double>(y), d.M * d.N),    v(g.grad<double>(x0), xv.size()),
                   v(g.grad<double>(w0), wv.size()),   v(g.grad<double>(b0), bv.size()),
                   v(g.grad<double>(x), xv.size()),    v(g.grad<double>(w), wv.size()),
                   v(g.grad<double>(b), bv.size())};
      };
      const Out ref = run(false, 1), once = run(true, 1), twice = run(true, 2);
      auto same = [](const char* what, const std::vector<double>& got, const std::vector<double>& want,
                     double factor) {
        INFO(what);
        REQUIRE(got.size() == want.size());
        int bad = 0;
        for (size_t i = 0; i < got.size(); ++i)
          if (!(std::abs(got[i] - factor * want[i]) <= 1e-9 * (1 + std::abs(factor * want[i]))) && !bad++)
            FAIL_CHECK("element " << i << ": " << got[i] << ", expected " << factor * want[i]);
      };
      same("output", once.y, ref.y, 1);
      same("x leaf gradient", once.gx, ref.gx, 1);
      same("w leaf gradient", once.gw, ref.gw, 1);
      same("b leaf gradient", once.gb, ref.gb, 1);
      same("x gradient (intermediate)", once.gxi, ref.gxi, 1);
      same("w gradient (intermediate)", once.gwi, ref.gwi, 1);
      same("b gradient (intermediate)", once.gbi, ref.gbi, 1);
      same("x gradient (intermediate), second backward", twice.gxi, once.gxi, 1);
      same("w gradient (intermediate), second backward", twice.gwi, once.gwi, 1);
      same("b gradient (intermediate), second backward", twice.gbi, once.gbi, 1);
      same("x leaf gradient, two backwards", twice.gx, once.gx, 2);
      same("w leaf gradient, two backwards", twice.gw, once.gw, 2);
      same("b leaf gradient, two backwards", twice.gb, once.gb, 2);
    }
}

TEST_CASE("the gradient-check criteria reject a wrong gradient") {
  // Self-test of the helper: the checks must not pass everything.
  CHECK(close_f64(1.0, 1.0 + 5e-4));
  CHECK_FALSE(close_f64(1.0, 1.0 + 3e-3));
  CHECK(close_f64(0.0, 5e-6));
  CHECK_FALSE(close_f64(0.0, 5e-5));
  CHECK(mean_abs_asymmetry({1.0, 2.0, 0.0}, {1.0, 2.0, 1e-9}) == 0.0);
  CHECK(mean_abs_asymmetry({1.0, 2.0}, {1.001, 2.0}) > kF32MaxAsymmetry);
  auto cube = [](double h) { return (1 + h) * (1 + h) * (1 + h); };  // derivative 3 at 0
  CHECK(central_difference(cube, 0.5, 4) == doctest::Approx(3.0));
  CHECK(central_difference(cube, 0.5, 2) == doctest::Approx(3.25));  // 2 points: 3 + h^2
  CHECK(central_difference([](double h) { return 3 * h; }, 0.1, 2) == doctest::Approx(3.0));
}
