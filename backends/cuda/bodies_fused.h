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
// Q, K, V, Y the (T, D) head slices of qkv and y, scale = 1/sqrt(D)):
//   forward   a block per (query tile of kFlashTile rows, b h), a thread per
//             query row t holding its output row in registers;
//             key tiles 0..its own (causal) pass through shared memory, and
//             per key tile the row's running maximum m and sum l are updated
//             once (online softmax), so no T x T matrix exists anywhere.
//             Writes y = o / l and lse_t = m + log l into the workspace
//             (B, NH, T) (the first B NH T floats of the op's workspace).
//   backward  delta_t = dY_t . Y_t (a thread per row, FlashDeltaF), then two
//             recomputing passes, so that every gradient element has exactly
//             one writer (no atomics, deterministic):
//             dK, dV: a block per key tile, a thread per key row s, query
//               tiles from its own to the last:  p = exp(scale q_t.k_s - lse_t),
//               dv_s += p dY_t, ds = p (dY_t.v_s - delta_t) scale, dk_s += ds q_t;
//             dQ: a block per query tile, a thread per query row, key tiles
//               0..its own: dq_t += ds k_s.
// Rows of shared tiles are D + 1 floats apart, so threads reading their own
// rows (column d of 32 rows) hit 32 different banks when D is even.
#pragma once
#include <cstdint>

#include "backends/cuda/bodies_seq.h"
#include "backends/cuda/hd.h"
#include "ops/geometry.h"

namespace lldl::cuda {

constexpr int kFlashTile = 32;  // rows per query / key tile = threads per block
constexpr int kFlashMaxD = 64;  // head dims held in registers (GPT-2: 64)

// Whether the flash kernels take a shape: D up to kFlashMaxD (registers) and
// B NH within a grid's y dimension. Otherwise the middle rung runs.
inline bool flash_fits(const AttnGeom& g) { return g.D >= 1 && g.D <= kFlashMaxD && g.B * g.NH <= 65535; }
LLDL_HD inline int64_t flash_tiles(int64_t T) { return (T + kFlashTile - 1) / kFlashTile; }

// Copies rows [row0, row0 + kFlashTile) of one head's (T, D) slice at
// src + col (row stride 3C in qkv, C in y / dy; `stride`) into a shared tile
// of row stride D + 1, zeros past T. The block's threads split the elements.
LLDL_HD inline void flash_load_tile(const float* src, int64_t stride, int64_t row0, int64_t T, int64_t D,
                                    int tid, float* tile) {
  for (int64_t e = tid; e < kFlashTile * D; e += kFlashTile) {
    const int64_t r = e / D, d = e % D, t = row0 + r;
    tile[r * (D + 1) + d] = t < T ? src[t * stride + d] : 0.0f;
  }
}
LLDL_HD inline float flash_dot(const float* a, const float* b, int64_t D) {
  float s = 0;
  for (int64_t d = 0; d < D; ++d) s += a[d] * b[d];
  return s;
}

struct FlashFwdF {
  const float* qkv; float* y; float* lse; AttnGeom g; float scale;
  static constexpr int kThreads = kFlashTile;
  // The output row in registers; q stays in the block's own Q tile (registers
  // for q as well spill at D = 64).
  struct State { float o[kFlashMaxD], m, l; };
  size_t smem_floats() const { return 3 * kFlashTile * static_cast<size_t>(g.D + 1); }  // Q, K, V tiles
  LLDL_HD int steps(int64_t bx) const { return static_cast<int>(bx) + 1; }  // key tiles up to the diagonal
  LLDL_HD void begin(int64_t bx, int64_t by, int tid, float* smem, State& st) const {
    flash_load_tile(qkv + g.qkv(by / g.NH, by % g.NH), 3 * g.C, bx * kFlashTile, g.T, g.D, tid, smem);
    st.m = -INFINITY;
    st.l = 0;
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d) st.o[d] = 0;
  }
  LLDL_HD void load(int64_t, int64_t by, int j, int tid, float* smem) const {
    const int64_t ld = g.D + 1;
    const float* k = qkv + g.qkv(by / g.NH, by % g.NH) + g.C;
    flash_load_tile(k, 3 * g.C, int64_t(j) * kFlashTile, g.T, g.D, tid, smem + kFlashTile * ld);
    flash_load_tile(k + g.C, 3 * g.C, int64_t(j) * kFlashTile, g.T, g.D, tid, smem + 2 * kFlashTile * ld);
  }
  LLDL_HD void step(int64_t bx, int64_t, int j, int tid, float* smem, State& st) const {
    const int64_t t = bx * kFlashTile + tid, s0 = int64_t(j) * kFlashTile, ld = g.D + 1;
    if (t >= g.T) return;
    const int64_t n = t - s0 + 1 < kFlashTile ? t - s0 + 1 : kFlashTile;  // keys s0..t of this tile
    const float *q = smem + tid * ld, *ks = smem + kFlashTile * ld, *vs = ks + kFlashTile * ld;
    float sc[kFlashTile];
    float m = st.m;
    LLDL_UNROLL for (int i = 0; i < kFlashTile; ++i) {
      if (i >= n) break;
      const float s = scale * flash_dot(q, ks + i * ld, g.D);
      sc[i] = s;
      m = s > m ? s : m;
    }
    // Rescale what the earlier tiles summed to the new maximum (exp(-inf) = 0
    // on the first tile, where l and o are still 0).
    const float corr = hexp(st.m - m);
    st.l *= corr;
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d) st.o[d] *= corr;
    LLDL_UNROLL for (int i = 0; i < kFlashTile; ++i) {
      if (i >= n) break;
      const float p = hexp(sc[i] - m);
      st.l += p;
      LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d)
        if (d < g.D) st.o[d] += p * vs[i * ld + d];
    }
    st.m = m;
  }
  LLDL_HD void end(int64_t bx, int64_t by, int tid, float*, State& st) const {
    const int64_t t = bx * kFlashTile + tid;
    if (t >= g.T) return;
    float* yr = y + g.y(by / g.NH, by % g.NH, t);
    const float inv = 1.0f / st.l;
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d)
      if (d < g.D) yr[d] = st.o[d] * inv;
    lse[by * g.T + t] = st.m + hlog(st.l);
  }
};

