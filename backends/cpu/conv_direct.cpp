// conv2d without im2col: one register-tiled micro-kernel over Eigen packets.
//
//   out[j][q .. q + NV packets) += sum_r X[a[j] + b[r]] * V[vo[r] + q .. + NV packets)
//
// The kernel keeps the NJ x NV block of packets in registers over the whole
// reduction: per r it loads NV packets of V, broadcasts NJ values of X and
// does NJ*NV fused multiply-adds, so loads stay well below the arithmetic.
// Every product conv2d needs takes this form in one of two arrangements:
//
//  channel-vector: the lanes run over output channels. X is the zero-padded
//    image, j an output pixel (a[j] = i*S*Wp + j*S), r a kernel entry (c,u,v)
//    (b[r] = c*Hp*Wp + u*Wp + v), V = w^T with rows over channels: the
//    forward, any stride. Swap j and r and take V = dy^T: dW.
//  pixel-vector (stride 1): the lanes run over output pixels. Output (i, j)
//    sits at q = i*Wp + j of a "wide" output with the padded input's row
//    length; what it sees through tap (c,u,v) sits at q + b[r] in the padded
//    image, contiguous in q, so V is the image itself (vo = tap offsets) and X
//    the weights (a[j] = row of output channel j, b[r] = r). The KW - 1 extra
//    columns per row are computed and dropped. This suits outputs with few
//    channels, which would leave most lanes of a channel vector empty.
//
// dx (stride 1) is the forward of dy padded by KH-1-P, KW-1-P with w flipped
// in both kernel axes and its channel axes swapped. Blocks of the result are
// independent: threads take whole blocks and images, nothing is shared.
// What suits neither (fewer than 4 output channels, or fewer than half a
// packet at stride > 1; 1x1 kernels, which need no im2col) goes to the
// im2col path; ConvAlgo::Direct forces this file wherever it can run.
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
constexpr int kMaxBlock = 24;  // packets in the largest block, max_nj(nv) * nv

