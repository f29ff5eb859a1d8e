// conv2d by im2col and GEMM: the path for every geometry (the direct path in
// conv_direct.cpp is faster where it applies). Shapes as in conv.h.
//
// Per image n: col = im2col(x[n]) is (K, L); row (c, kh, kw) holds what each
// output position sees through that kernel tap (0 in the padding). Then
// y[n] = W col + b, W seen as (OC, K). Backward, per image:
//   dW    += dy[n] col^T          col is recomputed: keeping it from the
//                                 forward would cost N*K*L values of memory
//   dx[n] += col2im(W^T dy[n])    col2im adds each entry back to its pixel
// A 1x1 kernel with stride 1 and no padding needs no im2col: col is x[n].
//
// Threads: with at least as many images as threads, each thread takes a block
// of whole images and runs serial GEMMs (Eigen sees it is inside a parallel
// region); dW goes into per-thread partial sums added in thread order, so a
// backward gives the same bits every time. With fewer images the images run
// in turn and Eigen's GEMM uses the threads.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "backends/cpu/conv.h"

namespace lldl::cpu::conv {

namespace {

bool direct_1x1(const Geom& g) { return g.KH == 1 && g.KW == 1 && g.S == 1 && g.P == 0; }

// Outputs o (rows or columns) whose input i = o*S - P + k lies in [0, n):
// [lo, hi) of [0, out).
inline void valid_range(int64_t k, int64_t n, int64_t out, const Geom& g, int64_t& lo,
                        int64_t& hi) {
  const int64_t first = g.P - k;         // need o*S >= P - k
  const int64_t last = n - 1 + g.P - k;  // need o*S <= n - 1 + P - k
  lo = first <= 0 ? 0 : (first + g.S - 1) / g.S;
  hi = last < 0 ? 0 : std::min(out, last / g.S + 1);
  if (hi < lo) hi = lo;
}

// One row of col, the kernel tap (kh, kw) of channel plane c: which output
// rows [rlo, rhi) and columns [lo, hi) see the image rather than padding.
struct Tap {
  int64_t rlo, rhi, lo, hi;
};
inline Tap tap(const Geom& g, int64_t kh, int64_t kw) {
  Tap t;
  valid_range(kh, g.H, g.OH, g, t.rlo, t.rhi);
  valid_range(kw, g.W, g.OW, g, t.lo, t.hi);
  return t;
}

// With stride 1 and OW == W ("same" padding) a tap is its plane shifted by a
// constant, input index = output index + (kh - P)*W + (kw - P), so the valid
// rows move as one block; the entries that wrap around a row edge are the
// columns outside [lo, hi), fixed up apart. `span` clips the block to the
// plane (what it leaves out is such wrapped entries).
inline bool shifted(const Geom& g) { return g.S == 1 && g.OW == g.W; }
inline void span(const Geom& g, const Tap& t, int64_t shift, int64_t& d0, int64_t& d1) {
  d0 = std::max(t.rlo * g.OW, -shift);
  d1 = std::min(t.rhi * g.OW, g.H * g.W - shift);
  if (d1 < d0) d1 = d0;
}

// col (K, L) from one image x (C, H, W).
template <class T>
void im2col(const T* x, T* col, const Geom& g) {
  const int64_t L = g.L();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * L;
        const T* plane = x + c * g.H * g.W;
        const Tap t = tap(g, kh, kw);
        std::fill(row, row + t.rlo * g.OW, T(0));  // rows in the top and bottom padding
        std::fill(row + t.rhi * g.OW, row + L, T(0));
        if (shifted(g)) {
          const int64_t shift = (kh - g.P) * g.W + (kw - g.P);
          int64_t d0, d1;
          span(g, t, shift, d0, d1);
          std::memcpy(row + d0, plane + d0 + shift, static_cast<size_t>(d1 - d0) * sizeof(T));
          for (int64_t oh = t.rlo; oh < t.rhi; ++oh) {
            T* r = row + oh * g.OW;
            for (int64_t ow = 0; ow < t.lo; ++ow) r[ow] = T(0);
            for (int64_t ow = t.hi; ow < g.OW; ++ow) r[ow] = T(0);
          }
          continue;
        }
        for (int64_t oh = t.rlo; oh < t.rhi; ++oh) {
          T* r = row + oh * g.OW;
          const T* src = plane + (oh * g.S - g.P + kh) * g.W;  // the input row
          const int64_t off = kw - g.P;                        // r[ow] = src[ow*S + off]
          for (int64_t ow = 0; ow < t.lo; ++ow) r[ow] = T(0);
          if (g.S == 1)
            for (int64_t ow = t.lo; ow < t.hi; ++ow) r[ow] = src[ow + off];
          else
            for (int64_t ow = t.lo; ow < t.hi; ++ow) r[ow] = src[ow * g.S + off];
          for (int64_t ow = t.hi; ow < g.OW; ++ow) r[ow] = T(0);
        }
      }
}

// dx (C, H, W) += col2im(dcol), the adjoint of im2col. dcol is scratch and
// gets its padding entries zeroed on the way.
template <class T>
void col2im_add(T* dcol, T* dx, const Geom& g) {
  const int64_t L = g.L();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = dcol + ((c * g.KH + kh) * g.KW + kw) * L;
        T* plane = dx + c * g.H * g.W;
        const Tap t = tap(g, kh, kw);
        if (shifted(g)) {
          const int64_t shift = (kh - g.P) * g.W + (kw - g.P);
          for (int64_t oh = t.rlo; oh < t.rhi; ++oh) {  // wrapped entries add nothing
            T* r = row + oh * g.OW;
            for (int64_t ow = 0; ow < t.lo; ++ow) r[ow] = T(0);
            for (int64_t ow = t.hi; ow < g.OW; ++ow) r[ow] = T(0);
          }
          int64_t d0, d1;
          span(g, t, shift, d0, d1);
          for (int64_t i = d0; i < d1; ++i) plane[i + shift] += row[i];
          continue;
        }
        for (int64_t oh = t.rlo; oh < t.rhi; ++oh) {
          const T* r = row + oh * g.OW;
          T* dst = plane + (oh * g.S - g.P + kh) * g.W;
          const int64_t off = kw - g.P;
          if (g.S == 1)
            for (int64_t ow = t.lo; ow < t.hi; ++ow) dst[ow + off] += r[ow];
          else
            for (int64_t ow = t.lo; ow < t.hi; ++ow) dst[ow * g.S + off] += r[ow];
        }
      }
}

