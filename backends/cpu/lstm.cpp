// Single-layer LSTM over a sequence, zero initial state, PyTorch conventions:
// the lstm op (x, w_ih, w_hh, b) and lstm_gates (gx, w_hh), the same with the
// input projection gx = x W_ih^T + b done by the caller.
//
// x is (B, T, I), w_ih (4H, I), w_hh (4H, H), b (4H) (bias_ih + bias_hh);
// h, the output, is (B, T, H). Gate order i, f, g, o:
//   gates_t = x_t W_ih^T + b + h_{t-1} W_hh^T;  i, f, o = sigmoid, g = tanh
//   c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)          (h_{-1} = c_{-1} = 0)
// Workspace, (B, T, 5H): the activated gates (B, T, 4H), then the cell
// states c (B, T, H). Backward reads h_{t-1} from the output and recomputes
// tanh(c_t); nothing else is kept.
//
// Forward: lstm does one GEMM x W_ih^T over all B*T rows; then per step the
// recurrent product h_{t-1} W_hh^T and the cell. Backward through time keeps
// the pre-activation gate gradients dG (B, T, 4H) of every step (lstm_gates'
// input gradient itself); the only per-step product is the recurrent
// dh_{t-1} = dG_t W_hh, and afterwards
//   dx += dG W_ih,  dW_ih += dG^T x,  dW_hh += dG^T h_prev,  db += colsum dG
// are one GEMM (or reduction) each over all B*T rows (h_prev is h shifted one
// step, zero at t = 0; lstm_gates only needs dW_hh).
//
// The recurrent products are small (B rows) and there are T of them in a
// chain, so they do not go through Eigen's GEMM, which would fork threads,
// repack W_hh and join again at every step. Instead one OpenMP team runs the
// whole time loop. Each thread owns a slice of hidden units: it packs its
// slice of W_hh once per call into panels for the register tiles of tile.h,
// computes the four gates of its units for every row, and runs the cell on
// each row's units as soon as their gates are summed (still in L1), so a
// step needs no barrier between product and cell, only one at its end (step
// t + 1 reads all of h_t). Backward splits dh_{t-1} the same way,
// and the cell's backward of a unit needs only that unit's dh, c and gates.
// Every sum runs in the same order whatever the thread count, so results do
// not depend on it.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

// GCC 12 warns inside its own AVX-512 headers (`__m512 __Y = __Y;`, its
// idiom for an undefined register) where it inlines Eigen's exp on the
// fixed-size blocks below; the warning is off for those headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "backends/cpu/common.h"
#pragma GCC diagnostic pop
#include "backends/cpu/tile.h"
#include "core/error.h"
#include "ops/geometry.h"

