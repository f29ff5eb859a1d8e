#include "autograd/planner.h"

#include <algorithm>
#include <bit>
#include <string>

#include "core/arena.h"
#include "core/error.h"

namespace lldl {

const char* alloc_kind_name(AllocKind k) {
  switch (k) {
    case AllocKind::Data: return "data";
    case AllocKind::Grad: return "gradient";
    case AllocKind::Workspace: return "workspace";
  }
  return "?";
}

size_t plan_align(size_t bytes) {
  if (bytes == 0) bytes = 1;
  return (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
}

bool same_request(const AllocRequest& a, const AllocRequest& b) {
  return a.bytes == b.bytes && a.kind == b.kind && a.born == b.born;
}

size_t common_prefix(const RequestLog& a, const RequestLog& b) {
  size_t n = std::min(a.size(), b.size()), k = 0;
  while (k < n && same_request(a[k], b[k])) ++k;
  return k;
}

uint64_t signature(const RequestLog& log) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the fields that define a request
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(log.size());
  for (const AllocRequest& r : log) {
    mix(r.bytes);
    mix(static_cast<uint64_t>(r.kind));
    mix(r.born);
  }
  return h;
}

// ---- planning ----------------------------------------------------------------

namespace {

// One buffer of the plan: a request shared by every log in `mask` (those logs
// begin with the same requests up to and including it).
struct Node {
  size_t size;
  uint32_t born;
  uint32_t mask;
  std::vector<uint32_t> end;  // [log]
};

bool conflict(const Node& a, const Node& b) {
  for (uint32_t m = a.mask & b.mask; m; m &= m - 1) {
    int g = std::countr_zero(m);
    if (a.born <= b.end[g] && b.born <= a.end[g]) return true;
  }
  return false;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<RequestLog>& logs, PlanOrder order) {
  const size_t G = logs.size();
  if (G > static_cast<size_t>(kMaxPlannedGraphs))
    throw ValueError("plan_memory: " + std::to_string(G) + " request logs, at most " +
                     std::to_string(kMaxPlannedGraphs));
  std::vector<Node> nodes;
  std::vector<std::vector<size_t>> node_of(G);
  for (size_t g = 0; g < G; ++g) {
    const RequestLog& log = logs[g];
    // The earlier log sharing the longest prefix: its buffers are ours there.
    size_t share = 0, from = 0;
    for (size_t h = 0; h < g; ++h) {
      size_t p = common_prefix(logs[h], log);
      if (p > share) share = p, from = h;
    }
    node_of[g].resize(log.size());
    for (size_t k = 0; k < log.size(); ++k) {
      const AllocRequest& r = log[k];
      if (r.end < r.born)
        throw ValueError("plan_memory: log " + std::to_string(g) + " request " +
                         std::to_string(k) + " ends (tick " + std::to_string(r.end) +
                         ") before it is born (tick " + std::to_string(r.born) + ")");
      size_t n;
      if (k < share) {
        n = node_of[from][k];
      } else {
        n = nodes.size();
        nodes.push_back({plan_align(r.bytes), r.born, 0, std::vector<uint32_t>(G, 0)});
      }
      nodes[n].mask |= 1u << g;
      nodes[n].end[g] = r.end;
      node_of[g][k] = n;
    }
  }

  std::vector<size_t> idx(nodes.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const Node &x = nodes[a], &y = nodes[b];
    if (order == PlanOrder::BySize)
      return x.size != y.size ? x.size > y.size : x.born < y.born;
    return x.born != y.born ? x.born < y.born : x.size > y.size;
  });

  // Best fit: among the gaps between conflicting buffers already placed, the
  // smallest that holds the buffer; otherwise above all of them.
  std::vector<size_t> off(nodes.size(), 0);
  std::vector<size_t> placed;
  std::vector<std::pair<size_t, size_t>> busy;
  for (size_t n : idx) {
    busy.clear();
    for (size_t p : placed)
      if (conflict(nodes[n], nodes[p])) busy.push_back({off[p], off[p] + nodes[p].size});
    std::sort(busy.begin(), busy.end());
    size_t cur = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
    for (auto [lo, hi] : busy) {
      if (lo > cur && lo - cur >= nodes[n].size && lo - cur < best_gap) {
        best = cur;
        best_gap = lo - cur;
      }
      cur = std::max(cur, hi);
    }
    off[n] = best == SIZE_MAX ? cur : best;
    placed.push_back(n);
  }

