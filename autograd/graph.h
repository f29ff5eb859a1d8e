// Graph: owns the arena, the tensor table and the tape of one model.
//
// Ops run eagerly as they are recorded (define-by-run); backward(loss) walks
// the tape in reverse. Per step: inputs, ops, loss, backward, optimiser step,
// reset(). reset() rewinds the step region of the arena and invalidates every
// step tensor; parameters persist.
//
// Backend::CUDA places the whole graph on the GPU: the arena's blocks are
// device memory (one cudaMalloc per block; the graph reaches a backend's
// memory only through its DeviceFns, backends/device.h), every
// kernel is the CUDA one, and data()/grad() return DEVICE pointers. Host data
// enters through input(s, data, t), external() (which copies on CUDA) and
// from_host(), and leaves through item(), to_host() and grad_to_host().
// Constructing a CUDA graph without a usable device throws UnavailableError
// with the reason (cuda_status()).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/planner.h"
#include "autograd/tape.h"
#include "backends/backend.h"
#include "backends/device.h"
#include "core/arena.h"
#include "core/dtype.h"
#include "autograd/profiler.h"
#include "core/shape.h"

namespace lldl {

class Graph;
class CostModel;
struct StepCapture;  // autograd/step_graph.h

// A handle: which graph, which tensor, and the step it belongs to. Copyable,
// 16 bytes; using a handle after its step was reset raises ValueError.
struct Tensor {
  Graph* g = nullptr;
  int32_t id = kNoTensor;
  uint32_t step = 0;
  bool valid() const { return g != nullptr; }
};

struct TensorDesc {
  Shape shape;
  DType dtype = DType::F32;
  Region region = Region::Step;
  bool requires_grad = false;
  bool is_param = false;
  void* data = nullptr;
  void* grad = nullptr;   // allocated when first needed
  size_t offset = 0;      // byte offset in its arena region
  std::string name;       // parameters only
  // The memory planner's names for the data and gradient buffers of a step
  // tensor (a view shares its source's data slot); -1 when not planned.
  int32_t data_slot = -1, grad_slot = -1;
};

// "fp32" or "bf16" (the names of lldl-gpt train --precision and Python's
// configure_optimizer(precision=...)); anything else raises ValueError
// naming the accepted ones.
MatmulPrecision matmul_precision_from_name(const std::string& name);
const char* matmul_precision_name(MatmulPrecision p);

class Graph {
 public:
  explicit Graph(DType dtype = DType::F32, Backend backend = Backend::CPU,
                 size_t arena_block_bytes = size_t(16) << 20);
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  DType dtype() const { return dtype_; }
  Backend backend() const { return backend_; }

  // ---- tensors ---------------------------------------------------------
  // A trainable parameter in the persistent region, zero-filled, with a
  // persistent zero-filled gradient.
  Tensor param(const Shape& s, const std::string& name = "");
  // A persistent tensor without gradient (optimiser state, running stats).
  Tensor buffer(const Shape& s, DType t);
  // A step tensor in the arena, zero-filled, for the caller to fill.
  Tensor input(const Shape& s, DType t);
  Tensor input(const Shape& s) { return input(s, dtype_); }
  // A step tensor holding a copy of `data` (numel elements of type t).
  Tensor input(const Shape& s, const void* data, DType t);
  // A step tensor over caller-owned memory, no copy. The memory must stay
  // valid and unchanged until reset(). On CUDA the host data is copied to the
  // device (as input(s, data, t) does).
  Tensor external(const Shape& s, void* data, DType t);
  // A step tensor over memory of this graph's BACKEND that the caller owns
  // (device memory on CUDA; host memory on the CPU), no copy: model code
  // that keeps state between steps on the device (the GPT's KV cache) feeds
  // it to ops this way. Same lifetime rule as external().
  Tensor backend_view(const Shape& s, void* backend_data, DType t);
  // Makes a step leaf (an input) collect a gradient in backward().
  void set_requires_grad(Tensor t);