// Whole images per thread when there are enough of them and enough work to
// pay for the fork.
bool by_images(const Geom& g, int threads) {
  return threads > 1 && g.N >= threads && g.N * g.OC * g.L() * g.K() >= kParallelMin;
}

// The first image of thread t's block when n images are split over nt threads.
inline int64_t block_start(int64_t n, int t, int nt) { return n * t / nt; }

}  // namespace

template <class T>
void forward_im2col(const KernelArgs& a, const Geom& g) {
  const T *x = in<T>(a, 0), *w = in<T>(a, 1), *b = in<T>(a, 2);
  T* y = out<T>(a);
  CMap<T> Wm(w, g.OC, g.K());
  const int64_t col_n = direct_1x1(g) ? 0 : g.K() * g.L();

  // y[n] = b broadcast over positions, then += W col.
  auto image = [&](int64_t n, T* col) {
    const T* xn = x + n * g.C * g.H * g.W;
    if (col_n) im2col(xn, col, g);
    Map<T> Y(y + n * g.OC * g.L(), g.OC, g.L());
    for (int64_t oc = 0; oc < g.OC; ++oc) Y.row(oc).setConstant(b[oc]);
    Y.noalias() += Wm * CMap<T>(col_n ? col : xn, g.K(), g.L());
  };

  const size_t bytes = static_cast<size_t>(col_n) * sizeof(T);
  const int threads = omp_get_max_threads();
  if (!by_images(g, threads)) {
    T* col = static_cast<T*>(scratch(bytes));
    if (bytes && !col) scratch_failed(bytes);
    for (int64_t n = 0; n < g.N; ++n) image(n, col);
    return;
  }
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    T* col = static_cast<T*>(scratch(bytes));
    if (bytes && !col) failed = true;
    else
      for (int64_t n = block_start(g.N, t, nt); n < block_start(g.N, t + 1, nt); ++n)
        image(n, col);
  }
  if (failed) scratch_failed(bytes);
}

