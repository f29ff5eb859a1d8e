#include "autograd/graph.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "autograd/placement.h"
#include "autograd/step_graph.h"
#include "backends/device.h"
#include "core/error.h"
#include "core/threads.h"

namespace lldl {

namespace {
// The device functions of a backend; refuses one that cannot run here.
const DeviceFns& usable(Backend b) {
  const DeviceFns& d = device(b);
  if (!d.available())
    throw UnavailableError(std::string("graph: backend '") + backend_name(b) +
                           "' is not available: " + d.status());
  return d;
}
}  // namespace

MatmulPrecision matmul_precision_from_name(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::F32;
  if (name == "bf16") return MatmulPrecision::BF16;
  throw ValueError("precision: unknown name '" + name + "' (expected fp32 or bf16)");
}

const char* matmul_precision_name(MatmulPrecision p) {
  return p == MatmulPrecision::BF16 ? "bf16" : "fp32";
}

void Graph::set_matmul_precision(MatmulPrecision p) {
  if (p == MatmulPrecision::BF16 && dtype_ != DType::F32)
    throw TypeError(std::string("set_matmul_precision: bf16 products need a float32 graph; this "
                                "one computes in ") + dtype_name(dtype_));
  if (p == MatmulPrecision::BF16 && !dev_->bf16_matmul)
    throw UnavailableError(std::string("set_matmul_precision: the ") + backend_name(backend_) +
                           " backend has no bf16 matrix products");
  precision_ = p;
}

Graph::Graph(DType dtype, Backend backend, size_t arena_block_bytes)
    : dtype_(dtype), backend_(backend), dev_(&usable(backend)),
      arena_(arena_block_bytes, ArenaAllocator{dev_->alloc, dev_->free}) {
  if (dtype != DType::F32 && dtype != DType::F64)
    throw TypeError(std::string("graph: compute dtype must be float32 or float64, got ") +
                    dtype_name(dtype));
  // A backend computes in the dtypes its kernel table holds (CUDA: float32).
  if (!has_kernels(backend, dtype, OpKind::MatMul)) {
    std::string has;
    for (DType t : {DType::F32, DType::F64})
      if (has_kernels(backend, t, OpKind::MatMul)) has += std::string(has.empty() ? "" : " and ") + dtype_name(t);
    throw TypeError(std::string("graph: the ") + backend_name(backend) + " backend has no " +
                    dtype_name(dtype) + " kernels (it computes in " + has + ")");
  }
  tape_.reserve(256);
  step_tensors_.reserve(256);
}

void Graph::mem_zero(void* p, size_t bytes) const { dev_->memset(p, 0, bytes); }
void Graph::mem_in(void* dst, const void* src, size_t bytes) const {
  // Under capture only constants come this way (backward's seed): a pinned
  // copy that every replay copies in again.
  if (capture_) [[unlikely]]
    return capture_->feed(dst, src, bytes), void();
  dev_->to_device(dst, src, bytes);
}
void Graph::mem_copy(void* dst, const void* src, size_t bytes) const { dev_->copy(dst, src, bytes); }
void Graph::mem_out(void* dst, const void* src, size_t bytes) const {
  if (capture_) [[unlikely]]
    throw ValueError("graph: a host read of graph memory (item(), to_host(), grad_to_host(), an "
                     "anomaly check) while a step is being captured: its kernels have not run "
                     "yet; read results after StepGraph::run() returns");
  dev_->to_host(dst, src, bytes);
}

void Graph::refuse_host_data(const char* what) const {
  if (capture_) [[unlikely]]
    throw ValueError(std::string(what) + ": host data given while a step is being captured "
                     "would be frozen into every replay; give it as one of the StepGraph's "
                     "inputs instead");
}

// ---- tensors ---------------------------------------------------------------

Tensor Graph::new_tensor(const Shape& s, DType t, Region r, bool zero, AllocKind kind) {
  TensorDesc d;
  d.shape = s;
  d.dtype = t;
  d.region = r;
  size_t bytes = static_cast<size_t>(s.numel()) * dtype_size(t);
  d.data = r == Region::Step ? step_alloc(bytes, kind, &d.offset, &d.data_slot)
                             : arena_.alloc(r, bytes, &d.offset);
  if (zero && bytes) mem_zero(d.data, bytes);
  if (r == Region::Persistent) {
    persistent_.push_back(std::move(d));
    return {this, -static_cast<int32_t>(persistent_.size()), 0};
  }
  step_tensors_.push_back(std::move(d));
  return {this, static_cast<int32_t>(step_tensors_.size() - 1), step_};
}

Tensor Graph::param(const Shape& s, const std::string& name) {
  Tensor t = new_tensor(s, dtype_, Region::Persistent, true);
  TensorDesc& d = by_id(t.id);
  d.is_param = true;
  ++num_params_;
  d.requires_grad = true;
  d.name = name.empty() ? "param" + std::to_string(persistent_.size() - 1) : name;
  ensure_grad(d);
  return t;
}

Tensor Graph::buffer(const Shape& s, DType t) { return new_tensor(s, t, Region::Persistent, true); }

void* Graph::step_alloc(size_t bytes, AllocKind kind, size_t* offset, int32_t* slot) {
  if (!mem_.active()) return arena_.alloc(Region::Step, bytes, offset);
  return mem_.alloc(arena_, bytes, kind, offset, slot);
}

void Graph::use(const TensorDesc& d, int32_t id) {
  if (mem_.touch(d.data_slot) && mem_.touch(d.grad_slot)) return;
  int32_t slot = mem_.touch(d.data_slot) ? d.grad_slot : d.data_slot;
  throw ValueError("tensor " + std::to_string(id) + " (" + d.shape.str() + ") was released by the "
                   "memory planner: its last use in the planned step was at tick " +
                   std::to_string(mem_.planned_end(slot)) + " and its memory may now hold another tensor (now tick " +
                   std::to_string(mem_.now()) + "). With memory planning on, intermediate tensors "
                   "are valid only until their last use; the loss, outputs no op consumes and "
                   "inputs stay valid until reset() (set_memory_planning(false) keeps every tensor)");
}

MemoryReport Graph::memory_report() const {
  MemoryReport r = mem_.report();
  if (r.requests == 0) r.peak_unplanned = arena_.stats(Region::Step).high_water;
  return r;
}

Tensor Graph::input(const Shape& s, DType t) {
  if (mem_.active()) mem_.tick();
  return new_tensor(s, t, Region::Step, true);
}

Tensor Graph::input(const Shape& s, const void* data, DType t) {
  refuse_host_data("input");
  if (mem_.active()) mem_.tick();
  Tensor h = new_tensor(s, t, Region::Step, false);
  size_t bytes = static_cast<size_t>(s.numel()) * dtype_size(t);
  if (bytes) mem_in(by_id(h.id).data, data, bytes);  // data may be null when empty
  return h;
}

Tensor Graph::external(const Shape& s, void* data, DType t) {
  if (!data && s.numel() > 0) throw ValueError("external: data pointer is null");
  refuse_host_data("external");
  if (!dev_->host_memory) return input(s, data, t);  // host memory: copy it over
  return backend_view(s, data, t);
}

Tensor Graph::backend_view(const Shape& s, void* data, DType t) {
  if (!data && s.numel() > 0) throw ValueError("backend_view: data pointer is null");
  TensorDesc d;
  d.shape = s;
  d.dtype = t;
  d.region = Region::External;
  d.data = data;
  step_tensors_.push_back(std::move(d));
  return {this, static_cast<int32_t>(step_tensors_.size() - 1), step_};
}

void Graph::set_requires_grad(Tensor t) {
  TensorDesc& d = desc_mut(t);
  if (d.dtype == DType::I32) throw TypeError("set_requires_grad: an int32 tensor has no gradient");
  d.requires_grad = true;
}

const TensorDesc& Graph::desc(Tensor t) const { return const_cast<Graph*>(this)->desc_mut(t); }

TensorDesc& Graph::desc_mut(Tensor t) {
  if (t.g != this)
    throw ValueError(t.g ? "tensor belongs to another graph" : "tensor handle is empty");
  if (t.id >= 0) {
    if (t.step != step_ || t.id >= static_cast<int32_t>(step_tensors_.size()))
      throw ValueError("tensor " + std::to_string(t.id) + " is from step " +
                       std::to_string(t.step) + " but the graph is at step " +
                       std::to_string(step_) + ": it was released by reset()");
    TensorDesc& d = step_tensors_[t.id];
    if (mem_.active()) [[unlikely]]
      use(d, t.id);
    return d;
  }
  if (t.id == kNoTensor || -t.id - 1 >= static_cast<int32_t>(persistent_.size()))
    throw ValueError("unknown tensor id " + std::to_string(t.id));
  return persistent_[-t.id - 1];
}

void* Graph::checked_data(Tensor t, DType want) {
  TensorDesc& d = desc_mut(t);
  if (want != d.dtype)
    throw TypeError(std::string("data: tensor ") + d.shape.str() + " is " + dtype_name(d.dtype) +
                    ", read as " + dtype_name(want));
  return d.data;
}

void* Graph::checked_grad(Tensor t, DType want) {
  TensorDesc& d = desc_mut(t);
  if (want != d.dtype)
    throw TypeError(std::string("grad: tensor ") + d.shape.str() + " is " + dtype_name(d.dtype) +
                    ", read as " + dtype_name(want));
  if (!d.grad) throw ValueError("grad: tensor " + d.shape.str() + " has no gradient (it does not "
                                "require grad, or backward() has not reached it)");
  return d.grad;
}

double Graph::item(Tensor t) const {
  const TensorDesc& d = desc(t);
  if (d.shape.numel() != 1)
    throw ShapeError("item: tensor has " + std::to_string(d.shape.numel()) +
                     " elements (" + d.shape.str() + "), needs exactly one");
  double v64 = 0;
  float v32 = 0;
  int32_t vi = 0;
  if (d.dtype == DType::F32) return mem_out(&v32, d.data, sizeof v32), v32;
  if (d.dtype == DType::F64) return mem_out(&v64, d.data, sizeof v64), v64;
  return mem_out(&vi, d.data, sizeof vi), vi;
}

void Graph::to_host(Tensor t, void* dst) const {
  const TensorDesc& d = desc(t);
  size_t bytes = static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype);
  if (bytes) mem_out(dst, d.data, bytes);
}

