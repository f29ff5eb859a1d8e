// The backend table: [backend][dtype][op kind] -> forward and backward kernel.
//
// A kernel is a plain function over raw arena pointers. Backward kernels
// ACCUMULATE (+=) into the input gradients, so a tensor used twice gets both
// contributions; a null gradient pointer means that input needs none.
// Adding a backend means filling its column; no op code changes.
#pragma once
#include "core/dtype.h"
#include "ops/op.h"

namespace lldl {

enum class Backend : uint8_t { CPU, CUDA, Count };
constexpr int kBackendCount = static_cast<int>(Backend::Count);
inline const char* backend_name(Backend b) { return b == Backend::CPU ? "cpu" : "cuda"; }

// The operands of the float32 matrix products (matmul, linear): F32 as
// they are, or BF16: rounded to bfloat16 (round to nearest even) with
// float32 accumulation, for mixed-precision training (Graph::
// set_matmul_precision). Only a backend whose DeviceFns::bf16_matmul is set
// honours BF16; the graph refuses it for the others.
enum class MatmulPrecision : uint8_t { F32, BF16 };

struct KernelArgs {
  OpKind kind;
  OpAttr attr;
  int n_in;
  const void* in[kMaxInputs];
  Shape in_shape[kMaxInputs];
  void* out;
  Shape out_shape;
  void* ws;  // per-entry workspace (OpMeta::workspace), forward writes, backward reads
  // backward only
  const void* gout;          // gradient of the output
  void* gin[kMaxInputs];     // gradients to accumulate into, or null
  // Bit i set: gin[i] holds stale data and the kernel must overwrite it (=)
  // instead of accumulating (+=). Only set for kernels registered with
  // KernelPair::overwrites; lets the graph skip zero-filling intermediate
  // gradients that a single kernel writes first.
  uint8_t gin_fresh = 0;
  MatmulPrecision precision = MatmulPrecision::F32;  // the graph's, for matmul and linear
};

// True when the backward kernel must overwrite gin[i] rather than add to it.
inline bool fresh(const KernelArgs& a, int i) { return (a.gin_fresh >> i) & 1; }

using KernelFn = void (*)(const KernelArgs&);
struct KernelPair {
  KernelFn forward = nullptr;
  KernelFn backward = nullptr;
  bool overwrites = false;  // backward honours KernelArgs::gin_fresh
  // Bit i set: input i's gradient is the output's gradient element for
  // element (reshape, identity, add, bias_add's x). Where that input's only
  // consumer is this entry and its gradient is stale, the CPU graph makes the
  // two gradients one buffer and passes gin[i] = null: no copy.
  uint8_t passes = 0;
};

// Returns the kernels for (backend, dtype, kind), or throws UnavailableError
// naming what is missing (e.g. a backend not compiled in).
const KernelPair& kernels(Backend b, DType t, OpKind k);
// True when the table holds both kernels.
bool has_kernels(Backend b, DType t, OpKind k);

// Filled by each backend (backends/<name>/table.cpp).
void cpu_fill_table(KernelPair (&f32)[kOpCount], KernelPair (&f64)[kOpCount]);
// CUDA builds only (LLDL_HAVE_CUDA): float32 kernels, device pointers.
void cuda_fill_table(KernelPair (&f32)[kOpCount]);

}  // namespace lldl
