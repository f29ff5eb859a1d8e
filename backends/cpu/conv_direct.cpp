// conv2d without im2col: a register-tiled micro-kernel over Eigen packets.
//
// Each product conv2d needs has the form
//
//   out[j][o] += sum_r X[a[j] + b[r]] * V[r][o]
//
// X is a zero-padded image read in place, a[] and b[] are offsets into it,
// and V's rows are vectors over output channels o (padded with zeros to a
// whole number of packets):
//   forward  j = output pixel (i, j) -> offset i*S*Wp + j*S in the padded x,
//            r = kernel entry (c, u, v) -> c*Hp*Wp + u*Wp + v, V = w^T;
//   dW       j = kernel entry, r = output pixel (summed over the images too),
//            V = dy^T of one image;
//   dx       (stride 1) the forward of dy padded by KH-1-P, KW-1-P with w
//            flipped in both kernel axes and its channel axes swapped.
// The micro-kernel keeps an NJ x NV block of packets (NJ values of j, NV
// packets of o) in registers over the whole reduction: per r it loads NV
// packets of V, broadcasts NJ values of X and does NJ*NV fused multiply-adds,
// so the loads stay well below the arithmetic. Blocks of the result are
// independent: threads take whole blocks (and images), nothing is shared.
//
// With fewer output channels than half a packet most lanes would compute
// zeros, so those products go to the im2col path instead (conv.cpp asks).
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <climits>
#include <utility>
#include <vector>

#include "backends/cpu/conv.h"

namespace lldl::cpu::conv {

namespace {

template <class T>
using Packet = typename Eigen::internal::packet_traits<T>::type;
template <class T>
constexpr int kLanes = Eigen::internal::unpacket_traits<Packet<T>>::size;

// Accumulator blocks that fit the vector registers (32 with AVX-512, else
// 16) next to the NV packets of V and the broadcast value.
constexpr int kMaxNV = 4;
constexpr int max_nj(int nv) {
  constexpr bool many = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32;
  constexpr int big[kMaxNV] = {16, 12, 8, 6}, small[kMaxNV] = {8, 6, 3, 2};
  return many ? big[nv - 1] : small[nv - 1];
}
constexpr int kMaxBlock = 24;  // max over nv of max_nj(nv) * nv: the tile buffer, in packets

// out[j][0 .. NV packets) += sum_r X[a[j] + b[r]] * V[r][0 .. NV packets), for
// j < NJ; rows of V are ldv apart, rows of out ldo.
template <class T, int NJ, int NV>
void micro(const T* x, const int32_t* a, const int32_t* b, int64_t R, const T* v, int64_t ldv,
           T* out, int64_t ldo) {
  using P = Packet<T>;
  constexpr int n = kLanes<T>;
  P acc[NJ][NV];
  for (int j = 0; j < NJ; ++j)
    for (int k = 0; k < NV; ++k) acc[j][k] = Eigen::internal::ploadu<P>(out + j * ldo + k * n);
  int32_t aj[NJ];
  for (int j = 0; j < NJ; ++j) aj[j] = a[j];
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + b[r];
    const T* vr = v + r * ldv;
    P w[NV];
    for (int k = 0; k < NV; ++k) w[k] = Eigen::internal::ploadu<P>(vr + k * n);
    for (int j = 0; j < NJ; ++j) {
      const P s = Eigen::internal::pset1<P>(xr[aj[j]]);
      for (int k = 0; k < NV; ++k) acc[j][k] = Eigen::internal::pmadd(s, w[k], acc[j][k]);
    }
  }
  for (int j = 0; j < NJ; ++j)
    for (int k = 0; k < NV; ++k) Eigen::internal::pstoreu(out + j * ldo + k * n, acc[j][k]);
}

template <class T>
using MicroFn = void (*)(const T*, const int32_t*, const int32_t*, int64_t, const T*, int64_t, T*,
                         int64_t);

template <class T, int NV, int... J>
constexpr std::array<MicroFn<T>, sizeof...(J)> micro_row(std::integer_sequence<int, J...>) {
  return {&micro<T, J + 1, NV>...};
}

// The micro-kernel for an nj x nv block (1 <= nj <= max_nj(nv), 1 <= nv <= 4).
template <class T>
MicroFn<T> micro_fn(int nj, int nv) {
  static constexpr auto r1 = micro_row<T, 1>(std::make_integer_sequence<int, max_nj(1)>{});
  static constexpr auto r2 = micro_row<T, 2>(std::make_integer_sequence<int, max_nj(2)>{});
  static constexpr auto r3 = micro_row<T, 3>(std::make_integer_sequence<int, max_nj(3)>{});
  static constexpr auto r4 = micro_row<T, 4>(std::make_integer_sequence<int, max_nj(4)>{});
  switch (nv) {
    case 1: return r1[nj - 1];
    case 2: return r2[nj - 1];
    case 3: return r3[nj - 1];
    default: return r4[nj - 1];
  }
}

// One block of the result: rows [j0, j0 + nj), packets [k0, k0 + nv).
struct Block {
  int64_t j0;
  int nj, k0, nv;
};

// Blocks covering J rows and `packets` packets: packets in groups of at most
// kMaxNV, rows in near-equal tiles of at most max_nj(nv).
std::vector<Block> blocks(int64_t J, int64_t packets) {
  std::vector<Block> out;
  const int64_t groups = (packets + kMaxNV - 1) / kMaxNV;
  for (int64_t gi = 0; gi < groups; ++gi) {
    const int k0 = static_cast<int>(packets * gi / groups);
    const int nv = static_cast<int>(packets * (gi + 1) / groups) - k0;
    const int64_t tiles = (J + max_nj(nv) - 1) / max_nj(nv);
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t j0 = J * t / tiles;
      out.push_back({j0, static_cast<int>(J * (t + 1) / tiles - j0), k0, nv});
    }
  }
  return out;
}