void Graph::grad_to_host(Tensor t, void* dst) {
  const TensorDesc& d = desc(t);
  void* g = checked_grad(t, d.dtype);
  size_t bytes = static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype);
  if (bytes) mem_out(dst, g, bytes);
}

void Graph::grad_from_host(Tensor t, const void* src) {
  const TensorDesc& d = desc(t);
  void* g = checked_grad(t, d.dtype);
  size_t bytes = static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype);
  if (bytes) mem_in(g, src, bytes);
}

void Graph::from_host(Tensor t, const void* src) {
  refuse_host_data("from_host");
  const TensorDesc& d = desc(t);
  size_t bytes = static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype);
  if (bytes) mem_in(d.data, src, bytes);
}

void Graph::zero_data(Tensor t) {
  const TensorDesc& d = desc(t);
  size_t bytes = static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype);
  if (bytes) mem_zero(d.data, bytes);
}

std::vector<Tensor> Graph::params() const {
  std::vector<Tensor> out;
  for (size_t i = 0; i < persistent_.size(); ++i)
    if (persistent_[i].is_param)
      out.push_back({const_cast<Graph*>(this), -static_cast<int32_t>(i) - 1, 0});
  return out;
}

Tensor Graph::param_by_name(const std::string& name) const {
  for (size_t i = 0; i < persistent_.size(); ++i)
    if (persistent_[i].is_param && persistent_[i].name == name)
      return {const_cast<Graph*>(this), -static_cast<int32_t>(i) - 1, 0};
  throw ValueError("no parameter named '" + name + "'");
}

