#include "core/threads.h"

#include <omp.h>

#include <Eigen/Core>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace lldl {

namespace {
// Applies LLDL_NUM_THREADS once, at load time, so kernels see it before the
// first op (OMP_NUM_THREADS is honoured by OpenMP itself).
struct EnvThreads {
  EnvThreads() {
    if (const char* v = std::getenv("LLDL_NUM_THREADS")) {
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (end != v && *end == '\0' && n >= 1 && n <= 4096) set_num_threads(static_cast<int>(n));
    }
  }
} env_threads;
}  // namespace

void set_num_threads(int n) {
  if (n < 1)
    throw ValueError("set_num_threads: thread count must be >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace lldl
