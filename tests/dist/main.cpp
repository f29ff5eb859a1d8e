// The multi-rank suite: run as one process (a job of one) and, with MPI, by
// ctest under `scripts/mpirun.sh -np 2` (CMakeLists.txt). Every rank runs
// every test in the same order (collectives pair up by order).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "dist/comm.h"

int main(int argc, char** argv) {
  lldl::dist::init();
  doctest::Context ctx(argc, argv);
  int rc = ctx.run();
  // One rank's failure must fail the job, and no rank may wait in finalize
  // for one that left: agree on the outcome first.
  double worst = lldl::dist::allreduce_scalar(rc, lldl::dist::ReduceOp::Max);
  lldl::dist::finalize();
  return worst != 0 ? 1 : 0;
}