void Graph::ensure_grad(TensorDesc& d, bool zero) {
  if (d.grad) return;
  size_t bytes = static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype);
  d.grad = d.region == Region::Persistent ? arena_.alloc(Region::Persistent, bytes)
                                          : step_alloc(bytes, AllocKind::Grad, nullptr, &d.grad_slot);
  if (bytes && zero) mem_zero(d.grad, bytes);
#ifdef LLDL_POISON_STALE_GRADS
  // Sanitizer builds: a gradient left stale is all NaN (every bit set), so a
  // kernel that adds into one instead of overwriting it fails the tests.
  if (bytes && !zero) dev_->memset(d.grad, 0xFF, bytes);
#endif
}

// ---- ops -------------------------------------------------------------------

void Graph::check_finite(const char* what, const TapeEntry& e, const void* p, int64_t n) const {
  std::vector<char> host;
  if (!dev_->host_memory) {  // look at a host copy
    host.resize(static_cast<size_t>(n) * dtype_size(dtype_));
    if (n) mem_out(host.data(), p, host.size());
    p = host.data();
  }
  bool bad = false;
  if (dtype_ == DType::F32) {
    const float* f = static_cast<const float*>(p);
    for (int64_t i = 0; i < n && !bad; ++i) bad = !std::isfinite(f[i]);
  } else {
    const double* f = static_cast<const double*>(p);
    for (int64_t i = 0; i < n && !bad; ++i) bad = !std::isfinite(f[i]);
  }
  if (!bad) return;
  std::string msg = std::string("anomaly: op '") + op_name(e.kind) + "' (tape entry " +
                    std::to_string(&e - tape_.data()) + ") produced NaN or Inf in its " + what +
                    "; inputs:";
  for (int i = 0; i < e.n_in; ++i)
    msg += " " + const_cast<Graph*>(this)->by_id(e.in[i]).shape.str();
  throw ValueError(msg);
}

