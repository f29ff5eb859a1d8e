// Small models trained step by step in two ways, by hand (inputs, forward,
// backward, optimiser, loss read, reset) and through a StepGraph, for the
// step-capture tests (test_step_graph.cpp on the CPU, test_step_graph_gpu.cpp
// on a GPU): the two must give the same losses and parameters.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "autograd/step_graph.h"
#include "core/rng.h"

namespace lldl::steptest {

// One model on one graph: its inputs' shapes, a batch of host data per
// step, and the forward pass to the loss.
struct Model {
  std::unique_ptr<Graph> g;
  std::unique_ptr<Optimizer> opt;
  std::vector<StepInput> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> loss;
  // The host data of step s: one buffer per input (floats or int32s).
  std::function<std::vector<std::vector<char>>(int s)> batch;
};

inline std::vector<char> as_bytes(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  return {c, c + n};
}

// in -> 32 tanh -> 5, cross-entropy on int32 labels, Adam; a new random
// batch at every step (so the captured inputs must really be rewritten).
inline Model mlp(Backend b, DType t = DType::F32, int64_t n = 64, int64_t d = 20) {
  Model m;
  const int64_t h = 32, c = 5;
  m.g = std::make_unique<Graph>(t, b, size_t(1) << 20);
  Graph& g = *m.g;
  Tensor W1 = g.param({d, h}, "W1"), b1 = g.param({h}, "b1");
  Tensor W2 = g.param({h, c}, "W2"), b2 = g.param({c}, "b2");
  init_param(g, W1, Init::XavierUniform, 11);
  init_param(g, W2, Init::XavierUniform, 12);
  OptimConfig cfg;
  cfg.kind = OptimKind::Adam;
  cfg.lr = 0.01f;
  m.opt = std::make_unique<Optimizer>(g, cfg);
  m.inputs = {{Shape{n, d}, t}, {Shape{n}, DType::I32}};
  m.loss = [=](const std::vector<Tensor>& in) {
    Tensor hid = tanh(bias_add(matmul(in[0], W1), b1));
    return cross_entropy(linear(hid, W2, b2), in[1]);
  };
  m.batch = [=](int s) {
    Rng r(100 + static_cast<uint64_t>(s));
    std::vector<double> x64(static_cast<size_t>(n * d));
    std::vector<float> x32(x64.size());
    for (size_t i = 0; i < x64.size(); ++i) x32[i] = static_cast<float>(x64[i] = r.uniform(-1, 1));
    std::vector<int32_t> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      y[i] = (x32[i * d] > 0) + 2 * (x32[i * d + 1] > 0) + (x32[i * d + 2] > 0.5f ? 1 : 0);
    std::vector<std::vector<char>> out;
    out.push_back(t == DType::F32 ? as_bytes(x32.data(), x32.size() * 4)
                                  : as_bytes(x64.data(), x64.size() * 8));
    out.push_back(as_bytes(y.data(), y.size() * 4));
    return out;
  };
  return m;
}

// A one-block GPT (embeddings, layer norm, causal attention, GELU MLP,
// residuals) on next-token prediction of a sequence with period 7; the ids
// are the inputs, shifted by the step so that each batch differs.
inline Model gpt_block(Backend b) {
  Model m;
  const int64_t B = 4, T = 16, V = 11, C = 32, nh = 4;
  m.g = std::make_unique<Graph>(DType::F32, b, size_t(8) << 20);
  Graph& g = *m.g;
  Tensor wte = g.param({V, C}, "wte"), wpe = g.param({T, C}, "wpe");
  Tensor ln_g = g.param({C}, "ln_g"), ln_b = g.param({C}, "ln_b");
  Tensor w_qkv = g.param({C, 3 * C}, "w_qkv"), w_proj = g.param({C, C}, "w_proj");
  Tensor w_fc = g.param({C, 4 * C}, "w_fc"), w_out = g.param({4 * C, C}, "w_out");
  Tensor w_head = g.param({C, V}, "w_head");
  init_uniform(g, wte, -0.5, 0.5, 1);
  init_uniform(g, wpe, -0.1, 0.1, 2);
  init_uniform(g, ln_g, 1.0, 1.0, 3);
  init_param(g, w_qkv, Init::XavierUniform, 4);
  init_param(g, w_proj, Init::XavierUniform, 5);
  init_param(g, w_fc, Init::XavierUniform, 6);
  init_param(g, w_out, Init::XavierUniform, 7);
  init_param(g, w_head, Init::XavierUniform, 10);
  OptimConfig cfg;
  cfg.kind = OptimKind::AdamW;
  cfg.lr = 0.001f;
  cfg.weight_decay = 0.1f;
  m.opt = std::make_unique<Optimizer>(g, cfg);
  m.inputs = {{Shape{B, T}, DType::I32}, {Shape{B, T}, DType::I32}, {Shape{B * T}, DType::I32}};
  m.loss = [=](const std::vector<Tensor>& in) {
    Tensor x = add(embedding(in[0], wte), embedding(in[1], wpe));
    Tensor n = reshape(layer_norm(x, ln_g, ln_b), {B * T, C});
    Tensor a = causal_attention(reshape(matmul(n, w_qkv), {B, T, 3 * C}), nh);
    Tensor r = add(reshape(x, {B * T, C}), matmul(reshape(a, {B * T, C}), w_proj));
    Tensor h = add(r, matmul(gelu(matmul(layer_norm(r, ln_g, ln_b), w_fc)), w_out));
    return cross_entropy(matmul(h, w_head), in[2]);
  };
  m.batch = [=](int s) {
    std::vector<int32_t> ids(B * T), pos(B * T), next(B * T);
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t t = 0; t < T; ++t) {
        ids[bi * T + t] = static_cast<int32_t>((3 * bi + t + s) % 7);
        next[bi * T + t] = static_cast<int32_t>((3 * bi + t + s + 1) % 7);
        pos[bi * T + t] = static_cast<int32_t>(t);
      }
    return std::vector<std::vector<char>>{as_bytes(ids.data(), ids.size() * 4),
                                          as_bytes(pos.data(), pos.size() * 4),
                                          as_bytes(next.data(), next.size() * 4)};
  };
  return m;
}

