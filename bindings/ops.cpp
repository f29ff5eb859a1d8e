// One Python function per op: each takes Tensors, records the op on their
// graph and returns the result's Tensor. Grouped by the kind of op.
//
//   h = cppapi.relu(cppapi.linear(x, W, b)); loss = cppapi.cross_entropy(h, y)
#include <pybind11/stl.h>

#include "autograd/functions.h"
#include "bindings/graph_handles.h"
#include "bindings/module.h"

namespace lldl::py_bind {

namespace {

// Products, sums and elementwise arithmetic.
void def_arithmetic(py::module_& m) {
  m.def("matmul", [](const PyTensor& a, const PyTensor& b, bool ta, bool tb) {
    return wrap(a, matmul(a.t, b.t, ta, tb));
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false);
  m.def("bias_add", [](const PyTensor& x, const PyTensor& b) { return op2(bias_add, x, b); });
  m.def("linear", [](const PyTensor& x, const PyTensor& w, const PyTensor& b, bool trans_b) {
    return wrap(x, linear(x.t, w.t, b.t, trans_b));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("trans_b") = false,
     "x (M, K) @ w (K, N) + b (N) -> (M, N), or x @ w^T + b with w (N, K) when trans_b: "
     "bias_add(matmul(x, w), b) as one op.");
  m.def("linear_gelu", [](const PyTensor& x, const PyTensor& w, const PyTensor& b, bool trans_b) {
    return wrap(x, linear_gelu(x.t, w.t, b.t, trans_b));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("trans_b") = false,
     "gelu(linear(x, w, b, trans_b)) as one op: the same values; on the CUDA fast rung the bias and "
     "GELU run as one pass after the GEMM.");
  m.def("add", [](const PyTensor& a, const PyTensor& b) { return op2(add, a, b); });
  m.def("sub", [](const PyTensor& a, const PyTensor& b) { return op2(sub, a, b); });
  m.def("mul", [](const PyTensor& a, const PyTensor& b) { return op2(mul, a, b); });
  m.def("scale", [](const PyTensor& x, float s) { return wrap(x, scale(x.t, s)); });
  m.def("sum", [](const PyTensor& x, int axis) { return wrap(x, sum(x.t, axis)); },
        py::arg("x"), py::arg("axis") = -1);
  m.def("mean", [](const PyTensor& x, int axis) { return wrap(x, mean(x.t, axis)); },
        py::arg("x"), py::arg("axis") = -1);
}

// Elementwise activations, softmax and the losses.
void def_activations_and_losses(py::module_& m) {
  // sigmoid, tanh, relu, identity, gelu, ...: the list in ops/op.h.
#define LLDL_BIND_UNARY(kind, fn, doc) \
  m.def(#fn, [](const PyTensor& x) { return op1(lldl::fn, x); }, doc);
  LLDL_UNARY_OPS(LLDL_BIND_UNARY)
#undef LLDL_BIND_UNARY
  m.def("softmax", [](const PyTensor& x) { return op1(softmax, x); });
  m.def("log_softmax", [](const PyTensor& x) { return op1(log_softmax, x); });
  m.def("mse_loss", [](const PyTensor& p, const PyTensor& t) { return op2(mse_loss, p, t); });
  m.def("cross_entropy", [](const PyTensor& l, const PyTensor& t) { return op2(cross_entropy, l, t); },
        "Cross-entropy of logits against one-hot/soft float targets or int32 labels.");
}

// Image layers: convolution, pooling, batch normalisation, dropout.
void def_image_ops(py::module_& m) {
  m.def("conv2d", [](const PyTensor& x, const PyTensor& w, const PyTensor& b, int stride, int padding) {
    return wrap(x, conv2d(x.t, w.t, b.t, stride, padding));
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride") = 1, py::arg("padding") = 0,
     "x (N, C, H, W), w (OC, C, KH, KW), b (OC) -> (N, OC, OH, OW), zero padding.");
  m.def("max_pool2d", [](const PyTensor& x, int kernel, int stride) {
    return wrap(x, max_pool2d(x.t, kernel, stride));
  }, py::arg("x"), py::arg("kernel"), py::arg("stride") = 0, "stride 0 means kernel.");
  m.def("avg_pool2d", [](const PyTensor& x, int kernel, int stride) {
    return wrap(x, avg_pool2d(x.t, kernel, stride));
  }, py::arg("x"), py::arg("kernel"), py::arg("stride") = 0, "stride 0 means kernel.");
  m.def("dropout", [](const PyTensor& x, float p, bool training, uint64_t seed) {
    return wrap(x, dropout(x.t, p, training, seed));
  }, py::arg("x"), py::arg("p"), py::arg("training") = true, py::arg("seed") = 0);
  m.def("batch_norm", [](const PyTensor& x, const PyTensor& gamma, const PyTensor& beta,
                         const PyTensor& running_mean, const PyTensor& running_var, bool training,
                         float momentum, float eps) {
    return wrap(x, batch_norm(x.t, gamma.t, beta.t, running_mean.t, running_var.t, training,
                              momentum, eps));
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
     py::arg("running_var"), py::arg("training") = true, py::arg("momentum") = 0.1f,
     py::arg("eps") = 1e-5f, "Per-channel normalisation; running buffers come from Graph.buffer.");
}

// Views and copies that change a tensor's shape.
void def_shape_ops(py::module_& m) {
  m.def("reshape", [](const PyTensor& x, std::vector<int64_t> shape) {
    return wrap(x, reshape(x.t, shape_from(shape, "reshape")));
  }, py::arg("x"), py::arg("shape"), "Same elements, new shape, no copy.");
  m.def("flatten", [](const PyTensor& x) { return op1(flatten, x); }, "(N, ...) -> (N, rest)");
  m.def("transpose", [](const PyTensor& x, int dim0, int dim1) {
    return wrap(x, transpose(x.t, dim0, dim1));
  }, py::arg("x"), py::arg("dim0"), py::arg("dim1"), "Swaps two dims (a contiguous copy).");
  m.def("slice", [](const PyTensor& x, int axis, int64_t start, int64_t length) {
    return wrap(x, slice(x.t, axis, start, length));
  }, py::arg("x"), py::arg("axis"), py::arg("start"), py::arg("length"),
     "Elements [start, start + length) along axis (a copy).");
  m.def("concat", [](const PyTensor& a, const PyTensor& b, int axis) {
    return wrap(a, concat(a.t, b.t, axis));
  }, py::arg("a"), py::arg("b"), py::arg("axis"), "a and b joined along axis.");
}

// Sequence models: embeddings, layer norm, attention, the LSTM.
void def_sequence_ops(py::module_& m) {
  m.def("embedding", [](const PyTensor& ids, const PyTensor& table) {
    return op2(embedding, ids, table);
  }, py::arg("ids"), py::arg("table"),
     "ids int32 (at most 3-D, from Graph.input of an integer array), table (V, C) -> "
     "ids.shape + (C,); every id must be in [0, V).");
  m.def("layer_norm", [](const PyTensor& x, const PyTensor& gamma, const PyTensor& beta, float eps) {
    return wrap(x, layer_norm(x.t, gamma.t, beta.t, eps));
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps") = 1e-5f,
     "Normalises x (..., C) over its last dimension, then gamma * xhat + beta.");
  m.def("causal_attention", [](const PyTensor& qkv, int n_head) {
    return wrap(qkv, causal_attention(qkv.t, n_head));
  }, py::arg("qkv"), py::arg("n_head"),
     "qkv (B, T, 3C) as GPT-2's c_attn writes it -> y (B, T, C), causal multi-head attention.");
  m.def("lstm", [](const PyTensor& x, const PyTensor& w_ih, const PyTensor& w_hh,
                   const PyTensor& b) { return wrap(x, lstm(x.t, w_ih.t, w_hh.t, b.t)); },
        py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b"),
        "x (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H) -> h (B, T, H); zero initial state, "
        "gates i, f, g, o (PyTorch), b = bias_ih + bias_hh.");
  m.def("lstm_gates", [](const PyTensor& gx, const PyTensor& w_hh) {
    return wrap(gx, lstm_gates(gx.t, w_hh.t));
  }, py::arg("gx"), py::arg("w_hh"),
     "gx (B, T, 4H) = x W_ih^T + b, the input projection already applied, w_hh (4H, H) -> "
     "h (B, T, H): lstm without its input GEMM.");
}

}  // namespace

void bind_ops(py::module_& m) {
  def_arithmetic(m);
  def_activations_and_losses(m);
  def_image_ops(m);
  def_shape_ops(m);
  def_sequence_ops(m);
  m.def("op_names", [] {
    std::vector<std::string> n;
    for (int i = 0; i < kOpCount; ++i) n.push_back(op_name(static_cast<OpKind>(i)));
    return n;
  });

}

}  // namespace lldl::py_bind
