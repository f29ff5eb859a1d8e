// The multi-tensor optimiser kernels (bodies_optim.h): the gradient norm as
// a two-kernel deterministic reduction (common.cuh's device_sum), the
// update and the clip scaling as one grid-stride launch over all parameters.
#include "backends/cuda/common.cuh"
#include "backends/cuda/multi_optim.h"

namespace lldl::cuda {

void multi_sumsq(const MultiSlot* slots, int count, int64_t total, double* out) {
  if (total == 0 || count == 0) {
    check(cudaMemsetAsync(out, 0, sizeof(double), stream()), "grad_sumsq");
    return;
  }
  double* part = static_cast<double*>(scratch(kMaxPartials * sizeof(double)));
  device_sum("grad_sumsq", total, SumSquaresF{slots, count}, 1.0, out, part);
}

void multi_update(const CudaOptimArgs& c, const MultiSlot* slots, int count, int64_t total,
                  const double* sumsq, double max_norm) {
  if (count == 0) return;
  launch("optimizer", total, MultiOptimF{c, slots, count, sumsq, max_norm});
}

void multi_scale(const MultiSlot* slots, int count, int64_t total, const double* sumsq,
                 double max_norm) {
  if (count == 0) return;
  launch("clip_grad_norm", total, MultiScaleF{slots, count, sumsq, max_norm});
}

}  // namespace lldl::cuda
