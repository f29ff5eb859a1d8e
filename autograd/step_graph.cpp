#include "autograd/step_graph.h"

#include <cstring>
#include <string>

#include "core/error.h"

namespace lldl {

// ---- StepCapture -------------------------------------------------------------

void StepCapture::reserve(size_t bytes) {
  pool = static_cast<char*>(fns->pinned_alloc(bytes));
  pool_size = bytes;
  pool_used = 0;
}

void* StepCapture::take(size_t bytes) {
  const size_t need = (bytes + 63) / 64 * 64;
  if (pool_size - pool_used < need)
    throw ValueError("StepGraph: the step fed " + std::to_string(pool_used + need) +
                     " bytes of host data, more than the " + std::to_string(pool_size) +
                     " bytes of page-locked memory reserved for it");
  void* p = pool + pool_used;
  pool_used += need;
  return p;
}

void* StepCapture::feed(void* dst, const void* src, size_t bytes) {
  void* pin = take(bytes);
  if (bytes) std::memcpy(pin, src, bytes);
  fns->to_device_async(dst, pin, bytes);
  mirrors.push_back({static_cast<const char*>(dst), static_cast<const char*>(pin), bytes});
  return pin;
}

const void* StepCapture::host_view(const void* dev, size_t bytes) const {
  const char* p = static_cast<const char*>(dev);
  for (const Mirror& m : mirrors)
    if (p >= m.dev && p + bytes <= m.dev + m.bytes) return m.host + (p - m.dev);
  return nullptr;
}

void StepCapture::check_op(OpKind kind, const OpAttr& attr) const {
  // The mask is hashed from a seed the host draws per call: a replay would
  // apply the captured step's mask at every step.
  if (kind == OpKind::Dropout && attr.dropout.training && attr.dropout.p > 0)
    throw ValueError("dropout: cannot be captured into a step graph (every replay would reuse "
                     "the captured step's mask); train with dropout 0 or without StepGraph");
}

void StepCapture::check_values(const OpMeta& m, const KernelArgs& a) {
  Check c{};
  c.fn = m.check;
  c.attr = a.attr;
  for (int i = 0; i < a.n_in; ++i) {
    c.in[i] = a.in_shape[i];
    if (!is_int_input(m, i)) continue;
    const size_t bytes = static_cast<size_t>(a.in_shape[i].numel()) * sizeof(int32_t);
    c.data[i] = host_view(a.in[i], bytes);
    if (!c.data[i] && bytes)
      throw ValueError(std::string(m.name) + ": input " + std::to_string(i) + " (" +
                       a.in_shape[i].str() + ") is checked on the host (its values must be in "
                       "range), which a captured step can do only for one of the StepGraph's "
                       "inputs; this one was computed in the step");
  }
  c.fn(c.in, c.data, c.attr);
  checks.push_back(c);
}

void StepCapture::free_pinned() {
  if (pool) fns->pinned_free(pool);
  pool = nullptr;
  pool_size = pool_used = 0;
  mirrors.clear();
  checks.clear();
  before_replay.clear();
}

// ---- StepGraph ---------------------------------------------------------------

StepGraph::StepGraph(Graph& g, std::vector<StepInput> inputs, StepFn fn)
    : StepGraph(g, std::move(inputs), std::move(fn), capture_fns(g.backend())) {}

StepGraph::StepGraph(Graph& g, std::vector<StepInput> inputs, StepFn fn, const CaptureFns& fns)
    : g_(&g), specs_(std::move(inputs)), fn_(std::move(fn)), fns_(fns) {
  if (!fn_) throw ValueError("StepGraph: the step function is empty");
  for (size_t i = 0; i < specs_.size(); ++i) {
    const StepInput& s = specs_[i];
    if (s.dtype != DType::I32 && s.dtype != g.dtype())
      throw TypeError("StepGraph: input " + std::to_string(i) + " is " + dtype_name(s.dtype) +
                      "; inputs are int32 or the graph's dtype " + dtype_name(g.dtype()));
    bytes_.push_back(static_cast<size_t>(s.shape.numel()) * dtype_size(s.dtype));
  }
  cap_.fns = &fns_;
  refuse_modes();
}

StepGraph::~StepGraph() {
  if (exec_) fns_.destroy(exec_);
  cap_.free_pinned();
  if (held_) g_->arena().hold_step(false);
}

void StepGraph::refuse_modes() const {
  if (g_->memory_planning())
    throw ValueError("StepGraph: memory planning is on; a captured step needs the arena's "
                     "addresses of its warm-up step (set_memory_planning(false))");
  if (g_->anomaly_mode())
    throw ValueError("StepGraph: anomaly mode reads every output on the host, which a captured "
                     "step cannot (set_anomaly_mode(false))");
  if (g_->capture_state()) throw ValueError("StepGraph: the graph is already being captured");
}

double StepGraph::run(const std::vector<const void*>& inputs) {
  if (inputs.size() != specs_.size())
    throw ValueError("StepGraph::run: expected " + std::to_string(specs_.size()) +
                     " input(s), got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i] && bytes_[i])
      throw ValueError("StepGraph::run: input " + std::to_string(i) + " is null");
  double loss = 0;
  if (!can_capture() || runs_ == 0) loss = run_eager(inputs);
  else if (!exec_) loss = capture_and_run(inputs);
  else loss = replay(inputs);
  ++runs_;
  return loss;
}

void StepGraph::end_step() {
  if (g_->num_step_tensors() || !g_->tape().empty()) g_->reset(true);
}

Tensor StepGraph::checked_loss(Tensor loss) {
  const TensorDesc& d = g_->desc(loss);  // raises for a handle of another graph or step
  if (loss.id < 0 || d.shape.numel() != 1 || d.dtype != g_->dtype())
    throw ValueError("StepGraph: the step function must return the step's one-element loss, "
                     "got a tensor " + d.shape.str() + " " + dtype_name(d.dtype));
  return loss;
}

// The step as written: inputs copied in, the function, the loss read, the
// step ended. Gradients start from zero, as in a captured step.
double StepGraph::run_eager(const std::vector<const void*>& inputs) {
  refuse_modes();
  end_step();
  g_->zero_grad();
  std::vector<Tensor> in;
  for (size_t i = 0; i < specs_.size(); ++i)
    in.push_back(g_->input(specs_[i].shape, inputs[i], specs_[i].dtype));
  Tensor loss = checked_loss(fn_(*g_, in));
  double v = g_->item(loss);
  g_->reset(true);
  return v;
}

double StepGraph::capture_and_run(const std::vector<const void*>& inputs) {
  refuse_modes();
  end_step();
  // The inputs' buffers, zero-filled now (outside the capture); the
  // captured copies from their pinned mirrors fill them at every replay.
  std::vector<Tensor> in;
  for (const StepInput& s : specs_) in.push_back(g_->input(s.shape, s.dtype));
  loss_dtype_ = g_->dtype();
  // The pinned pool: the inputs, the loss, and room for what the step feeds
  // besides (backward's seeds, the optimiser's three scalars a parameter).
  size_t pool = 64 * (specs_.size() + 1) + 8 + (size_t(1) << 16) +
                3 * 8 * g_->num_params() * 4;
  for (size_t b : bytes_) pool += b;
  cap_.reserve(pool);
  loss_pin_ = cap_.take(dtype_size(loss_dtype_));
  g_->set_capture_state(&cap_);
  try {
    fns_.begin();
    for (size_t i = 0; i < specs_.size(); ++i)
      staging_.push_back(cap_.feed(g_->desc(in[i]).data, inputs[i], bytes_[i]));
    g_->zero_grad();  // parameter gradients, captured: every replay starts from zero
    Tensor loss = checked_loss(fn_(*g_, in));
    fns_.to_host_async(loss_pin_, g_->desc(loss).data, dtype_size(loss_dtype_));
    exec_ = fns_.end(&nodes_);
  } catch (...) {
    fns_.abort();
    g_->set_capture_state(nullptr);
    cap_.free_pinned();
    staging_.clear();
    loss_pin_ = nullptr;
    g_->reset(true);
    throw;
  }
  g_->set_capture_state(nullptr);
  if (g_->arena().stats(Region::Step).blocks > 1) {
    // reset() would merge the blocks, moving memory the graph points into.
    fns_.destroy(exec_);
    exec_ = nullptr;
    cap_.free_pinned();
    staging_.clear();
    g_->reset(true);
    throw ValueError("StepGraph: the captured step allocated more step memory than its warm-up "
                     "step (the step function must record the same step every time)");
  }
  g_->reset(true);  // the handles go; the memory, held, stays where the graph points
  g_->arena().hold_step(true);
  held_ = true;
  return launch_and_read();
}

double StepGraph::replay(const std::vector<const void*>& inputs) {
  end_step();
  // The last run waited for its loss, so the pinned inputs are free to
  // rewrite. The value checks run before anything changes on the device or
  // in the optimiser, so a bad label leaves the model as it was.
  for (size_t i = 0; i < specs_.size(); ++i)
    if (bytes_[i]) std::memcpy(staging_[i], inputs[i], bytes_[i]);
  for (const StepCapture::Check& c : cap_.checks) c.fn(c.in, c.data, c.attr);
  for (const auto& hook : cap_.before_replay) hook();
  return launch_and_read();
}

double StepGraph::launch_and_read() {
  fns_.launch(exec_);
  device(g_->backend()).sync();
  if (loss_dtype_ == DType::F64) return *static_cast<const double*>(loss_pin_);
  return *static_cast<const float*>(loss_pin_);
}

}  // namespace lldl
