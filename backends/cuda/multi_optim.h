// Launchers of the multi-tensor optimiser bodies (bodies_optim.h), called by
// the CUDA DeviceFns (device.cpp) with the slot table already in device memory.
#pragma once
#include <cstdint>

#include "backends/cuda/bodies_optim.h"

namespace lldl::cuda {

// *out = sum of every gradient element squared (double, fixed order of the
// final additions: deterministic).
void multi_sumsq(const MultiSlot* slots, int count, int64_t total, double* out);
// One update of all parameters; sumsq null: no clipping.
void multi_update(const CudaOptimArgs& c, const MultiSlot* slots, int count, int64_t total,
                  const double* sumsq, double max_norm);
void multi_scale(const MultiSlot* slots, int count, int64_t total, const double* sumsq,
                 double max_norm);

}  // namespace lldl::cuda
