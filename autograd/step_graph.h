// StepGraph: a whole training step (inputs in, forward, backward, optimiser,
// loss out) captured once into a CUDA graph and replayed with one launch.
//
// An eager step on the GPU pays, for every op, the host work of recording it
// and a kernel launch; for a small MLP that is the whole cost (about 200 us a
// step on an H200 at every width up to 1024, bench_step_device). Once the
// shapes are fixed, the step's kernels, copies and memsets are the same at
// every step, and the arena hands out the same addresses, so the step can be
// recorded from the backend's stream (CaptureFns, backends/device.h) and
// replayed: no tape, no per-op launch, one wait for the loss.
//
//   StepGraph sg(g, {{Shape{B, D}, DType::F32}, {Shape{B}, DType::I32}},
//                [&](Graph& g, const std::vector<Tensor>& in) {
//                  Tensor loss = cross_entropy(mlp(in[0]), in[1]);
//                  g.backward(loss);
//                  opt.step();
//                  return loss;
//                });
//   for (...) double loss = sg.run({x.data(), y.data()});
//
// run(): the first call runs the step function eagerly (the warm-up: it sizes
// the arena, the backend's scratch and cuBLAS, and creates the optimiser's
// state); the second records it again under capture and launches it; later
// calls copy the inputs into page-locked buffers, re-run the host-side value
// checks (labels, token ids) on them, let the optimiser advance its step
// count and write its learning rate and bias corrections, then launch the
// graph and read the loss. Losses are those of the eager step, bit for bit.
// On a backend that cannot capture (the CPU) every call is the eager step,
// so one code path serves both.
//
// The step function records one step of g from an empty step and returns
// its one-element loss. It runs on the host only at the warm-up and the
// capture, so anything it decides there (Python branches, a learning rate it
// computes) is frozen: change the learning rate through the Optimizer's
// cfg.lr between runs. Under capture it may not read graph memory on the host
// (item(), to_host()), give new host data (input() with data, from_host()),
// call reset(), or use dropout (its mask would repeat); each raises
// ValueError naming the call. Memory planning and anomaly mode are refused.
// The graph's step tensors do not survive a run (it ends the step); the
// graph and the optimiser must outlive the StepGraph.
#pragma once
#include <functional>
#include <vector>

#include "autograd/graph.h"
#include "backends/device.h"

namespace lldl {

struct StepInput {
  Shape shape;
  DType dtype = DType::F32;
};

// The state of one capture, which Graph and Optimizer consult while it runs
// (Graph::capture_state()) and StepGraph keeps for the replays.
struct StepCapture {
  const CaptureFns* fns = nullptr;
  // Graph memory fed from pinned host memory by a captured copy: the inputs
  // (rewritten before each replay) and constants (backward's seed).
  struct Mirror {
    const char* dev;
    const char* host;
    size_t bytes;
  };
  std::vector<Mirror> mirrors;
  // Value checks of ops (OpMeta::check) on the mirrors, re-run before each replay.
  struct Check {
    void (*fn)(const Shape* in, const void* const* data, const OpAttr& attr);
    Shape in[kMaxInputs];
    const void* data[kMaxInputs];
    OpAttr attr;
  };
  std::vector<Check> checks;
  // Host work each replay needs, run in order before it (the optimiser
  // advancing its step count and writing its scalars).
  std::vector<std::function<void()>> before_replay;
  // Page-locked memory, one block obtained before the capture begins
  // (allocating it is not allowed while capturing) and carved by take().
  char* pool = nullptr;
  size_t pool_size = 0, pool_used = 0;

  void reserve(size_t bytes);  // the pool, before the capture
  void* take(size_t bytes);    // 64-byte aligned; ValueError when the pool is spent
  // Copies `bytes` of host data into pinned memory from the pool and queues
  // (captures) the copy from there to dst; returns the pinned copy, which a
  // before_replay hook may rewrite.
  void* feed(void* dst, const void* src, size_t bytes);
  // The pinned host copy of graph memory [dev, dev + bytes), or null.
  const void* host_view(const void* dev, size_t bytes) const;
  // Graph::record's hooks: refuses ops a replay would get wrong (dropout),
  // and runs an op's value check on the host copies of its int32 inputs.
  void check_op(OpKind kind, const OpAttr& attr) const;
  void check_values(const OpMeta& m, const KernelArgs& a);
  void free_pinned();
};

class StepGraph {
 public:
  using StepFn = std::function<Tensor(Graph&, const std::vector<Tensor>&)>;
  StepGraph(Graph& g, std::vector<StepInput> inputs, StepFn fn);
  // For tests: capture through `fns` instead of the graph's backend's.
  StepGraph(Graph& g, std::vector<StepInput> inputs, StepFn fn, const CaptureFns& fns);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // One step on host data: one pointer per StepInput, numel elements of its
  // dtype each. Returns the loss. Raises ValueError for a wrong count of
  // inputs or a bad value (a label out of range) before anything runs.
  double run(const std::vector<const void*>& inputs);

  bool captured() const { return exec_ != nullptr; }
  // True when the backend can capture (false on the CPU: every run is eager).
  bool can_capture() const { return fns_.begin != nullptr; }
  int64_t runs() const { return runs_; }
  // Operations in the captured graph (kernels, copies, memsets); 0 before.
  size_t nodes() const { return nodes_; }
  const std::vector<StepInput>& inputs() const { return specs_; }

 private:
  double run_eager(const std::vector<const void*>& inputs);
  double capture_and_run(const std::vector<const void*>& inputs);
  double replay(const std::vector<const void*>& inputs);
  double launch_and_read();
  Tensor checked_loss(Tensor loss);
  void end_step();  // the graph's pending step (if any) ended, gradients kept
  void refuse_modes() const;

  Graph* g_;
  std::vector<StepInput> specs_;
  StepFn fn_;
  CaptureFns fns_;  // a copy: the caller's may be a temporary
  StepCapture cap_;
  std::vector<size_t> bytes_;
  std::vector<void*> staging_;  // the inputs' pinned copies (in cap_'s pool)
  void* loss_pin_ = nullptr;
  DType loss_dtype_ = DType::F32;
  void* exec_ = nullptr;
  bool held_ = false;
  size_t nodes_ = 0;
  int64_t runs_ = 0;
};

}  // namespace lldl
