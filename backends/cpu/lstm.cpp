// Single-layer LSTM over a sequence, zero initial state, PyTorch conventions.
//
// x is (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H) (bias_ih + bias_hh);
// h, the output, is (B, T, H). Gate order i, f, g, o:
//   gates_t = x_t W_ih^T + h_{t-1} W_hh^T + b;  i, f, o = sigmoid, g = tanh
//   c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)          (h_{-1} = c_{-1} = 0)
// Workspace, (B, T, 5H): the activated gates (B, T, 4H), then the cell
// states c (B, T, H). Backward reads h_{t-1} from the output and recomputes
// tanh(c_t); nothing else is kept.
//
// Forward: one GEMM x W_ih^T over all B*T rows, then per step a (B, H) x
// (H, 4H) GEMM adds h_{t-1} W_hh^T. Backward through time keeps the
// pre-activation gate gradients dG (B, T, 4H) of every step; the only
// per-step GEMM is the recurrent dh_{t-1} = dG_t W_hh, and afterwards
//   dx += dG W_ih,  dW_ih += dG^T x,  dW_hh += dG^T h_prev,  db += colsum dG
// are one GEMM (or reduction) each over all B*T rows (h_prev is h shifted one
// step, zero at t = 0).
#include "backends/cpu/lstm.h"

#include <vector>

#include "backends/cpu/common.h"
#include "core/error.h"

namespace lldl::cpu {

namespace {

template <class T>
using CRow = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
template <class T>
using Arr = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CArr = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

// One row: activates the gate pre-activations g[4H] in place and writes the
// new cell state c and hidden state h. c_prev null: zero (c may alias c_prev).
template <class T>
void cell(T* g, const T* c_prev, T* c, T* h, int64_t H) {
  Arr<T> i(g, H), f(g + H, H), gg(g + 2 * H, H), o(g + 3 * H, H), cc(c, H), hh(h, H);
  i = (T(1) + (-i).exp()).inverse();
  f = (T(1) + (-f).exp()).inverse();
  gg = gg.tanh();
  o = (T(1) + (-o).exp()).inverse();
  if (c_prev) cc = f * CArr<T>(c_prev, H) + i * gg;
  else cc = i * gg;
  hh = o * cc.tanh();
}

// One row of backward through time. In: activated gates g[4H], c_t, c_{t-1}
// (null: zero), the output gradient dh_out; dh holds dG_{t+1} W_hh (the
// recurrent part) and dc the cell gradient from step t+1. Out: the
// pre-activation gate gradients dg[4H]; dc becomes the gradient of c_{t-1}.
// dh and dg's o slot serve as scratch (no heap temporaries).
template <class T>
void cell_backward(const T* g, const T* c, const T* c_prev, const T* dh_out, T* dh, T* dc, T* dg,
                   int64_t H) {
  CArr<T> i(g, H), f(g + H, H), gg(g + 2 * H, H), o(g + 3 * H, H), ct(c, H);
  Arr<T> dht(dh, H), dct(dc, H), di(dg, H), df(dg + H, H), dgg(dg + 2 * H, H), dout(dg + 3 * H, H);
  dht += CArr<T>(dh_out, H);
  dout = ct.tanh();                                 // tanh(c_t), for now
  dct += dht * o * (T(1) - dout.square());          // through h = o tanh(c)
  dout = dht * dout * o * (T(1) - o);               // sigmoid' = o (1 - o)
  di = dct * gg * i * (T(1) - i);
  if (c_prev) df = dct * CArr<T>(c_prev, H) * f * (T(1) - f);
  else df.setZero();
  dgg = dct * i * (T(1) - gg.square());             // tanh' = 1 - g^2
  dct *= f;                                         // to c_{t-1}
}

template <class T>
void lstm_forward(const KernelArgs& a) {
  const int64_t B = a.in_shape[0][0], Tn = a.in_shape[0][1], I = a.in_shape[0][2];
  const int64_t H = a.out_shape[2], G = 4 * H;
  if (B * Tn == 0) return;
  T *h = out<T>(a), *gates = static_cast<T*>(a.ws), *cs = gates + B * Tn * G;
  CMap<T> Wih(in<T>(a, 1), G, I), Whh(in<T>(a, 2), G, H);
  Map<T> Gm(gates, B * Tn, G);
  product(Gm, CMap<T>(in<T>(a, 0), B * Tn, I), Wih.transpose(), false);
  Gm.rowwise() += CRow<T>(in<T>(a, 3), G);
  for (int64_t t = 0; t < Tn; ++t) {
    if (t > 0) {
      SMap<T> Gt(gates + t * G, B, G, Eigen::OuterStride<>(Tn * G));
      CSMap<T> Hp(h + (t - 1) * H, B, H, Eigen::OuterStride<>(Tn * H));
      product(Gt, Hp, Whh.transpose(), true);
    }
    pfor(B, [&](int64_t b) {
      const int64_t r = b * Tn + t;  // row of (b, t)
      cell(gates + r * G, t ? cs + (r - 1) * H : nullptr, cs + r * H, h + r * H, H);
    }, B * G * 8);
  }
}

template <class T>
void lstm_backward(const KernelArgs& a) {
  T *dx = gin<T>(a, 0), *dwih = gin<T>(a, 1), *dwhh = gin<T>(a, 2), *db = gin<T>(a, 3);
  const int64_t B = a.in_shape[0][0], Tn = a.in_shape[0][1], I = a.in_shape[0][2];
  const int64_t H = a.out_shape[2], G = 4 * H, N = B * Tn;
  if (N == 0 || !(dx || dwih || dwhh || db)) return;
  const T *h = out<T>(a), *dh_out = gout<T>(a);
  const T *gates = static_cast<const T*>(a.ws), *cs = gates + N * G;
  CMap<T> Wih(in<T>(a, 1), G, I), Whh(in<T>(a, 2), G, H);

  std::vector<T> dgates(static_cast<size_t>(N * G)), dh(static_cast<size_t>(B * H)),
      dc(static_cast<size_t>(B * H), T(0));
  Map<T> dG(dgates.data(), N, G), dH(dh.data(), B, H);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    if (t == Tn - 1) {
      dH.setZero();
    } else {
      CSMap<T> dGn(dgates.data() + (t + 1) * G, B, G, Eigen::OuterStride<>(Tn * G));
      product(dH, dGn, Whh, false);
    }
    pfor(B, [&](int64_t b) {
      const int64_t r = b * Tn + t;
      cell_backward(gates + r * G, cs + r * H, t ? cs + (r - 1) * H : nullptr, dh_out + r * H,
                    dh.data() + b * H, dc.data() + b * H, dgates.data() + r * G, H);
    }, B * G * 8);
  }