// The learning rate of step s in both runs: it changes midway, so a replay
// must pick up the optimiser's new cfg.lr.
inline float lr_at(int s, float base) { return s < 5 ? base : base * 0.5f; }

// Steps by hand: the eager loop a user writes.
inline std::vector<double> train_eager(Model& m, int steps) {
  const float base = m.opt->cfg.lr;
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    m.opt->cfg.lr = lr_at(s, base);
    std::vector<std::vector<char>> data = m.batch(s);
    std::vector<Tensor> in;
    for (size_t i = 0; i < m.inputs.size(); ++i)
      in.push_back(m.g->input(m.inputs[i].shape, data[i].data(), m.inputs[i].dtype));
    Tensor loss = m.loss(in);
    m.g->backward(loss);
    m.opt->step();
    losses.push_back(m.g->item(loss));
    m.g->reset();
  }
  return losses;
}

// The same steps through a StepGraph (captured where the backend can).
inline std::vector<double> train_graph(Model& m, StepGraph& sg, int steps) {
  const float base = m.opt->cfg.lr;
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    m.opt->cfg.lr = lr_at(s, base);
    std::vector<std::vector<char>> data = m.batch(s);
    std::vector<const void*> ptrs;
    for (const auto& d : data) ptrs.push_back(d.data());
    losses.push_back(sg.run(ptrs));
  }
  return losses;
}

inline StepGraph::StepFn step_fn(Model& m) {
  return [&m](Graph& g, const std::vector<Tensor>& in) {
    Tensor loss = m.loss(in);
    g.backward(loss);
    m.opt->step();
    return loss;
  };
}

// Every parameter's values, in order.
inline std::vector<std::vector<float>> params_of(Graph& g) {
  std::vector<std::vector<float>> out;
  for (Tensor p : g.params()) out.push_back(g.host_data<float>(p));
  return out;
}

}  // namespace lldl::steptest
