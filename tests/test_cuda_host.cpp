// The CUDA backend's naive kernels, run on the host (no GPU needed).
//
// backends/cuda/naive.h writes every naive kernel over a launcher; here the
// launcher walks the grid and block indices of the launch on the CPU and
// calls the same __host__ __device__ bodies the GPU runs (hd.h). Each case of
// cuda_cases.h runs on the CPU backend and through this emulation with the
// same inputs, upstream gradient and pre-filled input gradients; outputs,
// accumulated gradients and in-place buffers must agree (normalised MSE
// <= 1e-7, NaN fails). Two launch shapes are emulated: one thread per element
// (the naive tier) and a small grid whose threads stride (the fast tier's
// pointwise launch), which catches index arithmetic that skips or repeats
// elements. The im2col + GEMM conv2d of the fast tier, its strided-GEMM
// attention and LSTM, the fused kernels (flash attention, fused
// cross-entropy: tile bodies run by host_tiles) and the optimiser update are
// checked the same way.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/optim.h"
#include "backends/cuda/bodies_fused.h"
#include "backends/cuda/bodies_optim.h"
#include "backends/cuda/im2col.h"
#include "backends/cuda/naive.h"
#include "backends/cuda/naive_fused.h"
#include "backends/cuda/naive_seq.h"
#include "backends/cuda/seq_gemm.h"
#include "cuda_cases.h"

using namespace lldl;
using namespace lldl::cudatest;

