// Matrix products with bfloat16 operands and float32 accumulation, for
// mixed-precision training (MatmulPrecision::BF16, backends/backend.h).
// Both operands are rounded to bf16 (round to nearest even) as they are
// packed; every product of two bf16 values is exact in float32, so the only
// roundings are the operands' (relative 2^-8 at most each) and the float32 sums'.
#pragma once
#include <cstdint>

namespace lldl::cpu {

// The inner kernel follows cpu_isa() (backends/lowp_isa.h; LLDL_CPU_ISA
// lowers it): at avx512bf16, vdpbf16ps (two bf16 products per float32 lane
// per instruction); at avx2 to avx512vnni, the fallback that widens the
// same packed pairs to float32 in registers and uses AVX2 FMA; at scalar,
// plain C++ (std::fma). The three add the two products of a pair in the
// same order (odd k, then even k, as vdpbf16ps is specified, and as Zen 4
// does: the tests compare them bit for bit), so they differ only where
// vdpbf16ps flushes subnormals to zero.
// C (M x N, row stride ldc) (+)= bf16(A) bf16(B), where A(i, k) =
// a[i * as_i + k * as_k] and B(k, j) = b[k * bs_k + j * bs_j]: any of the
// four transpose cases, like tiled_gemm. Threaded with OpenMP; an element's
// sum runs over k in the same order whatever the thread count, so results
// do not depend on it.
void bf16_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t as_i, int64_t as_k,
               const float* b, int64_t bs_k, int64_t bs_j, float* c, int64_t ldc,
               bool accumulate);

}  // namespace lldl::cpu
