// Per-op profiler: calls, kernel time, FLOPs and bytes per (backend, op kind,
// phase), and where each sits under a roofline given the machine's peak.
//
//   g.set_profiling(true);
//   ... train a few steps ...
//   std::puts(profile_table(g.profile(), &measure_peak()).c_str());
//
// measure_peak (bench/peak.h) measures the peak; it lives with the benchmarks,
// since timing Eigen's GEMM and a memory triad is no part of the engine.
//
// FLOPs and bytes come from the op's metadata row (OpMeta::flops / bytes) for
// the forward kernel. A backward kernel is counted as kBackwardFactor times
// the forward figures: it computes one product per input gradient of the
// same size as the forward one (matmul: dA = dC B^T and dB = A^T dC), and
// reads the output gradient besides the inputs. Only kernel time is counted,
// not the shape rule, allocation or tape bookkeeping around it.
//
// Cost when off: Graph::record and Graph::backward test one flag per op.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ops/op.h"

namespace lldl {

enum class Phase : uint8_t { Forward, Backward, Count };
constexpr int kPhaseCount = static_cast<int>(Phase::Count);
inline const char* phase_name(Phase p) { return p == Phase::Forward ? "forward" : "backward"; }

// Backward FLOPs and bytes as a multiple of the forward ones (see above).
constexpr double kBackwardFactor = 2.0;

struct ProfileRow {
  int64_t calls = 0;
  int64_t ns = 0;      // total kernel time
  double flops = 0;    // total
  double bytes = 0;    // total
  double gflops() const { return ns > 0 ? flops / static_cast<double>(ns) : 0.0; }
  double gbs() const { return ns > 0 ? bytes / static_cast<double>(ns) : 0.0; }
};

// One interval on a timeline (steady_clock, nanoseconds since its epoch):
// Graph::backward adds "backward" while profiling, and whoever runs work
// beside the kernels adds its own (dist/grad_sync.h: one "allreduce" per
// gradient bucket, `index` the bucket), so overlap can be read off.
struct ProfileEvent {
  std::string name;
  int32_t index = 0;
  int64_t start_ns = 0, end_ns = 0;
};
int64_t profile_clock_ns();  // now, on the events' clock

struct Profile {
  ProfileRow rows[kBackendCount][kOpCount][kPhaseCount] = {};
  std::vector<ProfileEvent> events;  // in the order they ended

  const ProfileRow& at(Backend b, OpKind k, Phase p) const {
    return rows[int(b)][int(k)][int(p)];
  }
  ProfileRow& at(Backend b, OpKind k, Phase p) { return rows[int(b)][int(k)][int(p)]; }
  int64_t total_ns() const;
  int64_t total_calls() const;
  void clear() { *this = Profile{}; }
};

// The machine's peak at a thread count: FLOP/s and bytes/s (measure_peak in
// bench/peak.h: Eigen's float32 GEMM and a parallel triad). Peak FLOP/s over
// peak bytes/s is the roofline's ridge point.
struct Peak {
  int threads = 0;
  double gflops = 0;  // GFLOP/s
  double gbs = 0;     // GB/s
  double ridge() const { return gbs > 0 ? gflops / gbs : 0.0; }  // FLOP per byte
};

// Where one row sits under the roofline.
struct Roofline {
  double intensity = 0;   // FLOP per byte
  double attainable = 0;  // GFLOP/s: min(peak FLOP/s, intensity x peak bytes/s)
  double fraction = 0;    // achieved / attainable
  bool memory_bound = false;  // intensity below the ridge point
};
Roofline roofline(const ProfileRow& r, const Peak& peak);

// A table sorted by time (largest first): op, backend, phase, calls, total
// and per-call time, % of the total, GFLOP/s, GB/s and, given a peak, the
// roofline position (intensity, bound, % of attainable).
std::string profile_table(const Profile& p, const Peak* peak = nullptr);

}  // namespace lldl
