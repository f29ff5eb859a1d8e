// Tile bodies of the fast tier's fused kernels (issue 16): causal flash
// attention forward and backward, and softmax + cross-entropy over the
// vocabulary with one block per row. Cooperative bodies in the sense of
// hd.h (begin / load / step / end between block barriers): tiles_kernel
// runs them on the GPU (common.cuh), host_tiles on the host, so
// tests/test_cuda_host.cpp checks every tile index, shared-memory offset and
// online-softmax update against the CPU backend. At the end, linear_gelu's
// bias + GELU epilogue bodies (per element, run by the ordinary launcher).
//
// Flash attention (shapes as backends/cpu/attention.cpp; per (b, h) with
// Q, K, V, Y the (T, D) head slices of qkv and y, scale = 1/sqrt(D)).
// Tiles of 64 rows, blocks of 256 threads in a 16 x 16 grid; every thread
// computes a 4 x 4 register block of each 64 x 64 score tile and of each
// 64 x D output tile from float4 reads of shared memory (8 reads per 64
// multiply-adds), so a block does 2 x 64 x 64 x D multiply-adds per key tile
// instead of the 32-thread row-per-thread design's 2 x 32 x 32 x D with
// broadcast scalar reads (measured 10x slower than the GEMM rung on an H200).
//   forward   a block per (query tile, b h), key tiles 0..its own (causal)
//             through shared memory; per key tile the rows' running maxima
//             m and sums l are updated once (online softmax), so no T x T
//             matrix exists anywhere. Writes y = o / l and lse_t = m + log l
//             into the workspace (B, NH, T) (the first B NH T floats of the
//             op's workspace).
//   backward  delta_t = dY_t . Y_t (a thread per row, FlashDeltaF), then two
//             recomputing passes, so that every gradient element has exactly
//             one writer (no atomics, deterministic):
//             dK, dV: a block per key tile, query tiles from its own to the
//               last: p = exp(scale q_t.k_s - lse_t), dv_s += p dY_t,
//               ds = p (dY_t.v_s - delta_t) scale, dk_s += ds q_t;
//             dQ: a block per query tile, key tiles 0..its own: dq_t += ds k_s.
// Shared memory (D = 64): forward 77.8 KB, dK/dV 104.5 KB, dQ 87.5 KB, so two
// blocks (16 warps) per SM on sm_80/sm_90; ptxas keeps each kernel at or
// under 128 registers (the two-block limit) without spills.
#pragma once
#include <cstdint>

#include "backends/cuda/bodies_seq.h"
#include "backends/cuda/hd.h"
#include "ops/geometry.h"

