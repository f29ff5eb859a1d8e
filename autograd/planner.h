// Memory planning for graphs that run the same step again and again.
//
// With planning on (Graph::set_memory_planning), every step-region request
// (an op's output, an input, a workspace, a gradient) is logged with the tick
// at which it was made; every access to a buffer (an op reading its inputs, a
// backward kernel, data()/grad()/desc() by the user) extends its lifetime to
// the current tick. At reset() the step's log becomes a plan: one block in
// which every buffer has an offset, and two buffers whose lifetimes overlap
// never overlap in memory. Later steps whose requests match a logged step are
// served from the block, so a training step allocates nothing after the
// first.
//
// Lifetimes are closed tick intervals [born, end]. Ticks advance once per
// recorded op, per input(), per backward() call and per backward kernel, so
// everything one kernel touches is live at the same tick.
//
// Several graphs (a training step, an evaluation step, a last short batch)
// share one plan: logs that begin with the same requests share those buffers
// (same offsets; a shared buffer conflicts with another buffer in every graph
// where both exist), so a step can follow the plan until the first request
// where the graphs part, and falls back to bump allocation from there.
//
// The offset assignment is greedy with best fit: buffers are placed in order
// (largest first, and separately earliest first; the smaller block wins), each
// at the smallest gap, among the buffers already placed that conflict with
// it, that can hold it (Pisarchyk & Lee, "Efficient memory management for
// deep neural net inference", 2020: "greedy by size").
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lldl {

class Arena;

enum class AllocKind : uint8_t { Data, Grad, Workspace };
const char* alloc_kind_name(AllocKind k);

constexpr uint32_t kLiveToEnd = UINT32_MAX;  // an end tick: valid until reset()
constexpr int kMaxPlannedGraphs = 8;         // request logs one plan covers

struct AllocRequest {
  size_t bytes = 0;  // as requested (placed in 64-byte units, as the arena does)
  AllocKind kind = AllocKind::Data;
  uint32_t born = 0;  // tick of the request
  uint32_t end = 0;   // tick of the last use, >= born; kLiveToEnd: until reset()
};
using RequestLog = std::vector<AllocRequest>;

// ---- pure functions over request logs ----------------------------------------

size_t plan_align(size_t bytes);  // the arena's unit: 64 bytes, at least one
// Requests match when size, kind and tick agree (the end does not count).
bool same_request(const AllocRequest& a, const AllocRequest& b);
size_t common_prefix(const RequestLog& a, const RequestLog& b);
// A hash of the sequence of (bytes, kind, born): the key of a logged graph.
uint64_t signature(const RequestLog& log);

struct MemoryPlan {
  std::vector<std::vector<size_t>> offsets;  // [log][request]: byte offset in the block
  std::vector<size_t> peak;                  // [log]: end of its highest buffer
  size_t size = 0;                           // the block: the largest peak
};
enum class PlanOrder : uint8_t { BySize, ByBirth };
// Throws ValueError for more than kMaxPlannedGraphs logs or a request whose
// end is before its birth.
MemoryPlan plan_memory(const std::vector<RequestLog>& logs, PlanOrder order);
MemoryPlan plan_memory(const std::vector<RequestLog>& logs);  // the better of both orders

// The largest total (in 64-byte units) of buffers live at one tick: no
// placement can use less.
size_t max_live_bytes(const RequestLog& log);
size_t sum_bytes(const RequestLog& log);   // as requested
size_t bump_bytes(const RequestLog& log);  // what bump allocation uses: the aligned sum

// ---- the report ---------------------------------------------------------------

// Step-region bytes of the last completed step (persistent memory, i.e.
// parameters, their gradients and optimiser state, is not planned).
struct MemoryReport {
  size_t peak_unplanned = 0;  // bump allocation of the step: every buffer, 64-byte aligned
  size_t peak_planned = 0;    // extent of the step's buffers in the planned block
  size_t sum_all_tensors = 0; // bytes of every buffer of the step, as requested
  size_t max_live_bytes = 0;  // largest total live at one tick (aligned): the lower bound
  size_t plan_bytes = 0;      // the planned block, for all logged graphs together
  size_t requests = 0;        // buffers the step requested
  int graphs = 0;             // graphs the plan covers
  bool last_step_planned = false;  // the last step was served from the plan throughout
  uint64_t planned_steps = 0, fallback_steps = 0;  // since planning was turned on
};

// ---- the per-graph state (Graph holds one) ------------------------------------

class MemoryPlanner {
 public:
  // Takes effect at once when the step is empty, else at the next reset.
  void set_enabled(bool on, bool step_empty);
  bool enabled() const { return want_; }
  bool active() const { return active_; }  // this step is logged (and maybe planned)

  void tick() { ++tick_; }
  uint32_t now() const { return tick_; }
  // A step-region buffer: from the plan while the step matches a logged
  // graph, else from the arena's bump allocator. *slot names it for touch().
  void* alloc(Arena& arena, size_t bytes, AllocKind k, size_t* offset, int32_t* slot);
  // Records a use of the buffer now. False when its lifetime in the plan
  // ended and its memory may belong to another buffer (the caller raises).
  bool touch(int32_t slot);
  // The tick at which the plan let a released slot go.
  uint32_t planned_end(int32_t slot) const;
  // The buffer stays live until reset() (the loss, outputs, inputs).
  void keep(int32_t slot);
  // At reset(), after the arena's step region was rewound: adds the step's
  // log to the plan and fits the arena's step block to it.
  void end_step(Arena& arena);
  MemoryReport report() const { return report_; }

 private:
  bool released(int32_t slot) const;
  void clear_step();

  bool want_ = false, active_ = false;
  uint32_t tick_ = 0;
  RequestLog log_;  // this step
  // This step's progress through the plan: the logs it still matches
  // (bitmask), how many requests were planned, and where it parted.
  uint32_t cand_ = 0;
  size_t planned_ = 0;
  bool diverged_ = false;
  uint32_t diverge_tick_ = 0;
  char* base_ = nullptr;
  size_t base_offset_ = 0;
  // The plan.
  std::vector<RequestLog> logs_;
  std::vector<uint64_t> sigs_;
  std::vector<uint64_t> last_used_;
  uint64_t clock_ = 0;
  MemoryPlan plan_;
  MemoryReport report_;
};

}  // namespace lldl
