// The communicator of data-parallel training: N processes (ranks) started by
// `mpirun -np N`, each holding a full copy of the model and its shard of the
// data, averaging gradients after backward (dist/grad_sync.h).
//
// Built with MPI (CMake LLDL_MPI=AUTO|ON, OpenMPI from Debian), init() joins
// the job mpirun started; a process started without mpirun is a job of one.
// Built without MPI, every function works as for a job of one rank (world
// size 1): the same code path, with the collectives copying nothing.
//
// Every collective is called by all ranks in the same order. Waits are
// watched: a rank that sees no progress for timeout_seconds() (environment
// LLDL_DIST_TIMEOUT, default 300) prints
//   "lldl dist: rank R: no progress from rank(s) S for T s in <what>"
// naming the ranks that have not reached this collective, and aborts the
// job (MPI_Abort), so a dead or hung rank never leaves the others waiting.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "autograd/graph.h"

namespace lldl::dist {

// Joins the job (MPI_Init_thread, funneled) once; later calls do nothing.
// Registers finalize() to run at exit.
void init();
bool initialized();
// True when this build has MPI (otherwise world_size() is always 1).
bool built_with_mpi();
// Before init(): 0 and 1.
int rank();
int world_size();
// Leaves the job (MPI_Finalize) after a barrier; idempotent, also at exit.
void finalize();

// Ends every rank of the job at once with `code` (MPI_Abort; exit() in a job
// of one): for an error on one rank that the others cannot learn of, which
// would otherwise leave them waiting in their next collective.
[[noreturn]] void abort_job(int code);

// Seconds a rank waits for the others before aborting the job.
double timeout_seconds();

void barrier();
// Copies `bytes` bytes of rank `root` into every rank's buffer.
void broadcast(void* buf, size_t bytes, int root = 0);
// Every parameter of g (in creation order) from rank 0 to all ranks, and a
// check that all ranks hold the same parameter names and shapes (ValueError
// naming the first rank and parameter that differ).
void broadcast_params(Graph& g, int root = 0);

// In place: each element becomes the mean over ranks.
void allreduce_mean(float* p, size_t n);
void allreduce_mean(double* p, size_t n);
enum class ReduceOp { Sum, Mean, Min, Max };
// A scalar (a loss, a count, a metric) reduced over ranks; every rank gets it.
double allreduce_scalar(double v, ReduceOp op = ReduceOp::Mean);

// All ranks compare `hash` (of a model config, a checkpoint's metadata, the
// world size...): when they differ every rank throws ValueError
//   "dist: <what> differs across ranks: rank 0 has <h0>, rank R has <hR>"
// naming the first rank that differs from rank 0.
void check_same(const std::string& what, uint64_t hash);
// FNV-1a of a string, for check_same.
uint64_t hash_string(const std::string& s);

// Test-only fault injection (the fault tests): LLDL_DIST_FAULT="R:K:exit" or
// "R:K:hang" makes rank R exit (status 3, no MPI_Finalize) or sleep forever
// when a training loop calls fault_point(K) with K its step (1-based).
void fault_point(int64_t step);

}  // namespace lldl::dist

namespace lldl::dist {

// ---- non-blocking collectives (grad_sync.h's building block) --------------
// A handle on a collective in flight; done once test() or wait() said so.
struct Pending {
  int32_t slot = -1;  // -1: none, or complete
  bool done() const { return slot < 0; }
};
// Starts an in-place sum over ranks of n elements (float32 or float64).
Pending iallreduce_sum(void* p, size_t n, DType t);
// Drives progress; true (and r becomes done) once r has completed.
bool test(Pending& r);
// Waits for r under the watchdog (`what` names it in the timeout message).
void wait(Pending& r, const char* what);

}  // namespace lldl::dist

namespace lldl::dist {

// This rank's rows of a global batch: rank r of N takes rows
// [r*global/N, (r+1)*global/N). The global batch must split evenly
// (ValueError naming both numbers otherwise), so every rank's mean loss has
// the same weight and the mean of the ranks' gradients is the gradient of the
// global batch. Every rank draws the global batch from the run's seed and
// keeps its slice (TokenWindows::sample_rows), which makes an N-rank run see
// the samples one rank at the global batch sees.
struct Shard {
  int64_t first = 0, rows = 0;
};
Shard shard_of(int64_t global_batch, int rank_, int world);
inline Shard my_shard(int64_t global_batch) { return shard_of(global_batch, rank(), world_size()); }

}  // namespace lldl::dist
