#include "dist/device_comm.h"

#include <memory>
#include <mutex>

#include "backends/device.h"
#include "backends/nccl.h"
#include "core/error.h"
#include "dist/comm.h"

namespace lldl::dist {

namespace {

// This job's NCCL communicator, made once (all ranks reach the first device
// all-reduce together, so the broadcast inside lines up).
const NcclComm& comm() {
  static std::unique_ptr<NcclComm> c;
  static std::once_flag once;
  std::call_once(once, [] {
    NcclUniqueId id{};
    if (rank() == 0) id = nccl_unique_id();
    if (world_size() > 1) broadcast(id.data(), id.size(), 0);
    c = std::make_unique<NcclComm>(id, rank(), world_size());
  });
  if (!c) throw UnavailableError("dist: the NCCL communicator failed to start earlier (" + nccl_status() + ")");
  return *c;
}

}  // namespace

bool device_allreduce_available() { return nccl_available(); }
std::string device_allreduce_status() { return nccl_status(); }

void allreduce_mean_device(float* dev, int64_t n) {
  if (n < 0) throw ValueError("allreduce_mean_device: n is " + std::to_string(n) + ", must be >= 0");
  if (!nccl_available()) throw UnavailableError("allreduce_mean_device: " + nccl_status());
  nccl_allreduce(comm(), dev, n, true);
}

void allreduce_grads_device(Graph& g) {
  if (device(g.backend()).host_memory)
    throw ValueError("allreduce_grads_device: the graph's gradients are in host memory (backend " +
                     std::string(backend_name(g.backend())) + "); GradSync averages those over MPI");
  if (g.dtype() != DType::F32)
    throw ValueError(std::string("allreduce_grads_device: NCCL path is float32 only, the graph is ") +
                     dtype_name(g.dtype()));
  for (Tensor p : g.params()) allreduce_mean_device(g.grad<float>(p), g.desc(p).shape.numel());
}

}  // namespace lldl::dist
