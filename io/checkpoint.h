// Checkpoints: a Graph's parameters, by name, in a safetensors file; and the
// general form behind it, any named tensors of a graph (a training
// checkpoint adds the optimiser's moments to the parameters).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/graph.h"

namespace lldl {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes every parameter of g (desc(t).name -> its data) atomically, see
// save_safetensors. Parameter names must be unique.
void save_params(const Graph& g, const std::string& path,
                 const std::map<std::string, std::string>& metadata = {});

// Reads every parameter of g from the file: each must be present with the
// same shape and dtype, and the file may hold nothing else except tensors
// whose names start with skip_prefix (when it is not empty: e.g. "optim.",
// the optimiser state of a training checkpoint, which a model load ignores).
// Everything is validated before the first parameter is overwritten, so on
// any error the parameters (and *metadata) are unchanged.
void load_params(Graph& g, const std::string& path,
                 std::map<std::string, std::string>* metadata = nullptr,
                 const std::string& skip_prefix = "");

// The same for any named tensors of g (names unique), atomically.
void save_tensors(const Graph& g, const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});
// Fills every tensor of `tensors` from the file with load_params' rules
// (all present, shapes and dtypes equal, nothing else but skip_prefix names).
void load_tensors(Graph& g, const std::string& path, const NamedTensors& tensors,
                  std::map<std::string, std::string>* metadata = nullptr,
                  const std::string& skip_prefix = "");

}  // namespace lldl