// Most lanes do useful work: at least half a packet of output channels.
template <class T>
bool fills_lanes(int64_t channels) {
  return channels >= kLanes<T> / 2;
}
int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
bool fits_int32(int64_t v) { return v < INT32_MAX; }

// Planes (h, w) copied into planes (h + 2ph, w + 2pw) with zero borders.
template <class T>
void pad_planes(const T* src, int64_t planes, int64_t h, int64_t w, int64_t ph, int64_t pw,
                T* dst) {
  const int64_t hp = h + 2 * ph, wp = w + 2 * pw;
#pragma omp parallel for if (planes * hp * wp >= kParallelMin) schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    T* d = dst + p * hp * wp;
    const T* s = src + p * h * w;
    std::fill(d, d + ph * wp, T(0));
    for (int64_t i = 0; i < h; ++i) {
      T* row = d + (ph + i) * wp;
      std::fill(row, row + pw, T(0));
      std::copy(s + i * w, s + (i + 1) * w, row + pw);
      std::fill(row + pw + w, row + wp, T(0));
    }
    std::fill(d + (ph + h) * wp, d + hp * wp, T(0));
  }
}

// The forward product of x (N images of `planes_in` planes hp x wp, already
// padded) into y (N images of `out_ch` planes of J pixels): for each image
// and block, out[j][o] = sum_r x[a[j] + b[r]] v[r][o]; then `store(n, o, j,
// value)` for o < out_ch. Used by the forward and by dx.
template <class T, class Store>
void image_products(int64_t N, const T* x, int64_t image_stride, const int32_t* a, int64_t J,
                    const int32_t* b, int64_t R, const T* v, int64_t ldv, int64_t out_ch,
                    Store&& store) {
  constexpr int n = kLanes<T>;
  const std::vector<Block> bl = blocks(J, ldv / n);
  const int64_t nb = static_cast<int64_t>(bl.size()), items = N * nb;
  const bool par = static_cast<double>(N) * J * R * out_ch >= 1e5;
#pragma omp parallel for if (par) schedule(static)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t img = it / nb;
    const Block& k = bl[static_cast<size_t>(it % nb)];
    alignas(64) T tile[kMaxBlock * n] = {};
    micro_fn<T>(k.nj, k.nv)(x + img * image_stride, a + k.j0, b, R, v + k.k0 * n, ldv, tile,
                            k.nv * n);
    const int64_t o_end = std::min<int64_t>(out_ch, (k.k0 + k.nv) * n);
    for (int64_t o = k.k0 * n; o < o_end; ++o)
      for (int j = 0; j < k.nj; ++j)
        store(img, o, k.j0 + j, tile[j * k.nv * n + (o - k.k0 * n)]);
  }
}

// Scratch for the padded input and the offset tables shared by the forward
// and dW: koff[(c, u, v)] = c*Hp*Wp + u*Wp + v, poff[(i, j)] = i*S*Wp + j*S.
struct Padded {
  int64_t Hp, Wp;
  const void* x;  // the padded images (x itself when P == 0)
  int32_t *koff, *poff;
};
template <class T>
Padded pad_input(const T* x, const Geom& g, char* base, size_t xp_at, size_t koff_at,
                 size_t poff_at) {
  Padded p{g.H + 2 * g.P, g.W + 2 * g.P, x, reinterpret_cast<int32_t*>(base + koff_at),
           reinterpret_cast<int32_t*>(base + poff_at)};
  if (g.P) {
    T* xp = reinterpret_cast<T*>(base + xp_at);
    pad_planes(x, g.N * g.C, g.H, g.W, g.P, g.P, xp);
    p.x = xp;
  }
  for (int64_t c = 0, kk = 0; c < g.C; ++c)
    for (int64_t u = 0; u < g.KH; ++u)
      for (int64_t v = 0; v < g.KW; ++v, ++kk)
        p.koff[kk] = static_cast<int32_t>(c * p.Hp * p.Wp + u * p.Wp + v);
  for (int64_t i = 0, j = 0; i < g.OH; ++i)
    for (int64_t q = 0; q < g.OW; ++q, ++j)
      p.poff[j] = static_cast<int32_t>(i * g.S * p.Wp + q * g.S);
  return p;
}

}  // namespace

