// The study's op table: how a size label becomes input shapes and attributes
// for one op, and the sizes swept by default and in --quick mode.
//
// Adding an op to the study is one line in kStudyOps. The op is looked up by
// name at run time, so a line for an op this build lacks is harmless: the
// default sweep skips it and asking for it is a clear error.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/op.h"

namespace lldl::study {

// One problem instance: input shapes, attributes, and for int32 inputs the
// exclusive upper bound of the random values (token ids < vocabulary).
struct Case {
  std::vector<Shape> shapes;
  OpAttr attr = no_attr();
  std::vector<int64_t> int_bound;  // per input; 0 for float inputs
};

using Dims = std::vector<int64_t>;
using MakeFn = Case (*)(const Dims& d);

struct OpEntry {
  const char* name;    // the op's metadata name
  const char* layout;  // what a size label means, for --list and errors
  MakeFn make;         // throws ValueError when the label has the wrong dimensions
  const char* sizes;   // default sweep, separated by spaces
  const char* quick;   // --quick sweep
};

inline void want(const char* op, const Dims& d, std::initializer_list<size_t> counts,
                 const char* layout) {
  for (size_t c : counts)
    if (d.size() == c) return;
  throw ValueError(std::string(op) + ": size has " + std::to_string(d.size()) +
                   " dimension(s), expected " + layout);
}

inline Case c_matmul(const Dims& d) {
  want("matmul", d, {1, 3}, "N or MxKxN");
  int64_t m = d[0], k = d.size() == 3 ? d[1] : d[0], n = d.size() == 3 ? d[2] : d[0];
  return {{Shape{m, k}, Shape{k, n}}, matmul_attr(false, false), {}};
}
// linear(x [M,K], w [K,N], b [N]), size MxKxN.
inline Case c_linear(const Dims& d) {
  want("linear", d, {3}, "MxKxN");
  return {{Shape{d[0], d[1]}, Shape{d[1], d[2]}, Shape{d[2]}}, matmul_attr(false, false), {}};
}
// x [N,C,H,W], w [OC,C,K,K], b [OC]; stride 1, padding K/2 (same size out).
inline Case c_conv2d(const Dims& d) {
  want("conv2d", d, {6}, "NxCxHxWxOCxK");
  return {{Shape{d[0], d[1], d[2], d[3]}, Shape{d[4], d[1], d[5], d[5]}, Shape{d[4]}},
          conv_attr(1, static_cast<int>(d[5] / 2)), {}};
}
// A vector (N) or a matrix (RxC) for unary and same-shape binary ops.
inline Shape rows_cols(const char* op, const Dims& d) {
  want(op, d, {1, 2}, "N or RxC");
  return d.size() == 1 ? Shape{d[0]} : Shape{d[0], d[1]};
}
template <const char* Op>
Case c_unary(const Dims& d) {
  return {{rows_cols(Op, d)}, no_attr(), {}};
}
template <const char* Op>
Case c_binary(const Dims& d) {
  Shape s = rows_cols(Op, d);
  return {{s, s}, no_attr(), {}};
}
inline Case c_softmax(const Dims& d) {
  want("softmax", d, {2}, "RxC (rows of C)");
  return {{Shape{d[0], d[1]}}, no_attr(), {}};
}
// lstm(x [B,T,I], w_ih [4H,I], w_hh [4H,H], b [4H]), size BxTxIxH.
inline Case c_lstm(const Dims& d) {
  want("lstm", d, {4}, "BxTxIxH");
  int64_t h4 = 4 * d[3];
  return {{Shape{d[0], d[1], d[2]}, Shape{h4, d[2]}, Shape{h4, d[3]}, Shape{h4}}, no_attr(), {}};
}
// layer_norm(x [R,C], gamma [C], beta [C]), eps 1e-5.
inline Case c_layer_norm(const Dims& d) {
  want("layer_norm", d, {2}, "RxC");
  return {{Shape{d[0], d[1]}, Shape{d[1]}, Shape{d[1]}}, layer_norm_attr(1e-5f), {}};
}
// causal_attention(qkv [B,T,3C], n_head), size BxTxCxH.
inline Case c_attention(const Dims& d) {
  want("causal_attention", d, {4}, "BxTxCxH (H heads)");
  return {{Shape{d[0], d[1], 3 * d[2]}}, attention_attr(static_cast<int>(d[3])), {}};
}
// embedding(ids int32 [B,T], table [V,C]), size BxTxVxC.
inline Case c_embedding(const Dims& d) {
  want("embedding", d, {4}, "BxTxVxC");
  return {{Shape{d[0], d[1]}, Shape{d[2], d[3]}}, no_attr(), {d[2], 0}};
}

inline constexpr char kRelu[] = "relu", kTanh[] = "tanh", kAdd[] = "add", kGelu[] = "gelu",
                      kSigmoid[] = "sigmoid";

inline const OpEntry kStudyOps[] = {
    {"matmul", "N (N x N @ N x N) or MxKxN", c_matmul, "16 32 64 128 256 512 1024", "32 128 512"},
    {"linear", "MxKxN (x MxK @ w KxN + b N)", c_linear, "64x64x64 512x256x256 2048x384x1152",
     "512x256x256"},
    {"conv2d", "NxCxHxWxOCxK (stride 1, padding K/2)", c_conv2d,
     "1x1x8x8x4x3 8x3x32x32x16x3 16x16x32x32x32x3 32x32x32x32x64x3",
     "8x3x32x32x16x3 16x16x32x32x32x3"},
    {"softmax", "RxC (rows of C)", c_softmax, "4x10 64x128 256x1024 1024x4096", "64x128 512x1024"},
    {"relu", "N or RxC", c_unary<kRelu>, "4 1024 16384 262144 4194304", "1024 262144"},
    {"tanh", "N or RxC", c_unary<kTanh>, "4 1024 16384 262144 4194304", "1024 262144"},
    {"add", "N or RxC", c_binary<kAdd>, "4 1024 16384 262144 4194304", "1024 262144"},
    {"sigmoid", "N or RxC", c_unary<kSigmoid>, "", ""},  // on request only
    {"gelu", "N or RxC", c_unary<kGelu>, "1024 262144 4194304", "262144"},
    {"lstm", "BxTxIxH", c_lstm, "8x16x32x64 32x32x128x256", "8x16x32x64"},
    {"layer_norm", "RxC", c_layer_norm, "64x128 256x768 2048x768", "64x128"},
    {"causal_attention", "BxTxCxH (H heads)", c_attention, "2x32x64x4 16x128x128x4 8x256x256x8",
     "2x32x64x4"},
    {"embedding", "BxTxVxC", c_embedding, "", ""},  // on request only
};

}  // namespace lldl::study
