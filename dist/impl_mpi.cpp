// The communicator over MPI. A process that mpirun did not start (no
// OMPI_COMM_WORLD_SIZE / PMIX_RANK / PMI_RANK in its environment) does not
// initialise MPI and is a job of one rank, as in a build without MPI.
#include "dist/comm_impl.h"

#ifdef LLDL_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "core/error.h"

namespace lldl::dist::impl {

namespace {

struct Slot {
  MPI_Request req = MPI_REQUEST_NULL;
  uint64_t send = 0;  // iallgather's own value
  bool used = false;
};

struct State {
  bool active = false;   // MPI in use (started under mpirun)
  bool we_init = false;  // MPI_Init was ours, so is MPI_Finalize
  int rank = 0, size = 1;
  std::deque<Slot> slots;  // stable addresses: MPI holds &send
  std::vector<int32_t> free_slots;
  // Heartbeats: collectives entered by this rank, last count seen per peer.
  MPI_Comm hb = MPI_COMM_NULL;
  int64_t entered = 0;
  std::vector<int64_t> seen, send_val, recv_val;
  std::vector<MPI_Request> send_req, recv_req;
};
State s;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw IOError(std::string("dist: ") + what + " failed on rank " + std::to_string(s.rank) + ": " +
                std::string(msg, static_cast<size_t>(len)));
}

bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void post_recv(int p) {
  check(MPI_Irecv(&s.recv_val[p], 1, MPI_INT64_T, p, 0, s.hb, &s.recv_req[p]), "heartbeat receive");
}

// This rank has entered one more collective: tell every peer (skipping a peer
// whose previous message is still in flight; a later one will do).
void enter() {
  ++s.entered;
  for (int p = 0; p < s.size; ++p) {
    if (p == s.rank) continue;
    int done = 1;
    if (s.send_req[p] != MPI_REQUEST_NULL) MPI_Test(&s.send_req[p], &done, MPI_STATUS_IGNORE);
    if (!done) continue;
    s.send_val[p] = s.entered;
    check(MPI_Isend(&s.send_val[p], 1, MPI_INT64_T, p, 0, s.hb, &s.send_req[p]), "heartbeat send");
  }
}

Pending new_slot(Slot** out) {
  int32_t i;
  if (!s.free_slots.empty()) {
    i = s.free_slots.back();
    s.free_slots.pop_back();
  } else {
    i = static_cast<int32_t>(s.slots.size());
    s.slots.emplace_back();
  }
  s.slots[i].used = true;
  *out = &s.slots[i];
  return Pending{i};
}

MPI_Datatype mpi_type(DType t) { return t == DType::F64 ? MPI_DOUBLE : MPI_FLOAT; }

}  // namespace

void start() {
  if (!launched_by_mpirun()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    s.we_init = true;
  }
  // Errors come back as codes (check() turns them into exceptions).
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &s.size);
  check(MPI_Comm_dup(MPI_COMM_WORLD, &s.hb), "MPI_Comm_dup");
  s.seen.assign(s.size, 0);
  s.send_val.assign(s.size, 0);
  s.recv_val.assign(s.size, 0);
  s.send_req.assign(s.size, MPI_REQUEST_NULL);
  s.recv_req.assign(s.size, MPI_REQUEST_NULL);
  for (int p = 0; p < s.size; ++p)
    if (p != s.rank) post_recv(p);
  s.active = true;
}

void stop() {
  if (!s.active) return;
  Pending r = ibarrier();  // every rank is done sending heartbeats after this
  wait(r, "finalize");
  for (int p = 0; p < s.size; ++p) {
    if (p == s.rank) continue;
    if (s.recv_req[p] != MPI_REQUEST_NULL) {
      MPI_Cancel(&s.recv_req[p]);
      MPI_Wait(&s.recv_req[p], MPI_STATUS_IGNORE);
    }
    if (s.send_req[p] != MPI_REQUEST_NULL) MPI_Request_free(&s.send_req[p]);
  }
  MPI_Comm_free(&s.hb);
  s.active = false;
  if (s.we_init) MPI_Finalize();
}

int rank() { return s.rank; }
int size() { return s.size; }

Pending ibarrier() {
  if (!s.active) return {};
  enter();
  Slot* sl;
  Pending r = new_slot(&sl);
  check(MPI_Ibarrier(MPI_COMM_WORLD, &sl->req), "MPI_Ibarrier");
  return r;
}

Pending ibcast(void* buf, size_t bytes, int root) {
  if (!s.active) return {};
  if (bytes > size_t(INT32_MAX)) throw ValueError("dist: broadcast of more than 2 GiB at once");
  enter();
  Slot* sl;
  Pending r = new_slot(&sl);
  check(MPI_Ibcast(buf, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD, &sl->req), "MPI_Ibcast");
  return r;
}

Pending iallreduce(void* p, size_t n, DType t, Op op) {
  if (!s.active) return {};
  if (n > size_t(INT32_MAX)) throw ValueError("dist: all-reduce of more than 2^31 elements at once");
  enter();
  Slot* sl;
  Pending r = new_slot(&sl);
  MPI_Op o = op == Op::Sum ? MPI_SUM : op == Op::Min ? MPI_MIN : MPI_MAX;
  check(MPI_Iallreduce(MPI_IN_PLACE, p, static_cast<int>(n), mpi_type(t), o, MPI_COMM_WORLD, &sl->req),
        "MPI_Iallreduce");
  return r;
}

Pending iallgather_u64(uint64_t v, uint64_t* all) {
  if (!s.active) {
    all[0] = v;
    return {};
  }
  enter();
  Slot* sl;
  Pending r = new_slot(&sl);
  sl->send = v;
  check(MPI_Iallgather(&sl->send, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD, &sl->req),
        "MPI_Iallgather");
  return r;
}

bool test(Pending& r) {
  if (r.slot < 0) return true;
  Slot& sl = s.slots[r.slot];
  int done = 0;
  check(MPI_Test(&sl.req, &done, MPI_STATUS_IGNORE), "MPI_Test");
  if (!done) return false;
  sl.used = false;
  s.free_slots.push_back(r.slot);
  r.slot = -1;
  return true;
}

void poll_heartbeats() {
  if (!s.active) return;
  for (int p = 0; p < s.size; ++p) {
    if (p == s.rank) continue;
    for (;;) {  // drain what has arrived
      int done = 0;
      MPI_Test(&s.recv_req[p], &done, MPI_STATUS_IGNORE);
      if (!done) break;
      s.seen[p] = std::max(s.seen[p], s.recv_val[p]);
      post_recv(p);
    }
  }
}

void abort_stalled(const char* what, double waited_s) {
  poll_heartbeats();
  std::string behind;
  for (int p = 0; p < s.size; ++p)
    if (p != s.rank && s.seen[p] < s.entered) behind += (behind.empty() ? "" : ",") + std::to_string(p);
  if (behind.empty()) behind = "(none behind: all reached it; the transport itself stalled)";
  std::fprintf(stderr,
               "lldl dist: rank %d: no progress from rank(s) %s for %.0f s in %s "
               "(collective #%lld; LLDL_DIST_TIMEOUT=%.0f s); aborting the job\n",
               s.rank, behind.c_str(), waited_s, what, static_cast<long long>(s.entered),
               timeout_seconds());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::abort();
}

void abort_all(int code) {
  std::fflush(nullptr);
  if (s.active) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace lldl::dist::impl
#endif
