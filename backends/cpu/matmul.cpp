// matmul: C = op(A) @ op(B), op = identity or transpose (attr.matmul).
// A is (M,K) or (K,M) when transposed; B is (K,N) or (N,K); C is (M,N).
// Eigen's GEMM over arena memory; it uses OpenMP threads itself.
#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

template <class T>
void matmul_forward(const KernelArgs& a) {
  const Shape &sa = a.in_shape[0], &sb = a.in_shape[1];
  CMap<T> A(in<T>(a, 0), sa[0], sa[1]);
  CMap<T> B(in<T>(a, 1), sb[0], sb[1]);
  Map<T> C(out<T>(a), a.out_shape[0], a.out_shape[1]);
  bool ta = a.attr.matmul.trans_a, tb = a.attr.matmul.trans_b;
  if (!ta && !tb) product(C, A, B, false);
  else if (ta && !tb) product(C, A.transpose(), B, false);
  else if (!ta && tb) product(C, A, B.transpose(), false);
  else product(C, A.transpose(), B.transpose(), false);
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
      if (!tb) product(dA, dC, B.transpose(), acc);  // (M,N)(N,K)
      else product(dA, dC, B, acc);                  // B is (N,K)
    } else {
      if (!tb) product(dA, B, dC.transpose(), acc);  // (K,N)(N,M)
      else product(dA, B.transpose(), dC.transpose(), acc);
    }
  }
  if (T* gb = gin<T>(a, 1)) {
    Map<T> dB(gb, sb[0], sb[1]);
    const bool acc = !fresh(a, 1);
    if (!tb) {
      if (!ta) product(dB, A.transpose(), dC, acc);  // (K,M)(M,N)
      else product(dB, A, dC, acc);                  // A is (K,M)
    } else {
      if (!ta) product(dB, dC.transpose(), A, acc);  // (N,M)(M,K)
      else product(dB, dC.transpose(), A.transpose(), acc);
    }
  }
}

}  // namespace

template <class T>
void register_matmul(KernelPair* t) {
  t[int(OpKind::MatMul)] = {matmul_forward<T>, matmul_backward<T>, true};
}
template void register_matmul<float>(KernelPair*);
template void register_matmul<double>(KernelPair*);

}  // namespace lldl::cpu
