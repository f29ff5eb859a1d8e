// Example inputs of every op kind, for the metadata rows (ops/meta.cpp):
// valid shapes and attributes that the tests run on every backend and the
// benchmarks time. Small ones run in the host emulation of the CUDA kernels;
// `large` ones only on a GPU and in benchmarks, where they reach the fast
// tier's multi-block, multi-warp and multi-chunk paths.
#pragma once
#include "ops/op.h"

namespace lldl::examples {

inline const OpExample kMatMul[] = {
    {.shapes = "5x7 7x3", .attr = matmul_attr(false, false)},
    {.shapes = "7x5 7x3", .attr = matmul_attr(true, false), .note = "a^T"},
    {.shapes = "5x7 3x7", .attr = matmul_attr(false, true), .note = "b^T"},
    {.shapes = "7x5 3x7", .attr = matmul_attr(true, true), .note = "a^T, b^T"},
    {.shapes = "33x65 65x17", .attr = matmul_attr(false, false)},
    {.shapes = "256x300 300x200", .attr = matmul_attr(false, false), .large = true},
    {.shapes = "300x256 200x300", .attr = matmul_attr(true, true), .note = "a^T, b^T",
     .large = true},
};
inline const OpExample kBiasAdd[] = {
    {.shapes = "6x5 5"},
    {.shapes = "70x40 40"},
    {.shapes = "512x300 300", .large = true},
};
// Same-shape binary ops (add, sub, mul).
inline const OpExample kBinary[] = {
    {.shapes = "5x7 5x7"},
    {.shapes = "3x4x5 3x4x5"},
    {.shapes = "513x1025 513x1025", .large = true},
};
inline const OpExample kScale[] = {
    {.shapes = "4x6", .attr = scale_attr(1.7f)},
    {.shapes = "513x1025", .attr = scale_attr(0.5f), .large = true},
};
inline const OpExample kSum[] = {
    {.shapes = "3x4x5", .attr = reduce_attr(-1), .note = "all"},
    {.shapes = "3x4x5", .attr = reduce_attr(0), .note = "axis 0"},
    {.shapes = "3x4x5", .attr = reduce_attr(2), .note = "axis 2"},
    {.shapes = "80x300", .attr = reduce_attr(1), .note = "axis 1"},
    {.shapes = "1048576", .attr = reduce_attr(-1), .note = "all", .large = true},
    {.shapes = "300x257", .attr = reduce_attr(0), .note = "axis 0", .large = true},
    {.shapes = "300x257", .attr = reduce_attr(1), .note = "axis 1", .large = true},
};
inline const OpExample kMean[] = {
    {.shapes = "3x4x5", .attr = reduce_attr(1), .note = "axis 1"},
    {.shapes = "1000", .attr = reduce_attr(-1), .note = "all"},
    {.shapes = "4x100000", .attr = reduce_attr(1), .note = "axis 1", .large = true},
    {.shapes = "16x64x33", .attr = reduce_attr(1), .note = "axis 1", .large = true},
};
// Unary elementwise ops without attributes (LLDL_UNARY_OPS but gelu).
inline const OpExample kUnary[] = {
    {.shapes = "3x33"},
    {.shapes = "513x1025", .large = true},
};
inline const OpExample kSoftmax[] = {
    {.shapes = "4x37"},
    {.shapes = "2x3"},
    {.shapes = "256x1000", .large = true},
};
inline const OpExample kLogSoftmax[] = {
    {.shapes = "4x37"},
    {.shapes = "64x5000", .large = true},
};
inline const OpExample kMseLoss[] = {
    {.shapes = "5x3 5x3"},
    {.shapes = "1000x100 1000x100", .large = true},
};
// Soft targets in [0, 1).
inline const OpExample kCrossEntropy[] = {
    {.shapes = "6x5 6x5", .lo = 0.0, .hi = 1.0},
    {.shapes = "9x40 9x40", .lo = 0.0, .hi = 1.0},
    {.shapes = "256x1000 256x1000", .large = true, .lo = 0.0, .hi = 1.0},
};
inline const OpExample kCrossEntropyLabels[] = {
    {.shapes = "6x5 6", .classes = 5},
    {.shapes = "50x33 50", .classes = 33},
    {.shapes = "512x1000 512", .large = true, .classes = 1000},
};
inline const OpExample kConv2d[] = {
    {.shapes = "2x3x7x6 4x3x3x2 4", .attr = conv_attr(2, 1), .note = "stride 2, pad 1"},
    {.shapes = "3x2x6x6 5x2x3x3 5", .attr = conv_attr(1, 0), .note = "stride 1, pad 0"},
    {.shapes = "2x1x5x5 2x1x1x1 2", .attr = conv_attr(1, 2), .note = "stride 1, pad 2"},
    {.shapes = "8x16x28x28 32x16x3x3 32", .attr = conv_attr(1, 1), .note = "pad 1",
     .large = true},
    {.shapes = "4x3x32x32 8x3x5x5 8", .attr = conv_attr(2, 2), .note = "stride 2, pad 2",
     .large = true},
};
// Max and average pooling.
inline const OpExample kPool[] = {
    {.shapes = "2x3x6x6", .attr = pool_attr(2), .note = "2x2"},
    {.shapes = "2x2x7x7", .attr = pool_attr(3, 2), .note = "3x3 stride 2 (overlapping)"},
    {.shapes = "8x16x28x28", .attr = pool_attr(2), .note = "2x2", .large = true},
    {.shapes = "4x8x15x15", .attr = pool_attr(3, 2), .note = "3x3 stride 2", .large = true},
};
inline const OpExample kReshape[] = {
    {.shapes = "4x6", .attr = reshape_attr(6, 4), .note = "as 6x4"},
};
inline const OpExample kDropout[] = {
    {.shapes = "7x9", .attr = dropout_attr(0.3f, true, 42), .note = "p 0.3, training"},
    {.shapes = "7x9", .attr = dropout_attr(0.3f, false, 42), .note = "eval"},
    {.shapes = "1000x1000", .attr = dropout_attr(0.5f, true, 7), .note = "p 0.5", .large = true},
};
inline const OpExample kBatchNorm[] = {
    {.shapes = "8x3x4x4 3 3 3 3", .attr = batch_norm_attr(true), .note = "training"},
    {.shapes = "16x5 5 5 5 5", .attr = batch_norm_attr(true), .note = "training"},
    {.shapes = "8x3x4x4 3 3 3 3", .attr = batch_norm_attr(false), .note = "eval"},
    {.shapes = "32x16x14x14 16 16 16 16", .attr = batch_norm_attr(true), .note = "training",
     .large = true},
    {.shapes = "256x64 64 64 64 64", .attr = batch_norm_attr(true), .note = "training",
     .large = true},
    {.shapes = "32x16x14x14 16 16 16 16", .attr = batch_norm_attr(false), .note = "eval",
     .large = true},
};
inline const OpExample kEmbedding[] = {
    {.shapes = "2x3 7x5", .classes = 7},
    {.shapes = "40 3x9", .note = "repeated ids", .classes = 3},
    {.shapes = "8x256 1000x768", .large = true, .classes = 1000},
    {.shapes = "4096 5x64", .note = "repeated ids", .large = true, .classes = 5},
};
inline const OpExample kLayerNorm[] = {
    {.shapes = "4x37 37 37", .attr = layer_norm_attr(1e-5f)},
    {.shapes = "2x3x8 8 8", .attr = layer_norm_attr(0.1f), .note = "eps 0.1"},
    {.shapes = "5x1 1 1", .attr = layer_norm_attr(1e-5f), .note = "one feature"},
    {.shapes = "1000x768 768 768", .attr = layer_norm_attr(1e-5f), .large = true},
    {.shapes = "4096x33 33 33", .attr = layer_norm_attr(1e-5f), .large = true},
};
inline const OpExample kGelu[] = {
    {.shapes = "3x33"},
    {.shapes = "200", .note = "values in [-12, 12)", .lo = -12.0, .hi = 12.0},
    {.shapes = "513x1025", .large = true},
};
inline const OpExample kTranspose[] = {
    {.shapes = "3x4x5", .attr = transpose_attr(0, 2), .note = "dims 0 and 2"},
    {.shapes = "2x3x4x5", .attr = transpose_attr(1, 2), .note = "dims 1 and 2"},
    {.shapes = "6x7", .attr = transpose_attr(-1, -2), .note = "dims -1 and -2"},
    {.shapes = "3x4", .attr = transpose_attr(1, 1), .note = "dims 1 and 1"},
    {.shapes = "3x70x45", .attr = transpose_attr(1, 2), .note = "dims 1 and 2 (tiles)",
     .large = true},
    {.shapes = "16x33x2x40", .attr = transpose_attr(1, 3), .note = "dims 1 and 3 (tiles)",
     .large = true},
    {.shapes = "300x257", .attr = transpose_attr(0, 1), .note = "dims 0 and 1 (tiles)",
     .large = true},
    {.shapes = "8x128x12x64", .attr = transpose_attr(1, 2), .note = "dims 1 and 2 (heads)",
     .large = true},
};
inline const OpExample kSlice[] = {
    {.shapes = "4x10x3", .attr = slice_attr(1, 2, 5), .note = "axis 1 from 2, 5"},
    {.shapes = "6x7", .attr = slice_attr(0, 1, 3), .note = "axis 0 from 1, 3"},
    {.shapes = "6x7", .attr = slice_attr(-1, 6, 1), .note = "axis -1 from 6, 1"},
    {.shapes = "64x256x768", .attr = slice_attr(2, 256, 256), .note = "axis 2 from 256, 256",
     .large = true},
};
inline const OpExample kConcat[] = {
    {.shapes = "3x4 3x2", .attr = concat_attr(1), .note = "axis 1"},
    {.shapes = "2x3x4 5x3x4", .attr = concat_attr(0), .note = "axis 0"},
    {.shapes = "2x3x4 2x3x1", .attr = concat_attr(-1), .note = "axis -1"},
    {.shapes = "512x300 512x200", .attr = concat_attr(1), .note = "axis 1", .large = true},
};
// Between them: attention batched over heads (B <= n_head) and over batch
// rows, and one time step.
inline const OpExample kAttention[] = {
    {.shapes = "2x5x12", .attr = attention_attr(2), .note = "2 heads"},
    {.shapes = "3x7x24", .attr = attention_attr(2), .note = "2 heads"},
    {.shapes = "1x1x6", .attr = attention_attr(1), .note = "1 head"},
    {.shapes = "2x9x48", .attr = attention_attr(4), .note = "4 heads"},
    {.shapes = "4x128x768", .attr = attention_attr(8), .note = "8 heads", .large = true},
    {.shapes = "16x100x192", .attr = attention_attr(2), .note = "2 heads", .large = true},
};
// Weights in [-1, 1) (small ones for the large case): the gates do not all
// saturate.
inline const OpExample kLstm[] = {
    {.shapes = "2x5x3 16x3 16x4 16", .note = "B 2, T 5, I 3, H 4", .lo = -1.0, .hi = 1.0},
    {.shapes = "3x1x2 12x2 12x3 12", .note = "B 3, T 1, I 2, H 3", .lo = -1.0, .hi = 1.0},
    {.shapes = "1x6x4 20x4 20x5 20", .note = "B 1, T 6, I 4, H 5", .lo = -1.0, .hi = 1.0},
    {.shapes = "8x32x64 512x64 512x128 512", .note = "B 8, T 32, I 64, H 128", .large = true,
     .lo = -0.2, .hi = 0.2},
};
// GPT-2 124M's c_fc at batch 8 x 1024 is 8192x768 (3072x768)^T + 3072.
inline const OpExample kLinearGelu[] = {
    {.shapes = "5x7 7x3 3", .attr = matmul_attr(false, false)},
    {.shapes = "6x9 4x9 4", .attr = matmul_attr(false, true), .note = "w^T"},
    {.shapes = "33x65 17x65 17", .attr = matmul_attr(false, true), .note = "w^T, values in [-4, 4)",
     .lo = -4.0, .hi = 4.0},
    {.shapes = "1024x768 3072x768 3072", .attr = matmul_attr(false, true), .note = "w^T", .large = true},
};
inline const OpExample kLinear[] = {
    {.shapes = "5x7 7x3 3", .attr = matmul_attr(false, false)},
    {.shapes = "5x7 3x7 3", .attr = matmul_attr(false, true), .note = "w^T"},
    {.shapes = "1x9 9x4 4", .attr = matmul_attr(false, false), .note = "one row"},
    {.shapes = "33x65 17x65 17", .attr = matmul_attr(false, true), .note = "w^T"},
    {.shapes = "512x300 300x200 200", .attr = matmul_attr(false, false), .large = true},
    {.shapes = "512x300 1000x300 1000", .attr = matmul_attr(false, true), .note = "w^T",
     .large = true},
};
inline const OpExample kLstmGates[] = {
    {.shapes = "2x5x16 16x4", .note = "B 2, T 5, H 4", .lo = -1.0, .hi = 1.0},
    {.shapes = "3x1x12 12x3", .note = "B 3, T 1, H 3", .lo = -1.0, .hi = 1.0},
    {.shapes = "1x6x20 20x5", .note = "B 1, T 6, H 5", .lo = -1.0, .hi = 1.0},
    {.shapes = "32x64x1024 1024x256", .note = "B 32, T 64, H 256", .large = true, .lo = -0.2,
     .hi = 0.2},
};

}  // namespace lldl::examples
