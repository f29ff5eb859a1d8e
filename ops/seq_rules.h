// Shape rules, costs and value checks of the sequence-model ops (embedding,
// layer_norm, gelu, transpose, slice, concat), for the rows in ops/meta.cpp.
#pragma once
#include "ops/op.h"

namespace lldl::seq_rules {

Shape embedding_shape(const Shape* in, const OpAttr& a);
void embedding_check(const Shape* in, const void* const* data, const OpAttr& a);
double embedding_bytes(const Shape* in, const Shape& out, const OpAttr& a);

Shape layer_norm_shape(const Shape* in, const OpAttr& a);
double layer_norm_flops(const Shape* in, const Shape& out, const OpAttr& a);
double layer_norm_bytes(const Shape* in, const Shape& out, const OpAttr& a);
int64_t layer_norm_workspace(const Shape* in, const Shape& out, const OpAttr& a);

double gelu_flops(const Shape* in, const Shape& out, const OpAttr& a);

Shape transpose_shape(const Shape* in, const OpAttr& a);
Shape slice_shape(const Shape* in, const OpAttr& a);
Shape concat_shape(const Shape* in, const OpAttr& a);
// Copies (no arithmetic, FLOPs 0): every output element read once, written once.
double copy_bytes(const Shape* in, const Shape& out, const OpAttr& a);
double concat_bytes(const Shape* in, const Shape& out, const OpAttr& a);

}  // namespace lldl::seq_rules