template <class T, int NJ, int NV>
void micro(const T* x, const int32_t* a, const int32_t* b, int64_t R, const T* v,
           const int32_t* vo, T* out, int64_t ldo) {
  using P = Packet<T>;
  constexpr int n = kLanes<T>;
  P acc[NJ][NV];
  for (int j = 0; j < NJ; ++j)
    for (int k = 0; k < NV; ++k) acc[j][k] = Eigen::internal::ploadu<P>(out + j * ldo + k * n);
  int32_t aj[NJ];
  for (int j = 0; j < NJ; ++j) aj[j] = a[j];
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + b[r];
    const T* vr = v + vo[r];
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
using MicroFn = void (*)(const T*, const int32_t*, const int32_t*, int64_t, const T*,
                         const int32_t*, T*, int64_t);

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

// One block of a channel-vector result: rows [j0, j0 + nj), packets [k0, k0 + nv).
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

// dst[l][c] = src[c][l] for c < C, l < L (rows of dst ldd apart), in square
// blocks of one packet per row transposed in registers. (GCC warns that a
// SIMD type's alignment attribute is dropped in PacketBlock's template
// argument; Eigen's own headers silence the same warning.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
template <class T>
void transpose(const T* src, int64_t C, int64_t L, T* dst, int64_t ldd) {
  using P = Packet<T>;
  constexpr int n = kLanes<T>;
  const int64_t C0 = C / n * n, L0 = L / n * n;
  for (int64_t c = 0; c < C0; c += n) {
    for (int64_t l = 0; l < L0; l += n) {
      Eigen::internal::PacketBlock<P, n> b;
      for (int i = 0; i < n; ++i) b.packet[i] = Eigen::internal::ploadu<P>(src + (c + i) * L + l);
      Eigen::internal::ptranspose(b);
      for (int i = 0; i < n; ++i) Eigen::internal::pstoreu(dst + (l + i) * ldd + c, b.packet[i]);
    }
    for (int64_t i = c; i < c + n; ++i)
      for (int64_t l = L0; l < L; ++l) dst[l * ldd + i] = src[i * L + l];
  }
  for (int64_t i = C0; i < C; ++i)
    for (int64_t l = 0; l < L; ++l) dst[l * ldd + i] = src[i * L + l];
}
#pragma GCC diagnostic pop

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
bool fits_int32(int64_t v) { return v < INT32_MAX; }
bool plain_gemm(const Geom& g) { return g.KH == 1 && g.KW == 1 && g.S == 1 && g.P == 0; }
int64_t work(const Geom& g) { return g.N * g.OC * g.L() * g.K(); }

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

// A convolution with its padding already applied: N images of Cin planes
// Hp x Wp (x), weights (Cout, Cin, KH, KW) (w), stride S, output (OH, OW).
template <class T>
struct Padded {
  int64_t N, Cin, Hp, Wp, Cout, KH, KW, OH, OW, S;
  const T* x;
  const T* w;
  int64_t image() const { return Cin * Hp * Wp; }
  int64_t K() const { return Cin * KH * KW; }
  int64_t L() const { return OH * OW; }
};

// The channel-vector product of p; each result goes out through
// store(image, output channel, output index i*OW + j, value).
template <class T, class Store>
void channel_vector(const Padded<T>& p, Store&& store) {
  constexpr int n = kLanes<T>;
  const int64_t K = p.K(), L = p.L(), Cp = round_up(p.Cout, n);
  Carver cv;
  const size_t wt_at = cv.take<T>(K * Cp), b_at = cv.take<int32_t>(K),
               vo_at = cv.take<int32_t>(K), a_at = cv.take<int32_t>(L);
  char* base = static_cast<char*>(scratch(cv.used, Slot::Tables));
  if (!base) scratch_failed(cv.used);
  T* wt = reinterpret_cast<T*>(base + wt_at);
  auto ints = [&](size_t at) { return reinterpret_cast<int32_t*>(base + at); };
  int32_t *b = ints(b_at), *vo = ints(vo_at), *a = ints(a_at);
  // V = w^T, (K, Cp): row r holds w[o][r] for every o, zeros past Cout.
  for (int64_t r = 0; r < K; ++r) {
    std::fill(wt + r * Cp + p.Cout, wt + (r + 1) * Cp, T(0));
    vo[r] = static_cast<int32_t>(r * Cp);
  }
  transpose(p.w, p.Cout, K, wt, Cp);
  for (int64_t c = 0, r = 0; c < p.Cin; ++c)
    for (int64_t u = 0; u < p.KH; ++u)
      for (int64_t v = 0; v < p.KW; ++v, ++r)
        b[r] = static_cast<int32_t>(c * p.Hp * p.Wp + u * p.Wp + v);
  for (int64_t i = 0, l = 0; i < p.OH; ++i)
    for (int64_t j = 0; j < p.OW; ++j, ++l) a[l] = static_cast<int32_t>((i * p.Wp + j) * p.S);

  const std::vector<Block> bl = blocks(L, Cp / n);
  const int64_t nb = static_cast<int64_t>(bl.size()), items = p.N * nb;
  const bool par = static_cast<double>(p.N) * L * K * p.Cout >= 1e5;
#pragma omp parallel for if (par) schedule(static)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t img = it / nb;
    const Block& k = bl[static_cast<size_t>(it % nb)];
    alignas(64) T tile[kMaxBlock * n] = {};
    micro_fn<T>(k.nj, k.nv)(p.x + img * p.image(), a + k.j0, b, K, wt + k.k0 * n, vo, tile,
                            k.nv * n);
    const int64_t o_end = std::min<int64_t>(p.Cout, (k.k0 + k.nv) * n);
    for (int64_t o = k.k0 * n; o < o_end; ++o)
      for (int j = 0; j < k.nj; ++j) store(img, o, k.j0 + j, tile[j * k.nv * n + (o - k.k0 * n)]);
  }
}

// Values the pixel-vector arrangement may read past the last padded image
// (the dropped columns of the last row and the last partial chunk).
template <class T>
int64_t wide_slack(int64_t KW) {
  return KW + kMaxNV * kLanes<T>;
}

