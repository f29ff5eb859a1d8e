#include "autograd/functions.h"

#include <cstdint>
#include <string>

#include "core/error.h"

namespace lldl {

Tensor apply(OpKind kind, const Tensor* inputs, int n_in, OpAttr attr) {
  const OpMeta& m = op_meta(kind);
  if (n_in < 1 || !inputs[0].g) throw ValueError(std::string(m.name) + ": input 0 is empty");
  for (int i = 1; i < n_in; ++i)
    if (inputs[i].g != inputs[0].g)
      throw ValueError(std::string(m.name) + ": inputs belong to different graphs");
  return inputs[0].g->record(kind, inputs, n_in, attr);
}

namespace {
Tensor unary(OpKind k, Tensor x, OpAttr a = no_attr()) { return apply(k, &x, 1, a); }
Tensor binary(OpKind k, Tensor x, Tensor y, OpAttr a = no_attr()) {
  Tensor in[2] = {x, y};
  return apply(k, in, 2, a);
}
}  // namespace

Tensor matmul(Tensor a, Tensor b, bool trans_a, bool trans_b) {
  return binary(OpKind::MatMul, a, b, matmul_attr(trans_a, trans_b));
}
Tensor bias_add(Tensor x, Tensor bias) { return binary(OpKind::BiasAdd, x, bias); }
Tensor linear(Tensor x, Tensor w, Tensor b, bool trans_b) {
  Tensor in[3] = {x, w, b};
  return apply(OpKind::Linear, in, 3, matmul_attr(false, trans_b));
}
Tensor linear_gelu(Tensor x, Tensor w, Tensor b, bool trans_b) {
  Tensor in[3] = {x, w, b};
  return apply(OpKind::LinearGelu, in, 3, matmul_attr(false, trans_b));
}
Tensor add(Tensor a, Tensor b) { return binary(OpKind::Add, a, b); }
Tensor sub(Tensor a, Tensor b) { return binary(OpKind::Sub, a, b); }
Tensor mul(Tensor a, Tensor b) { return binary(OpKind::Mul, a, b); }
Tensor scale(Tensor x, float alpha) {
  return unary(OpKind::Scale, x, scale_attr(alpha));
}
Tensor sum(Tensor x, int axis) { return unary(OpKind::Sum, x, reduce_attr(axis)); }
Tensor mean(Tensor x, int axis) { return unary(OpKind::Mean, x, reduce_attr(axis)); }
#define LLDL_DEFINE_UNARY(kind, fn, doc) \
  Tensor fn(Tensor x) { return unary(OpKind::kind, x); }
LLDL_UNARY_OPS(LLDL_DEFINE_UNARY)
#undef LLDL_DEFINE_UNARY
Tensor softmax(Tensor x) { return unary(OpKind::Softmax, x); }
Tensor log_softmax(Tensor x) { return unary(OpKind::LogSoftmax, x); }
Tensor mse_loss(Tensor pred, Tensor target) { return binary(OpKind::MseLoss, pred, target); }

Tensor cross_entropy(Tensor logits, Tensor targets) {
  if (!targets.g) throw ValueError("cross_entropy: targets are empty");
  // Graph::record range-checks int32 labels before any kernel runs.
  if (targets.g->desc(targets).dtype != DType::I32)
    return binary(OpKind::CrossEntropy, logits, targets);
  return binary(OpKind::CrossEntropyLabels, logits, targets);
}

Tensor conv2d(Tensor x, Tensor w, Tensor b, int stride, int padding) {
  Tensor in[3] = {x, w, b};
  return apply(OpKind::Conv2d, in, 3, conv_attr(stride, padding));
}

Tensor max_pool2d(Tensor x, int kernel, int stride) {
  return unary(OpKind::MaxPool2d, x, pool_attr(kernel, stride));
}
Tensor avg_pool2d(Tensor x, int kernel, int stride) {
  return unary(OpKind::AvgPool2d, x, pool_attr(kernel, stride));
}

Tensor reshape(Tensor x, const Shape& s) {
  OpAttr a = reshape_attr(-1);
  for (int i = 0; i < s.ndim; ++i) {
    if (s[i] > INT32_MAX)
      throw ShapeError("reshape: dimension " + std::to_string(i) + " of " + s.str() +
                       " is larger than 2147483647, the most reshape supports");
    a.reshape.dims[i] = static_cast<int32_t>(s[i]);
  }
  return unary(OpKind::Reshape, x, a);
}

Tensor flatten(Tensor x) {
  if (!x.g) throw ValueError("flatten: input 0 is empty");
  const Shape& s = x.g->shape(x);
  if (s.ndim < 1) throw ShapeError("flatten: x needs a batch dimension, got a scalar");
  int64_t rest = 1;
  for (int i = 1; i < s.ndim; ++i) rest *= s[i];
  return reshape(x, Shape{s[0], rest});
}

Tensor dropout(Tensor x, float p, bool training, uint64_t seed) {
  // Recorded in eval mode too (its kernel copies), so the tape shows the layer.
  return unary(OpKind::Dropout, x, dropout_attr(p, training, seed));
}

Tensor batch_norm(Tensor x, Tensor gamma, Tensor beta, Tensor running_mean, Tensor running_var,
                  bool training, float momentum, float eps) {
  Tensor in[5] = {x, gamma, beta, running_mean, running_var};
  return apply(OpKind::BatchNorm, in, 5, batch_norm_attr(training, momentum, eps));
}

Tensor embedding(Tensor ids, Tensor table) { return binary(OpKind::Embedding, ids, table); }

Tensor layer_norm(Tensor x, Tensor gamma, Tensor beta, float eps) {
  Tensor in[3] = {x, gamma, beta};
  return apply(OpKind::LayerNorm, in, 3, layer_norm_attr(eps));
}


Tensor transpose(Tensor x, int dim0, int dim1) {
  return unary(OpKind::Transpose, x, transpose_attr(dim0, dim1));
}

Tensor slice(Tensor x, int axis, int64_t start, int64_t length) {
  // The tape entry holds int32 (OpAttr is 16 bytes); the shape rule checks
  // the range against x.
  if (start < INT32_MIN || start > INT32_MAX || length < INT32_MIN || length > INT32_MAX)
    throw ValueError("slice: start " + std::to_string(start) + " and length " +
                     std::to_string(length) + " must fit in 32 bits");
  return unary(OpKind::Slice, x,
               slice_attr(axis, static_cast<int32_t>(start), static_cast<int32_t>(length)));
}

Tensor concat(Tensor a, Tensor b, int axis) {
  return binary(OpKind::Concat, a, b, concat_attr(axis));
}

Tensor causal_attention(Tensor qkv, int n_head) {
  return unary(OpKind::Attention, qkv, attention_attr(n_head));
}

Tensor lstm(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b) {
  Tensor in[4] = {x, w_ih, w_hh, b};
  return apply(OpKind::Lstm, in, 4, no_attr());
}

Tensor lstm_gates(Tensor gx, Tensor w_hh) { return binary(OpKind::LstmGates, gx, w_hh, no_attr()); }

}  // namespace lldl