  MemoryPlan plan;
  plan.offsets.resize(G);
  plan.peak.assign(G, 0);
  for (size_t g = 0; g < G; ++g) {
    plan.offsets[g].resize(logs[g].size());
    for (size_t k = 0; k < logs[g].size(); ++k) {
      size_t n = node_of[g][k];
      plan.offsets[g][k] = off[n];
      plan.peak[g] = std::max(plan.peak[g], off[n] + nodes[n].size);
    }
    plan.size = std::max(plan.size, plan.peak[g]);
  }
  return plan;
}

MemoryPlan plan_memory(const std::vector<RequestLog>& logs) {
  MemoryPlan a = plan_memory(logs, PlanOrder::BySize);
  MemoryPlan b = plan_memory(logs, PlanOrder::ByBirth);
  return b.size < a.size ? b : a;
}

size_t max_live_bytes(const RequestLog& log) {
  // +size at birth, -size the tick after the last use; at equal ticks the
  // deaths come first (a buffer dead at t+1 is not live at t+1).
  std::vector<std::pair<uint64_t, int64_t>> ev;
  ev.reserve(2 * log.size());
  for (const AllocRequest& r : log) {
    int64_t s = static_cast<int64_t>(plan_align(r.bytes));
    ev.push_back({r.born, s});
    if (r.end != kLiveToEnd) ev.push_back({uint64_t(r.end) + 1, -s});
  }
  std::sort(ev.begin(), ev.end());
  int64_t live = 0, best = 0;
  for (auto [t, d] : ev) {
    live += d;
    best = std::max(best, live);
  }
  return static_cast<size_t>(best);
}

size_t sum_bytes(const RequestLog& log) {
  size_t s = 0;
  for (const AllocRequest& r : log) s += r.bytes;
  return s;
}

size_t bump_bytes(const RequestLog& log) {
  size_t s = 0;
  for (const AllocRequest& r : log) s += plan_align(r.bytes);
  return s;
}

// ---- the per-graph state -------------------------------------------------------

void MemoryPlanner::set_enabled(bool on, bool step_empty) {
  want_ = on;
  if (step_empty) active_ = on;  // a step with tensors finishes as it began, at reset()
}

void MemoryPlanner::clear_step() {
  tick_ = 0;
  log_.clear();
  cand_ = 0;
  planned_ = 0;
  diverged_ = false;
  diverge_tick_ = 0;
  base_ = nullptr;
  base_offset_ = 0;
}

void* MemoryPlanner::alloc(Arena& arena, size_t bytes, AllocKind k, size_t* offset, int32_t* slot) {
  const size_t i = log_.size();
  AllocRequest r{bytes, k, tick_, tick_};
  log_.push_back(r);
  *slot = static_cast<int32_t>(i);
  if (!diverged_) {
    // Narrow the logs this step still follows; they all place request i at
    // the same offset (a shared prefix is one set of buffers).
    uint32_t from = i == 0 ? (logs_.empty() ? 0u : (1u << logs_.size()) - 1) : cand_, next = 0;
    for (uint32_t m = from; m; m &= m - 1) {
      int g = std::countr_zero(m);
      if (logs_[g].size() > i && same_request(logs_[g][i], r)) next |= 1u << g;
    }
    if (next) {
      cand_ = next;
      if (!base_) base_ = static_cast<char*>(arena.alloc(Region::Step, plan_.size, &base_offset_));
      size_t off = plan_.offsets[std::countr_zero(next)][i];
      planned_ = i + 1;
      if (offset) *offset = base_offset_ + off;
      return base_ + off;
    }
    diverged_ = true;  // from here on: bump allocation after the planned block
    diverge_tick_ = tick_;
  }
  return arena.alloc(Region::Step, bytes, offset);
}

uint32_t MemoryPlanner::planned_end(int32_t slot) const {
  uint32_t end = 0;
  for (uint32_t m = cand_; m; m &= m - 1) end = std::max(end, logs_[std::countr_zero(m)][slot].end);
  return end;
}

// A planned buffer's memory can only have been given to a buffer born after
// its end in every graph the step still follows; a use no later than its end
// in one of them (or, once the step parted from the plan, no later than where
// it parted: nothing was placed after that) is safe.
bool MemoryPlanner::released(int32_t slot) const {
  if (static_cast<size_t>(slot) >= planned_) return false;
  uint32_t t = diverged_ ? std::min(tick_, diverge_tick_) : tick_;
  return t > planned_end(slot);
}

bool MemoryPlanner::touch(int32_t slot) {
  if (slot < 0) return true;
  if (released(slot)) return false;
  AllocRequest& r = log_[slot];
  if (r.end < tick_) r.end = tick_;
  return true;
}

void MemoryPlanner::keep(int32_t slot) {
  if (slot >= 0) log_[slot].end = kLiveToEnd;
}

void MemoryPlanner::end_step(Arena& arena) {
  if (active_ && !log_.empty()) {
    MemoryReport& r = report_;
    const bool served = !diverged_ && planned_ == log_.size();
    ++(served ? r.planned_steps : r.fallback_steps);
    r.last_step_planned = served;
    r.requests = log_.size();
    r.sum_all_tensors = sum_bytes(log_);
    r.peak_unplanned = bump_bytes(log_);
    r.max_live_bytes = max_live_bytes(log_);

    // Merge the step into the logs: the same requests extend the lifetimes
    // they had (so the plan covers every use seen), new ones are added.
    const uint64_t sig = signature(log_);
    int idx = -1;
    for (size_t g = 0; g < logs_.size(); ++g)
      if (sigs_[g] == sig && logs_[g].size() == log_.size() &&
          common_prefix(logs_[g], log_) == log_.size())
        idx = static_cast<int>(g);
    bool changed = false;
    if (idx >= 0) {
      for (size_t k = 0; k < log_.size(); ++k)
        if (log_[k].end > logs_[idx][k].end) {
          logs_[idx][k].end = log_[k].end;
          changed = true;
        }
    } else {
      if (logs_.size() == static_cast<size_t>(kMaxPlannedGraphs)) {
        idx = static_cast<int>(std::min_element(last_used_.begin(), last_used_.end()) -
                               last_used_.begin());
        logs_[idx] = log_;
        sigs_[idx] = sig;
      } else {
        idx = static_cast<int>(logs_.size());
        logs_.push_back(log_);
        sigs_.push_back(sig);
        last_used_.push_back(0);
      }
      changed = true;
    }
    last_used_[idx] = ++clock_;
    if (changed) plan_ = plan_memory(logs_);
    r.peak_planned = plan_.peak[idx];
    r.plan_bytes = plan_.size;
    r.graphs = static_cast<int>(logs_.size());
  }
  if (want_) {
    if (!logs_.empty()) arena.fit_step(plan_.size);
  } else {
    logs_.clear();
    sigs_.clear();
    last_used_.clear();
    plan_ = MemoryPlan{};
  }
  active_ = want_;
  clear_step();
}

}  // namespace lldl