// delta[(b h) T + t] = dY_t . Y_t, one thread per row (index over B NH T).
struct FlashDeltaF {
  const float *y, *dy; float* delta; AttnGeom g;
  LLDL_HD void operator()(int64_t i) const {
    const int64_t bh = i / g.T, t = i % g.T, o = g.y(bh / g.NH, bh % g.NH, t);
    delta[i] = flash_dot(y + o, dy + o, g.D);
  }
};

// dK, dV: block (key tile bx, head by), thread = key row s.
struct FlashBwdKVF {
  const float *qkv, *dy, *lse, *delta; float* dqkv; AttnGeom g; float scale;
  static constexpr int kThreads = kFlashTile;
  struct State { float dk[kFlashMaxD], dv[kFlashMaxD]; };
  // Own K and V tiles, then per step the query tile's Q and dY, lse and delta.
  size_t smem_floats() const { return 4 * kFlashTile * static_cast<size_t>(g.D + 1) + 2 * kFlashTile; }
  LLDL_HD int steps(int64_t bx) const { return static_cast<int>(flash_tiles(g.T) - bx); }
  LLDL_HD void begin(int64_t bx, int64_t by, int tid, float* smem, State& st) const {
    const int64_t ld = g.D + 1;
    const float* k = qkv + g.qkv(by / g.NH, by % g.NH) + g.C;
    flash_load_tile(k, 3 * g.C, bx * kFlashTile, g.T, g.D, tid, smem);
    flash_load_tile(k + g.C, 3 * g.C, bx * kFlashTile, g.T, g.D, tid, smem + kFlashTile * ld);
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d) st.dk[d] = st.dv[d] = 0;
  }
  LLDL_HD void load(int64_t bx, int64_t by, int j, int tid, float* smem) const {
    const int64_t ld = g.D + 1, t0 = (bx + j) * kFlashTile, t = t0 + tid;
    const int64_t b = by / g.NH, h = by % g.NH;
    float* qs = smem + 2 * kFlashTile * ld;
    flash_load_tile(qkv + g.qkv(b, h), 3 * g.C, t0, g.T, g.D, tid, qs);
    flash_load_tile(dy + g.y(b, h), g.C, t0, g.T, g.D, tid, qs + kFlashTile * ld);
    float* rows = qs + 2 * kFlashTile * ld;
    rows[tid] = t < g.T ? lse[by * g.T + t] : 0.0f;
    rows[kFlashTile + tid] = t < g.T ? delta[by * g.T + t] : 0.0f;
  }
  LLDL_HD void step(int64_t bx, int64_t, int j, int tid, float* smem, State& st) const {
    const int64_t ld = g.D + 1, s = bx * kFlashTile + tid, t0 = (bx + j) * kFlashTile;
    if (s >= g.T) return;
    const float *ks = smem + tid * ld, *vs = smem + (kFlashTile + tid) * ld;
    const float *qs = smem + 2 * kFlashTile * ld, *dys = qs + kFlashTile * ld, *rows = dys + kFlashTile * ld;
    for (int r = 0; r < kFlashTile; ++r) {
      const int64_t t = t0 + r;
      if (t < s || t >= g.T) continue;  // causal: query t sees key s when s <= t
      const float* q = qs + r * ld;
      const float* dyr = dys + r * ld;
      const float p = hexp(scale * flash_dot(q, ks, g.D) - rows[r]);
      const float ds = p * (flash_dot(dyr, vs, g.D) - rows[kFlashTile + r]) * scale;
      LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d)
        if (d < g.D) {
          st.dv[d] += p * dyr[d];
          st.dk[d] += ds * q[d];
        }
    }
  }
  LLDL_HD void end(int64_t bx, int64_t by, int tid, float*, State& st) const {
    const int64_t s = bx * kFlashTile + tid;
    if (s >= g.T) return;
    float* dk = dqkv + g.qkv(by / g.NH, by % g.NH, s) + g.C;
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d)
      if (d < g.D) {
        dk[d] += st.dk[d];
        dk[g.C + d] += st.dv[d];
      }
  }
};