template <class T>
bool forward_direct(const KernelArgs& a, const Geom& g, bool force) {
  const int64_t Hp = g.H + 2 * g.P, Wp = g.W + 2 * g.P;
  if (!fits_int32(g.C * Hp * Wp) || (!force && !fills_lanes<T>(g.OC))) return false;
  constexpr int n = kLanes<T>;
  const int64_t K = g.K(), L = g.L(), OCp = round_up(g.OC, n);
  Carver cv;
  const size_t xp_at = cv.take<T>(g.P ? g.N * g.C * Hp * Wp : 0), wt_at = cv.take<T>(K * OCp),
               koff_at = cv.take<int32_t>(K), poff_at = cv.take<int32_t>(L);
  char* base = static_cast<char*>(scratch(cv.used));
  if (!base) scratch_failed(cv.used);

  const T *x = in<T>(a, 0), *w = in<T>(a, 1), *bias = in<T>(a, 2);
  const Padded p = pad_input(x, g, base, xp_at, koff_at, poff_at);
  // V = w^T, (K, OCp): row kk holds w[o][kk] for every o, zeros past OC.
  T* wt = reinterpret_cast<T*>(base + wt_at);
  for (int64_t kk = 0; kk < K; ++kk) {
    for (int64_t o = 0; o < g.OC; ++o) wt[kk * OCp + o] = w[o * K + kk];
    std::fill(wt + kk * OCp + g.OC, wt + (kk + 1) * OCp, T(0));
  }
  T* y = out<T>(a);
  image_products<T>(g.N, static_cast<const T*>(p.x), g.C * Hp * Wp, p.poff, L, p.koff, K, wt, OCp,
                    g.OC, [&](int64_t img, int64_t o, int64_t j, T v) {
                      y[(img * g.OC + o) * L + j] = v + bias[o];
                    });
  return true;
}

template <class T>
bool backward_x_direct(const KernelArgs& a, const Geom& g, bool force) {
  // Stride 1 only (larger strides would need a fractionally strided read),
  // and the padding of dy, K-1-P, must not be negative.
  if (g.S != 1 || g.P > g.KH - 1 || g.P > g.KW - 1) return false;
  const int64_t ph = g.KH - 1 - g.P, pw = g.KW - 1 - g.P;
  const int64_t Hq = g.OH + 2 * ph, Wq = g.OW + 2 * pw;  // = H + KH - 1, W + KW - 1
  if (!fits_int32(g.OC * Hq * Wq) || (!force && !fills_lanes<T>(g.C))) return false;
  constexpr int n = kLanes<T>;
  const int64_t K = g.OC * g.KH * g.KW, J = g.H * g.W, Cp = round_up(g.C, n);
  const bool copy = ph || pw;
  Carver cv;
  const size_t dyp_at = cv.take<T>(copy ? g.N * g.OC * Hq * Wq : 0), wt_at = cv.take<T>(K * Cp),
               koff_at = cv.take<int32_t>(K), poff_at = cv.take<int32_t>(J);
  char* base = static_cast<char*>(scratch(cv.used));
  if (!base) scratch_failed(cv.used);

  const T *w = in<T>(a, 1), *dy = gout<T>(a);
  const T* dyp = dy;
  if (copy) {
    T* d = reinterpret_cast<T*>(base + dyp_at);
    pad_planes(dy, g.N * g.OC, g.OH, g.OW, ph, pw, d);
    dyp = d;
  }
  // V[(o, u', v')][c] = w[o][c][KH-1-u'][KW-1-v'], zeros past C.
  T* wt = reinterpret_cast<T*>(base + wt_at);
  int32_t* koff = reinterpret_cast<int32_t*>(base + koff_at);
  int32_t* poff = reinterpret_cast<int32_t*>(base + poff_at);
  for (int64_t o = 0, kk = 0; o < g.OC; ++o)
    for (int64_t u = 0; u < g.KH; ++u)
      for (int64_t v = 0; v < g.KW; ++v, ++kk) {
        T* row = wt + kk * Cp;
        for (int64_t c = 0; c < g.C; ++c)
          row[c] = w[((o * g.C + c) * g.KH + (g.KH - 1 - u)) * g.KW + (g.KW - 1 - v)];
        std::fill(row + g.C, row + Cp, T(0));
        koff[kk] = static_cast<int32_t>(o * Hq * Wq + u * Wq + v);
      }
  for (int64_t i = 0, j = 0; i < g.H; ++i)
    for (int64_t q = 0; q < g.W; ++q, ++j) poff[j] = static_cast<int32_t>(i * Wq + q);

  T* dx = gin<T>(a, 0);
  image_products<T>(g.N, dyp, g.OC * Hq * Wq, poff, J, koff, K, wt, Cp, g.C,
                    [&](int64_t img, int64_t c, int64_t j, T v) {
                      dx[(img * g.C + c) * J + j] += v;
                    });
  return true;
}

