// The machine's peak for the profiler's roofline (autograd/profiler.h): FLOP/s
// of Eigen's float32 GEMM and bytes/s of a parallel triad (a = b + s c) over
// arrays far larger than the caches. A benchmark, not part of the engine: the
// study, the Python module (cppapi.measure_peak, profile(roofline=True)) and
// the tests link it as the small library lldl_peak.
#pragma once
#include "autograd/profiler.h"

namespace lldl {

// Measures the peak at the current thread count (about a quarter of a
// second) the first time it is asked for that count, then returns the cached
// figures; refresh measures again.
const Peak& measure_peak(bool refresh = false);

}  // namespace lldl
