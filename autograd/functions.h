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
Tensor add(Tensor a, Tensor b);
Tensor sub(Tensor a, Tensor b);
Tensor mul(Tensor a, Tensor b);
Tensor scale(Tensor x, float alpha);
Tensor sum(Tensor x, int axis = -1);   // axis -1: all elements -> scalar
Tensor mean(Tensor x, int axis = -1);
Tensor sigmoid(Tensor x);
Tensor tanh(Tensor x);
Tensor relu(Tensor x);
Tensor identity(Tensor x);
Tensor softmax(Tensor x);       // over the last dimension
Tensor log_softmax(Tensor x);   // over the last dimension
Tensor mse_loss(Tensor pred, Tensor target);
// Targets either float (one-hot or soft, same shape as logits) or int32
// labels (one per row). Labels are range-checked when the op is recorded,
// before any kernel.
Tensor cross_entropy(Tensor logits, Tensor targets);

inline Tensor operator+(Tensor a, Tensor b) { return add(a, b); }
inline Tensor operator-(Tensor a, Tensor b) { return sub(a, b); }
inline Tensor operator*(Tensor a, Tensor b) { return mul(a, b); }
inline Tensor operator*(float s, Tensor x) { return scale(x, s); }

// Records `kind` on the graph of inputs[0]; for callers that pick the kind at
// run time (tests, bindings).
Tensor apply(OpKind kind, const Tensor* inputs, int n_in, OpAttr attr);

}  // namespace lldl