namespace lldl::cpu {

namespace {

template <class T>
using CRow = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;

// The cell runs over blocks of Simd<T>::N units, each an Eigen expression of
// that fixed size (the last block of a row may be shorter). Ranges of units
// handed to threads start on block boundaries, so every unit is computed by
// the same instructions whatever the split: an expression over a longer
// dynamic range would peel scalar iterations up to an aligned address, and
// the scalar exp and tanh round differently from the vector ones.
template <class T, int N>
using Arr = Eigen::Map<Eigen::Array<T, N, 1>>;
template <class T, int N>
using CArr = Eigen::Map<const Eigen::Array<T, N, 1>>;

// Units [u0, u0 + n) of one row: activates the gate pre-activations g[4H] in
// place and writes the new cell state c and hidden state h. c_prev null:
// zero (c may alias c_prev).
template <class T, int N>
void cell_block(T* g, const T* c_prev, T* c, T* h, int64_t H, int64_t u0, int64_t n) {
  Arr<T, N> i(g + u0, n), f(g + H + u0, n), gg(g + 2 * H + u0, n), o(g + 3 * H + u0, n),
      cc(c + u0, n), hh(h + u0, n);
  i = (T(1) + (-i).exp()).inverse();
  f = (T(1) + (-f).exp()).inverse();
  gg = gg.tanh();
  o = (T(1) + (-o).exp()).inverse();
  if (c_prev) cc = f * CArr<T, N>(c_prev + u0, n) + i * gg;
  else cc = i * gg;
  hh = o * cc.tanh();
}

// Units [u0, u0 + n) of one row of backward through time. In: activated
// gates g[4H], c_t, c_{t-1} (null: zero), the output gradient dh_out; dh
// holds dG_{t+1} W_hh (the recurrent part) and dc the cell gradient from step
// t+1. Out: the pre-activation gate gradients dg[4H]; dc becomes the gradient
// of c_{t-1}. dh and dg's o slot serve as scratch (no heap temporaries).
template <class T, int N>
void cell_backward_block(const T* g, const T* c, const T* c_prev, const T* dh_out, T* dh, T* dc,
                         T* dg, int64_t H, int64_t u0, int64_t n) {
  CArr<T, N> i(g + u0, n), f(g + H + u0, n), gg(g + 2 * H + u0, n), o(g + 3 * H + u0, n),
      ct(c + u0, n);
  Arr<T, N> dht(dh + u0, n), dct(dc + u0, n), di(dg + u0, n), df(dg + H + u0, n),
      dgg(dg + 2 * H + u0, n), dout(dg + 3 * H + u0, n);
  dht += CArr<T, N>(dh_out + u0, n);
  dout = ct.tanh();                                 // tanh(c_t), for now
  dct += dht * o * (T(1) - dout.square());          // through h = o tanh(c)
  dout = dht * dout * o * (T(1) - o);               // sigmoid' = o (1 - o)
  di = dct * gg * i * (T(1) - i);
  if (c_prev) df = dct * CArr<T, N>(c_prev + u0, n) * f * (T(1) - f);
  else df.setZero();
  dgg = dct * i * (T(1) - gg.square());             // tanh' = 1 - g^2
  dct *= f;                                         // to c_{t-1}
}

// f<Simd<T>::N or Eigen::Dynamic>(u0, n) over units [j0, j1) in blocks of
// Simd<T>::N (j0 a multiple of it).
template <class T, class F>
inline void for_blocks(int64_t j0, int64_t j1, F&& f) {
  constexpr int64_t L = Simd<T>::N;
  for (int64_t u0 = j0; u0 < j1; u0 += L) {
    if (u0 + L <= j1) f(std::integral_constant<int, int(L)>{}, u0, L);
    else f(std::integral_constant<int, Eigen::Dynamic>{}, u0, j1 - u0);
  }
}

template <class T>
void cell(T* g, const T* c_prev, T* c, T* h, int64_t H, int64_t j0, int64_t j1) {
  for_blocks<T>(j0, j1, [&](auto N, int64_t u0, int64_t n) {
    cell_block<T, decltype(N)::value>(g, c_prev, c, h, H, u0, n);
  });
}

template <class T>
void cell_backward(const T* g, const T* c, const T* c_prev, const T* dh_out, T* dh, T* dc, T* dg,
                   int64_t H, int64_t j0, int64_t j1) {
  for_blocks<T>(j0, j1, [&](auto N, int64_t u0, int64_t n) {
    cell_backward_block<T, decltype(N)::value>(g, c, c_prev, dh_out, dh, dc, dg, H, u0, n);
  });
}

// Asks for [p, p + n) in L2 ahead of use (Write: for writing). The time
// loops touch each (B, T, .) array one row per batch entry per step, rows
// far apart: no hardware prefetcher follows that, and the loops would wait
// on memory at each (forward: an eighth of its time for gx's rows alone;
// backward: 5% for dG's).
template <bool Write, class T>
inline void prefetch(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t i = 0; i < n * static_cast<int64_t>(sizeof(T)); i += 64)
    __builtin_prefetch(c + i, Write ? 1 : 0, 2);
}

// ---- the recurrent products ------------------------------------------------

// Rows per tile: forward tiles are R x 4 gate vectors, backward R x 2 unit
// vectors; 16 accumulators either way with AVX-512 (32 registers).
constexpr int kFwdRows = 6, kBwdRows = 8, kBwdVecs = 2;

// The k loop runs in chunks whose slice of a panel (32 KiB) stays in L1
// while every row block of the step reads it (16 KiB cost 5% more forward,
// 64 KiB 8%).
template <class T, int NV>
constexpr int64_t kChunk = 32768 / (NV * kVecBytes);

// Reusable buffers of the calling thread (no allocation after the first
// call of a given size).
template <class T>
std::vector<T>& scratch(int which) {
  thread_local std::vector<T> buf[5];
  return buf[which];
}

// Runs body(thread, threads) on one OpenMP team when a step's recurrent
// product (B * 4H * H multiply-adds) is large enough to share, else on this
// thread alone.
template <class F>
void team(int64_t step_work, F&& body) {
  if (step_work < (int64_t(1) << 17) || omp_get_max_threads() == 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel
  body(omp_get_thread_num(), omp_get_num_threads());
}

// The time loop of the forward pass, shared by lstm and lstm_gates: pre is
// the pre-activation input part of the gates, (B, T, 4H) (lstm's is the
// workspace itself, already holding b + x W_ih^T); gates (B, T, 4H), cs (B,
// T, H) the workspace; h (B, T, H) the output.
template <class T>
void recurrent_forward(int64_t B, int64_t Tn, int64_t H, const T* pre, const T* whh, T* gates,
                       T* cs, T* h) {
  const int64_t G = 4 * H;
  // Unit block u (L units) packs W_hh^T's columns q H + u L + j, q = i, f,
  // g, o, as panel[k][q][j] = W_hh[q H + u L + j, k] (zero past H).
  constexpr int64_t L = Simd<T>::N;
  const int64_t blocks = (H + L - 1) / L, panel = H * 4 * L;
  std::vector<T>& pack = scratch<T>(0);
  if (Tn > 1 && pack.size() < static_cast<size_t>(blocks * panel))
    pack.resize(static_cast<size_t>(blocks * panel));
  // h_t also goes to hb[t % 2] (B, H): the products read it with a row
  // stride of H instead of T H (rows whose addresses differ by a multiple of
  // 4 KiB compete for the same cache sets).
  std::vector<T>& hb = scratch<T>(4);
  hb.resize(static_cast<size_t>(2 * B * H));
  team(B * G * H, [&](int th, int nt) {
    const auto [u_begin, u_end] = share(blocks, th, nt);
    if (Tn > 1)
      for (int64_t u = u_begin; u < u_end; ++u) {
        const int64_t n = std::min(L, H - u * L);
        T* p = pack.data() + u * panel;
        // Along k, writing each panel row whole: the 4 n rows of W_hh are
        // read in parallel, each from the same cache line 16 times in a row.
        for (int64_t k = 0; k < H; ++k)
          for (int64_t q = 0; q < 4; ++q)
            for (int64_t j = 0; j < L; ++j)
              p[(k * 4 + q) * L + j] = j < n ? whh[(q * H + u * L + j) * H + k] : T(0);
      }
    for (int64_t t = 0; t < Tn; ++t) {
      // The cell of row b's units [u0, u0 + n) once their gates are summed
      // (in the product's sink, while they are still in L1), the copy of h_t
      // for the next product, and prefetches of the row's part of step t + 1.
      auto finish = [&](int64_t b, int64_t u0, int64_t n) {
        const int64_t r = b * Tn + t;  // row of (b, t)
        cell(gates + r * G, t ? cs + (r - 1) * H : nullptr, cs + r * H, h + r * H, H, u0, u0 + n);
        std::copy(h + r * H + u0, h + r * H + u0 + n, hb.data() + (t & 1) * B * H + b * H + u0);
        if (t + 1 < Tn) {
          for (int64_t q = 0; q < 4; ++q) {
            prefetch<false>(pre + (r + 1) * G + q * H + u0, n);
            if (pre != gates) prefetch<true>(gates + (r + 1) * G + q * H + u0, n);
          }
          prefetch<true>(cs + (r + 1) * H + u0, n);
          prefetch<true>(h + (r + 1) * H + u0, n);
        }
      };
      for (int64_t u = u_begin; u < u_end; ++u) {
        const int64_t n = std::min(L, H - u * L);
        if (t == 0) {  // no product: the gates are pre's
          for (int64_t b = 0; b < B; ++b) {
            for (int64_t q = 0; q < 4; ++q) {
              const int64_t o = b * Tn * G + q * H + u * L;
              if (pre != gates) std::copy(pre + o, pre + o + n, gates + o);
            }
            finish(b, u * L, n);
          }
          continue;
        }
        for (int64_t k0 = 0; k0 < H; k0 += kChunk<T, 4>)
          tile_rows_ranged<T, kFwdRows, 4>(
              B, hb.data() + ((t - 1) & 1) * B * H, H, 1, pack.data() + u * panel,
              [&](int64_t, int64_t) { return std::pair(k0, std::min(H, k0 + kChunk<T, 4>)); },
              [&](int64_t b, const T* s) {
                const int64_t o = (b * Tn + t) * G + u * L;
                T* g = gates + o;
                const T* p = k0 == 0 ? pre + o : g;  // pre may be gates itself
                for (int64_t q = 0; q < 4; ++q)
                  for (int64_t j = 0; j < n; ++j) g[q * H + j] = p[q * H + j] + s[q * L + j];
                if (k0 + kChunk<T, 4> >= H) finish(b, u * L, n);
              });
      }
      if (nt > 1) {
#pragma omp barrier
      }
    }
  });
}

// Backward through time, shared by lstm and lstm_gates: from the workspace
// (gates, cs), the output h and its gradient dh_out, the pre-activation gate
// gradients dG (B, T, 4H), overwritten.
template <class T>
void recurrent_backward(int64_t B, int64_t Tn, int64_t H, const T* whh, const T* gates,
                        const T* cs, const T* dh_out, T* dG) {
  const int64_t G = 4 * H;
  std::vector<T>&dh = scratch<T>(2), &dc = scratch<T>(3);
  dh.assign(static_cast<size_t>(B * H), T(0));
  dc.assign(static_cast<size_t>(B * H), T(0));
  // Group u (kBwdVecs blocks of L units) packs W_hh's columns as
  // panel[k][v][j] = W_hh[k, (u kBwdVecs + v) L + j] (zero past H).
  constexpr int64_t L = Simd<T>::N, W = kBwdVecs * L;
  const int64_t groups = (H + W - 1) / W, panel = G * W;
  std::vector<T>& pack = scratch<T>(0);
  if (Tn > 1 && pack.size() < static_cast<size_t>(groups * panel))
    pack.resize(static_cast<size_t>(groups * panel));
  team(B * G * H, [&](int th, int nt) {
    const auto [u_begin, u_end] = share(groups, th, nt);
    if (Tn > 1)
      for (int64_t u = u_begin; u < u_end; ++u)
        pack_panel<T, kBwdVecs>(whh, H, 1, G, H, u * W, pack.data() + u * panel);
    for (int64_t t = Tn - 1; t >= 0; --t) {
      // The cell's backward for row b's units [u0, u0 + n) once their dh is
      // summed (in the product's sink), after prefetching the same units of
      // the row two ahead (into step t - 1 at the end): its dG lines above
      // all, which the cell would otherwise fetch before writing.
      auto finish = [&](int64_t b, int64_t u0, int64_t n) {
        if (const int64_t b2 = (b + 2) % B, t2 = b + 2 < B ? t : t - 1; t2 >= 0) {
          const int64_t r2 = b2 * Tn + t2;
          for (int64_t q = 0; q < 4; ++q) {
            prefetch<false>(gates + r2 * G + q * H + u0, n);
            prefetch<true>(dG + r2 * G + q * H + u0, n);
          }
          prefetch<false>(cs + r2 * H + u0, n);
          if (t2 > 0) prefetch<false>(cs + (r2 - 1) * H + u0, n);
          prefetch<false>(dh_out + r2 * H + u0, n);
        }
        const int64_t r = b * Tn + t;
        cell_backward(gates + r * G, cs + r * H, t ? cs + (r - 1) * H : nullptr, dh_out + r * H,
                      dh.data() + b * H, dc.data() + b * H, dG + r * G, H, u0, u0 + n);
      };
      for (int64_t u = u_begin; u < u_end; ++u) {
        const int64_t n = std::min(W, H - u * W);
        if (t == Tn - 1) {  // no product: dh is zero
          for (int64_t b = 0; b < B; ++b) finish(b, u * W, n);
          continue;
        }
        for (int64_t k0 = 0; k0 < G; k0 += kChunk<T, kBwdVecs>)
          tile_rows_ranged<T, kBwdRows, kBwdVecs>(
              B, dG + (t + 1) * G, Tn * G, 1, pack.data() + u * panel,
              [&](int64_t, int64_t) {
                return std::pair(k0, std::min(G, k0 + kChunk<T, kBwdVecs>));
              },
              [&](int64_t b, const T* s) {
                T* d = dh.data() + b * H + u * W;
                if (k0 == 0) std::copy(s, s + n, d);
                else
                  for (int64_t j = 0; j < n; ++j) d[j] += s[j];
                if (k0 + kChunk<T, kBwdVecs> >= G) finish(b, u * W, n);
              });
      }
      if (nt > 1) {
#pragma omp barrier
      }
    }
  });
}

// dW_hh (+)= dG^T h_prev over all B T rows, h_prev being h shifted one step
// (zero at t = 0): tiled_gemm_rows reads h_prev's rows straight out of h, so
// the shifted copy is never made.
template <class T>
void whh_gradient(int64_t B, int64_t Tn, int64_t H, const T* dG, const T* h, T* dwhh,
                  bool overwrite) {
  const int64_t G = 4 * H;
  if (Tn == 1) {
    if (overwrite) std::fill(dwhh, dwhh + G * H, T(0));
    return;
  }
  tiled_gemm_rows<T>(
      G, H, B * Tn, dG, 1, G, [=](int64_t k) { return k % Tn ? h + (k - 1) * H : nullptr; },
      dwhh, H, !overwrite);
}

// lstm: the bias first, then the input projection accumulated onto it (an
// assigning product zero-fills first anyway: the bias costs no extra pass),
// then the time loop over the workspace in place.
template <class T>
void lstm_forward(const KernelArgs& a) {
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  const int64_t B = g.B, Tn = g.T, I = g.I, H = g.H, G = g.G();
  if (B * Tn == 0) return;
  T *gates = static_cast<T*>(a.ws), *cs = gates + B * Tn * G;
  Map<T> Gm(gates, B * Tn, G);
  pfor(B * Tn, [&](int64_t r) { Gm.row(r) = CRow<T>(in<T>(a, 3), G); }, B * Tn * G);
  product(Gm, CMap<T>(in<T>(a, 0), B * Tn, I), CMap<T>(in<T>(a, 1), G, I).transpose(), true);
  recurrent_forward(B, Tn, H, gates, in<T>(a, 2), gates, cs, out<T>(a));
}

template <class T>
void lstm_backward(const KernelArgs& a) {
  T *dx = gin<T>(a, 0), *dwih = gin<T>(a, 1), *dwhh = gin<T>(a, 2), *db = gin<T>(a, 3);
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  const int64_t B = g.B, Tn = g.T, I = g.I, H = g.H, G = g.G(), N = B * Tn;
  if (N == 0 || !(dx || dwih || dwhh || db)) return;
  const T* gates = static_cast<const T*>(a.ws);
  std::vector<T>& dgates = scratch<T>(1);
  dgates.resize(static_cast<size_t>(N * G));
  recurrent_backward(B, Tn, H, in<T>(a, 2), gates, gates + N * G, gout<T>(a), dgates.data());

  Map<T> dG(dgates.data(), N, G);
  if (dx) product(Map<T>(dx, N, I), dG, CMap<T>(in<T>(a, 1), G, I), !fresh(a, 0));
  if (dwih)
    product(Map<T>(dwih, G, I), dG.transpose(), CMap<T>(in<T>(a, 0), N, I), !fresh(a, 1));
  if (dwhh) whh_gradient(B, Tn, H, dgates.data(), out<T>(a), dwhh, fresh(a, 2));
  if (db) {
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> dbv(db, G);
    if (fresh(a, 3)) dbv = dG.colwise().sum();
    else dbv += dG.colwise().sum();
  }
}

// lstm_gates: the time loop reads gx directly.
template <class T>
void lstm_gates_forward(const KernelArgs& a) {
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  const int64_t B = g.B, Tn = g.T, H = g.H;
  if (B * Tn == 0) return;
  T* gates = static_cast<T*>(a.ws);
  recurrent_forward(B, Tn, H, in<T>(a, 0), in<T>(a, 1), gates, gates + B * Tn * 4 * H, out<T>(a));
}

// dgx is dG itself: written in place when gx's gradient is stale, else
// through scratch and added.
template <class T>
void lstm_gates_backward(const KernelArgs& a) {
  T *dgx = gin<T>(a, 0), *dwhh = gin<T>(a, 1);
  const LstmGeom g = lstm_geom(a.kind, a.in_shape);
  const int64_t B = g.B, Tn = g.T, H = g.H, N = B * Tn, G = g.G();
  if (N == 0 || !(dgx || dwhh)) return;
  const T* gates = static_cast<const T*>(a.ws);
  T* dG = dgx;
  if (!dgx || !fresh(a, 0)) {
    std::vector<T>& dgates = scratch<T>(1);
    dgates.resize(static_cast<size_t>(N * G));
    dG = dgates.data();
  }
  recurrent_backward(B, Tn, H, in<T>(a, 1), gates, gates + N * G, gout<T>(a), dG);
  if (dgx && dG != dgx) pfor(N, [&](int64_t r) {
    VecMap<T>(dgx + r * G, G) += CVecMap<T>(dG + r * G, G);
  }, N * G);
  if (dwhh) whh_gradient(B, Tn, H, dG, out<T>(a), dwhh, fresh(a, 1));
}

}  // namespace

template <class T>
void register_lstm(KernelPair* t) {
  t[int(OpKind::Lstm)] = {lstm_forward<T>, lstm_backward<T>, true};
  t[int(OpKind::LstmGates)] = {lstm_gates_forward<T>, lstm_gates_backward<T>, true};
}
template void register_lstm<float>(KernelPair*);
template void register_lstm<double>(KernelPair*);

}  // namespace lldl::cpu
