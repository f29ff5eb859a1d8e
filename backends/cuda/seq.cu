// CUDA kernels of embedding, layer_norm, gelu, transpose, slice and concat
// (float32). Shapes, formulas and the layer_norm workspace (row means, then
// rstd) as in backends/cpu/{embedding, layernorm, gelu, layout}.cpp.
//
// Both tiers run the bodies of bodies_seq.h for gelu, slice, concat and the
// embedding forward (memory-bound copies: consecutive threads touch
// consecutive addresses, so the accesses coalesce; the fast tier launches a
// grid-stride grid). They differ where it pays:
//   embedding backward  naive: a thread per column walks the ids in order;
//                       fast: a thread per (id, column) with atomicAdd.
//   layer_norm          naive: a thread per row for the statistics (and dx),
//                       a thread per element / column; fast: a warp per row
//                       (shuffles), statistics and normalisation fused, and
//                       dx fused likewise; dgamma, dbeta as per-column
//                       partial sums over row chunks (32 x 8 blocks), added
//                       in a fixed order.
//   transpose           naive: a thread per output element; fast: a real
//                       transpose (C = 1 in (A, n0, B, n1, C)) through
//                       32 x 32 shared-memory tiles, so reads and writes both
//                       coalesce; with C > 1 rows of C values move as units
//                       and the per-element copy coalesces already.
#include <math.h>

#include "backends/cuda/common.cuh"
#include "backends/cuda/naive_seq.h"

namespace lldl::cuda {

namespace {

using Dev = DeviceLauncher;

// ---- embedding ------------------------------------------------------------------

__global__ void embedding_scatter_kernel(const int32_t* ids, const float* g, float* d, int64_t n, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n * C; i += int64_t(gridDim.x) * blockDim.x)
    atomicAdd(d + static_cast<int64_t>(ids[i / C]) * C + i % C, g[i]);
}
void embedding_bwd(const KernelArgs& a) {
  Dev run;
  if (!fast()) return naive::embedding_bwd(a, run);
  float* d = gin<float>(a, 1);
  const int64_t n = a.in_shape[0].numel(), C = a.in_shape[1][1];
  if (!d || n * C == 0) return;
  int64_t grid = blocks_for(n * C);
  grid = grid < 8 * 132 ? grid : 8 * 132;
  embedding_scatter_kernel<<<static_cast<unsigned>(grid), kBlock, 0, stream()>>>(in<int32_t>(a, 0), gout<float>(a), d, n, C);
  check_launch("embedding backward");
}

// ---- layer_norm ----------------------------------------------------------------

__global__ void ln_fwd_warp_kernel(const float* x, const float* gamma, const float* beta, float* o, float* mean,
                                   float* rstd, int64_t R, int64_t C, double eps) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= R) return;
  const float* xr = x + r * C;
  double s = 0;
  for (int64_t c = lane; c < C; c += 32) s += xr[c];
  const double m = warp_sum(s) / static_cast<double>(C);
  double q = 0;
  for (int64_t c = lane; c < C; c += 32) q += (xr[c] - m) * (xr[c] - m);
  q = warp_sum(q);
  const float mr = static_cast<float>(m), sr = static_cast<float>(1.0 / sqrt(q / static_cast<double>(C) + eps));
  if (lane == 0) mean[r] = mr, rstd[r] = sr;
  float* orow = o + r * C;
  for (int64_t c = lane; c < C; c += 32) orow[c] = gamma[c] * ((xr[c] - mr) * sr) + beta[c];
}
void layer_norm_fwd(const KernelArgs& a) {
  Dev run;
  if (!fast()) return naive::layer_norm_fwd(a, run);
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  if (R == 0) return;
  float* mean = static_cast<float*>(a.ws);
  ln_fwd_warp_kernel<<<row_blocks(R), kWarpsPerBlock * 32, 0, stream()>>>(in<float>(a, 0), in<float>(a, 1), in<float>(a, 2),
                                                              out<float>(a), mean, mean + R, R, C,
                                                              a.attr.layer_norm.eps);
  check_launch("layer_norm");
}

