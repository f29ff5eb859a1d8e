// Matrix products with bfloat16 operands and float32 accumulation, for
// mixed-precision training (MatmulPrecision::BF16, backends/backend.h).
// Both operands are rounded to bf16 (round to nearest even) as they are
// packed; every product of two bf16 values is exact in float32, so the only
// roundings are the operands' (relative 2^-8 at most each) and the float32 sums'.
#pragma once
#include <cstdint>

namespace lldl::cpu {

// Which inner kernel bf16_gemm runs: vdpbf16ps (AVX-512 BF16: two bf16
// products per float32 lane per instruction), or the fallback that widens
// the same packed pairs to float32 in registers and uses AVX2 FMA, or plain
// C++ (std::fma) on a CPU without AVX2. The three add the two products of a
// pair in the same order (odd k, then even k, as vdpbf16ps is specified), so
// they differ only where vdpbf16ps flushes subnormals to zero.
enum class Bf16Kernel : uint8_t { Dpbf16, Fma, Scalar };
const char* bf16_kernel_name(Bf16Kernel k);
// True when this CPU can run kernel k.
bool bf16_kernel_supported(Bf16Kernel k);
// The kernel in use: the best this CPU supports, unless LLDL_CPU_ISA forces
// a lower one (see bf16_gemm.cpp), or set_bf16_kernel chose one.
Bf16Kernel bf16_kernel();
// For tests and benchmarks; throws ValueError when this CPU lacks it.
void set_bf16_kernel(Bf16Kernel k);

// C (M x N, row stride ldc) (+)= bf16(A) bf16(B), where A(i, k) =
// a[i * as_i + k * as_k] and B(k, j) = b[k * bs_k + j * bs_j]: any of the
// four transpose cases, like tiled_gemm. Threaded with OpenMP; an element's
// sum runs over k in the same order whatever the thread count, so results
// do not depend on it.
void bf16_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t as_i, int64_t as_k,
               const float* b, int64_t bs_k, int64_t bs_j, float* c, int64_t ldc,
               bool accumulate);

}  // namespace lldl::cpu