namespace lldl::cuda {

constexpr int kFlashTile = 64;     // rows per query / key tile
constexpr int kFlashThreads = 256;  // a 16 x 16 grid of threads, each a 4 x 4 register block
constexpr int kFlashMaxD = 64;     // head dims one 16-thread row of 4-wide blocks covers (GPT-2: 64)
constexpr int kFlashLdP = kFlashTile + 4;  // row stride of the 64 x 64 probability tiles

// Whether the flash kernels take a shape: D up to kFlashMaxD and B NH within
// a grid's y dimension. Otherwise the middle rung runs.
inline bool flash_fits(const AttnGeom& g) { return g.D >= 1 && g.D <= kFlashMaxD && g.B * g.NH <= 65535; }
LLDL_HD inline int64_t flash_tiles(int64_t T) { return (T + kFlashTile - 1) / kFlashTile; }
// Head dims rounded up to whole float4s (zeros past D), and the row stride of
// a shared (64, Dp) tile: an odd number of float4s, so that 8 threads reading
// float4s of 8 consecutive rows (one 128-byte phase) hit 32 distinct banks.
LLDL_HD inline int flash_dp(int64_t D) { return static_cast<int>(4 * ((D + 3) / 4)); }
LLDL_HD inline int flash_ld(int64_t D) { return static_cast<int>(4 * (((D + 3) / 4) | 1)); }

// Four consecutive floats (16-byte aligned): one 128-bit load / store on
// the GPU.
struct F4 { float x, y, z, w; };
LLDL_HD inline F4 ld4(const float* p) {
#ifdef __CUDA_ARCH__
  const float4 a = *reinterpret_cast<const float4*>(p);
  return {a.x, a.y, a.z, a.w};
#else
  return {p[0], p[1], p[2], p[3]};
#endif
}
LLDL_HD inline void st4(float* p, const F4& v) {
#ifdef __CUDA_ARCH__
  *reinterpret_cast<float4*>(p) = make_float4(v.x, v.y, v.z, v.w);
#else
  p[0] = v.x, p[1] = v.y, p[2] = v.z, p[3] = v.w;
#endif
}
LLDL_HD inline float dot4(const F4& a, const F4& b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// A (T, D) head slice in global memory (row stride 3C in qkv, C in y / dy)
// and the shared tile it is copied to.
struct FlashSrc { const float* p; int64_t stride; float* tile; };
// Copies rows [row0, row0 + kFlashTile) of one or two head slices into their
// shared tiles of row stride flash_ld(D), zeros past T and past D up to
// flash_dp(D). A thread moves float4 chunks (consecutive threads consecutive
// chunks of a row: coalesced; 128-bit global loads when D, the stride and
// the pointer allow), its (row, chunk) advanced by additions: a division per
// element cost as much as the math. The loop is not unrolled (unrolled, the
// forward went past 128 registers); the two slices give two loads in flight.
LLDL_HD inline F4 flash_chunk(const FlashSrc& s, int64_t row, int c, int64_t D) {
  const float* p = s.p + row * s.stride + 4 * c;
  if (D % 4 == 0 && s.stride % 4 == 0 && reinterpret_cast<uintptr_t>(s.p) % 16 == 0) return ld4(p);
  const int64_t d = 4 * c;  // d < D always (c < flash_dp(D) / 4)
  return {p[0], d + 1 < D ? p[1] : 0.0f, d + 2 < D ? p[2] : 0.0f, d + 3 < D ? p[3] : 0.0f};
}
LLDL_HD inline void flash_load(const FlashSrc& a, const FlashSrc* b, int64_t row0, int64_t T, int64_t D, int tid) {
  const int n4 = flash_dp(D) / 4, ld = flash_ld(D), q = kFlashThreads / n4, rem = kFlashThreads % n4;
  const int rows = T - row0 < kFlashTile ? static_cast<int>(T - row0) : kFlashTile;
  int r = tid / n4, c = tid % n4;
  LLDL_NO_UNROLL for (int e = tid; e < kFlashTile * n4; e += kFlashThreads) {
    const F4 zero{0.0f, 0.0f, 0.0f, 0.0f};
    const bool in = r < rows;
    st4(a.tile + r * ld + 4 * c, in ? flash_chunk(a, row0 + r, c, D) : zero);
    if (b) st4(b->tile + r * ld + 4 * c, in ? flash_chunk(*b, row0 + r, c, D) : zero);
    r += q, c += rem;
    if (c >= n4) c -= n4, ++r;
  }
}
// Per-row values (lse, delta) of rows [row0, row0 + kFlashTile), 0 past T.
LLDL_HD inline void flash_load_rows(const float* src, int64_t row0, int64_t T, int tid, float* dst) {
  if (tid < kFlashTile) dst[tid] = row0 + tid < T ? src[row0 + tid] : 0.0f;
}

// The thread grid: tid = 16 ty + tx. In a score-shaped product (rows x
// columns of a 64 x 64 tile) thread (ty, tx) owns rows 4 ty .. 4 ty + 3 and
// columns tx, tx + 16, tx + 32, tx + 48 (interleaved, so the 16 threads of a
// row group read 16 different rows of the column tile: no bank conflicts);
// in an output-shaped product (rows x head dims) rows 4 ty .. 4 ty + 3 and
// dims 4 tx .. 4 tx + 3.
LLDL_HD inline int flash_ty(int tid) { return tid >> 4; }
LLDL_HD inline int flash_tx(int tid) { return tid & 15; }

// acc[i][c] = A[4 ty + i] . Bm[tx + 16 c] over dp dims (tiles of stride ld).
LLDL_HD inline void flash_scores(const float* A, const float* Bm, int ld, int dp, int tid,
                                 float (&acc)[4][4]) {
  const float *a = A + 4 * flash_ty(tid) * ld, *b = Bm + flash_tx(tid) * ld;
  LLDL_UNROLL for (int i = 0; i < 4; ++i)
    LLDL_UNROLL for (int c = 0; c < 4; ++c) acc[i][c] = 0.0f;
  for (int d = 0; d < dp; d += 4) {
    F4 av[4], bv[4];
    LLDL_UNROLL for (int i = 0; i < 4; ++i) av[i] = ld4(a + i * ld + d);
    LLDL_UNROLL for (int c = 0; c < 4; ++c) bv[c] = ld4(b + 16 * c * ld + d);
    LLDL_UNROLL for (int i = 0; i < 4; ++i)
      LLDL_UNROLL for (int c = 0; c < 4; ++c) acc[i][c] += dot4(av[i], bv[c]);
  }
}
// o[i][c] += sum_k P[4 ty + i][k] X[k][4 tx + c] over the tile's 64 rows k
// (P of stride kFlashLdP, X of stride ld); nothing for threads past dp.
LLDL_HD inline void flash_accumulate(const float* P, const float* X, int ld, int dp, int tid,
                                     float (&o)[4][4]) {
  const int d0 = 4 * flash_tx(tid);
  if (d0 >= dp) return;
  const float* p = P + 4 * flash_ty(tid) * kFlashLdP;
  for (int k = 0; k < kFlashTile; k += 4) {
    F4 xv[4];
    LLDL_UNROLL for (int r = 0; r < 4; ++r) xv[r] = ld4(X + (k + r) * ld + d0);
    LLDL_UNROLL for (int i = 0; i < 4; ++i) {
      const F4 pv = ld4(p + i * kFlashLdP + k);
      const float w[4] = {pv.x, pv.y, pv.z, pv.w};
      LLDL_UNROLL for (int r = 0; r < 4; ++r) {
        o[i][0] += w[r] * xv[r].x;
        o[i][1] += w[r] * xv[r].y;
        o[i][2] += w[r] * xv[r].z;
        o[i][3] += w[r] * xv[r].w;
      }
    }
  }
}

// Forward: block (query tile, b h); the query tiles run last to first
// (blockIdx.x 0 is the last, longest tile) so the long blocks start first.
// Per key tile three phases: scores (and each thread's partial row maxima
// over its 4 columns), then the new row maxima, the rescaling of o and l and
// P = exp(S - m) into shared memory (with partial row sums), then l += the
// row sums and o += P V. The 16 threads of a row group hold the same m and l
// (the same partials combined in the same order).
struct FlashFwdF {
  const float* qkv; float* y; float* lse; AttnGeom g; float scale;
  static constexpr int kThreads = kFlashThreads;
  static constexpr int kPhases = 3;
  // The scores stay in the P tile between phases 0 and 1 (each thread reads
  // back only its own entries): held in registers they pushed the kernel
  // past 128 registers, the most that lets two blocks share an SM.
  struct State { float o[4][4], m[4], l[4]; };
  // Q, K, V tiles, P, partial maxima and sums (64 x 16 each).
  size_t smem_floats() const {
    return 3 * kFlashTile * static_cast<size_t>(flash_ld(g.D)) + kFlashTile * kFlashLdP + 2 * kFlashTile * 16;
  }
  LLDL_HD int64_t tile(int64_t bx) const { return flash_tiles(g.T) - 1 - bx; }
  LLDL_HD int steps(int64_t bx) const { return static_cast<int>(tile(bx)) + 1; }  // key tiles to the diagonal
  LLDL_HD void begin(int64_t bx, int64_t by, int tid, float* smem, State& st) const {
    flash_load({qkv + g.qkv(by / g.NH, by % g.NH), 3 * g.C, smem}, nullptr, tile(bx) * kFlashTile, g.T, g.D, tid);
    LLDL_UNROLL for (int i = 0; i < 4; ++i) {
      st.m[i] = -INFINITY;
      st.l[i] = 0;
      LLDL_UNROLL for (int c = 0; c < 4; ++c) st.o[i][c] = 0;
    }
  }
  LLDL_HD void load(int64_t, int64_t by, int j, int tid, float* smem) const {
    const int64_t ld = flash_ld(g.D);
    const float* k = qkv + g.qkv(by / g.NH, by % g.NH) + g.C;
    const FlashSrc v{k + g.C, 3 * g.C, smem + 2 * kFlashTile * ld};
    flash_load({k, 3 * g.C, smem + kFlashTile * ld}, &v, int64_t(j) * kFlashTile, g.T, g.D, tid);
  }
  LLDL_HD void step(int64_t bx, int64_t, int j, int phase, int tid, float* smem, State& st) const {
    const int ld = flash_ld(g.D), dp = flash_dp(g.D);
    const int ty = flash_ty(tid), tx = flash_tx(tid);
    float *ks = smem + kFlashTile * ld, *vs = ks + kFlashTile * ld, *P = vs + kFlashTile * ld;
    float *pm = P + kFlashTile * kFlashLdP, *ps = pm + kFlashTile * 16;
    if (phase == 0) {
      float sc[4][4];
      flash_scores(smem, ks, ld, dp, tid, sc);
      // Tile-local positions in int (fewer registers than int64 arithmetic).
      const int T = static_cast<int>(g.T), t0 = static_cast<int>(tile(bx)) * kFlashTile + 4 * ty,
                s0 = j * kFlashTile + tx;
      LLDL_UNROLL for (int i = 0; i < 4; ++i) {
        float mx = -INFINITY;
        LLDL_UNROLL for (int c = 0; c < 4; ++c) {
          const int s = s0 + 16 * c;  // causal, and keys past T (zeros) masked
          const float v = s <= t0 + i && s < T ? scale * sc[i][c] : -INFINITY;
          P[(4 * ty + i) * kFlashLdP + tx + 16 * c] = v;
          mx = v > mx ? v : mx;
        }
        pm[(4 * ty + i) * 16 + tx] = mx;
      }
    } else if (phase == 1) {
      // Every row has a key it sees in every tile up to the diagonal, so m is
      // finite after the first tile; exp(-inf - m) = 0 for masked scores and
      // for the empty history (l and o still 0) on the first tile.
      LLDL_UNROLL for (int i = 0; i < 4; ++i) {
        const int r = 4 * ty + i;
        float m = st.m[i];
        for (int k = 0; k < 16; ++k) m = pm[r * 16 + k] > m ? pm[r * 16 + k] : m;
        const float corr = hexp(st.m[i] - m);
        st.m[i] = m;
        st.l[i] *= corr;
        LLDL_UNROLL for (int c = 0; c < 4; ++c) st.o[i][c] *= corr;
        float sum = 0;
        LLDL_UNROLL for (int c = 0; c < 4; ++c) {
          float& e = P[r * kFlashLdP + tx + 16 * c];
          const float p = hexp(e - m);
          e = p;
          sum += p;
        }
        ps[r * 16 + tx] = sum;
      }
    } else {
      LLDL_UNROLL for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 16; ++k) st.l[i] += ps[(4 * ty + i) * 16 + k];
      flash_accumulate(P, vs, ld, dp, tid, st.o);
    }
  }
  LLDL_HD void end(int64_t bx, int64_t by, int tid, float*, State& st) const {
    const int ty = flash_ty(tid), tx = flash_tx(tid);
    LLDL_UNROLL for (int i = 0; i < 4; ++i) {
      const int64_t t = tile(bx) * kFlashTile + 4 * ty + i;
      if (t >= g.T) break;
      float* yr = y + g.y(by / g.NH, by % g.NH, t);
      const float inv = 1.0f / st.l[i];
      LLDL_UNROLL for (int c = 0; c < 4; ++c)
        if (4 * tx + c < g.D) yr[4 * tx + c] = st.o[i][c] * inv;
      if (tx == 0) lse[by * g.T + t] = st.m[i] + hlog(st.l[i]);
    }
  }
};

// delta[(b h) T + t] = dY_t . Y_t, one thread per row (index over B NH T).
struct FlashDeltaF {
  const float *y, *dy; float* delta; AttnGeom g;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t bh = i / g.T, t = i % g.T, o = g.y(bh / g.NH, bh % g.NH, t);
    float s = 0;
    for (int64_t d = 0; d < g.D; ++d) s += y[o + d] * dy[o + d];
    delta[i] = s;
  }
};

