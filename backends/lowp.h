// Low-precision weight matrices for inference (issue 18): bfloat16, and
// int8 with one float scale per block of 32 values along the reduction
// dimension (llama.cpp's Q8_0, but a float32 scale). Activations stay
// float32; the kernels (backends/cpu/lowp_gemm.cpp) widen the weights in
// registers, or use vdpbf16ps / VNNI where cpu_isa() allows
// (backends/lowp_isa.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/lowp_isa.h"

namespace lldl {

enum class WeightFormat { F32, BF16, Q8 };
// "fp32", "bf16", "int8"; and back (ValueError naming the choices otherwise).
const char* weight_format_name(WeightFormat f);
WeightFormat weight_format_from_name(const std::string& name);

constexpr int64_t kQ8Block = 32;

// W [rows, cols]: row n holds the cols weights of output n (the reduction
// runs along a row). Rows are stored with stride `ld` = cols rounded up to
// 32, zero padded, so that every kernel reads whole vectors.
struct LowpMatrix {
  WeightFormat format = WeightFormat::BF16;
  int64_t rows = 0, cols = 0, ld = 0;
  std::vector<uint16_t> bf16;  // BF16: rows x ld
  std::vector<int8_t> q;       // Q8: rows x ld
  std::vector<float> scale;    // Q8: rows x ld / 32; w = q * scale of its block
  int64_t blocks() const { return ld / kQ8Block; }
  size_t bytes() const { return bf16.size() * 2 + q.size() + scale.size() * 4; }
  // The weight (n, k) as float (tests, references).
  float at(int64_t n, int64_t k) const;
};

// Packs W in `format` (BF16 or Q8; ValueError for F32). w is [rows, cols]
// row-major, or with transposed = true [cols, rows] (a layer's x @ W
// weight, GPT-2's Conv1D layout). Q8: scale = max |w| of the block / 127,
// q = round-to-nearest of w / scale (a zero block has scale 0). Non-finite
// weights: ValueError naming `what`.
LowpMatrix lowp_pack(const float* w, int64_t rows, int64_t cols, bool transposed,
                     WeightFormat format, const std::string& what);
// A Q8 matrix from stored parts (a file): q [rows, cols] and scale
// [rows, ceil(cols / 32)]; ValueError naming `what` for wrong sizes or
// non-finite / negative scales.
LowpMatrix lowp_from_q8(const int8_t* q, const float* scale, int64_t rows, int64_t cols,
                        int64_t n_scale, const std::string& what);

// y[r, n] = sum_k x[r, k] W[n, k] (+ bias[n] when bias is not null), r <
// m_rows, with x row stride ldx and y row stride ldy. Threaded over output
// rows; each output is reduced in one fixed order, so the result does not
// depend on the thread count (it does on cpu_isa(): see lowp_gemm.cpp for
// each path's arithmetic).
void lowp_matmul(const float* x, int64_t m_rows, int64_t ldx, const LowpMatrix& W,
                 const float* bias, float* y, int64_t ldy);

}  // namespace lldl
