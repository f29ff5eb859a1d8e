// Thread count for every parallel kernel (OpenMP loops and Eigen's GEMM).
// Defaults to LLDL_NUM_THREADS, else OMP_NUM_THREADS, else the core count.
#pragma once

namespace lldl {

// Raises ValueError for n < 1.
void set_num_threads(int n);
int get_num_threads();

}  // namespace lldl
