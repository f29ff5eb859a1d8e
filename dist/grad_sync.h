// Gradient averaging across ranks, overlapped with backward.
//
//   dist::init();
//   Model m(...);                       // same config, same seed on every rank
//   dist::broadcast_params(m.graph());  // rank 0's initial weights everywhere
//   dist::GradSync sync(m.graph());     // installs the graph's grad-ready hook
//   for each step:
//     loss = forward(this rank's shard); backward(loss);   // buckets start here
//     sync.finish();                    // waits; gradients are now the mean
//     clip, opt.step(), zero_grad
//
// Parameters are grouped into buckets of about bucket_bytes in the order the
// tape finishes their gradients (the last layers first), fixed at the first
// backward. While backward runs, a parameter whose gradient is final (Graph's
// grad-ready hook) is copied into its bucket's buffer; a full bucket starts a
// non-blocking sum (MPI_Iallreduce) at once, in bucket order on every rank,
// so communication overlaps the rest of backward. Parameter gradients live
// apart from one another in the arena (each beside its parameter), so each
// bucket packs them into a buffer of its own: one copy in and one out.
// finish() waits for every bucket, divides by the world size and writes the
// means back. One code path for 1 rank and N: with one rank the sums are
// complete at once and the means equal the gradients.
//
// Gradient accumulation: set_active(false) before the backward passes of the
// first micro-batches (nothing is sent), set_active(true) before the last.
//
// With profiling on (Graph::set_profiling), each bucket adds a profile event
// "allreduce" (index: the bucket) from its start to the moment its completion
// was seen, beside Graph's "backward" event.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "autograd/graph.h"
#include "dist/comm.h"

namespace lldl::dist {

// Default bucket size: LLDL_DIST_BUCKET_MB (megabytes, may be fractional) or 4 MB.
size_t default_bucket_bytes();

struct GradSyncStats {
  int64_t steps = 0;       // finish() calls
  int64_t buckets = 0;     // all-reduces started
  // Per step, from the first bucket's start to the moment the last one's
  // completion was seen (an upper bound: completion is seen only when polled,
  // at each grad-ready call and in finish()), summed.
  double comm_s = 0;
  double exposed_s = 0;    // time finish() waited, summed: communication not hidden under backward
  double hidden_fraction() const { return comm_s > 0 ? 1.0 - exposed_s / comm_s : 0.0; }
};

class GradSync {
 public:
  explicit GradSync(Graph& g, size_t bucket_bytes = default_bucket_bytes());
  ~GradSync();  // removes the hook
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Waits for every bucket (watched, dist/comm.h), writes the mean gradients
  // back. Buckets that backward did not start (no backward ran, or inactive)
  // are packed and reduced here, so finish() always leaves the mean.
  void finish();
  void set_active(bool on) { active_ = on; }

  struct Bucket {
    std::vector<int32_t> params;  // persistent ids, in readiness order
    std::vector<size_t> offset;   // element offset of each in the buffer
    size_t numel = 0;
    std::vector<unsigned char> buf;  // numel elements of the graph's dtype
    int32_t waiting = 0;             // parameters not yet ready this step
    Pending req;
    bool started = false;
    int64_t start_ns = 0;
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }
  const GradSyncStats& stats() const { return stats_; }

 private:
  void on_ready(Tensor p);
  void build(Tensor p);  // the first backward: assigns p to the open bucket
  void pack(Tensor p);
  void start_ready();    // starts, in order, the buckets whose parameters are all in
  void start(Bucket& b, int32_t index);
  void progress();       // MPI_Test on the buckets in flight
  void finish_bucket(Bucket& b, int32_t index);
  void scale(Bucket& b, int world);  // sums -> means
  void rebuild_if_params_changed();

  Graph* g_;
  size_t bucket_bytes_, elem_;
  bool active_ = true, built_ = false;
  // Gradients in device memory and NCCL available (dist/device_comm.h):
  // finish() averages them there, without buckets or host staging.
  bool on_device_ = false;
  std::vector<Bucket> buckets_;
  std::vector<int32_t> bucket_of_;  // per persistent id: its bucket, -1 none
  size_t num_params_ = 0;            // of the graph when the buckets were built
  int32_t next_start_ = 0;           // the next bucket to start (in order)
  int64_t step_first_ns_ = 0;        // this step's first start
  int64_t last_end_ns_ = 0;          // and its latest completion seen
  GradSyncStats stats_;
};

}  // namespace lldl::dist