template <class T>
void backward_im2col(const KernelArgs& a, const Geom& g, T* gx, T* gw) {
  const T *x = in<T>(a, 0), *w = in<T>(a, 1), *dy = gout<T>(a);
  CMap<T> Wm(w, g.OC, g.K());
  const int64_t KL = direct_1x1(g) ? 0 : g.K() * g.L();
  const int64_t col_n = gw ? KL : 0, dcol_n = gx ? KL : 0;

  // One image; dW is accumulated into dw (a partial sum or the result).
  auto image = [&](int64_t n, T* col, T* dcol, T* dw) {
    CMap<T> dY(dy + n * g.OC * g.L(), g.OC, g.L());
    const T* xn = x + n * g.C * g.H * g.W;
    if (dw) {
      if (col_n) im2col(xn, col, g);
      Map<T>(dw, g.OC, g.K()).noalias() += dY * CMap<T>(col_n ? col : xn, g.K(), g.L()).transpose();
    }
    if (gx) {
      T* dxn = gx + n * g.C * g.H * g.W;
      if (!KL) {
        Map<T>(dxn, g.K(), g.L()).noalias() += Wm.transpose() * dY;
      } else {
        Map<T>(dcol, g.K(), g.L()).noalias() = Wm.transpose() * dY;
        col2im_add(dcol, dxn, g);
      }
    }
  };

  const int threads = omp_get_max_threads();
  if (!by_images(g, threads)) {
    const size_t bytes = static_cast<size_t>(col_n + dcol_n) * sizeof(T);
    T* s = static_cast<T*>(scratch(bytes));
    if (bytes && !s) scratch_failed(bytes);
    for (int64_t n = 0; n < g.N; ++n) image(n, s, s + col_n, gw);
    return;
  }

  // Per thread: [col | dcol | dW partial].
  const int64_t dw_n = gw ? g.OC * g.K() : 0;
  const size_t bytes = static_cast<size_t>(col_n + dcol_n + dw_n) * sizeof(T);
  std::vector<T*> parts(static_cast<size_t>(threads), nullptr);
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    T* s = static_cast<T*>(scratch(bytes));
    if (bytes && !s) failed = true;
    if (s || !bytes) {
      T *col = s, *dcol = s + col_n, *dw = s + col_n + dcol_n;
      std::fill(dw, dw + dw_n, T(0));
      parts[t] = dw;
      for (int64_t n = block_start(g.N, t, nt); n < block_start(g.N, t + 1, nt); ++n)
        image(n, col, dcol, gw ? dw : nullptr);
    }
#pragma omp barrier
    // Partial sums, added in thread order (the same bits every run), each
    // thread taking a slice of the elements.
    if (!failed)
      for (int64_t i = dw_n * t / nt; i < dw_n * (t + 1) / nt; ++i) {
        T acc = 0;
        for (int u = 0; u < nt; ++u) acc += parts[u][i];
        gw[i] += acc;
      }
  }
  if (failed) scratch_failed(bytes);
}

template void forward_im2col<float>(const KernelArgs&, const Geom&);
template void forward_im2col<double>(const KernelArgs&, const Geom&);
template void backward_im2col<float>(const KernelArgs&, const Geom&, float*, float*);
template void backward_im2col<double>(const KernelArgs&, const Geom&, double*, double*);

}  // namespace lldl::cpu::conv
