// The two-layer network of two_layer.h, forward and backward by hand.
#include "models/two_layer.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/rng.h"

namespace lldl {

namespace {

std::string dims(const MatRM& m) { return std::to_string(m.rows()) + "x" + std::to_string(m.cols()); }

void check_shapes(const TwoLayer& net, const MatRM& x, const MatRM& target) {
  int64_t D = net.W1.rows(), H = net.W1.cols(), O = net.W2.cols();
  if (net.b1.size() != H || net.W2.rows() != H || net.b2.size() != O)
    throw ShapeError("two_layer: parameters do not fit together: W1 is " + dims(net.W1) +
                     ", b1 has " + std::to_string(net.b1.size()) + ", W2 is " + dims(net.W2) +
                     ", b2 has " + std::to_string(net.b2.size()));
  if (x.cols() != D || target.rows() != x.rows() || target.cols() != O)
    throw ShapeError("two_layer: x is " + dims(x) + " and target is " + dims(target) +
                     ", expected Bx" + std::to_string(D) + " and Bx" + std::to_string(O));
}

// Sigmoid split on the sign so that exp never overflows.
float sigmoid(float z) {
  if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
  float e = std::exp(z);
  return e / (1.0f + e);
}

}  // namespace

TwoLayer two_layer_zeros(int64_t D, int64_t H, int64_t O) {
  return {MatRM::Zero(D, H), RowVec::Zero(H), MatRM::Zero(H, O), RowVec::Zero(O)};
}

TwoLayer two_layer_init(int64_t D, int64_t H, int64_t O, uint64_t seed) {
  TwoLayer net = two_layer_zeros(D, H, O);
  Rng rng(seed);
  // Xavier-uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) keeps the
  // variance of activations and gradients roughly equal across layers.
  auto fill = [&](MatRM& W) {
    double a = std::sqrt(6.0 / double(W.rows() + W.cols()));
    for (int64_t i = 0; i < W.size(); ++i) W.data()[i] = float(rng.uniform(-a, a));
  };
  fill(net.W1);
  fill(net.W2);
  return net;
}

float two_layer_forward(TwoLayerActs& acts, const TwoLayer& net, const MatRM& x,
                        const MatRM& target) {
  check_shapes(net, x, target);
  // z1 = x W1 + b1, the bias added to every row; h = sigmoid(z1).
  MatRM z1 = (x * net.W1).rowwise() + net.b1;
  acts.h = z1.unaryExpr([](float z) { return sigmoid(z); });
  // y = h W2 + b2: a linear output layer.
  acts.y = (acts.h * net.W2).rowwise() + net.b2;
  // loss = 1/(B*O) sum (y - t)^2, accumulated in double so that a large batch
  // does not lose the small terms.
  double sq = (acts.y - target).cast<double>().squaredNorm();
  return float(sq / double(acts.y.size()));
}

void two_layer_backward(TwoLayer& grads, const TwoLayer& net, const TwoLayerActs& acts,
                        const MatRM& x, const MatRM& target) {
  check_shapes(net, x, target);
  const float n = float(acts.y.size());  // B*O, the count the loss averages over
  // loss = 1/n sum (y - t)^2  =>  d loss / d y = 2 (y - t) / n.       (B,O)
  MatRM dy = (2.0f / n) * (acts.y - target);
  // y = h W2 + b2. Each y[b,o] = sum_k h[b,k] W2[k,o] + b2[o], so
  //   dW2[k,o] = sum_b h[b,k] dy[b,o]    i.e. dW2 = h^T dy             (H,O)
  //   db2[o]   = sum_b dy[b,o]           (b2 was broadcast over rows)  (O)
  //   dh[b,k]  = sum_o dy[b,o] W2[k,o]   i.e. dh = dy W2^T             (B,H)
  grads.W2.noalias() += acts.h.transpose() * dy;
  grads.b2 += dy.colwise().sum();
  MatRM dh = dy * net.W2.transpose();
  // h = sigmoid(z1) and sigmoid' = sigmoid (1 - sigmoid), which is why the
  // forward pass keeps h and not z1: dz1 = dh * h * (1 - h), elementwise. (B,H)
  MatRM dz1 = dh.array() * acts.h.array() * (1.0f - acts.h.array());
  // z1 = x W1 + b1: the same rule as for the second layer. dx is not needed:
  // x is data, not a parameter.
  grads.W1.noalias() += x.transpose() * dz1;  // (D,H)
  grads.b1 += dz1.colwise().sum();            // (H)
}

void two_layer_zero_grad(TwoLayer& grads) {
  grads.W1.setZero();
  grads.b1.setZero();
  grads.W2.setZero();
  grads.b2.setZero();
}

void two_layer_sgd_step(TwoLayer& net, const TwoLayer& grads, float lr) {
  net.W1 -= lr * grads.W1;
  net.b1 -= lr * grads.b1;
  net.W2 -= lr * grads.W2;
  net.b2 -= lr * grads.b2;
}

}  // namespace lldl