__global__ void ln_dx_warp_kernel(const float* x, const float* gamma, const float* g, const float* mean,
                                  const float* rstd, float* dx, int64_t R, int64_t C) {
  const int64_t r = warp_row();
  const int lane = threadIdx.x & 31;
  if (r >= R) return;
  const float *xr = x + r * C, *gr = g + r * C;
  const float mr = mean[r], sr = rstd[r];
  double sd = 0, sdx = 0;
  for (int64_t c = lane; c < C; c += 32) {
    const double dxh = static_cast<double>(gr[c]) * gamma[c];
    sd += dxh;
    sdx += dxh * ((xr[c] - mr) * sr);
  }
  const double md = warp_sum(sd) / static_cast<double>(C), mdx = warp_sum(sdx) / static_cast<double>(C);
  float* dr = dx + r * C;
  for (int64_t c = lane; c < C; c += 32) {
    const double xhat = (xr[c] - mr) * sr;
    dr[c] += static_cast<float>(sr * (static_cast<double>(gr[c]) * gamma[c] - md - xhat * mdx));
  }
}
// Block (column tile, row chunk): 32 columns, 8 rows of threads striding
// down the chunk's rows; part[(chunk C + c) 2 + {0, 1}] = sums of g, g xhat.
__global__ void ln_param_partial_kernel(const float* x, const float* g, const float* mean, const float* rstd,
                                        double* part, int64_t R, int64_t C, int64_t chunk_rows) {
  __shared__ double tile[2][8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * chunk_rows;
  const int64_t r1 = r0 + chunk_rows < R ? r0 + chunk_rows : R;
  double sg = 0, sgx = 0;
  if (c < C)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      const float gv = g[r * C + c];
      sg += gv;
      sgx += static_cast<double>(gv) * ((x[r * C + c] - mean[r]) * rstd[r]);
    }
  tile[0][threadIdx.y][threadIdx.x] = sg;
  tile[1][threadIdx.y][threadIdx.x] = sgx;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  for (int j = 1; j < 8; ++j) sg += tile[0][j][threadIdx.x], sgx += tile[1][j][threadIdx.x];
  part[(blockIdx.y * C + c) * 2] = sg;
  part[(blockIdx.y * C + c) * 2 + 1] = sgx;
}
__global__ void ln_param_finish_kernel(const double* part, int64_t chunks, int64_t C, float* dgamma, float* dbeta) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  double sg = 0, sgx = 0;
  for (int64_t k = 0; k < chunks; ++k) sg += part[(k * C + c) * 2], sgx += part[(k * C + c) * 2 + 1];
  if (dbeta) dbeta[c] += static_cast<float>(sg);
  if (dgamma) dgamma[c] += static_cast<float>(sgx);
}
void layer_norm_bwd(const KernelArgs& a) {
  Dev run;
  if (!fast()) return naive::layer_norm_bwd(a, run);
  const int64_t C = a.out_shape.last(), R = a.out_shape.rows();
  if (R == 0) return;
  const float *x = in<float>(a, 0), *g = gout<float>(a), *mean = static_cast<const float*>(a.ws), *rstd = mean + R;
  if (float* dx = gin<float>(a, 0)) {
    ln_dx_warp_kernel<<<row_blocks(R), kWarpsPerBlock * 32, 0, stream()>>>(x, in<float>(a, 1), g, mean, rstd, dx, R, C);
    check_launch("layer_norm backward");
  }
  float *dgamma = gin<float>(a, 1), *dbeta = gin<float>(a, 2);
  if (!dgamma && !dbeta) return;
  // Row chunks of at least 64 rows, at most 256 chunks: enough blocks to
  // fill the GPU when C is small, little partial traffic when R is large.
  int64_t chunks = (R + 63) / 64;
  chunks = chunks < 256 ? chunks : 256;
  const int64_t chunk_rows = (R + chunks - 1) / chunks, tiles = (C + 31) / 32;
  double* part = static_cast<double*>(scratch(sizeof(double) * 2 * chunks * C));
  ln_param_partial_kernel<<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks)), dim3(32, 8), 0, stream()>>>(
      x, g, mean, rstd, part, R, C, chunk_rows);
  check_launch("layer_norm backward");
  ln_param_finish_kernel<<<static_cast<unsigned>(blocks_for(C)), kBlock, 0, stream()>>>(part, chunks, C, dgamma, dbeta);
  check_launch("layer_norm backward");
}