namespace {

// The launcher of naive.h on the host: host_launch over a grid of
// blocks_for(n) blocks (naive), or at most max_grid blocks (grid-stride).
struct HostLauncher {
  int64_t max_grid = 0;  // 0: one thread per element
  int block = cuda::kBlock;
  std::vector<char> buf;
  template <class F>
  void operator()(const char*, int64_t n, const F& f, bool per_row = false) {
    if (n <= 0) return;
    int64_t grid = cuda::blocks_for(n, block);
    if (!per_row && max_grid > 0 && grid > max_grid) grid = max_grid;
    cuda::host_launch(f, n, grid, block);
  }
  // Scratch starts as NaN bytes, so reading what no body wrote shows up.
  void* scratch(size_t bytes) {
    buf.assign(bytes, static_cast<char>(0xff));
    return buf.data();
  }
  void gemm(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X,
            const float* Y, float* C, bool acc, int64_t batch, int64_t sx, int64_t sy, int64_t sc) {
    for (int64_t b = 0; b < batch; ++b)
      (*this)(what, M * N, cuda::GemmF<float>{X + b * sx, Y + b * sy, C + b * sc, M, N, K, tx, ty, acc});
  }
  void gemm_ld(const char* what, bool tx, bool ty, int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx,
               const float* Y, int64_t ldy, float* C, int64_t ldc, bool acc, int64_t batch, int64_t sx,
               int64_t sy, int64_t sc) {
    for (int64_t b = 0; b < batch; ++b)
      (*this)(what, M * N,
              cuda::GemmF<float>{X + b * sx, Y + b * sy, C + b * sc, M, N, K, tx, ty, acc, ldx, ldy, ldc});
  }
};

// The naive CUDA kernel pair of a kind, run through the host launcher.
Side naive_side(OpKind k, HostLauncher& host) {
  using H = HostLauncher;
  namespace nv = cuda::naive;
  auto pair = [&host](void (*f)(const KernelArgs&, H&), void (*b)(const KernelArgs&, H&)) {
    return Side{[f, &host](const KernelArgs& a) { if (f) f(a, host); }, [b, &host](const KernelArgs& a) { b(a, host); }};
  };
  switch (k) {
    case OpKind::MatMul: return pair(nv::matmul_fwd<H>, nv::matmul_bwd<H>);
    case OpKind::Linear: return pair(nv::linear_fwd<H>, nv::linear_bwd<H>);
    case OpKind::LinearGelu:
      return Side{[&host](const KernelArgs& a) { cuda::linear_gelu_fwd(a, host, false); },
                  [&host](const KernelArgs& a) { nv::linear_bwd(cuda::linear_gelu_du(a, host, false), host); }};
    case OpKind::BiasAdd: return pair(nv::bias_fwd<H>, nv::bias_bwd<H>);
    case OpKind::Add: return pair(nv::add_fwd<H>, nv::add_bwd<H>);
    case OpKind::Sub: return pair(nv::sub_fwd<H>, nv::sub_bwd<H>);
    case OpKind::Mul: return pair(nv::mul_fwd<H>, nv::mul_bwd<H>);
    case OpKind::Scale: return pair(nv::scale_fwd<H>, nv::scale_bwd<H>);
    case OpKind::Sum:
    case OpKind::Mean: return pair(nv::reduce_fwd<H>, nv::reduce_bwd<H>);
    case OpKind::Sigmoid: return pair(nv::sigmoid_fwd<H>, nv::sigmoid_bwd<H>);
    case OpKind::Tanh: return pair(nv::tanh_fwd<H>, nv::tanh_bwd<H>);
    case OpKind::Relu: return pair(nv::relu_fwd<H>, nv::relu_bwd<H>);
    case OpKind::Silu: return pair(nv::silu_fwd<H>, nv::silu_bwd<H>);
    case OpKind::Identity: return pair(nv::identity_fwd<H>, nv::pass_bwd<H>);
    case OpKind::Softmax:
    case OpKind::LogSoftmax: return pair(nv::softmax_fwd<H>, nv::softmax_bwd<H>);
    case OpKind::MseLoss: return pair(nv::mse_fwd<H>, nv::mse_bwd<H>);
    case OpKind::CrossEntropy:
    case OpKind::CrossEntropyLabels: return pair(nv::ce_fwd<H>, nv::ce_bwd<H>);
    case OpKind::Conv2d: return pair(nv::conv_fwd<H>, nv::conv_bwd<H>);
    case OpKind::MaxPool2d:
    case OpKind::AvgPool2d: return pair(nv::pool_fwd<H>, nv::pool_bwd<H>);
    case OpKind::Reshape: return pair(nullptr, nv::pass_bwd<H>);  // forward: a view
    case OpKind::Dropout: return pair(nv::dropout_fwd<H>, nv::dropout_bwd<H>);
    case OpKind::BatchNorm: return pair(nv::bn_fwd<H>, nv::bn_bwd<H>);
    case OpKind::Embedding: return pair(nv::embedding_fwd<H>, nv::embedding_bwd<H>);
    case OpKind::LayerNorm: return pair(nv::layer_norm_fwd<H>, nv::layer_norm_bwd<H>);
    case OpKind::Gelu: return pair(nv::gelu_fwd<H>, nv::gelu_bwd<H>);
    case OpKind::Transpose: return pair(nv::transpose_fwd<H>, nv::transpose_bwd<H>);
    case OpKind::Slice: return pair(nv::slice_fwd<H>, nv::slice_bwd<H>);
    case OpKind::Concat: return pair(nv::concat_fwd<H>, nv::concat_bwd<H>);
    case OpKind::Attention: return pair(nv::attention_fwd<H>, nv::attention_bwd<H>);
    case OpKind::Lstm:
    case OpKind::LstmGates:
      return Side{[&host](const KernelArgs& a) { nv::lstm_fwd(a, host); },
                  [&host](const KernelArgs& a) { cuda::lstm_bwd(a, host, false); }};
    case OpKind::Count: break;
  }
  return {};
}

}  // namespace

TEST_CASE("every op kind has a CUDA test case and a host-emulated naive kernel") {
  std::vector<int> count(kOpCount, 0);
  for (const Case& k : cases()) count[int(k.kind)]++;
  HostLauncher host;
  for (int i = 0; i < kOpCount; ++i) {
    INFO("op " << op_name(OpKind(i)));
    CHECK_MESSAGE(count[i] > 0, "no example in ops/examples.h");
    CHECK_MESSAGE(bool(naive_side(OpKind(i), host).backward), "no naive kernel in naive_side()");
  }
}

