// A job of one rank (built without MPI): every collective is complete at once
// and leaves the data as it is (the sum or mean over one rank).
#include "dist/comm_impl.h"

#ifndef LLDL_HAVE_MPI
#include <cstdio>
#include <cstdlib>

namespace lldl::dist::impl {

void start() {}
void stop() {}
int rank() { return 0; }
int size() { return 1; }
Pending ibarrier() { return {}; }
Pending ibcast(void*, size_t, int) { return {}; }
Pending iallreduce(void*, size_t, DType, Op) { return {}; }
Pending iallgather_u64(uint64_t v, uint64_t* all) {
  all[0] = v;
  return {};
}
bool test(Pending& r) {
  r.slot = -1;
  return true;
}
void poll_heartbeats() {}
void abort_stalled(const char* what, double waited_s) {  // unreachable: nothing waits
  std::fprintf(stderr, "lldl dist: rank 0: %s stalled for %.0f s\n", what, waited_s);
  std::abort();
}

void abort_all(int code) {
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace lldl::dist::impl
#endif