  if (dx) product(Map<T>(dx, N, I), dG, Wih, true);
  if (dwih) product(Map<T>(dwih, G, I), dG.transpose(), CMap<T>(in<T>(a, 0), N, I), true);
  if (db) Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(db, G) += dG.colwise().sum();
  if (dwhh && Tn > 1) {
    std::vector<T> hprev(static_cast<size_t>(N * H), T(0));  // h_{t-1}; zero at t = 0
    for (int64_t b = 0; b < B; ++b)
      std::copy(h + b * Tn * H, h + (b * Tn + Tn - 1) * H, hprev.data() + (b * Tn + 1) * H);
    product(Map<T>(dwhh, G, H), dG.transpose(), CMap<T>(hprev.data(), N, H), true);
  }
}

}  // namespace

template <class T>
void lstm_step(const T* x, const T* w_ih, const T* w_hh, const T* b, T* h, T* c, int64_t B,
               int64_t I, int64_t H) {
  if (B < 0 || I < 0 || H < 1)
    throw ShapeError("lstm_step: needs B >= 0, I >= 0 and H >= 1, got B = " + std::to_string(B) +
                     ", I = " + std::to_string(I) + ", H = " + std::to_string(H));
  const int64_t G = 4 * H;
  std::vector<T> gates(static_cast<size_t>(B * G));
  Map<T> Gm(gates.data(), B, G);
  // The same order of operations as the op: x W_ih^T, + b, + h W_hh^T.
  product(Gm, CMap<T>(x, B, I), CMap<T>(w_ih, G, I).transpose(), false);
  Gm.rowwise() += CRow<T>(b, G);
  product(Gm, CMap<T>(h, B, H), CMap<T>(w_hh, G, H).transpose(), true);
  for (int64_t r = 0; r < B; ++r) cell(gates.data() + r * G, c + r * H, c + r * H, h + r * H, H);
}
template void lstm_step<float>(const float*, const float*, const float*, const float*, float*,
                               float*, int64_t, int64_t, int64_t);
template void lstm_step<double>(const double*, const double*, const double*, const double*,
                                double*, double*, int64_t, int64_t, int64_t);

template <class T>
void register_lstm(KernelPair* t) {
  t[int(OpKind::Lstm)] = {lstm_forward<T>, lstm_backward<T>};
}
template void register_lstm<float>(KernelPair*);
template void register_lstm<double>(KernelPair*);

}  // namespace lldl::cpu