// dK, dV: block (key tile bx, b h), query tiles from its own to the last.
// Phase 0: thread (ty, tx) computes, for keys 4 ty + i and queries tx + 16 c,
// p = exp(scale k.q - lse_q) into the shared P^T tile; phase 1 ds =
// p (v.dy_q - delta_q) scale into dS^T; phase 2: dv += P^T dY, dk += dS^T Q
// for keys 4 ty + i and dims 4 tx + c.
struct FlashBwdKVF {
  const float *qkv, *dy, *lse, *delta; float* dqkv; AttnGeom g; float scale;
  static constexpr int kThreads = kFlashThreads;
  static constexpr int kPhases = 3;
  struct State { float dk[4][4], dv[4][4]; };
  // Own K and V tiles, per step Q and dY, P^T and dS^T, lse and delta.
  size_t smem_floats() const {
    return 4 * kFlashTile * static_cast<size_t>(flash_ld(g.D)) + 2 * kFlashTile * kFlashLdP + 2 * kFlashTile;
  }
  LLDL_HD int steps(int64_t bx) const { return static_cast<int>(flash_tiles(g.T) - bx); }
  LLDL_HD void begin(int64_t bx, int64_t by, int tid, float* smem, State& st) const {
    const int64_t ld = flash_ld(g.D);
    const float* k = qkv + g.qkv(by / g.NH, by % g.NH) + g.C;
    const FlashSrc v{k + g.C, 3 * g.C, smem + kFlashTile * ld};
    flash_load({k, 3 * g.C, smem}, &v, bx * kFlashTile, g.T, g.D, tid);
    LLDL_UNROLL for (int i = 0; i < 4; ++i)
      LLDL_UNROLL for (int c = 0; c < 4; ++c) st.dk[i][c] = st.dv[i][c] = 0;
  }
  LLDL_HD void load(int64_t bx, int64_t by, int j, int tid, float* smem) const {
    const int64_t ld = flash_ld(g.D), t0 = (bx + j) * kFlashTile, b = by / g.NH, h = by % g.NH;
    float* qs = smem + 2 * kFlashTile * ld;
    const FlashSrc dys{dy + g.y(b, h), g.C, qs + kFlashTile * ld};
    flash_load({qkv + g.qkv(b, h), 3 * g.C, qs}, &dys, t0, g.T, g.D, tid);
    float* rows = qs + 2 * kFlashTile * ld + 2 * kFlashTile * kFlashLdP;
    flash_load_rows(lse + by * g.T, t0, g.T, tid, rows);
    flash_load_rows(delta + by * g.T, t0, g.T, tid, rows + kFlashTile);
  }
  LLDL_HD void step(int64_t bx, int64_t, int j, int phase, int tid, float* smem, State& st) const {
    const int ld = flash_ld(g.D), dp = flash_dp(g.D);
    const float *ks = smem, *vs = smem + kFlashTile * ld, *qs = vs + kFlashTile * ld, *dys = qs + kFlashTile * ld;
    float *Pt = smem + 4 * kFlashTile * ld, *dSt = Pt + kFlashTile * kFlashLdP;
    const float* rows = dSt + kFlashTile * kFlashLdP;
    const int ty = flash_ty(tid), tx = flash_tx(tid);
    if (phase == 0) {
      float sk[4][4];
      flash_scores(ks, qs, ld, dp, tid, sk);
      const int T = static_cast<int>(g.T), s0 = static_cast<int>(bx) * kFlashTile + 4 * ty,
                t0 = (static_cast<int>(bx) + j) * kFlashTile + tx;
      LLDL_UNROLL for (int i = 0; i < 4; ++i)
        LLDL_UNROLL for (int c = 0; c < 4; ++c) {
          const int q = tx + 16 * c, t = t0 + 16 * c;  // query t sees key s when s <= t; rows past T are padding
          Pt[(4 * ty + i) * kFlashLdP + q] = s0 + i <= t && t < T ? hexp(scale * sk[i][c] - rows[q]) : 0.0f;
        }
    } else if (phase == 1) {
      // A phase of its own (each thread reads back only its own P entries):
      // both 4 x 4 products live at once pushed past 128 registers.
      float dpv[4][4];
      flash_scores(vs, dys, ld, dp, tid, dpv);
      LLDL_UNROLL for (int i = 0; i < 4; ++i)
        LLDL_UNROLL for (int c = 0; c < 4; ++c) {
          const int e = (4 * ty + i) * kFlashLdP + tx + 16 * c;
          dSt[e] = Pt[e] * (dpv[i][c] - rows[kFlashTile + tx + 16 * c]) * scale;
        }
    } else {
      flash_accumulate(Pt, dys, ld, dp, tid, st.dv);
      flash_accumulate(dSt, qs, ld, dp, tid, st.dk);
    }
  }
  LLDL_HD void end(int64_t bx, int64_t by, int tid, float*, State& st) const {
    const int ty = flash_ty(tid), tx = flash_tx(tid);
    LLDL_UNROLL for (int i = 0; i < 4; ++i) {
      const int64_t s = bx * kFlashTile + 4 * ty + i;
      if (s >= g.T) break;
      float* dk = dqkv + g.qkv(by / g.NH, by % g.NH, s) + g.C;
      LLDL_UNROLL for (int c = 0; c < 4; ++c)
        if (4 * tx + c < g.D) {
          dk[4 * tx + c] += st.dk[i][c];
          dk[g.C + 4 * tx + c] += st.dv[i][c];
        }
    }
  }
};