template <class T>
bool backward_w_direct(const KernelArgs& a, const Geom& g, bool force) {
  const int64_t Hp = g.H + 2 * g.P, Wp = g.W + 2 * g.P;
  if (!fits_int32(g.C * Hp * Wp) || (!force && !fills_lanes<T>(g.OC))) return false;
  constexpr int n = kLanes<T>;
  const int64_t K = g.K(), L = g.L(), OCp = round_up(g.OC, n);
  const std::vector<Block> bl = blocks(K, OCp / n);
  // Each thread takes a block of images and sums their dW over every block of
  // (c, u, v) x channels into its own partial (K, OCp): one image's padded x
  // and dy^T stay in cache while all of dW is visited. Partials are then
  // added in thread order, the same bits every run.
  const bool par = static_cast<double>(g.N) * L * K * g.OC >= 1e5;
  const int threads = par ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), g.N)) : 1;
  Carver cv;
  const size_t xp_at = cv.take<T>(g.P ? g.N * g.C * Hp * Wp : 0), dyt_at = cv.take<T>(threads * L * OCp),
               part_at = cv.take<T>(threads * K * OCp), koff_at = cv.take<int32_t>(K),
               poff_at = cv.take<int32_t>(L);
  char* base = static_cast<char*>(scratch(cv.used));
  if (!base) scratch_failed(cv.used);

  const T *x = in<T>(a, 0), *dy = gout<T>(a);
  const Padded p = pad_input(x, g, base, xp_at, koff_at, poff_at);
  const T* xp = static_cast<const T*>(p.x);
  T* dyt = reinterpret_cast<T*>(base + dyt_at);
  T* part = reinterpret_cast<T*>(base + part_at);
  T* gw = gin<T>(a, 1);
  const int64_t image = g.C * Hp * Wp;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    T* mine = part + t * K * OCp;
    std::fill(mine, mine + K * OCp, T(0));
    for (int64_t img = g.N * t / nt; img < g.N * (t + 1) / nt; ++img) {
      // V = dy^T of this image, (L, OCp), zeros past OC.
      T* d = dyt + t * L * OCp;
      for (int64_t j = 0; j < L; ++j) std::fill(d + j * OCp + g.OC, d + (j + 1) * OCp, T(0));
      for (int64_t o = 0; o < g.OC; ++o) {
        const T* s = dy + (img * g.OC + o) * L;
        for (int64_t j = 0; j < L; ++j) d[j * OCp + o] = s[j];
      }
      for (const Block& k : bl)
        micro_fn<T>(k.nj, k.nv)(xp + img * image, p.koff + k.j0, p.poff, L, d + k.k0 * n, OCp,
                                mine + k.j0 * OCp + k.k0 * n, OCp);
    }
#pragma omp barrier
    // dw[o][kk] += sum over threads of part[t][kk][o], rows of kk split over threads.
    for (int64_t kk = K * t / nt; kk < K * (t + 1) / nt; ++kk)
      for (int64_t o = 0; o < g.OC; ++o) {
        T acc = 0;
        for (int u = 0; u < nt; ++u) acc += part[(u * K + kk) * OCp + o];
        gw[o * K + kk] += acc;
      }
  }
  return true;
}

template bool forward_direct<float>(const KernelArgs&, const Geom&, bool);
template bool forward_direct<double>(const KernelArgs&, const Geom&, bool);
template bool backward_x_direct<float>(const KernelArgs&, const Geom&, bool);
template bool backward_x_direct<double>(const KernelArgs&, const Geom&, bool);
template bool backward_w_direct<float>(const KernelArgs&, const Geom&, bool);
template bool backward_w_direct<double>(const KernelArgs&, const Geom&, bool);

}  // namespace lldl::cpu::conv