// The pixel-vector product of p (stride 1; p.x needs wide_slack() readable
// values after its last image), stored like channel_vector's.
template <class T, class Store>
void pixel_vector(const Padded<T>& p, Store&& store) {
  constexpr int n = kLanes<T>, nv = kMaxNV, chunk = nv * n;
  const int64_t K = p.K(), Lw = p.OH * p.Wp, Lw_up = round_up(Lw, chunk);
  Carver cv;
  const size_t b_at = cv.take<int32_t>(K), vo_at = cv.take<int32_t>(K),
               a_at = cv.take<int32_t>(max_nj(nv));
  char* base = static_cast<char*>(scratch(cv.used, Slot::Tables));
  if (!base) scratch_failed(cv.used);
  auto ints = [&](size_t at) { return reinterpret_cast<int32_t*>(base + at); };
  int32_t *b = ints(b_at), *vo = ints(vo_at), *a = ints(a_at);
  for (int64_t c = 0, r = 0; c < p.Cin; ++c)
    for (int64_t u = 0; u < p.KH; ++u)
      for (int64_t v = 0; v < p.KW; ++v, ++r) {
        b[r] = static_cast<int32_t>(r);  // X = the weight rows: w[j][r] = X[j*K + r]
        vo[r] = static_cast<int32_t>(c * p.Hp * p.Wp + u * p.Wp + v);
      }
  for (int j = 0; j < max_nj(nv); ++j) a[j] = static_cast<int32_t>(j * K);

  // Items: an image and a block of at most max_nj output channels, whose
  // whole wide output (nj x Lw_up) a thread computes in its own buffer and
  // then stores without the dropped columns.
  const int64_t jb = (p.Cout + max_nj(nv) - 1) / max_nj(nv), items = p.N * jb;
  const size_t tile_bytes = static_cast<size_t>(max_nj(nv) * Lw_up) * sizeof(T);
  const bool par = static_cast<double>(p.N) * p.L() * K * p.Cout >= 1e5;
  bool failed = false;
#pragma omp parallel if (par)
  {
    T* wide = static_cast<T*>(scratch(tile_bytes, Slot::Work));
    if (!wide) {
#pragma omp atomic write
      failed = true;
    }
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      if (!wide) continue;
      const int64_t img = it / jb, t = it % jb;
      const int64_t j0 = p.Cout * t / jb;
      const int nj = static_cast<int>(p.Cout * (t + 1) / jb - j0);
      std::fill(wide, wide + nj * Lw_up, T(0));
      const MicroFn<T> f = micro_fn<T>(nj, nv);
      const T* x = p.x + img * p.image();
      for (int64_t q = 0; q < Lw_up; q += chunk)
        f(p.w + j0 * K, a, b, K, x + q, vo, wide + q, Lw_up);
      for (int j = 0; j < nj; ++j)
        for (int64_t i = 0; i < p.OH; ++i)
          for (int64_t q = 0; q < p.OW; ++q)
            store(img, j0 + j, i * p.OW + q, wide[j * Lw_up + i * p.Wp + q]);
    }
  }
  if (failed) scratch_failed(tile_bytes);
}

// Stride 1 with fewer than two packets of output channels: pixel vectors.
template <class T>
bool pixel_wise(const Geom& g, int64_t channels) {
  return g.S == 1 && channels < 2 * kLanes<T>;
}
// Enough output channels for the arrangement to beat im2col: half a packet
// of channels, or (pixel vectors) a few rows of broadcasts per vector load.
template <class T>
bool enough(bool pixel, int64_t channels) {
  return channels >= (pixel ? 4 : kLanes<T> / 2);
}

}  // namespace

