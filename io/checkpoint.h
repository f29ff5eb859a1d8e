// Checkpoints: a Graph's parameters, by name, in a safetensors file.
#pragma once
#include <map>
#include <string>

#include "autograd/graph.h"

namespace lldl {

// Writes every parameter of g (desc(t).name -> its data) atomically, see
// save_safetensors. Parameter names must be unique.
void save_params(const Graph& g, const std::string& path,
                 const std::map<std::string, std::string>& metadata = {});

// Reads every parameter of g from the file: each must be present with the
// same shape and dtype, and the file may hold nothing else. Everything is
// validated before the first parameter is overwritten, so on any error the
// parameters (and *metadata) are unchanged.
void load_params(Graph& g, const std::string& path,
                 std::map<std::string, std::string>* metadata = nullptr);

}  // namespace lldl