TEST_CASE("CUDA naive kernels on the host match the CPU backend, forward and backward") {
  uint64_t seed = 100;
  for (const Case& k : cases()) {
    seed += 1000;
    Result ref = run(k, cpu_side(k.kind), seed, false);
    HostLauncher one_per_thread;  // the naive tier's launch
    compare(k, run(k, naive_side(k.kind, one_per_thread), seed, false), ref, "one thread per element", false);
    HostLauncher strided;  // 3 blocks of 32 threads, each thread striding
    strided.max_grid = 3;
    strided.block = 32;
    compare(k, run(k, naive_side(k.kind, strided), seed, false), ref, "grid-stride, 3 blocks of 32", false);
  }
}

TEST_CASE("CUDA fast-tier conv2d (im2col + GEMM) on the host matches the CPU backend") {
  uint64_t seed = 7;
  int n = 0;
  for (const Case& k : cases()) {
    if (k.kind != OpKind::Conv2d) continue;
    ++n;
    seed += 1000;
    HostLauncher host;
    Side im2col{[&host](const KernelArgs& a) { cuda::conv_im2col_fwd(a, host); },
                [&host](const KernelArgs& a) {
                  // db as the naive tier computes it; dx and dW by im2col.
                  const ConvGeom g = conv_geom(a.in_shape, a.attr);
                  if (float* db = cuda::gin<float>(a, 2))
                    host("db", g.OC, cuda::ConvBwdBF<float>{cuda::gout<float>(a), db, g}, true);
                  cuda::conv_im2col_bwd(a, host, cuda::gin<float>(a, 0), cuda::gin<float>(a, 1));
                }};
    compare(k, run(k, im2col, seed, false), run(k, cpu_side(k.kind), seed, false), "im2col + GEMM", false);
  }
  CHECK(n >= 3);
}

// The fast tier's attention and LSTM are GEMMs with strides into packed
// tensors plus small kernels; here the GEMMs are GemmF with the same
// arguments and the attention softmax steps are the row bodies the GPU's
// warp kernels mirror, so the strides, offsets and batching are checked.
TEST_CASE("CUDA fast-tier attention and LSTM (strided GEMMs) on the host match the CPU backend") {
  uint64_t seed = 11;
  int n_attention = 0, n_lstm = 0, n_gates = 0;
  for (const Case& k : cases()) {
    if (k.kind != OpKind::Attention && k.kind != OpKind::Lstm && k.kind != OpKind::LstmGates) continue;
    seed += 1000;
    HostLauncher host;
    Side fast;
    if (k.kind == OpKind::Attention) {
      ++n_attention;
      fast.forward = [&host](const KernelArgs& a) {
        cuda::attention_gemm_fwd(a, host, [&host](float* P, int64_t rows, int64_t T, float scale) {
          host("softmax", rows, cuda::AttnSoftmaxRowF<float>{P, T, scale}, true);
        });
      };
      fast.backward = [&host](const KernelArgs& a) {
        cuda::attention_gemm_bwd(a, host, [&host](const float* P, float* dS, int64_t rows, int64_t T, float scale) {
          host("softmax backward", rows, cuda::AttnSoftmaxBwdRowF<float>{P, dS, T, scale}, true);
        });
      };
    } else {
      ++(k.kind == OpKind::Lstm ? n_lstm : n_gates);
      fast.forward = [&host](const KernelArgs& a) { cuda::lstm_gemm_fwd(a, host); };
      fast.backward = [&host](const KernelArgs& a) { cuda::lstm_bwd(a, host, true); };
    }
    compare(k, run(k, fast, seed, false), run(k, cpu_side(k.kind), seed, false), "strided GEMMs", false);
  }
  CHECK(n_attention >= 3);
  CHECK(n_lstm >= 3);
  CHECK(n_gates >= 3);
}