// ---- transpose ----------------------------------------------------------------

// dst (A, n1, B, n0) (+)= src (A, n0, B, n1) swapped, one 32 x 32 tile of
// (i < n0, j < n1) per block of 32 x 8 threads, for the (a, b) of blockIdx.y:
// reads run along j (contiguous in src), writes along i (contiguous in dst).
template <bool Add>
__global__ void transpose_tile_kernel(const float* src, float* dst, int64_t n0, int64_t B, int64_t n1,
                                      int64_t tiles1) {
  __shared__ float tile[32][33];  // 33: the column read hits 32 banks
  const int64_t a = blockIdx.y / B, b = blockIdx.y % B;
  const int64_t i0 = blockIdx.x / tiles1 * 32, j0 = blockIdx.x % tiles1 * 32;
  for (int k = threadIdx.y; k < 32; k += 8) {
    const int64_t i = i0 + k, j = j0 + threadIdx.x;
    if (i < n0 && j < n1) tile[k][threadIdx.x] = src[((a * n0 + i) * B + b) * n1 + j];
  }
  __syncthreads();
  for (int k = threadIdx.y; k < 32; k += 8) {
    const int64_t j = j0 + k, i = i0 + threadIdx.x;
    if (i >= n0 || j >= n1) continue;
    float* d = dst + ((a * n1 + j) * B + b) * n0 + i;
    if (Add) *d += tile[threadIdx.x][k];
    else *d = tile[threadIdx.x][k];
  }
}
// False when the tiled kernel does not apply (C > 1, nothing to swap, or
// more (a, b) pairs than a grid's y dimension takes).
template <bool Add>
bool transpose_tiled(const float* src, float* dst, const SwapGeom& s, const char* what) {
  if (s.C != 1 || s.n0 < 2 || s.n1 < 2 || s.A * s.B > 65535) return false;
  const int64_t tiles1 = (s.n1 + 31) / 32, tiles = (s.n0 + 31) / 32 * tiles1;
  if (tiles > 0x7fffffff) return false;
  transpose_tile_kernel<Add><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(s.A * s.B)), dim3(32, 8), 0, stream()>>>(
      src, dst, s.n0, s.B, s.n1, tiles1);
  check_launch(what);
  return true;
}
void transpose_fwd(const KernelArgs& a) {
  Dev run;
  if (fast() && numel(a) > 0 && transpose_tiled<false>(in<float>(a, 0), out<float>(a), swap_geom(a.in_shape, a.attr), "transpose"))
    return;
  naive::transpose_fwd(a, run);
}
void transpose_bwd(const KernelArgs& a) {
  Dev run;
  float* d = gin<float>(a, 0);
  if (!d) return;
  SwapGeom s = swap_geom(a.in_shape, a.attr);
  std::swap(s.n0, s.n1);  // dout is (A, n1, B, n0, C)
  if (fast() && numel(a) > 0 && transpose_tiled<true>(gout<float>(a), d, s, "transpose backward")) return;
  naive::transpose_bwd(a, run);
}

}  // namespace

void register_seq(KernelPair* t) {
  using namespace naive;
  t[int(OpKind::Embedding)] = {shared<embedding_fwd<Dev>>, cuda::embedding_bwd};
  t[int(OpKind::LayerNorm)] = {cuda::layer_norm_fwd, cuda::layer_norm_bwd};
  t[int(OpKind::Gelu)] = {shared<gelu_fwd<Dev>>, shared<gelu_bwd<Dev>>};
  t[int(OpKind::Transpose)] = {cuda::transpose_fwd, cuda::transpose_bwd};
  t[int(OpKind::Slice)] = {shared<slice_fwd<Dev>>, shared<slice_bwd<Dev>>};
  t[int(OpKind::Concat)] = {shared<concat_fwd<Dev>>, shared<concat_bwd<Dev>>};
}

}  // namespace lldl::cuda
