// What comm.cpp needs from the transport: MPI (impl_mpi.cpp, built with
// LLDL_HAVE_MPI) or a job of one rank (impl_single.cpp). Private to dist/.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "dist/comm.h"

namespace lldl::dist::impl {

#ifdef LLDL_HAVE_MPI
constexpr bool kHaveMpi = true;
#else
constexpr bool kHaveMpi = false;
#endif

enum class Op { Sum, Min, Max };

void start();  // MPI_Init_thread (unless already initialised) and the heartbeats
void stop();   // a barrier, then MPI_Finalize
int rank();
int size();

Pending ibarrier();
Pending ibcast(void* buf, size_t bytes, int root);
Pending iallreduce(void* p, size_t n, DType t, Op op);
Pending iallgather_u64(uint64_t v, uint64_t* all);
bool test(Pending& r);  // r.slot >= 0

// The watchdog: collects the other ranks' collective counts, and on a
// timeout prints who is behind and aborts the job.
void poll_heartbeats();
[[noreturn]] void abort_stalled(const char* what, double waited_s);
[[noreturn]] void abort_all(int code);

}  // namespace lldl::dist::impl