namespace {

// Flash attention (bodies_fused.h) as tiles_kernel runs it: every block's
// threads phase by phase through host_tiles, shared memory NaN-filled.
Side flash_side(HostLauncher& host) {
  Side s;
  s.forward = [](const KernelArgs& a) {
    const AttnGeom g = attn_geom(a.in_shape, a.attr);
    REQUIRE(cuda::flash_fits(g));
    cuda::host_tiles(cuda::FlashFwdF{cuda::in<float>(a, 0), cuda::out<float>(a), static_cast<float*>(a.ws), g,
                                     static_cast<float>(g.scale)},
                     cuda::flash_tiles(g.T), g.B * g.NH);
  };
  s.backward = [&host](const KernelArgs& a) {
    const AttnGeom g = attn_geom(a.in_shape, a.attr);
    const int64_t rows = g.B * g.NH * g.T;
    const float *qkv = cuda::in<float>(a, 0), *dy = cuda::gout<float>(a), *lse = static_cast<float*>(a.ws);
    float* dqkv = cuda::gin<float>(a, 0);
    float* delta = static_cast<float*>(host.scratch(sizeof(float) * rows));
    host("delta", rows, cuda::FlashDeltaF{cuda::out<float>(a), dy, delta, g}, true);
    const float sc = static_cast<float>(g.scale);
    cuda::host_tiles(cuda::FlashBwdKVF{qkv, dy, lse, delta, dqkv, g, sc}, cuda::flash_tiles(g.T), g.B * g.NH);
    cuda::host_tiles(cuda::FlashBwdQF{qkv, dy, lse, delta, dqkv, g, sc}, cuda::flash_tiles(g.T), g.B * g.NH);
  };
  return s;
}

// logsumexp_{s <= t} (scale q_t . k_s) in double, for the flash workspace.
std::vector<double> reference_lse(const Case& k, uint64_t seed) {
  KernelArgs a{};
  a.in_shape[0] = k.in[0];
  const AttnGeom g = attn_geom(a.in_shape, k.attr);
  const Inputs in = make_inputs(k, seed);
  const std::vector<float>& x = in.f[0];
  std::vector<double> lse;
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t h = 0; h < g.NH; ++h)
      for (int64_t t = 0; t < g.T; ++t) {
        std::vector<double> sc;
        for (int64_t s = 0; s <= t; ++s) {
          double d = 0;
          for (int64_t i = 0; i < g.D; ++i) d += double(x[g.qkv(b, h, t) + i]) * x[g.qkv(b, h, s) + g.C + i];
          sc.push_back(d * g.scale);
        }
        const double m = *std::max_element(sc.begin(), sc.end());
        double sum = 0;
        for (double v : sc) sum += std::exp(v - m);
        lse.push_back(m + std::log(sum));
      }
  return lse;
}

}  // namespace

TEST_CASE("CUDA flash attention tiles on the host match the CPU backend (forward and the three gradients)") {
  // The small examples, then lengths around the tile size (64): one row, a
  // partial tile, exactly one, one past, several with a partial last tile;
  // head dims 2, 16 and 64 (the most a thread row's 4-wide blocks cover),
  // and 6 and 13 (not whole float4s: zero-padded dims in the shared tiles).
  std::vector<Case> all;
  for (const Case& k : cases())
    if (k.kind == OpKind::Attention) all.push_back(k);
  for (int64_t D : {16, 64})
    for (const Case& k : attention_sweep({1, 31, 33, 63, 64, 65, 130}, 2, 2, D)) all.push_back(k);
  for (const Case& k : attention_sweep({97}, 1, 3, 2)) all.push_back(k);
  for (const Case& k : attention_sweep({70}, 1, 2, 6)) all.push_back(k);
  for (const Case& k : attention_sweep({200}, 1, 1, 13)) all.push_back(k);
  uint64_t seed = 21;
  for (const Case& k : all) {
    seed += 1000;
    HostLauncher host;
    const Result got = run(k, flash_side(host), seed, false);
    // The gradients pre-filled in run() must be added to, as the CPU does.
    compare(k, got, run(k, cpu_side(k.kind), seed, false), "flash tiles", false, false);
    const std::vector<double> lse = reference_lse(k, seed);
    std::vector<float> ref(lse.begin(), lse.end()), ws(got.ws.begin(), got.ws.begin() + lse.size());
    const double e = nmse(ws, ref);
    INFO(k.label());
    CHECK_MESSAGE(e <= 1e-10, "logsumexp in the workspace: normalised MSE " << e);
  }
}

