// embedding: each id picks a row of the table.
//
// ids is int32 (n ids, any shape; the op's host check has put every id in
// [0, V)), table is (V, C), out is (n, C) (ids.shape + [C]).
//
//   forward:  out[i, :] = table[ids[i], :]
//   backward: dtable[ids[i], :] += dout[i, :]   (a repeated id accumulates;
//             ids get no gradient)
//
// The backward is a scatter-add, so threads cannot split the ids: two of them
// could add into the same table row. They split the C columns instead; each
// table element then sums its ids in order, on one thread, and the result
// does not depend on the thread count.
#include <omp.h>

#include <algorithm>

#include "backends/cpu/common.h"

namespace lldl::cpu {

namespace {

template <class T>
void embedding_forward(const KernelArgs& a) {
  const int32_t* ids = in<int32_t>(a, 0);
  const T* table = in<T>(a, 1);
  T* o = out<T>(a);
  const int64_t n = a.in_shape[0].numel(), C = a.in_shape[1][1];
  pfor(n, [&](int64_t i) {
    const T* row = table + static_cast<int64_t>(ids[i]) * C;
    std::copy_n(row, C, o + i * C);
  }, n * C);
}

template <class T>
void embedding_backward(const KernelArgs& a) {
  T* dtable = gin<T>(a, 1);
  if (!dtable) return;
  const int32_t* ids = in<int32_t>(a, 0);
  const T* g = gout<T>(a);
  const int64_t n = a.in_shape[0].numel(), C = a.in_shape[1][1];
  // Column blocks of at least 16 values, so that a thread's share of a row
  // is not a sliver of a cache line.
  const int64_t blocks =
      n * C >= kParallelMin ? std::clamp<int64_t>(C / 16, 1, omp_get_max_threads()) : 1;
  pfor(blocks, [&](int64_t b) {
    const int64_t c0 = C * b / blocks, c1 = C * (b + 1) / blocks;
    for (int64_t i = 0; i < n; ++i) {
      T* d = dtable + static_cast<int64_t>(ids[i]) * C;
      const T* gi = g + i * C;
      for (int64_t c = c0; c < c1; ++c) d[c] += gi[c];
    }
  }, n * C);
}

}  // namespace

template <class T>
void register_embedding(KernelPair* t) {
  t[int(OpKind::Embedding)] = {embedding_forward<T>, embedding_backward<T>};
}
template void register_embedding<float>(KernelPair*);
template void register_embedding<double>(KernelPair*);

}  // namespace lldl::cpu
