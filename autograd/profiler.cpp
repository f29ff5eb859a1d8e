#include "autograd/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace lldl {

int64_t profile_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t Profile::total_ns() const {
  int64_t t = 0;
  for (auto& b : rows)
    for (auto& k : b)
      for (const ProfileRow& r : k) t += r.ns;
  return t;
}

int64_t Profile::total_calls() const {
  int64_t n = 0;
  for (auto& b : rows)
    for (auto& k : b)
      for (const ProfileRow& r : k) n += r.calls;
  return n;
}

Roofline roofline(const ProfileRow& r, const Peak& peak) {
  Roofline f;
  f.intensity = r.bytes > 0 ? r.flops / r.bytes : 0.0;
  f.attainable = std::min(peak.gflops, f.intensity * peak.gbs);
  f.fraction = f.attainable > 0 ? r.gflops() / f.attainable : 0.0;
  f.memory_bound = f.intensity < peak.ridge();
  return f;
}

std::string profile_table(const Profile& p, const Peak* peak) {
  struct Item {
    Backend b;
    OpKind k;
    Phase ph;
    const ProfileRow* r;
  };
  std::vector<Item> items;
  for (int b = 0; b < kBackendCount; ++b)
    for (int k = 0; k < kOpCount; ++k)
      for (int ph = 0; ph < kPhaseCount; ++ph) {
        const ProfileRow& r = p.rows[b][k][ph];
        if (r.calls) items.push_back({Backend(b), OpKind(k), Phase(ph), &r});
      }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.r->ns > y.r->ns; });
  const double total = static_cast<double>(p.total_ns());
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %-5s %-8s %9s %11s %10s %6s %9s %8s", "op", "dev",
                "phase", "calls", "total ms", "us/call", "%", "GFLOP/s", "GB/s");
  out += line;
  if (peak) out += "  FLOP/B  bound    % roof";
  out += "\n";
  for (const Item& it : items) {
    const ProfileRow& r = *it.r;
    std::snprintf(line, sizeof line, "%-22s %-5s %-8s %9lld %11.3f %10.2f %6.1f %9.2f %8.2f",
                  op_name(it.k), backend_name(it.b), phase_name(it.ph),
                  static_cast<long long>(r.calls), r.ns * 1e-6, r.ns * 1e-3 / r.calls,
                  total > 0 ? 100.0 * r.ns / total : 0.0, r.gflops(), r.gbs());
    out += line;
    if (peak) {
      Roofline f = roofline(r, *peak);
      std::snprintf(line, sizeof line, "  %6.2f  %-7s %6.1f", f.intensity,
                    f.memory_bound ? "memory" : "compute", 100.0 * f.fraction);
      out += line;
    }
    out += "\n";
  }
  std::snprintf(line, sizeof line, "total: %lld kernel calls, %.3f ms", 
                static_cast<long long>(p.total_calls()), total * 1e-6);
  out += line;
  if (peak) {
    std::snprintf(line, sizeof line, "; peak at %d thread(s): %.1f GFLOP/s (GEMM), %.1f GB/s "
                  "(triad), ridge %.1f FLOP/B", peak->threads, peak->gflops, peak->gbs,
                  peak->ridge());
    out += line;
  }
  out += "\n";
  return out;
}

}  // namespace lldl