  const TensorDesc& desc(Tensor t) const;  // validates the handle
  const Shape& shape(Tensor t) const { return desc(t).shape; }
  template <class T = float>
  T* data(Tensor t) { return static_cast<T*>(checked_data(t, dtype_of<T>())); }
  template <class T = float>
  T* grad(Tensor t) { return static_cast<T*>(checked_grad(t, dtype_of<T>())); }
  // Reads the scalar value of a one-element tensor as double.
  double item(Tensor t) const;
  // Copies a tensor's data (or gradient) to host memory of numel elements of
  // its dtype, or overwrites its data from host memory; on any backend.
  void to_host(Tensor t, void* dst) const;
  void grad_to_host(Tensor t, void* dst);
  void from_host(Tensor t, const void* src);
  void grad_from_host(Tensor t, const void* src);  // overwrites its gradient
  template <class T = float>
  std::vector<T> host_data(Tensor t) const {
    std::vector<T> v(static_cast<size_t>(desc(t).shape.numel()));
    if (desc(t).dtype != dtype_of<T>()) throw TypeError("host_data: wrong element type");
    to_host(t, v.data());
    return v;
  }
  template <class T = float>
  std::vector<T> host_grad(Tensor t) {
    std::vector<T> v(static_cast<size_t>(desc(t).shape.numel()));
    if (desc(t).dtype != dtype_of<T>()) throw TypeError("host_grad: wrong element type");
    grad_to_host(t, v.data());
    return v;
  }
  // Sets a tensor's data to zero (optimiser state).
  void zero_data(Tensor t);

  std::vector<Tensor> params() const;
  size_t num_params() const { return num_params_; }
  Tensor param_by_name(const std::string& name) const;

  // ---- ops ---------------------------------------------------------------
  // Records one op: validates the inputs with its shape rule, allocates the
  // output in the step region, runs the forward kernel, appends a tape entry.
  // A view op (OpMeta::view, e.g. reshape) aliases input 0's data instead.
  Tensor record(OpKind kind, const Tensor* inputs, int n_in, OpAttr attr);

  // ---- autodiff ----------------------------------------------------------
  // Reverse walk from a one-element loss with seed gradient 1.
  void backward(Tensor loss);
  // Reverse walk from any output with the given upstream gradient (numel
  // elements of the graph's dtype).
  void backward(Tensor out, const void* seed);
  // The same with the upstream gradient held by a tensor of this graph (same
  // shape as out): copied within the backend's memory, so a CUDA graph pays
  // no host-to-device copy (the study times kernels this way).
  void backward(Tensor out, Tensor seed);
  // Called during backward() with each parameter (a persistent handle) once
  // its gradient is final for this backward call: when the reverse walk has
  // passed the first tape entry that reads it, the last to write its
  // gradient. Parameters the tape never reads come at the end. The order is
  // that of readiness; every parameter comes exactly once per call. Lets a
  // caller start work on early gradients while the rest of backward runs
  // (dist/grad_sync.h); an empty function turns it off.
  using GradReadyHook = std::function<void(Tensor param)>;
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_ = std::move(hook); }
  // Adds an interval to profile().events while profiling (no-op when off).
  void add_profile_event(const std::string& name, int32_t index, int64_t start_ns, int64_t end_ns) {
    if (profiling_) profile_.events.push_back({name, index, start_ns, end_ns});
  }
  // Zeroes every parameter gradient and those of this step's tensors.
  void zero_grad();
  // Ends the step: rewinds the step region, clears the tape, zeroes
  // parameter gradients unless keep_grads.
  void reset(bool keep_grads = false);

  // Anomaly mode: after every kernel, look for NaN/Inf in what it wrote and
  // raise ValueError naming the first op that produced one.
  void set_anomaly_mode(bool on) { anomaly_ = on; }
  bool anomaly_mode() const { return anomaly_; }

