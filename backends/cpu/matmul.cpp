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
  if (!ta && !tb) C.noalias() = A * B;
  else if (ta && !tb) C.noalias() = A.transpose() * B;
  else if (!ta && tb) C.noalias() = A * B.transpose();
  else C.noalias() = A.transpose() * B.transpose();
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
    if (!ta) {
      if (!tb) dA.noalias() += dC * B.transpose();  // (M,N)(N,K)
      else dA.noalias() += dC * B;                  // B is (N,K)
    } else {
      if (!tb) dA.noalias() += B * dC.transpose();  // (K,N)(N,M)
      else dA.noalias() += B.transpose() * dC.transpose();
    }
  }
  if (T* gb = gin<T>(a, 1)) {
    Map<T> dB(gb, sb[0], sb[1]);
    if (!tb) {
      if (!ta) dB.noalias() += A.transpose() * dC;  // (K,M)(M,N)
      else dB.noalias() += A * dC;                  // A is (K,M)
    } else {
      if (!ta) dB.noalias() += dC.transpose() * A;  // (N,M)(M,K)
      else dB.noalias() += dC.transpose() * A.transpose();
    }
  }
}

}  // namespace

template <class T>
void register_matmul(KernelPair* t) {
  t[int(OpKind::MatMul)] = {matmul_forward<T>, matmul_backward<T>};
}
template void register_matmul<float>(KernelPair*);
template void register_matmul<double>(KernelPair*);

}  // namespace lldl::cpu
