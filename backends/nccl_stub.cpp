// backends/nccl.h where NCCL is not built in (no CUDA, or a CUDA toolkit
// without nccl.h and libnccl at configure time): nccl_available() is false
// and every function throws UnavailableError saying why.
#ifndef LLDL_HAVE_NCCL
#include <string>

#include "backends/nccl.h"
#include "core/error.h"

namespace lldl {

namespace {
#ifdef LLDL_HAVE_CUDA
const char* kWhy = "built without NCCL (CMake found no nccl.h and libnccl beside the CUDA toolkit)";
#else
const char* kWhy = "built without CUDA (configure with -DLLDL_CUDA=ON and the CUDA toolkit)";
#endif
[[noreturn]] void unavailable(const char* what) {
  throw UnavailableError(std::string(what) + ": NCCL is not available (" + kWhy + ")");
}
}  // namespace

bool nccl_available() { return false; }
std::string nccl_status() { return kWhy; }
NcclUniqueId nccl_unique_id() { unavailable("nccl_unique_id"); }

NcclComm::NcclComm(const NcclUniqueId&, int rank, int ranks) : rank_(rank), ranks_(ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw ValueError("NcclComm: rank " + std::to_string(rank) + " is outside [0, " + std::to_string(ranks) +
                     ") (ranks must be >= 1)");
  unavailable("NcclComm");
}
NcclComm::~NcclComm() {}

void nccl_allreduce(const NcclComm&, float*, int64_t n, bool) {
  if (n < 0) throw ValueError("nccl_allreduce: n is " + std::to_string(n) + ", must be >= 0");
  unavailable("nccl_allreduce");
}

}  // namespace lldl
#endif  // LLDL_HAVE_NCCL
