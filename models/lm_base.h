// What the language models (GPT, LSTMLM) share: the graph, the named
// parameters, the last loss, backward, zero_grad, the parameter count and
// safetensors checkpoints with the config in the metadata.
//
// Config provides validate(), to_metadata() and from_metadata(); Model is the
// derived class, constructible from a Config (for from_checkpoint).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/graph.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace lldl {

template <class Model, class Config>
class LanguageModel {
 public:
  const Config& config() const { return cfg_; }
  Graph& graph() { return g_; }
  Backend backend() const { return g_.backend(); }
  const Graph& graph() const { return g_; }

  // Accumulates the gradients of the last loss() into the parameters'.
  void backward() {
    if (!loss_.valid() || loss_.step != g_.step())
      throw ValueError(std::string(name_) +
                       ": backward() needs a loss() first (and no forward() in between)");
    g_.backward(loss_);
  }
  // The same with the loss scaled by `scale` (gradient accumulation over N
  // micro-batches passes 1/N, so that their gradients add up to the mean).
  void backward(double scale) {
    if (!loss_.valid() || loss_.step != g_.step())
      throw ValueError(std::string(name_) +
                       ": backward() needs a loss() first (and no forward() in between)");
    if (g_.dtype() == DType::F64) {
      g_.backward(loss_, &scale);
    } else {
      const float s = static_cast<float>(scale);
      g_.backward(loss_, &s);
    }
  }
  // Clears the parameter gradients and ends the step (the step's tensors,
  // their gradients included, are released rather than zeroed one by one).
  void zero_grad() { g_.reset(/*keep_grads=*/false); }

  // Parameters in state-dict order.
  const std::vector<std::pair<std::string, Tensor>>& named_params() const { return params_; }
  // Elements (a tied weight is one parameter, counted once).
  int64_t num_parameters() const {
    int64_t n = 0;
    for (const auto& [name, t] : params_) n += g_.shape(t).numel();
    return n;
  }

  // Atomic safetensors checkpoint of every parameter, the config in its
  // metadata (plus `extra`, e.g. the tokenizer).
  void save(const std::string& path, const std::map<std::string, std::string>& extra = {}) const {
    std::map<std::string, std::string> meta = cfg_.to_metadata();
    for (const auto& kv : extra) meta.insert(kv);
    save_params(g_, path, meta);
  }
  // Loads a checkpoint with this model's config (every tensor must match; a
  // training checkpoint's optimiser state, "optim.*", is skipped).
  void load(const std::string& path) { load_params(g_, path, nullptr, "optim."); }
  // Builds the model a checkpoint describes and loads it; `meta` gets the
  // checkpoint's metadata.
  // backend: where the model lives (the parameters are read on the host and
  // copied there).
  static std::unique_ptr<Model> from_checkpoint(const std::string& path,
                                                std::map<std::string, std::string>* meta = nullptr,
                                                Backend backend = Backend::CPU) {
    std::map<std::string, std::string> m;
    load_safetensors(path, &m);
    auto model = std::make_unique<Model>(Config::from_metadata(m), uint64_t(1337), backend);
    model->load(path);
    if (meta) *meta = std::move(m);
    return model;
  }

 protected:
  // The graph on `backend` (Backend::CUDA: parameters, gradients, optimiser
  // state and every step tensor in device memory; UnavailableError naming
  // the reason when the backend cannot run here).
  LanguageModel(const Config& cfg, const char* name, Backend backend = Backend::CPU)
      : cfg_((cfg.validate(), cfg)), g_(DType::F32, backend), name_(name) {}
  // A new named parameter of the given shape (zero-filled).
  Tensor p(const std::string& name, const Shape& s) {
    Tensor t = g_.param(s, name);
    params_.emplace_back(name, t);
    return t;
  }

  Config cfg_;
  Graph g_;
  std::vector<std::pair<std::string, Tensor>> params_;
  Tensor loss_;
  const char* name_;
};

}  // namespace lldl
