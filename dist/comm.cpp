// The communicator over MPI (LLDL_HAVE_MPI) or, without it, a job of one
// rank. Every collective is a non-blocking MPI call completed by a watched
// wait (watch.cpp's scheme in brief): each rank tells every other, on a
// communicator of its own, how many collectives it has entered; a wait that
// sees no completion for the timeout names the ranks whose count is behind.
#include "dist/comm.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/error.h"
#include "dist/comm_impl.h"

namespace lldl::dist {

namespace {
bool g_init = false, g_final = false;
}  // namespace

bool initialized() { return g_init && !g_final; }
bool built_with_mpi() { return impl::kHaveMpi; }

void init() {
  if (g_init) return;
  impl::start();
  g_init = true;
  std::atexit([] { finalize(); });
}

void finalize() {
  if (!g_init || g_final) return;
  g_final = true;
  impl::stop();
}

int rank() { return initialized() ? impl::rank() : 0; }
int world_size() { return initialized() ? impl::size() : 1; }

void abort_job(int code) { impl::abort_all(code); }

double timeout_seconds() {
  static const double t = [] {
    const char* s = std::getenv("LLDL_DIST_TIMEOUT");
    if (!s || !*s) return 300.0;
    char* end = nullptr;
    double v = std::strtod(s, &end);
    if (*end || !(v > 0))
      throw ValueError(std::string("LLDL_DIST_TIMEOUT must be a positive number of seconds, got '") + s + "'");
    return v;
  }();
  return t;
}

static void need_init(const char* what) {
  if (!g_init) init();
  if (g_final) throw ValueError(std::string("dist: ") + what + " after finalize()");
}

void barrier() {
  need_init("barrier");
  Pending r = impl::ibarrier();
  wait(r, "barrier");
}

void broadcast(void* buf, size_t bytes, int root) {
  need_init("broadcast");
  if (root < 0 || root >= world_size())
    throw ValueError("dist: broadcast root " + std::to_string(root) + " is not a rank of a job of " +
                     std::to_string(world_size()));
  Pending r = impl::ibcast(buf, bytes, root);
  wait(r, "broadcast");
}

Pending iallreduce_sum(void* p, size_t n, DType t) {
  need_init("all-reduce");
  if (t != DType::F32 && t != DType::F64)
    throw TypeError(std::string("dist: all-reduce of ") + dtype_name(t) + " (float32 or float64 only)");
  return impl::iallreduce(p, n, t, impl::Op::Sum);
}

bool test(Pending& r) { return r.done() || impl::test(r); }

void wait(Pending& r, const char* what) {
  if (r.done()) return;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  int spins = 0;
  while (!impl::test(r)) {
    impl::poll_heartbeats();
    double waited = std::chrono::duration<double>(clock::now() - t0).count();
    if (waited > timeout_seconds()) impl::abort_stalled(what, waited);
    // Spin briefly (a collective on shared memory takes microseconds), then
    // yield the core to the compute threads of this or another rank.
    if (++spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

template <class T>
static void mean_in_place(T* p, size_t n, DType t) {
  Pending r = iallreduce_sum(p, n, t);
  wait(r, "all-reduce");
  const T inv = T(1) / T(world_size());
  if (world_size() > 1)
    for (size_t i = 0; i < n; ++i) p[i] *= inv;
}
void allreduce_mean(float* p, size_t n) { mean_in_place(p, n, DType::F32); }
void allreduce_mean(double* p, size_t n) { mean_in_place(p, n, DType::F64); }

double allreduce_scalar(double v, ReduceOp op) {
  need_init("all-reduce");
  impl::Op o = op == ReduceOp::Min ? impl::Op::Min : op == ReduceOp::Max ? impl::Op::Max : impl::Op::Sum;
  Pending r = impl::iallreduce(&v, 1, DType::F64, o);
  wait(r, "scalar all-reduce");
  return op == ReduceOp::Mean ? v / world_size() : v;
}

uint64_t hash_string(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void check_same(const std::string& what, uint64_t hash) {
  need_init("check_same");
  std::vector<uint64_t> all(static_cast<size_t>(world_size()));
  Pending r = impl::iallgather_u64(hash, all.data());
  wait(r, "configuration check");
  for (size_t i = 1; i < all.size(); ++i)
    if (all[i] != all[0]) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(all[0]));
      std::string h0 = buf;
      std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(all[i]));
      throw ValueError("dist: " + what + " differs across ranks: rank 0 has " + h0 + ", rank " +
                       std::to_string(i) + " has " + buf);
    }
}

void fault_point(int64_t step) {
  static const char* spec = std::getenv("LLDL_DIST_FAULT");
  if (!spec || !*spec) return;
  int r = -1;
  long long k = -1;
  char mode[8] = {};
  if (std::sscanf(spec, "%d:%lld:%7s", &r, &k, mode) != 3 ||
      (std::strcmp(mode, "exit") && std::strcmp(mode, "hang")))
    throw ValueError(std::string("LLDL_DIST_FAULT must be RANK:STEP:exit or RANK:STEP:hang, got '") + spec + "'");
  if (r != rank() || k != step) return;
  std::fprintf(stderr, "lldl dist: rank %d: fault injection (LLDL_DIST_FAULT): %s at step %lld\n",
               r, mode, k);
  std::fflush(stderr);
  if (!std::strcmp(mode, "exit")) std::_Exit(3);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace lldl::dist

namespace lldl::dist {

Shard shard_of(int64_t global_batch, int r, int world) {
  if (world < 1 || r < 0 || r >= world)
    throw ValueError("dist: rank " + std::to_string(r) + " is not in a job of " + std::to_string(world));
  if (global_batch < world || global_batch % world != 0)
    throw ValueError("dist: a global batch of " + std::to_string(global_batch) +
                     " does not split evenly over " + std::to_string(world) + " ranks");
  const int64_t per = global_batch / world;
  return {per * r, per};
}

}  // namespace lldl::dist
