// A two-layer dense network written out by hand: every forward and backward
// line is an explicit matrix formula, readable as a tutorial. It does not use
// the Graph engine at all, so it serves as an independent reference for it
// (tests/test_two_layer.cpp checks that both agree).
//
//   z1   = x @ W1 + b1        x is (B,D), W1 is (D,H), b1 is (H)  -> z1 (B,H)
//   h    = sigmoid(z1)                                           -> h  (B,H)
//   y    = h @ W2 + b2        W2 is (H,O), b2 is (O)             -> y  (B,O)
//   loss = mean((y - t)^2)    t is (B,O); the mean is over all B*O elements
//
// B is the batch size, D the input width, H the hidden width, O the output
// width. Matrices are row-major floats (one example per row), so a buffer
// maps one-to-one onto an lldl tensor of the same shape. Biases are row
// vectors, broadcast over the rows of the batch.
//
// What it deliberately is not: general (one activation, one loss, no layers
// as objects) or fast (plain Eigen expressions, a temporary here and there).
#pragma once
#include <Eigen/Core>
#include <cstdint>

namespace lldl {

using MatRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowVec = Eigen::RowVectorXf;  // (1,n): a bias

// Parameters, and (same struct, same shapes) their gradients.
struct TwoLayer {
  MatRM W1;   // (D,H)
  RowVec b1;  // (H)
  MatRM W2;   // (H,O)
  RowVec b2;  // (O)
};

// What the forward pass keeps for the backward pass.
struct TwoLayerActs {
  MatRM h;  // (B,H) sigmoid(z1); z1 itself is not needed (see backward)
  MatRM y;  // (B,O) network output
};

// Zero parameters of the given widths (for the gradient buffers).
TwoLayer two_layer_zeros(int64_t D, int64_t H, int64_t O);

// Xavier-uniform weights from lldl::Rng, zero biases. Convenience for tests
// and demos; any weights may be written into the struct directly.
TwoLayer two_layer_init(int64_t D, int64_t H, int64_t O, uint64_t seed);

// Runs the network on x (B,D), fills acts, returns the MSE loss against
// target (B,O). Throws lldl::ShapeError when the widths do not fit.
float two_layer_forward(TwoLayerActs& acts, const TwoLayer& net, const MatRM& x,
                        const MatRM& target);

// Accumulates (+=) d loss / d parameter into grads, from the activations of
// the forward call with the same net, x and target.
void two_layer_backward(TwoLayer& grads, const TwoLayer& net, const TwoLayerActs& acts,
                        const MatRM& x, const MatRM& target);

// Sets every gradient to zero (before the next backward, which accumulates).
void two_layer_zero_grad(TwoLayer& grads);

// Plain SGD: p -= lr * dp for all four parameters.
void two_layer_sgd_step(TwoLayer& net, const TwoLayer& grads, float lr);

}  // namespace lldl