// dQ: block (query tile bx, head by), thread = query row t.
struct FlashBwdQF {
  const float *qkv, *dy, *lse, *delta; float* dqkv; AttnGeom g; float scale;
  static constexpr int kThreads = kFlashTile;
  struct State { float dq[kFlashMaxD], lse, delta; };
  // Own Q and dY tiles, then per step the key tile's K and V.
  size_t smem_floats() const { return 4 * kFlashTile * static_cast<size_t>(g.D + 1); }
  LLDL_HD int steps(int64_t bx) const { return static_cast<int>(bx) + 1; }
  LLDL_HD void begin(int64_t bx, int64_t by, int tid, float* smem, State& st) const {
    const int64_t ld = g.D + 1, b = by / g.NH, h = by % g.NH, t = bx * kFlashTile + tid;
    flash_load_tile(qkv + g.qkv(b, h), 3 * g.C, bx * kFlashTile, g.T, g.D, tid, smem);
    flash_load_tile(dy + g.y(b, h), g.C, bx * kFlashTile, g.T, g.D, tid, smem + kFlashTile * ld);
    st.lse = t < g.T ? lse[by * g.T + t] : 0.0f;
    st.delta = t < g.T ? delta[by * g.T + t] : 0.0f;
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d) st.dq[d] = 0;
  }
  LLDL_HD void load(int64_t, int64_t by, int j, int tid, float* smem) const {
    const int64_t ld = g.D + 1;
    const float* k = qkv + g.qkv(by / g.NH, by % g.NH) + g.C;
    float* ks = smem + 2 * kFlashTile * ld;
    flash_load_tile(k, 3 * g.C, int64_t(j) * kFlashTile, g.T, g.D, tid, ks);
    flash_load_tile(k + g.C, 3 * g.C, int64_t(j) * kFlashTile, g.T, g.D, tid, ks + kFlashTile * ld);
  }
  LLDL_HD void step(int64_t bx, int64_t, int j, int tid, float* smem, State& st) const {
    const int64_t ld = g.D + 1, t = bx * kFlashTile + tid, s0 = int64_t(j) * kFlashTile;
    if (t >= g.T) return;
    const float *q = smem + tid * ld, *dyr = smem + (kFlashTile + tid) * ld;
    const float *ks = smem + 2 * kFlashTile * ld, *vs = ks + kFlashTile * ld;
    for (int i = 0; i < kFlashTile; ++i) {
      if (s0 + i > t) break;  // causal; also stops before keys past T (t < T)
      const float* k = ks + i * ld;
      const float p = hexp(scale * flash_dot(q, k, g.D) - st.lse);
      const float ds = p * (flash_dot(dyr, vs + i * ld, g.D) - st.delta) * scale;
      LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d)
        if (d < g.D) st.dq[d] += ds * k[d];
    }
  }
  LLDL_HD void end(int64_t bx, int64_t by, int tid, float*, State& st) const {
    const int64_t t = bx * kFlashTile + tid;
    if (t >= g.T) return;
    float* dq = dqkv + g.qkv(by / g.NH, by % g.NH, t);
    LLDL_UNROLL for (int d = 0; d < kFlashMaxD; ++d)
      if (d < g.D) dq[d] += st.dq[d];
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
  LLDL_HD void step(int64_t, int64_t, int j, int tid, float* smem, State&) const {
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