// dQ: block (query tile, b h), last tile first as in the forward; key tiles
// up to the diagonal. Phase 0: ds for queries 4 ty + i and keys tx + 16 c
// into the shared dS tile; phase 1: dq += dS K.
struct FlashBwdQF {
  const float *qkv, *dy, *lse, *delta; float* dqkv; AttnGeom g; float scale;
  static constexpr int kThreads = kFlashThreads;
  static constexpr int kPhases = 2;
  struct State { float dq[4][4]; };
  // Own Q and dY tiles, per step K and V, dS, own lse and delta.
  size_t smem_floats() const {
    return 4 * kFlashTile * static_cast<size_t>(flash_ld(g.D)) + kFlashTile * kFlashLdP + 2 * kFlashTile;
  }
  LLDL_HD int64_t tile(int64_t bx) const { return flash_tiles(g.T) - 1 - bx; }
  LLDL_HD int steps(int64_t bx) const { return static_cast<int>(tile(bx)) + 1; }
  LLDL_HD void begin(int64_t bx, int64_t by, int tid, float* smem, State& st) const {
    const int64_t ld = flash_ld(g.D), b = by / g.NH, h = by % g.NH, t0 = tile(bx) * kFlashTile;
    const FlashSrc dys{dy + g.y(b, h), g.C, smem + kFlashTile * ld};
    flash_load({qkv + g.qkv(b, h), 3 * g.C, smem}, &dys, t0, g.T, g.D, tid);
    float* rows = smem + 4 * kFlashTile * ld + kFlashTile * kFlashLdP;
    flash_load_rows(lse + by * g.T, t0, g.T, tid, rows);
    flash_load_rows(delta + by * g.T, t0, g.T, tid, rows + kFlashTile);
    LLDL_UNROLL for (int i = 0; i < 4; ++i)
      LLDL_UNROLL for (int c = 0; c < 4; ++c) st.dq[i][c] = 0;
  }
  LLDL_HD void load(int64_t, int64_t by, int j, int tid, float* smem) const {
    const int64_t ld = flash_ld(g.D);
    const float* k = qkv + g.qkv(by / g.NH, by % g.NH) + g.C;
    float* ks = smem + 2 * kFlashTile * ld;
    const FlashSrc v{k + g.C, 3 * g.C, ks + kFlashTile * ld};
    flash_load({k, 3 * g.C, ks}, &v, int64_t(j) * kFlashTile, g.T, g.D, tid);
  }
  LLDL_HD void step(int64_t bx, int64_t, int j, int phase, int tid, float* smem, State& st) const {
    const int ld = flash_ld(g.D), dp = flash_dp(g.D);
    const float *qs = smem, *dys = smem + kFlashTile * ld, *ks = dys + kFlashTile * ld, *vs = ks + kFlashTile * ld;
    float* dS = smem + 4 * kFlashTile * ld;
    const float* rows = dS + kFlashTile * kFlashLdP;
    if (phase == 0) {
      float sq[4][4], dp_[4][4];
      flash_scores(qs, ks, ld, dp, tid, sq);
      flash_scores(dys, vs, ld, dp, tid, dp_);
      const int ty = flash_ty(tid), tx = flash_tx(tid);
      // Tile-local positions in int (fewer registers than int64 arithmetic).
      const int T = static_cast<int>(g.T), t0 = static_cast<int>(tile(bx)) * kFlashTile + 4 * ty,
                s0 = j * kFlashTile + tx;
      LLDL_UNROLL for (int i = 0; i < 4; ++i) {
        const int r = 4 * ty + i;
        LLDL_UNROLL for (int c = 0; c < 4; ++c) {
          const int s = s0 + 16 * c, t = t0 + i;
          const float p = s <= t && t < T ? hexp(scale * sq[i][c] - rows[r]) : 0.0f;
          dS[r * kFlashLdP + tx + 16 * c] = p * (dp_[i][c] - rows[kFlashTile + r]) * scale;
        }
      }
    } else {
      flash_accumulate(dS, ks, ld, dp, tid, st.dq);
    }
  }
  LLDL_HD void end(int64_t bx, int64_t by, int tid, float*, State& st) const {
    const int ty = flash_ty(tid), tx = flash_tx(tid);
    LLDL_UNROLL for (int i = 0; i < 4; ++i) {
      const int64_t t = tile(bx) * kFlashTile + 4 * ty + i;
      if (t >= g.T) break;
      float* dq = dqkv + g.qkv(by / g.NH, by % g.NH, t);
      LLDL_UNROLL for (int c = 0; c < 4; ++c)
        if (4 * tx + c < g.D) dq[4 * tx + c] += st.dq[i][c];
    }
  }
};

