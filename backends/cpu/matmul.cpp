// matmul: C = op(A) @ op(B), op = identity or transpose (attr.matmul).
// A is (M,K) or (K,M) when transposed; B is (K,N) or (N,K); C is (M,N).
// linear: Y = X @ op(W) + b, X (M,K), W (K,N) or (N,K) (trans_b), b (N).
// Eigen's GEMM over arena memory; it uses OpenMP threads itself. When the
// graph asks for bf16 operands (KernelArgs::precision, mixed-precision
// training) every product of a float32 graph goes to bf16_gemm instead, the
// forward and both gradient products alike.
#include <type_traits>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

// dst (+)= l r at the graph's precision.
template <class T, class D, class L, class R>
void mm(const KernelArgs& a, D&& dst, const L& l, const R& r, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (a.precision == MatmulPrecision::BF16) {
      auto [ap, ai, ak] = strides_of(l);
      auto [bp, bk, bj] = strides_of(r);
      bf16_gemm(l.rows(), r.cols(), l.cols(), ap, ai, ak, bp, bk, bj, dst.data(),
                int64_t(dst.outerStride()), accumulate);
      return;
    }
  }
  product(dst, l, r, accumulate);
}

template <class T>
void matmul_forward(const KernelArgs& a) {
  const Shape &sa = a.in_shape[0], &sb = a.in_shape[1];
  CMap<T> A(in<T>(a, 0), sa[0], sa[1]);
  CMap<T> B(in<T>(a, 1), sb[0], sb[1]);
  Map<T> C(out<T>(a), a.out_shape[0], a.out_shape[1]);
  bool ta = a.attr.matmul.trans_a, tb = a.attr.matmul.trans_b;
  if (!ta && !tb) mm<T>(a, C, A, B, false);
  else if (ta && !tb) mm<T>(a, C, A.transpose(), B, false);
  else if (!ta && tb) mm<T>(a, C, A, B.transpose(), false);
  else mm<T>(a, C, A.transpose(), B.transpose(), false);
}

// With C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC; the
// transposed forms are undone when the stored operand was transposed.
template <class T>
void matmul_backward(const KernelArgs& a) {
  const Shape &sa = a.in_shape[0], &sb = a.in_shape[1];
  CMap<T> A(in<T>(a, 0), sa[0], sa[1]);
  CMap<T> B(in<T>(a, 1), sb[0], sb[1]);
  CMap<T> dC(gout<T>(a), a.out_shape[0], a.out_shape[1]);
  bool ta = a.attr.matmul.trans_a, tb = a.attr.matmul.trans_b;
  if (T* ga = gin<T>(a, 0)) {
    Map<T> dA(ga, sa[0], sa[1]);
    const bool acc = !fresh(a, 0);
    if (!ta) {
      if (!tb) mm<T>(a, dA, dC, B.transpose(), acc);  // (M,N)(N,K)
      else mm<T>(a, dA, dC, B, acc);                  // B is (N,K)
    } else {
      if (!tb) mm<T>(a, dA, B, dC.transpose(), acc);  // (K,N)(N,M)
      else mm<T>(a, dA, B.transpose(), dC.transpose(), acc);
    }
  }
  if (T* gb = gin<T>(a, 1)) {
    Map<T> dB(gb, sb[0], sb[1]);
    const bool acc = !fresh(a, 1);
    if (!tb) {
      if (!ta) mm<T>(a, dB, A.transpose(), dC, acc);  // (K,M)(M,N)
      else mm<T>(a, dB, A, dC, acc);                  // A is (K,M)
    } else {
      if (!ta) mm<T>(a, dB, dC.transpose(), A, acc);  // (N,M)(M,K)
      else mm<T>(a, dB, dC.transpose(), A.transpose(), acc);
    }
  }
}

// Y = b broadcast over the rows, then Y += X op(W): an assigning product
// zero-fills Y before accumulating anyway, so the bias costs no extra pass
// over Y (bias_add after matmul reads and writes Y once more).
template <class T>
void linear_forward(const KernelArgs& a) {
  const Shape &sx = a.in_shape[0], &sw = a.in_shape[1];
  const int64_t M = a.out_shape[0], N = a.out_shape[1];
  CMap<T> X(in<T>(a, 0), sx[0], sx[1]);
  CMap<T> W(in<T>(a, 1), sw[0], sw[1]);
  CVecMap<T> b(in<T>(a, 2), N);
  T* y = out<T>(a);
  pfor(M, [&](int64_t r) { VecMap<T>(y + r * N, N) = b; }, M * N);
  Map<T> Y(y, M, N);
  if (a.attr.matmul.trans_b) mm<T>(a, Y, X, W.transpose(), true);
  else mm<T>(a, Y, X, W, true);
}

// dX and dW are matmul's (trans_a is never set); db = the column sums of
// dY. dY is read in place by all three.
template <class T>
void linear_backward(const KernelArgs& a) {
  matmul_backward<T>(a);
  if (T* gb = gin<T>(a, 2)) column_sums(gb, fresh(a, 2), gout<T>(a), a.out_shape[0], a.out_shape[1]);
}

}  // namespace

template <class T>
void register_matmul(KernelPair* t) {
  t[int(OpKind::MatMul)] = {matmul_forward<T>, matmul_backward<T>, true};
  t[int(OpKind::Linear)] = {linear_forward<T>, linear_backward<T>, true};
}
template void register_matmul<float>(KernelPair*);
template void register_matmul<double>(KernelPair*);

}  // namespace lldl::cpu