Tensor Graph::record(OpKind kind, const Tensor* inputs, int n_in, OpAttr attr) {
  const OpMeta& m = op_meta(kind);
  if (n_in != m.arity)
    throw ValueError(std::string(m.name) + ": takes " + std::to_string(m.arity) +
                     " input(s), got " + std::to_string(n_in));
  if (mem_.active()) mem_.tick();  // inputs are used, output and workspace born, at one tick
  KernelArgs a{};
  a.precision = precision_;
  a.kind = kind;
  a.attr = attr;
  a.n_in = n_in;
  TapeEntry e{};
  e.kind = kind;
  e.n_in = static_cast<uint8_t>(n_in);
  e.attr = attr;
  bool needs_grad = false;
  for (int i = 0; i < n_in; ++i) {
    const TensorDesc& d = desc(inputs[i]);
    DType want = is_int_input(m, i) ? DType::I32 : dtype_;
    if (d.dtype != want)
      throw TypeError(std::string(m.name) + ": input " + std::to_string(i) + " is " +
                      dtype_name(d.dtype) + ", expected " + dtype_name(want));
    a.in[i] = d.data;
    a.in_shape[i] = d.shape;
    e.in[i] = inputs[i].id;
    needs_grad |= d.requires_grad;
  }
  for (int i = n_in; i < kMaxInputs; ++i) e.in[i] = kNoTensor;
  a.out_shape = m.shape(a.in_shape, attr);
  if (capture_) capture_->check_op(kind, attr);
  if (m.check) check_values(m, a, inputs, n_in);
  const KernelPair& k = kernels(backend_, dtype_, kind);

  Tensor out;
  if (m.view) {
    // A view (reshape) aliases input 0's data: nothing is allocated or copied
    // and its forward kernel does nothing. Its gradient gets its own buffer
    // (ensure_grad), which the backward kernel adds into the input's.
    const TensorDesc& src = desc(inputs[0]);
    TensorDesc v;
    v.shape = a.out_shape;
    v.dtype = dtype_;
    v.region = Region::Step;  // the handle lives for this step, whatever it aliases
    v.data = src.data;
    v.offset = src.offset;
    v.data_slot = src.data_slot;  // one buffer: a use of either is a use of both
    step_tensors_.push_back(std::move(v));
    out = {this, static_cast<int32_t>(step_tensors_.size() - 1), step_};
  } else {
    out = new_tensor(a.out_shape, dtype_, Region::Step, false);
  }
  e.ws = kNoTensor;
  if (m.workspace) {
    Tensor ws = new_tensor(Shape{m.workspace(a.in_shape, a.out_shape, attr)}, dtype_,
                           Region::Step, false, AllocKind::Workspace);
    a.ws = by_id(ws.id).data;
    e.ws = ws.id;
  }
  TensorDesc& od = by_id(out.id);
  od.requires_grad = needs_grad;
  a.out = od.data;
  e.out = out.id;
  if (hooks_) [[unlikely]]
    run_hooked(k.forward, a, Phase::Forward);
  else
    k.forward(a);
  tape_.push_back(e);
  if (anomaly_) check_finite("output", tape_.back(), od.data, a.out_shape.numel());
  return out;
}