template <class T>
bool forward_direct(const KernelArgs& a, const Geom& g, bool force) {
  const int64_t Hp = g.H + 2 * g.P, Wp = g.W + 2 * g.P;
  const bool pixel = pixel_wise<T>(g, g.OC);
  const int64_t slack = pixel ? wide_slack<T>(g.KW) : 0;
  if (!fits_int32(g.C * Hp * Wp + slack)) return false;
  if (!force && (plain_gemm(g) || !enough<T>(pixel, g.OC))) return false;
  // The padded images (a pixel-vector product reads some values past them).
  const bool copy = g.P || pixel;
  const int64_t xp_n = copy ? g.N * g.C * Hp * Wp + slack : 0;
  T* xp = static_cast<T*>(scratch(static_cast<size_t>(xp_n) * sizeof(T), Slot::Images));
  if (xp_n && !xp) scratch_failed(static_cast<size_t>(xp_n) * sizeof(T));
  const T *x = in<T>(a, 0), *bias = in<T>(a, 2);
  if (copy) {
    pad_planes(x, g.N * g.C, g.H, g.W, g.P, g.P, xp);
    std::fill(xp + xp_n - slack, xp + xp_n, T(0));
  }
  const Padded<T> p{g.N,  g.C,  Hp,  Wp, g.OC, g.KH, g.KW,
                    g.OH, g.OW, g.S, copy ? xp : x, in<T>(a, 1)};
  T* y = out<T>(a);
  const int64_t L = g.L();
  auto store = [&](int64_t img, int64_t o, int64_t l, T v) {
    y[(img * g.OC + o) * L + l] = v + bias[o];
  };
  if (pixel) pixel_vector(p, store);
  else channel_vector(p, store);
  return true;
}

template <class T>
bool backward_x_direct(const KernelArgs& a, const Geom& g, bool force) {
  // Stride 1 only (larger strides would need a fractionally strided read),
  // and the padding of dy, K-1-P, must not be negative.
  if (g.S != 1 || g.P > g.KH - 1 || g.P > g.KW - 1) return false;
  const int64_t ph = g.KH - 1 - g.P, pw = g.KW - 1 - g.P;
  const int64_t Hq = g.OH + 2 * ph, Wq = g.OW + 2 * pw;  // = H + KH - 1, W + KW - 1
  const bool pixel = pixel_wise<T>(g, g.C);
  const int64_t slack = pixel ? wide_slack<T>(g.KW) : 0;
  if (!fits_int32(g.OC * Hq * Wq + slack)) return false;
  if (!force && (plain_gemm(g) || !enough<T>(pixel, g.C))) return false;
  // [padded dy | w flipped, (C, OC, KH, KW)]
  const bool copy = ph || pw || pixel;
  Carver cv;
  const size_t dyp_at = cv.take<T>(copy ? g.N * g.OC * Hq * Wq + slack : 0),
               wf_at = cv.take<T>(g.C * g.OC * g.KH * g.KW);
  char* base = static_cast<char*>(scratch(cv.used, Slot::Images));
  if (!base) scratch_failed(cv.used);
  const T *w = in<T>(a, 1), *dy = gout<T>(a);
  const T* dyp = dy;
  if (copy) {
    T* d = reinterpret_cast<T*>(base + dyp_at);
    pad_planes(dy, g.N * g.OC, g.OH, g.OW, ph, pw, d);
    std::fill(d + g.N * g.OC * Hq * Wq, d + g.N * g.OC * Hq * Wq + slack, T(0));
    dyp = d;
  }
  T* wf = reinterpret_cast<T*>(base + wf_at);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t o = 0; o < g.OC; ++o)
      for (int64_t u = 0; u < g.KH; ++u)
        for (int64_t v = 0; v < g.KW; ++v)
          wf[((c * g.OC + o) * g.KH + u) * g.KW + v] =
              w[((o * g.C + c) * g.KH + (g.KH - 1 - u)) * g.KW + (g.KW - 1 - v)];
  const Padded<T> p{g.N, g.OC, Hq, Wq, g.C, g.KH, g.KW, g.H, g.W, 1, dyp, wf};
  T* dx = gin<T>(a, 0);
  const int64_t J = g.H * g.W;
  auto store = [&](int64_t img, int64_t c, int64_t l, T v) { dx[(img * g.C + c) * J + l] += v; };
  if (pixel) pixel_vector(p, store);
  else channel_vector(p, store);
  return true;
}