  // Operand precision of every matmul and linear kernel from now on
  // (backends/backend.h): BF16 is mixed-precision training, float32 values,
  // gradients and optimiser state with bf16 operands in the products. Throws
  // TypeError on a float64 graph (gradient checks stay exact) and
  // UnavailableError on a backend that does not implement it.
  void set_matmul_precision(MatmulPrecision p);
  MatmulPrecision matmul_precision() const { return precision_; }

  // Profiler (autograd/profiler.h): while on, every forward and backward kernel
  // adds its time, FLOPs and bytes to profile(). Off (the default) costs one
  // flag test per op.
  void set_profiling(bool on) {
    profiling_ = on;
    hooks_ = profiling_ || placement_;
  }
  bool profiling() const { return profiling_; }
  const Profile& profile() const { return profile_; }
  void reset_profile() { profile_.clear(); }

  // Automatic placement (autograd/placement.h): while a model is set, every
  // kernel runs at the thread count the model predicts fastest for its op
  // and size on this graph's backend; the previous count is restored after
  // the kernel. Ops the model has no data for keep the current count. The
  // model must outlive its use; null turns it off.
  void set_auto_placement(const CostModel* model) {
    placement_ = model;
    hooks_ = profiling_ || placement_;
  }
  const CostModel* auto_placement() const { return placement_; }

  // Memory planning (autograd/planner.h), off by default. While on, each
  // step's buffers are logged and their lifetimes measured; from the next
  // step on, a step that makes the same requests is served from one planned
  // block in which buffers whose lifetimes do not overlap share memory, so it
  // allocates nothing. A step that differs (another batch size, another
  // graph) falls back to bump allocation and is planned at reset(). With
  // planning on, an intermediate tensor is valid only until its last use in
  // the step that was planned: a later data()/grad()/desc() raises
  // ValueError; the loss, outputs that no op consumes and inputs stay valid
  // until reset(); a read made in the logged step is planned for. Pointers
  // from data() follow the same rule, and a second backward() that the
  // planned step did not make raises too. Turning it on or off takes effect
  // at once on an empty step, else at the next reset().
  void set_memory_planning(bool on) { mem_.set_enabled(on, step_tensors_.empty() && tape_.empty()); }
  bool memory_planning() const { return mem_.enabled(); }
  // Figures of the last completed step (planning on); with planning off only
  // peak_unplanned is set: the step region's high-water mark.
  MemoryReport memory_report() const;

  // Step capture (autograd/step_graph.h): while a StepGraph records this
  // graph's step into a CUDA graph, capture_state() is its state. Kernels
  // then only queue work, so every host read of graph memory (item(),
  // to_host(), anomaly checks) and every new host data (input() with data,
  // from_host()) raises ValueError naming the call, and reset() may not be
  // called; label and token-id checks read the StepGraph's host copies.
  StepCapture* capture_state() const { return capture_; }
  void set_capture_state(StepCapture* c) { capture_ = c; }

  const std::vector<TapeEntry>& tape() const { return tape_; }
  Arena& arena() { return arena_; }
  const Arena& arena() const { return arena_; }
  uint32_t step() const { return step_; }
  size_t num_step_tensors() const { return step_tensors_.size(); }