TEST_CASE("CUDA fused softmax + cross-entropy (a block per row) on the host matches the CPU backend") {
  // Fewer classes than threads (most threads fold nothing), a few hundred,
  // and GPT-2's vocabulary.
  std::vector<Case> all;
  for (const Case& k : cases())
    if (k.kind == OpKind::CrossEntropyLabels) all.push_back(k);
  all.push_back(ce_vocab_case(7, 700));
  all.push_back(ce_vocab_case(3, 50257));
  uint64_t seed = 31;
  for (const Case& k : all) {
    seed += 1000;
    Side fused;
    fused.forward = [](const KernelArgs& a) {
      const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
      std::vector<double> row(static_cast<size_t>(N), NAN);
      cuda::host_tiles(cuda::CeFusedF{cuda::in<float>(a, 0), cuda::in<int32_t>(a, 1), nullptr, row.data(), nullptr, N, C},
                       N, 1);
      double sum = 0;  // the device sums the row terms in its own kernels (device_sum)
      for (double r : row) sum += r;
      *cuda::out<float>(a) = static_cast<float>(-sum / static_cast<double>(N));
    };
    fused.backward = [](const KernelArgs& a) {
      const int64_t N = a.in_shape[0][0], C = a.in_shape[0][1];
      cuda::host_tiles(cuda::CeFusedF{cuda::in<float>(a, 0), cuda::in<int32_t>(a, 1), cuda::gout<float>(a), nullptr,
                                      cuda::gin<float>(a, 0), N, C},
                       N, 1);
    };
    compare(k, run(k, fused, seed, false), run(k, cpu_side(k.kind), seed, false), "block per row", false);
  }
}

TEST_CASE("CUDA linear_gelu with the fused bias + GELU epilogue on the host matches the CPU backend") {
  // The fast rung: GEMM with beta 0, BiasGeluF, GeluGradF, then linear's
  // gradients (col_reduce on the GPU; the naive column sum here).
  uint64_t seed = 41;
  int n = 0;
  for (const Case& k : cases()) {
    if (k.kind != OpKind::LinearGelu) continue;
    ++n;
    seed += 1000;
    HostLauncher host;
    host.max_grid = 2;  // and a grid-stride launch, as the fast tier caps its grids
    Side fused{[&host](const KernelArgs& a) { cuda::linear_gelu_fwd(a, host, true); },
               [&host](const KernelArgs& a) {
                 cuda::naive::linear_bwd(cuda::linear_gelu_du(a, host, true), host);
               }};
    compare(k, run(k, fused, seed, false), run(k, cpu_side(k.kind), seed, false), "fused epilogue", false);
  }
  CHECK(n >= 3);
}

