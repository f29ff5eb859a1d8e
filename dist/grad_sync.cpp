#include "dist/grad_sync.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "backends/device.h"
#include "core/error.h"
#include "dist/device_comm.h"

namespace lldl::dist {

size_t default_bucket_bytes() {
  const char* s = std::getenv("LLDL_DIST_BUCKET_MB");
  if (!s || !*s) return size_t(4) << 20;
  char* end = nullptr;
  double mb = std::strtod(s, &end);
  if (*end || !(mb > 0))
    throw ValueError(std::string("LLDL_DIST_BUCKET_MB must be a positive number, got '") + s + "'");
  return static_cast<size_t>(mb * double(1 << 20)) + 1;
}

GradSync::GradSync(Graph& g, size_t bucket_bytes)
    : g_(&g), bucket_bytes_(bucket_bytes), elem_(dtype_size(g.dtype())) {
  if (bucket_bytes == 0) throw ValueError("GradSync: bucket_bytes must be > 0");
  init();
  on_device_ = !device(g.backend()).host_memory && g.dtype() == DType::F32 && device_allreduce_available();
  if (!on_device_) g.set_grad_ready_hook([this](Tensor p) { on_ready(p); });
}

GradSync::~GradSync() { g_->set_grad_ready_hook({}); }

void GradSync::rebuild_if_params_changed() {
  if (built_ && g_->num_params() == num_params_) return;
  for (const Bucket& b : buckets_)
    if (b.started && !b.req.done())
      throw ValueError("GradSync: parameters were added while gradients were in flight");
  buckets_.clear();
  bucket_of_.clear();
  next_start_ = 0;
  built_ = false;
  num_params_ = g_->num_params();
}

void GradSync::on_ready(Tensor p) {
  if (!active_) return;
  if (!built_) {
    build(p);
  } else {
    int32_t id = -p.id - 1;
    if (id >= int32_t(bucket_of_.size()) || bucket_of_[id] < 0)
      throw ValueError("GradSync: parameter '" + g_->desc(p).name + "' joined after the buckets were built");
    Bucket& b = buckets_[bucket_of_[id]];
    if (b.started)
      throw ValueError("GradSync: a second backward before finish() (with gradient accumulation, "
                       "set_active(false) for all but the last micro-batch)");
    pack(p);
    --b.waiting;
  }
  start_ready();
  progress();
}

// The first backward (or the first after parameters joined): buckets form in
// readiness order; a bucket closes once it holds bucket_bytes, the last one
// when every parameter has come.
void GradSync::build(Tensor p) {
  if (buckets_.empty()) {
    rebuild_if_params_changed();
    bucket_of_.assign(size_t(-p.id), -1);
  }
  int32_t id = -p.id - 1;
  if (id >= int32_t(bucket_of_.size())) bucket_of_.resize(size_t(id) + 1, -1);
  if (buckets_.empty() || buckets_.back().numel * elem_ >= bucket_bytes_) buckets_.emplace_back();
  Bucket& b = buckets_.back();
  bucket_of_[id] = int32_t(buckets_.size() - 1);
  b.params.push_back(id);
  b.offset.push_back(b.numel);
  b.numel += size_t(g_->desc(p).shape.numel());
  b.buf.resize(b.numel * elem_);
  pack(p);
  size_t seen = 0;
  for (const Bucket& x : buckets_) seen += x.params.size();
  // A bucket is complete (waiting 0) once the next one opens or all are in.
  if (seen == num_params_) built_ = true;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    bool closed = i + 1 < buckets_.size() || built_ || buckets_[i].numel * elem_ >= bucket_bytes_;
    buckets_[i].waiting = closed ? 0 : 1;
  }
}

void GradSync::pack(Tensor p) {
  int32_t id = -p.id - 1;
  Bucket& b = buckets_[bucket_of_[id]];
  size_t k = 0;
  while (b.params[k] != id) ++k;
  g_->grad_to_host(p, b.buf.data() + b.offset[k] * elem_);
}

void GradSync::start_ready() {
  while (next_start_ < int32_t(buckets_.size()) && buckets_[next_start_].waiting == 0 &&
         !buckets_[next_start_].started) {
    start(buckets_[next_start_], next_start_);
    ++next_start_;
  }
}

void GradSync::start(Bucket& b, int32_t) {
  b.start_ns = profile_clock_ns();
  if (next_start_ == 0) step_first_ns_ = b.start_ns;
  b.req = iallreduce_sum(b.buf.data(), b.numel, g_->dtype());
  b.started = true;
  ++stats_.buckets;
}

// Drives the buckets in flight (MPI progresses non-blocking collectives only
// inside MPI calls) and records those that completed.
void GradSync::progress() {
  for (int32_t i = 0; i < next_start_; ++i) {
    Bucket& b = buckets_[i];
    if (b.started && test(b.req)) finish_bucket(b, i);
  }
}

// Records the bucket's interval once (start_ns is cleared after).
void GradSync::finish_bucket(Bucket& b, int32_t index) {
  if (!b.start_ns) return;
  g_->add_profile_event("allreduce", index, b.start_ns, profile_clock_ns());
  last_end_ns_ = profile_clock_ns();
  b.start_ns = 0;
}

void GradSync::finish() {
  if (on_device_) {  // NCCL on the device buffers (dist/device_comm.h)
    allreduce_grads_device(*g_);
    ++stats_.steps;
    return;
  }
  if (!built_) {  // no backward reported every parameter: build from creation order
    rebuild_if_params_changed();
    for (Tensor p : g_->params()) build(p);
  }
  // Buckets backward did not start (inactive): pack and start them now.
  for (int32_t i = next_start_; i < int32_t(buckets_.size()); ++i) {
    Bucket& b = buckets_[i];
    for (int32_t id : b.params) pack(Tensor{g_, -id - 1, 0});
    b.waiting = 0;
  }
  start_ready();
  const int world = world_size();
  int64_t waited = 0;
  for (int32_t i = 0; i < int32_t(buckets_.size()); ++i) {
    Bucket& b = buckets_[i];
    const int64_t t0 = profile_clock_ns();
    wait(b.req, "gradient all-reduce");
    waited += profile_clock_ns() - t0;
    finish_bucket(b, i);
    if (world > 1) scale(b, world);
    for (size_t k = 0; k < b.params.size(); ++k)
      g_->grad_from_host(Tensor{g_, -b.params[k] - 1, 0}, b.buf.data() + b.offset[k] * elem_);
    b.started = false;
    b.waiting = int32_t(b.params.size());
  }
  next_start_ = 0;
  ++stats_.steps;
  stats_.exposed_s += double(waited) * 1e-9;
  stats_.comm_s += double(last_end_ns_ - step_first_ns_) * 1e-9;
}

void GradSync::scale(Bucket& b, int world) {
  if (g_->dtype() == DType::F64) {
    auto* p = reinterpret_cast<double*>(b.buf.data());
    for (size_t i = 0; i < b.numel; ++i) p[i] /= world;
  } else {
    auto* p = reinterpret_cast<float*>(b.buf.data());
    const float inv = 1.0f / float(world);
    for (size_t i = 0; i < b.numel; ++i) p[i] *= inv;
  }
}

}  // namespace lldl::dist