void Graph::check_values(const OpMeta& m, const KernelArgs& a, const Tensor* inputs, int n_in) {
  // Under capture, on the StepGraph's host copies of its inputs (kept to
  // check again before every replay).
  if (capture_) return capture_->check_values(m, a);
  if (dev_->host_memory) return m.check(a.in_shape, a.in, a.attr);
  // The check reads the int32 inputs' values (label and token-id ranges) on
  // the host: give it copies of those (null for the others, which it does
  // not read).
  std::vector<std::vector<char>> host(n_in);
  const void* ptrs[kMaxInputs] = {};
  for (int i = 0; i < n_in; ++i) {
    if (!is_int_input(m, i)) continue;
    const TensorDesc& d = desc(inputs[i]);
    host[i].resize(static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype));
    if (!host[i].empty()) mem_out(host[i].data(), d.data, host[i].size());
    ptrs[i] = host[i].data();
  }
  m.check(a.in_shape, ptrs, a.attr);
}

namespace {
// Sets the thread count for one kernel and restores it afterwards, also when
// the kernel throws.
struct ThreadsFor {
  int prev = 0;
  explicit ThreadsFor(int want) {
    if (want < 1) return;
    int cur = get_num_threads();
    if (cur == want) return;  // the common case once the choice settles: no call
    set_num_threads(want);
    prev = cur;
  }
  ~ThreadsFor() {
    if (prev) set_num_threads(prev);
  }
};
}  // namespace

void Graph::run_hooked(KernelFn f, const KernelArgs& a, Phase ph) {
  const OpMeta& m = op_meta(a.kind);
  const double factor = ph == Phase::Backward ? kBackwardFactor : 1.0;
  // The metadata counts float32 bytes; a float64 graph moves twice as many.
  const double width = static_cast<double>(dtype_size(dtype_)) / 4.0;
  double flops = factor * m.flops(a.in_shape, a.out_shape, a.attr);
  double bytes = factor * width * m.bytes(a.in_shape, a.out_shape, a.attr);
  int threads = 0;
  if (placement_) threads = placement_->choose_cost(a.kind, ph, flops, bytes, &backend_).threads;
  ThreadsFor guard(threads);
  if (!profiling_) return f(a);
  auto t0 = std::chrono::steady_clock::now();
  f(a);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - t0).count();
  ProfileRow& r = profile_.at(backend_, a.kind, ph);
  ++r.calls;
  r.ns += ns;
  r.flops += flops;
  r.bytes += bytes;
}

// ---- autodiff --------------------------------------------------------------