TEST_CASE("CUDA attention batches heads or batch rows, whichever is larger") {
  // head_batches picks the GEMM batch; both choices must be among the cases
  // above, or one set of strides would go untested.
  bool by_head = false, by_row = false;
  for (const Case& k : cases()) {
    if (k.kind != OpKind::Attention) continue;
    KernelArgs a{};
    a.in_shape[0] = k.in[0];
    a.attr = k.attr;
    const AttnGeom g = attn_geom(a.in_shape, a.attr);
    const cuda::HeadBatches hb = cuda::head_batches(g);
    CHECK(hb.calls * hb.batch == g.B * g.NH);
    if (hb.batch > 1 && hb.s_qkv == g.D) by_head = true;              // next head: D columns on
    if (hb.batch > 1 && hb.s_qkv == g.T * 3 * g.C) by_row = true;     // next batch row
  }
  CHECK(by_head);
  CHECK(by_row);
}

TEST_CASE("CUDA optimiser update on the host matches the CPU optimiser") {
  for (OptimKind kind : {OptimKind::SGD, OptimKind::Momentum, OptimKind::Adam, OptimKind::AdamW}) {
    INFO("optimiser kind " << int(kind));
    OptimConfig cfg;
    cfg.kind = kind;
    cfg.lr = 0.05f;
    cfg.weight_decay = 0.01f;
    Graph g;
    Tensor p = g.param({37});
    std::vector<float> p0 = random_vector(37, 5), m(37, 0.0f), v(37, 0.0f);
    g.from_host(p, p0.data());
    Optimizer opt(g, cfg);
    std::vector<float> dev = p0;
    for (int step = 1; step <= 3; ++step) {
      std::vector<float> grad = random_vector(37, 50 + step);
      std::copy(grad.begin(), grad.end(), g.grad(p));
      opt.step();
      const float b1 = cfg.beta1, b2 = cfg.beta2;
      CudaOptimArgs c{int(kind), cfg.lr, cfg.momentum, b1, b2, cfg.eps, cfg.weight_decay,
                      1.0f - std::pow(b1, float(step)), 1.0f - std::pow(b2, float(step))};
      cuda::host_launch(cuda::OptimF{c, dev.data(), grad.data(), m.data(), v.data()}, 37);
    }
    std::vector<float> ref = g.host_data(p);
    double e = nmse(dev, ref);
    CHECK_MESSAGE(e <= 1e-12, "parameters after 3 steps: normalised MSE " << e);
  }
}

TEST_CASE("CUDA multi-tensor clipped update on the host matches the CPU optimiser") {
  // Three parameters of uneven sizes in one launch (the slot search crosses
  // every boundary), the norm reduced by the body the GPU sums, the factor
  // computed from it inside the update; against the CPU's clip_grad_norm
  // then step. Slots either bake the bias corrections in or read {lr, bc1,
  // bc2} from memory (ParamSlot::scalars, what the Optimizer gives and a
  // captured step needs); with scalars the launch's own lr is a wrong value
  // that must not be read.
  const std::vector<int64_t> sizes = {37, 300, 5};
  for (bool with_scalars : {false, true})
  for (OptimKind kind : {OptimKind::SGD, OptimKind::Momentum, OptimKind::Adam, OptimKind::AdamW}) {
    for (double max_norm : {0.3, 1e3}) {
      INFO("optimiser kind " << int(kind) << ", max_norm " << max_norm << ", scalars "
                             << with_scalars);
      OptimConfig cfg;
      cfg.kind = kind;
      cfg.lr = 0.05f;
      cfg.weight_decay = 0.01f;
      Graph g;
      std::vector<Tensor> ps;
      std::vector<std::vector<float>> p, grad, m, v;
      for (size_t i = 0; i < sizes.size(); ++i) {
        ps.push_back(g.param({sizes[i]}));
        p.push_back(random_vector(sizes[i], 5 + i));
        g.from_host(ps.back(), p.back().data());
        m.emplace_back(sizes[i], 0.0f);
        v.emplace_back(sizes[i], 0.0f);
      }
      grad.resize(sizes.size());
      Optimizer opt(g, cfg);
      for (int step = 1; step <= 3; ++step) {
        std::vector<cuda::MultiSlot> slots;
        std::vector<float> sc(3 * sizes.size());
        int64_t total = 0;
        for (size_t i = 0; i < sizes.size(); ++i) {
          grad[i] = random_vector(sizes[i], 50 + 10 * step + i);
          for (float& x : grad[i]) x *= 0.1f;
          std::copy(grad[i].begin(), grad[i].end(), g.grad(ps[i]));
          optim_scalars(cfg, step, sc.data() + 3 * i);
          if (with_scalars)
            slots.push_back({p[i].data(), grad[i].data(), m[i].data(), v[i].data(), total, 1.0f,
                             1.0f, sc.data() + 3 * i});
          else
            slots.push_back({p[i].data(), grad[i].data(), m[i].data(), v[i].data(), total,
                             1.0f - std::pow(cfg.beta1, float(step)),
                             1.0f - std::pow(cfg.beta2, float(step)), nullptr});
          total += sizes[i];
        }
        const double norm = clip_grad_norm(g, max_norm);
        opt.step();
        cuda::SumSquaresF sq{slots.data(), 3};
        double sumsq = 0;
        for (int64_t i = 0; i < total; ++i) sumsq += sq(i);
        CHECK(std::sqrt(sumsq) == doctest::Approx(norm).epsilon(1e-12));
        const float lr = with_scalars ? 123.0f : cfg.lr;
        CudaOptimArgs c{int(kind), lr, cfg.momentum, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay, 1, 1};
        cuda::host_launch(cuda::MultiOptimF{c, slots.data(), 3, &sumsq, max_norm}, total);
      }
      for (size_t i = 0; i < sizes.size(); ++i) {
        double e = nmse(p[i], g.host_data(ps[i]));
        CHECK_MESSAGE(e <= 1e-12, "parameter " << i << " after 3 steps: normalised MSE " << e);
      }
    }
  }
}