 private:
  TensorDesc& desc_mut(Tensor t);
  TensorDesc& by_id(int32_t id) { return id >= 0 ? step_tensors_[id] : persistent_[-id - 1]; }
  Tensor new_tensor(const Shape& s, DType t, Region r, bool zero,
                    AllocKind kind = AllocKind::Data);
  void* step_alloc(size_t bytes, AllocKind kind, size_t* offset, int32_t* slot);
  // Planning on: records a use of a step tensor's buffers now; raises when
  // the plan gave their memory away.
  void use(const TensorDesc& d, int32_t id);
  void use_id(int32_t id) {
    if (id >= 0) use(step_tensors_[id], id);
  }
  void* checked_data(Tensor t, DType want);
  void* checked_grad(Tensor t, DType want);
  // Allocates d's gradient if it has none; zero-filled unless zero is false
  // (a backward that tracks the gradient as stale, see backward_seeded).
  void ensure_grad(TensorDesc& d, bool zero = true);
  void check_finite(const char* what, const TapeEntry& e, const void* p, int64_t n) const;
  // A kernel with profiling and/or placement (the rare path).
  void run_hooked(KernelFn f, const KernelArgs& a, Phase ph);
  // Memory of this graph's backend, through its DeviceFns (host memset and
  // memcpy on the CPU, the CUDA runtime on the GPU). `in`: host to graph
  // memory; `out`: graph to host.
  void mem_zero(void* p, size_t bytes) const;
  void mem_copy(void* dst, const void* src, size_t bytes) const;  // both in the backend's memory
  // backward(): prepare (checks, gradients zeroed or marked stale, the seed
  // written; returns whether zero-filling is lazy), then one entry at a time
  // in reverse, then finish (what stayed stale is zero-filled).
  void backward_seeded(Tensor out, const void* seed, bool seed_in_graph);
  bool prepare_backward(Tensor out, const void* seed, bool seed_in_graph);
  void backward_entry(const TapeEntry& e, int32_t out_id, bool lazy);
  // Gives the backward kernel input i's data and the gradient buffer it
  // adds into (or overwrites, or shares with the output's: see stale_).
  void bind_input_grad(const TapeEntry& e, int i, const KernelPair& kp, bool plain, bool lazy,
                       TensorDesc& o, KernelArgs& a);
  void finish_backward();
  // The grad-ready hook: per parameter, the tape index of its first read
  // (-1: none), sorted by that index, latest first (ready_order_).
  void plan_grad_ready();
  void notify_ready_through(size_t idx, size_t& next);
  size_t grad_bytes(const TensorDesc& t) const {
    return static_cast<size_t>(t.shape.numel()) * dtype_size(dtype_);
  }
  void mem_in(void* dst, const void* host_src, size_t bytes) const;
  void mem_out(void* host_dst, const void* src, size_t bytes) const;
  // Raises ValueError when a step is being captured: `what` takes host data
  // whose value a replay would not see.
  void refuse_host_data(const char* what) const;
  // record(): the op's host-side value check on host copies of its int32
  // inputs (the only inputs a check reads).
  void check_values(const OpMeta& m, const KernelArgs& a, const Tensor* inputs, int n_in);

  DType dtype_;
  Backend backend_;
  const DeviceFns* dev_;  // before arena_, which allocates through it
  Arena arena_;
  std::vector<TensorDesc> persistent_;
  std::vector<TensorDesc> step_tensors_;
  std::vector<TapeEntry> tape_;
  size_t num_params_ = 0;
  uint32_t step_ = 1;
  bool anomaly_ = false;
  MatmulPrecision precision_ = MatmulPrecision::F32;
  bool profiling_ = false;
  bool hooks_ = false;  // profiling_ || placement_: the one test on the fast path
  const CostModel* placement_ = nullptr;
  Profile profile_;
  MemoryPlanner mem_;
  std::vector<uint8_t> roles_;  // reset(): scratch for what planning keeps
  // backward on host memory without memory planning: per step tensor, 1
  // while its gradient holds stale data that counts as zero (written first
  // by an overwriting kernel, zero-filled just in time otherwise, or at the
  // end of backward if nothing wrote it).
  std::vector<uint8_t> stale_;
  std::vector<uint32_t> uses_;  // backward: how many tape entries read each step tensor
  std::vector<int32_t> shared_;  // step tensors whose gradient is another's buffer (passes)
  StepCapture* capture_ = nullptr;
  GradReadyHook grad_ready_;
  std::vector<std::pair<int64_t, int32_t>> ready_order_;  // (first read, persistent id)
};

}  // namespace lldl