void Graph::backward(Tensor loss) {
  const TensorDesc& d = desc(loss);
  if (d.shape.numel() != 1)
    throw ShapeError("backward: loss must have one element, got " + d.shape.str() +
                     " (pass an upstream gradient for a non-scalar output)");
  double one64 = 1.0;
  float one32 = 1.0f;
  backward(loss, dtype_ == DType::F64 ? static_cast<const void*>(&one64) : &one32);
}

void Graph::backward(Tensor out, const void* seed) { backward_seeded(out, seed, false); }

void Graph::backward(Tensor out, Tensor seed) {
  const TensorDesc& sd = desc(seed);
  const TensorDesc& od = desc(out);
  if (!(sd.shape == od.shape) || sd.dtype != dtype_)
    throw ShapeError("backward: the seed tensor must have the output's shape " + od.shape.str() +
                     " and dtype " + dtype_name(dtype_) + ", got " + sd.shape.str() + " " +
                     dtype_name(sd.dtype));
  backward_seeded(out, sd.data, true);
}

void Graph::backward_seeded(Tensor out, const void* seed, bool seed_in_graph) {
  const int64_t t0 = profiling_ ? profile_clock_ns() : 0;
  const bool lazy = prepare_backward(out, seed, seed_in_graph);
  if (!grad_ready_) {
    for (size_t idx = tape_.size(); idx-- > 0;) backward_entry(tape_[idx], out.id, lazy);
  } else {
    plan_grad_ready();
    size_t next = 0;
    for (size_t idx = tape_.size(); idx-- > 0;) {
      backward_entry(tape_[idx], out.id, lazy);
      notify_ready_through(idx, next);
    }
  }
  if (lazy) finish_backward();
  if (grad_ready_) {
    size_t next = 0;
    while (next < ready_order_.size() && ready_order_[next].first >= 0) ++next;
    for (; next < ready_order_.size(); ++next)  // parameters the tape never read
      grad_ready_(Tensor{this, ready_order_[next].second, 0});
  }
  if (profiling_) add_profile_event("backward", 0, t0, profile_clock_ns());
}

