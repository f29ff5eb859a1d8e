// Shared declarations of the cppapi module's parts (one file per area).
#pragma once
#include <pybind11/pybind11.h>

#include <string>

namespace lldl {
class Graph;
struct Profile;
namespace dist {
struct GradSyncStats;
}
struct MemoryReport;
}

namespace lldl::py_bind {
void bind_seed(pybind11::module_& m);   // NeuralNetwork2, Layer2, Trainer and enums
void bind_tensor(pybind11::module_& m);  // Tensor: values, grad, operators
void bind_graph(pybind11::module_& m);   // Graph: params, inputs, backward, reset, profiling
void bind_ops(pybind11::module_& m);     // one function per op: matmul, relu, lstm, ...
void bind_optim(pybind11::module_& m);   // Optimizer
void bind_step_graph(pybind11::module_& m);  // StepGraph, Graph.capture (after Graph)
void bind_data(pybind11::module_& m);   // data set loaders
void bind_lm(pybind11::module_& m);     // GPT and LSTM language models
void bind_text(pybind11::module_& m);   // text corpus, tokenizers, token windows
void bind_gpt2_tokenizer(pybind11::module_& m);  // GPT2Tokenizer (vocab.json + merges.txt, tiktoken)
void bind_profile(pybind11::module_& m);  // measure_peak, CostModel
// A profile as {op: {"forward": {...}, "backward": {...}}} and as a table.
pybind11::dict profile_dict(const Profile& p);
std::string profile_text(const Profile& p, bool roofline);
void bind_cuda(pybind11::module_& m);   // cuda_available, cuda_status, tier
void bind_dist(pybind11::module_& m);   // cppapi.dist: init, rank, world_size, all-reduce, GradSync
// GradSync's figures as a dict (steps, buckets, comm_s, exposed_s, hidden_fraction).
pybind11::dict grad_sync_stats_dict(const dist::GradSyncStats& s);
// The Graph of a Python GPT or LSTM object (lm.cpp), or null for anything else.
Graph* lm_graph(const pybind11::handle& obj);
// A memory planner report (autograd/planner.h) as a dict of its fields.
pybind11::dict memory_report_dict(const MemoryReport& r);
}  // namespace lldl::py_bind