template <class T>
bool backward_w_direct(const KernelArgs& a, const Geom& g, bool force) {
  const int64_t Hp = g.H + 2 * g.P, Wp = g.W + 2 * g.P;
  if (!fits_int32(g.C * Hp * Wp)) return false;
  if (!force && (plain_gemm(g) || !enough<T>(false, g.OC))) return false;
  constexpr int n = kLanes<T>;
  const int64_t K = g.K(), L = g.L(), OCp = round_up(g.OC, n);
  const std::vector<Block> bl = blocks(K, OCp / n);
  // Each thread takes a block of images and sums their dW over every block of
  // (c, u, v) x channels into its own partial (K, OCp): one image's padded x
  // and dy^T stay in cache while all of dW is visited. Partials are then
  // added in thread order, the same bits every run.
  const int threads =
      work(g) >= 100000 ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), g.N)) : 1;
  Carver cv;
  const size_t xp_at = cv.take<T>(g.P ? g.N * g.C * Hp * Wp : 0),
               dyt_at = cv.take<T>(threads * L * OCp), part_at = cv.take<T>(threads * K * OCp),
               b_at = cv.take<int32_t>(K), a_at = cv.take<int32_t>(L), vo_at = cv.take<int32_t>(L);
  char* base = static_cast<char*>(scratch(cv.used, Slot::Images));
  if (!base) scratch_failed(cv.used);

  const T *x = in<T>(a, 0), *dy = gout<T>(a);
  const T* xp = x;
  if (g.P) {
    T* d = reinterpret_cast<T*>(base + xp_at);
    pad_planes(x, g.N * g.C, g.H, g.W, g.P, g.P, d);
    xp = d;
  }
  // Rows j: kernel entries (offsets b into an image); reduction r: output
  // pixels (offsets a), V[r] = dy^T row r (vo[r] = r*OCp).
  auto ints = [&](size_t at) { return reinterpret_cast<int32_t*>(base + at); };
  int32_t *kb = ints(b_at), *pa = ints(a_at), *vo = ints(vo_at);
  for (int64_t c = 0, r = 0; c < g.C; ++c)
    for (int64_t u = 0; u < g.KH; ++u)
      for (int64_t v = 0; v < g.KW; ++v, ++r)
        kb[r] = static_cast<int32_t>(c * Hp * Wp + u * Wp + v);
  for (int64_t i = 0, l = 0; i < g.OH; ++i)
    for (int64_t j = 0; j < g.OW; ++j, ++l) {
      pa[l] = static_cast<int32_t>((i * Wp + j) * g.S);
      vo[l] = static_cast<int32_t>(l * OCp);
    }
  T* dyt = reinterpret_cast<T*>(base + dyt_at);
  T* part = reinterpret_cast<T*>(base + part_at);
  T* gw = gin<T>(a, 1);
  const int64_t image = g.C * Hp * Wp;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    T* mine = part + t * K * OCp;
    T* d = dyt + t * L * OCp;
    std::fill(mine, mine + K * OCp, T(0));
    for (int64_t img = g.N * t / nt; img < g.N * (t + 1) / nt; ++img) {
      // V = dy^T of this image, (L, OCp), zeros past OC.
      if (OCp > g.OC)
        for (int64_t l = 0; l < L; ++l) std::fill(d + l * OCp + g.OC, d + (l + 1) * OCp, T(0));
      transpose(dy + img * g.OC * L, g.OC, L, d, OCp);
      for (const Block& k : bl)
        micro_fn<T>(k.nj, k.nv)(xp + img * image, kb + k.j0, pa, L, d + k.k0 * n, vo,
                                mine + k.j0 * OCp + k.k0 * n, OCp);
    }
#pragma omp barrier
    // dw[o][r] += sum over threads of part[t][r][o], rows r split over threads.
    for (int64_t r = K * t / nt; r < K * (t + 1) / nt; ++r)
      for (int64_t o = 0; o < g.OC; ++o) {
        T acc = 0;
        for (int u = 0; u < nt; ++u) acc += part[(u * K + r) * OCp + o];
        gw[o * K + r] += acc;
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
