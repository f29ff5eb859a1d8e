// NCCL's all-reduce on CUDA device buffers: what dist/'s communicator uses
// when the gradients live on the GPU (host buffers go through MPI). Plain C++
// (no CUDA or NCCL headers), like backends/cuda/device.h.
//
// NCCL is opened at run time (dlopen of libnccl.so.2, then the library CMake
// found), not linked: a GPU machine without NCCL still runs everything else,
// and nccl_available() says why NCCL is missing. In a build without CUDA, or a
// CUDA build where CMake found no nccl.h/libnccl, backends/nccl_stub.cpp (or
// the same file's fallback) reports it unavailable.
//
// Setting up N ranks: rank 0 calls nccl_unique_id(), the host communicator
// (MPI) broadcasts its bytes, and every rank calls NcclComm(id, rank, ranks)
// on its device. With one rank no broadcast is needed.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace lldl {

// True when this build has the NCCL path, a CUDA device is usable and
// libnccl loads. Probed once, on first use.
bool nccl_available();
// One line: NCCL's version when available, else why not.
std::string nccl_status();

// ncclUniqueId's bytes (NCCL_UNIQUE_ID_BYTES), opaque to the caller.
using NcclUniqueId = std::array<char, 128>;
NcclUniqueId nccl_unique_id();  // throws UnavailableError when !nccl_available()

// One rank's NCCL communicator on the current CUDA device (owns it).
class NcclComm {
 public:
  // Throws ValueError for ranks < 1 or rank outside [0, ranks), and
  // UnavailableError (naming NCCL's message) when NCCL cannot start.
  NcclComm(const NcclUniqueId& id, int rank, int ranks);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  NcclComm(NcclComm&& o) noexcept : handle_(o.handle_), rank_(o.rank_), ranks_(o.ranks_) { o.handle_ = nullptr; }
  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  void* handle() const { return handle_; }

 private:
  void* handle_ = nullptr;  // ncclComm_t
  int rank_ = 0, ranks_ = 1;
};

// In place over n floats of device memory at buf, on the default stream (in
// order with the CUDA backend's kernels), waiting for the result: the sum
// over the ranks, or the mean when average is true. Throws ValueError for
// n < 0 or a null buf with n > 0, UnavailableError when NCCL fails.
void nccl_allreduce(const NcclComm& comm, float* buf, int64_t n, bool average);

}  // namespace lldl