void Graph::plan_grad_ready() {
  std::vector<int64_t> first(persistent_.size(), -1);
  for (size_t idx = 0; idx < tape_.size(); ++idx)
    for (int i = 0; i < tape_[idx].n_in; ++i) {
      int32_t id = tape_[idx].in[i];
      if (id < 0 && id != kNoTensor && first[-id - 1] < 0) first[-id - 1] = int64_t(idx);
    }
  ready_order_.clear();
  for (size_t p = 0; p < persistent_.size(); ++p)
    if (persistent_[p].is_param) ready_order_.emplace_back(first[p], -int32_t(p) - 1);
  // Latest first read first; ties (and the unread, -1, at the end) by id.
  std::stable_sort(ready_order_.begin(), ready_order_.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
}

// Reports the parameters whose first read is at tape index idx (the walk has
// just run it); `next` walks ready_order_.
void Graph::notify_ready_through(size_t idx, size_t& next) {
  while (next < ready_order_.size() && ready_order_[next].first == int64_t(idx))
    grad_ready_(Tensor{this, ready_order_[next++].second, 0});
}

bool Graph::prepare_backward(Tensor out, const void* seed, bool seed_in_graph) {
  if (mem_.active()) mem_.tick();
  TensorDesc& od = desc_mut(out);
  if (od.region == Region::Persistent || out.id < 0)
    throw ValueError("backward: the output must be a tensor computed in this step");
  if (!od.requires_grad)
    throw ValueError("backward: output " + od.shape.str() +
                     " does not depend on any parameter or input that requires grad");
  // Intermediate gradients start from zero on every backward call; leaf
  // gradients (parameters, inputs) accumulate across calls until zero_grad.
  // On host memory (without memory planning) the zero-fill is lazy: an
  // intermediate gradient is marked stale, and the first kernel that writes
  // it either overwrites it (kernels registered with `overwrites`, told by
  // KernelArgs::gin_fresh) or gets it zero-filled just before; an entry
  // whose output gradient is still stale contributes nothing and is skipped;
  // whatever is still stale at the end is zero-filled, so the gradients read
  // afterwards are the same as with eager zeroing. This saves a pass over
  // every activation-sized gradient (about 8% of a GPT step; measured on the
  // CPU, whose kernels honour `overwrites`). Profiling keeps it, so the
  // profile times the kernels that run unprofiled; automatic placement
  // (which may move a kernel to another backend) and anomaly mode zero-fill
  // instead.
  const bool lazy = dev_->host_memory && !mem_.active();
  // A gradient shared by an earlier backward of this step (passes) gets a
  // buffer of its own again before this one decides afresh: it may have
  // other consumers now, and the tensor it shared with may be zero-filled.
  for (int32_t id : shared_) step_tensors_[id].grad = nullptr;
  shared_.clear();
  if (lazy) {
    stale_.assign(step_tensors_.size(), 0);
    uses_.assign(step_tensors_.size(), 0);
    for (const TapeEntry& e : tape_) {  // intermediates (allocated or not)
      for (int i = 0; i < e.n_in; ++i)
        if (e.in[i] >= 0) ++uses_[e.in[i]];
      stale_[e.out] = 1;
#ifdef LLDL_POISON_STALE_GRADS
      TensorDesc& t = by_id(e.out);
      if (t.grad && grad_bytes(t)) dev_->memset(t.grad, 0xFF, grad_bytes(t));
#endif
    }
  } else {
    for (const TapeEntry& e : tape_) {
      TensorDesc& t = by_id(e.out);
      if (!t.grad) continue;
      if (mem_.active()) use(t, e.out);
      size_t bytes = grad_bytes(t);
      if (bytes) mem_zero(t.grad, bytes);
    }
  }
  ensure_grad(od, !lazy);
  if (mem_.active()) {  // the user may read the output and its gradient until reset()
    mem_.keep(od.data_slot);
    mem_.keep(od.grad_slot);
  }
  size_t seed_bytes = grad_bytes(od);
  if (seed_bytes) {
    if (seed_in_graph) mem_copy(od.grad, seed, seed_bytes);
    else mem_in(od.grad, seed, seed_bytes);
  }
  if (lazy) stale_[out.id] = 0;
  return lazy;
}

void Graph::backward_entry(const TapeEntry& e, int32_t out_id, bool lazy) {
  TensorDesc& o = by_id(e.out);
  if (!o.requires_grad || !o.grad) return;  // not on the path to `out`
  if (e.out > out_id) return;               // recorded after `out`
  if (lazy && stale_[e.out]) return;        // nothing reached it: zero upstream gradient
  bool any = false;
  for (int i = 0; i < e.n_in; ++i) any |= by_id(e.in[i]).requires_grad;
  if (!any) return;
  if (mem_.active()) [[unlikely]] {
    // The kernel may read every input, the output, its gradient and the
    // workspace, and writes the inputs' gradients: all are used now.
    mem_.tick();
    for (int i = 0; i < e.n_in; ++i) use_id(e.in[i]);
    use_id(e.out);
    if (e.ws != kNoTensor) use_id(e.ws);
  }
  const KernelPair& kp = kernels(backend_, dtype_, e.kind);
  KernelArgs a{};
  a.precision = precision_;
  a.kind = e.kind;
  a.attr = e.attr;
  a.n_in = e.n_in;
  // An input given twice (add(x, x)) gets both contributions in one
  // buffer: never overwritten then.
  bool repeated = false;
  for (int i = 0; i < e.n_in; ++i)
    for (int j = 0; j < i; ++j) repeated |= e.in[i] == e.in[j];
  const bool plain = !repeated && !placement_ && !anomaly_;
  for (int i = 0; i < e.n_in; ++i) bind_input_grad(e, i, kp, plain, lazy, o, a);
  a.out = o.data;
  a.out_shape = o.shape;
  a.gout = o.grad;
  a.ws = e.ws == kNoTensor ? nullptr : by_id(e.ws).data;
  if (hooks_) [[unlikely]]
    run_hooked(kp.backward, a, Phase::Backward);
  else
    kp.backward(a);
  if (anomaly_)
    for (int i = 0; i < e.n_in; ++i)
      if (a.gin[i]) check_finite("input gradient", e, a.gin[i], a.in_shape[i].numel());
}

void Graph::bind_input_grad(const TapeEntry& e, int i, const KernelPair& kp, bool plain,
                            bool lazy, TensorDesc& o, KernelArgs& a) {
  TensorDesc& in = by_id(e.in[i]);
  a.in[i] = in.data;
  a.in_shape[i] = in.shape;
  if (!in.requires_grad) return;
  const bool is_stale = lazy && e.in[i] >= 0 && stale_[e.in[i]];
  if (is_stale && plain && ((kp.passes >> i) & 1) && uses_[e.in[i]] == 1) {
    // Its gradient is the output's, and no other entry adds to it: share
    // the buffer (KernelPair::passes); the kernel skips this input.
    in.grad = o.grad;
    shared_.push_back(e.in[i]);
    stale_[e.in[i]] = 0;
    return;
  }
  ensure_grad(in, !is_stale);
  a.gin[i] = in.grad;
  if (is_stale) {
    if (kp.overwrites && plain) {
      a.gin_fresh |= static_cast<uint8_t>(1u << i);
    } else if (size_t bytes = grad_bytes(in)) {
      mem_zero(in.grad, bytes);
    }
    stale_[e.in[i]] = 0;
  }
}

void Graph::finish_backward() {
  for (size_t id = 0; id < stale_.size(); ++id)
    if (stale_[id]) {
      const TensorDesc& t = step_tensors_[id];
      if (size_t bytes = grad_bytes(t); t.grad && bytes) mem_zero(t.grad, bytes);
    }
}

void Graph::zero_grad() {
  // Step leaves (inputs with set_requires_grad) accumulate like parameters.
  for (auto* v : {&persistent_, &step_tensors_})
    for (TensorDesc& d : *v) {
      if (!d.grad || !d.shape.numel()) continue;
      // A gradient the memory planner released is unreadable: skip it rather
      // than write into memory that now belongs to another buffer.
      if (mem_.active() && v == &step_tensors_ &&
          !(mem_.touch(d.grad_slot) && mem_.touch(d.data_slot)))
        continue;
      mem_zero(d.grad, static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype));
    }
}

