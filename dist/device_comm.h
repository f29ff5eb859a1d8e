// Gradients that live on a GPU, averaged by NCCL (backends/nccl.h) instead of
// being staged through host memory for MPI. The NCCL communicator is made on
// first use: rank 0 draws NCCL's unique id, the host communicator
// (dist/comm.h) broadcasts it, every rank joins on its current device. One
// code path for 1 rank and N: with one rank NCCL's single-rank reduction
// runs (the mean of one is the value itself).
#pragma once
#include <cstdint>
#include <string>

#include "autograd/graph.h"

namespace lldl::dist {

// True when NCCL is built in and loads, and a CUDA device is usable.
bool device_allreduce_available();
// Why not, or NCCL's version.
std::string device_allreduce_status();

// In place over n floats of device memory: the mean over ranks. Every rank
// calls it in the same order with the same n. Throws UnavailableError when
// NCCL is not available, ValueError for n < 0.
void allreduce_mean_device(float* dev, int64_t n);

// Every parameter gradient of g, whose memory is a device's (a CUDA graph),
// becomes its mean over ranks. ValueError for a graph in host memory (use
// GradSync's MPI path) or of another dtype than float32.
void allreduce_grads_device(Graph& g);

}  // namespace lldl::dist
