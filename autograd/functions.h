// The graph API: one free function per op, recording onto the inputs' graph.
//
//   Tensor h = sigmoid(bias_add(matmul(x, W1), b1));
//   Tensor loss = mse_loss(matmul(h, W2), y);
//   g.backward(loss);
#pragma once
#include "autograd/graph.h"

namespace lldl {

Tensor matmul(Tensor a, Tensor b, bool trans_a = false, bool trans_b = false);
Tensor bias_add(Tensor x, Tensor bias);
// x (M, K) @ w + b with w (K, N), or x @ w^T + b with w (N, K) when trans_b;
// b (N) -> (M, N). The same values as bias_add(matmul(x, w, false, trans_b), b)
// up to float rounding, one op: the bias is written before the product
// accumulates onto it, and backward reads dy in place for all three grads.
Tensor linear(Tensor x, Tensor w, Tensor b, bool trans_b = false);
// gelu(linear(x, w, b, trans_b)) as one op (the GPT MLP's c_fc): the same
// values, and on the CUDA backend's fast rung the bias and GELU run as one
// pass after the GEMM. Keeps the pre-activation (M, N) for backward.
Tensor linear_gelu(Tensor x, Tensor w, Tensor b, bool trans_b = false);
Tensor add(Tensor a, Tensor b);
Tensor sub(Tensor a, Tensor b);
Tensor mul(Tensor a, Tensor b);
Tensor scale(Tensor x, float alpha);
Tensor sum(Tensor x, int axis = -1);   // axis -1: all elements -> scalar
Tensor mean(Tensor x, int axis = -1);
// The unary elementwise ops: sigmoid, tanh, relu, identity, gelu, ... (one
// builder per entry of LLDL_UNARY_OPS in ops/op.h, which says what each does).
#define LLDL_DECLARE_UNARY(kind, fn, doc) Tensor fn(Tensor x);
LLDL_UNARY_OPS(LLDL_DECLARE_UNARY)
#undef LLDL_DECLARE_UNARY
Tensor softmax(Tensor x);       // over the last dimension
Tensor log_softmax(Tensor x);   // over the last dimension
Tensor mse_loss(Tensor pred, Tensor target);
// Targets either float (one-hot or soft, same shape as logits) or int32
// labels (one per row). Labels are range-checked when the op is recorded,
// before any kernel.
Tensor cross_entropy(Tensor logits, Tensor targets);

// ---- convolutional networks (issue 4) --------------------------------------
// x (N, C, H, W), w (OC, C, KH, KW), b (OC) -> (N, OC, OH, OW), zero padding.
Tensor conv2d(Tensor x, Tensor w, Tensor b, int stride = 1, int padding = 0);
// Windows of kernel x kernel, stride defaults (0) to kernel: (N, C, OH, OW).
Tensor max_pool2d(Tensor x, int kernel, int stride = 0);
Tensor avg_pool2d(Tensor x, int kernel, int stride = 0);
// Same elements, new shape, no copy (the output aliases the input's data).
Tensor reshape(Tensor x, const Shape& s);
Tensor flatten(Tensor x);  // (N, ...) -> (N, rest)
// Training: zero each element with probability p and scale the rest by
// 1/(1-p), the mask drawn from `seed`; eval: identity. p must be in [0, 1)
// (ValueError otherwise). The mask is a hash of (seed, element index), so the
// same seed gives the same mask and backward recomputes it instead of storing
// it; pass a new seed every step.
Tensor dropout(Tensor x, float p, bool training, uint64_t seed);
// Per-channel normalisation of (N, C) or (N, C, H, W). Training uses batch
// statistics and updates the running buffers (momentum as in PyTorch); eval
// uses the running buffers. gamma, beta, running_mean and running_var are
// (C); the running ones are usually Graph::buffer tensors (no gradient),
// updated in place by a training call: running = (1 - momentum) running +
// momentum batch_stat, with the unbiased batch variance (the output uses the
// biased one). Training needs more than one value per channel (N*H*W > 1).
// Backward recomputes the batch mean and variance from x.
Tensor batch_norm(Tensor x, Tensor gamma, Tensor beta, Tensor running_mean, Tensor running_var,
                  bool training, float momentum = 0.1f, float eps = 1e-5f);

// ---- sequence models ---------------------------------------------------------
// ids int32 of any shape with at most 3 dims, table (V, C) -> ids.shape + [C]:
// row ids[...] of the table. Every id must be in [0, V) (ValueError naming
// the id and its position, checked before any kernel runs). The table's
// gradient sums the output gradient rows of repeated ids; ids get none.
Tensor embedding(Tensor ids, Tensor table);
// Normalises x (..., C) over its last dimension (biased variance, as
// PyTorch), then gamma * xhat + beta with gamma, beta (C). eps >= 0.
Tensor layer_norm(Tensor x, Tensor gamma, Tensor beta, float eps = 1e-5f);
// x with dims dim0 and dim1 swapped (negative dims count from the end); the
// result is a contiguous copy.
Tensor transpose(Tensor x, int dim0, int dim1);
// Elements [start, start + length) of x along axis (negative counts from the
// end), a copy; 0 <= start, length >= 1, start + length <= the axis' size.
Tensor slice(Tensor x, int axis, int64_t start, int64_t length);
// a and b joined along axis (negative counts from the end); all other dims
// must be equal.
Tensor concat(Tensor a, Tensor b, int axis);
// Causal multi-head self-attention over GPT-2's fused projection: qkv is
// (B, T, 3C) with q = qkv[..., 0:C], k = [..., C:2C], v = [..., 2C:3C]; head
// h uses columns h*D..(h+1)*D of each (D = C / n_head). Returns y (B, T, C):
// y[b, t, head h] = sum_{s <= t} softmax_s(q_t . k_s / sqrt(D)) v_s.
// C must be divisible by n_head >= 1. Keeps the softmax probabilities
// (B, n_head, T, T) for backward.
Tensor causal_attention(Tensor qkv, int n_head);
// Single-layer LSTM from a zero state (PyTorch conventions, gates i, f, g, o):
// x (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H) = bias_ih + bias_hh ->
// h (B, T, H). Keeps the activated gates and cell states for backward. For
// generation with carried state see lstm_step (autograd/direct.h).
// A kind of its own rather than lstm_gates(linear(x, w_ih, b)): the fused
// kernel projects straight into its gate workspace, and the composite's
// forward measured 4-10% slower at the char-LSTM's shapes (training steps
// within noise; bench/lstm_fused_vs_composite.py).
Tensor lstm(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b);
// The same LSTM with the input projection already applied: gx (B, T, 4H) =
// x W_ih^T + b, however the caller computed it. A language model whose
// input is embedding(ids, E) can project the V rows of the table once,
// linear(E, W_ih, b), and look up gx = embedding(ids, table) (V x I x 4H
// multiply-adds instead of B x T x I x 4H, an exact identity).
Tensor lstm_gates(Tensor gx, Tensor w_hh);

inline Tensor operator+(Tensor a, Tensor b) { return add(a, b); }
inline Tensor operator-(Tensor a, Tensor b) { return sub(a, b); }
inline Tensor operator*(Tensor a, Tensor b) { return mul(a, b); }
inline Tensor operator*(float s, Tensor x) { return scale(x, s); }

// Records `kind` on the graph of inputs[0]; for callers that pick the kind at
// run time (tests, bindings).
Tensor apply(OpKind kind, const Tensor* inputs, int n_in, OpAttr attr);

}  // namespace lldl