void Graph::reset(bool keep_grads) {
  if (capture_)
    throw ValueError("reset: called while a step is being captured (the step function must "
                     "record one step and return its loss; StepGraph ends the step)");
  if (mem_.active()) {
    // What the user may read until reset(): inputs (leaves) and outputs that
    // no op consumed; the planner keeps them live to the end of the step.
    enum : uint8_t { Leaf, Output, Consumed, Workspace };
    roles_.assign(step_tensors_.size(), Leaf);
    for (const TapeEntry& e : tape_) {
      roles_[e.out] = Output;
      if (e.ws != kNoTensor) roles_[e.ws] = Workspace;
    }
    for (const TapeEntry& e : tape_)
      for (int i = 0; i < e.n_in; ++i)
        if (e.in[i] >= 0 && roles_[e.in[i]] == Output) roles_[e.in[i]] = Consumed;
    for (size_t i = 0; i < step_tensors_.size(); ++i)
      if (roles_[i] == Leaf || roles_[i] == Output) {
        mem_.keep(step_tensors_[i].data_slot);
        mem_.keep(step_tensors_[i].grad_slot);
      }
  }
  step_tensors_.clear();
  shared_.clear();
  tape_.clear();
  arena_.reset_step();
  mem_.end_step(arena_);
  ++step_;
  if (!keep_grads) zero_grad();
}

}  // namespace lldl