TEST_CASE("CUDA multi-tensor bodies: a NaN norm changes nothing, the scale body clips in place") {
  std::vector<float> p = {1, 2}, gr = {3, 4}, m(2, 0.0f), v(2, 0.0f);
  cuda::MultiSlot s{p.data(), gr.data(), m.data(), v.data(), 0, 0.1f, 0.001f, nullptr};
  double bad = NAN;
  CudaOptimArgs c{3, 0.1f, 0.9f, 0.9f, 0.999f, 1e-8f, 0.1f, 1, 1};
  cuda::host_launch(cuda::MultiOptimF{c, &s, 1, &bad, 1.0}, 2);
  CHECK(p == std::vector<float>{1, 2});
  double sumsq = 25;  // norm 5
  cuda::host_launch(cuda::MultiScaleF{&s, 1, &sumsq, 1.0}, 2);
  CHECK(gr[0] == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(gr[1] == doctest::Approx(0.8).epsilon(1e-6));
}

TEST_CASE("CUDA relu passes NaN and -0 through like the CPU backend") {
  // Anomaly mode relies on a NaN reaching the op's output.
  std::vector<float> x = {NAN, -0.0f, -1.0f, 2.0f}, cpu(4), dev(4);
  KernelArgs a{};
  a.kind = OpKind::Relu;
  a.n_in = 1;
  a.in[0] = x.data();
  a.in_shape[0] = a.out_shape = Shape{4};
  a.out = cpu.data();
  kernels(Backend::CPU, DType::F32, OpKind::Relu).forward(a);
  cuda::host_launch(cuda::ReluF<float>{x.data(), dev.data()}, 4);
  for (int i = 0; i < 4; ++i) {
    INFO("element " << i << ": CPU " << cpu[i] << ", CUDA body " << dev[i]);
    CHECK(std::isnan(dev[i]) == std::isnan(cpu[i]));
    if (!std::isnan(cpu[i])) CHECK(std::signbit(dev[i]) == std::signbit(cpu[i]));
    if (!std::isnan(cpu[i])) CHECK(dev[i] == cpu[i]);
  }
}
