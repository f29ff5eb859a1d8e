// NCCL on CUDA device buffers (backends/nccl.h). libnccl is opened with
// dlopen on first use rather than linked, so that lldl_tests and the Python
// module start on a GPU machine without NCCL (and say why it is missing)
// instead of failing to load. nccl.h supplies the types and signatures only.
#ifdef LLDL_HAVE_NCCL
#include "backends/nccl.h"

#include <dlfcn.h>
#include <nccl.h>

#include <cstring>

#include "backends/cuda/runtime.h"
#include "core/error.h"

namespace lldl {

namespace {

static_assert(sizeof(ncclUniqueId) == sizeof(NcclUniqueId), "nccl.h's unique id is 128 bytes");

// The entry points used, resolved once.
struct Nccl {
  std::string status;  // empty when loaded
  decltype(&ncclGetVersion) get_version = nullptr;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  int version = 0;
};

template <class F>
bool resolve(void* lib, const char* name, F& f, std::string& why) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) why = std::string("libnccl lacks ") + name;
  return f != nullptr;
}

// dlopen libnccl.so.2 (the loader's search path), then the library CMake found.
Nccl load() {
  Nccl n;
  if (!cuda_available()) {
    n.status = "no CUDA device (" + cuda_status() + ")";
    return n;
  }
  void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  std::string first = lib ? "" : dlerror();
  if (!lib) lib = dlopen(LLDL_NCCL_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    n.status = "libnccl not loadable: " + first + "; " + LLDL_NCCL_PATH + ": " + dlerror();
    return n;
  }
  std::string why;
  if (!(resolve(lib, "ncclGetVersion", n.get_version, why) && resolve(lib, "ncclGetUniqueId", n.get_unique_id, why) &&
        resolve(lib, "ncclCommInitRank", n.comm_init_rank, why) &&
        resolve(lib, "ncclCommDestroy", n.comm_destroy, why) && resolve(lib, "ncclAllReduce", n.all_reduce, why) &&
        resolve(lib, "ncclGetErrorString", n.error_string, why))) {
    n.status = why;
    return n;
  }
  n.get_version(&n.version);
  return n;
}

const Nccl& nccl() {
  static const Nccl n = load();
  return n;
}

const Nccl& need(const char* what) {
  const Nccl& n = nccl();
  if (!n.status.empty()) throw UnavailableError(std::string(what) + ": NCCL is not available (" + n.status + ")");
  return n;
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw UnavailableError(std::string(what) + ": " + nccl().error_string(r));
}

}  // namespace

bool nccl_available() { return nccl().status.empty(); }

std::string nccl_status() {
  const Nccl& n = nccl();
  if (!n.status.empty()) return n.status;
  return "NCCL " + std::to_string(n.version / 10000) + "." + std::to_string(n.version / 100 % 100) + "." +
         std::to_string(n.version % 100);
}

NcclUniqueId nccl_unique_id() {
  const Nccl& n = need("nccl_unique_id");
  ncclUniqueId id;
  check(n.get_unique_id(&id), "ncclGetUniqueId");
  NcclUniqueId out;
  std::memcpy(out.data(), &id, out.size());
  return out;
}

NcclComm::NcclComm(const NcclUniqueId& id, int rank, int ranks) : rank_(rank), ranks_(ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw ValueError("NcclComm: rank " + std::to_string(rank) + " is outside [0, " + std::to_string(ranks) +
                     ") (ranks must be >= 1)");
  const Nccl& n = need("NcclComm");
  ncclUniqueId nid;
  std::memcpy(&nid, id.data(), id.size());
  ncclComm_t c = nullptr;
  check(n.comm_init_rank(&c, ranks, nid, rank), "ncclCommInitRank");
  handle_ = c;
}

NcclComm::~NcclComm() {
  if (handle_) nccl().comm_destroy(static_cast<ncclComm_t>(handle_));  // errors at shutdown are ignored
}

void nccl_allreduce(const NcclComm& comm, float* buf, int64_t n, bool average) {
  if (n < 0) throw ValueError("nccl_allreduce: n is " + std::to_string(n) + ", must be >= 0");
  if (n > 0 && !buf) throw ValueError("nccl_allreduce: buf is null with n = " + std::to_string(n));
  if (!comm.handle()) throw ValueError("nccl_allreduce: the communicator was moved from");
  const Nccl& lib = need("nccl_allreduce");
  if (n == 0) return;
  // ncclAvg (NCCL >= 2.10) divides in the reduction. The backend's stream
  // keeps the call in order with the kernels that wrote the gradients (it is
  // a non-blocking stream: the legacy default stream would not wait for them).
  check(lib.all_reduce(buf, buf, static_cast<size_t>(n), ncclFloat32, average ? ncclAvg : ncclSum,
                       static_cast<ncclComm_t>(comm.handle()), cuda::stream()),
        "ncclAllReduce");
  cuda::check(cudaStreamSynchronize(cuda::stream()), "nccl_allreduce: cudaStreamSynchronize");
}

}  // namespace lldl

#endif  // LLDL_HAVE_NCCL (otherwise backends/nccl_stub.cpp)