// ---- softmax + cross-entropy with labels, a block per row -----------------------
// logits x (N, C), labels y (N). Each thread folds its strided columns into
// a running (max m, sum s of exp(x - m)) in one pass (online softmax); a
// tree over shared memory combines the kThreads pairs into the row's
// logsumexp in log2(kThreads) steps. Then forward: row[r] = x_r,y_r - lse_r
// (summed afterwards into -1/N sum, as the middle rung); backward: every
// thread writes dx_rj += g/N (exp(x_rj - lse_r) - [j == y_r]) for its
// columns, recomputing the softmax instead of storing N x C probabilities.
LLDL_HD inline void lse_merge(float& m, float& s, float m2, float s2) {
  if (s2 == 0.0f) return;  // an empty partial (m2 = -inf)
  if (s == 0.0f) {
    m = m2, s = s2;
    return;
  }
  const float M = m > m2 ? m : m2;
  s = s * hexp(m - M) + s2 * hexp(m2 - M);
  m = M;
}
struct CeFusedF {
  const float* x; const int32_t* y; const float* g; double* row; float* dx; int64_t N, C;
  static constexpr int kThreads = 512;
  static constexpr int kLog2 = 9;
  static constexpr int kPhases = 1;
  struct State {};
  size_t smem_floats() const { return 2 * kThreads; }  // m then s of every thread
  LLDL_HD int steps(int64_t) const { return kLog2; }
  LLDL_HD void begin(int64_t r, int64_t, int tid, float* smem, State&) const {
    const float* xr = x + r * C;
    float m = -INFINITY, s = 0;
    for (int64_t j = tid; j < C; j += kThreads) {
      const float v = xr[j];
      if (v > m) {
        s = s * hexp(m - v) + 1.0f;
        m = v;
      } else {
        s += hexp(v - m);
      }
    }
    smem[tid] = m;
    smem[kThreads + tid] = s;
  }
  LLDL_HD void load(int64_t, int64_t, int, int, float*) const {}
  LLDL_HD void step(int64_t, int64_t, int j, int, int tid, float* smem, State&) const {
    const int half = kThreads >> (j + 1);
    if (tid >= half) return;
    lse_merge(smem[tid], smem[kThreads + tid], smem[tid + half], smem[kThreads + tid + half]);
  }
  LLDL_HD void end(int64_t r, int64_t, int tid, float* smem, State&) const {
    const float lse = smem[0] + hlog(smem[kThreads]);
    const float* xr = x + r * C;
    const int64_t label = y[r];
    if (!dx) {
      if (tid == 0) row[r] = static_cast<double>(xr[label] - lse);
      return;
    }
    const float f = g[0] / static_cast<float>(N);
    for (int64_t j = tid; j < C; j += kThreads)
      dx[r * C + j] += f * (hexp(xr[j] - lse) - (j == label ? 1.0f : 0.0f));
  }
};

}  // namespace lldl::cuda

namespace lldl::cuda {

// ---- linear_gelu's epilogues, one thread per element of the (M, N) output ----
// After the GEMM u = x op(w) (beta 0): u += b[column], y = gelu(u), in one
// pass (the unfused path broadcasts b into u, runs the GEMM with beta 1 and
// gelu as a third pass). GELU's arithmetic is GeluF's (bodies_seq.h).
struct BiasGeluF {
  float* u; const float* b; float* y; int64_t N;
  LLDL_HD void operator()(int64_t i) const {
    u[i] += b[i % N];
    GeluF<float>{u, y}(i);
  }
};
// du = dy gelu'(u), overwriting (GeluBwdF's arithmetic, one pass instead of
// zeroing du first).
struct GeluGradF {
  const float *u, *g; float* du;
  LLDL_HD void operator()(int64_t i) const {
    du[i] = 0.0f;
    GeluBwdF<float>{u, g, du}(i);
  }
};

}  // namespace lldl::cuda
