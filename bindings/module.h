// Shared declarations of the cppapi module's parts (one file per area).
#pragma once
#include <pybind11/pybind11.h>

namespace lldl::py_bind {
void bind_seed(pybind11::module_& m);   // NeuralNetwork2, Layer2, Trainer and enums
void bind_graph(pybind11::module_& m);  // Graph, Tensor, ops, Optimizer
void bind_data(pybind11::module_& m);   // data set loaders
void bind_lm(pybind11::module_& m);     // GPT and LSTM language models
void bind_text(pybind11::module_& m);   // text corpus, tokenizers, token windows
}  // namespace lldl::py_bind
