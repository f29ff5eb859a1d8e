// save_params / load_params: the Graph side of checkpoints.
#include "io/checkpoint.h"

#include <cstring>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_format.h"

namespace lldl {
namespace {

std::vector<int64_t> dims_of(const Shape& s) { return std::vector<int64_t>(s.d, s.d + s.ndim); }

// Tensors by name; a repeated name would make the file ambiguous.
std::map<std::string, Tensor> by_name(const NamedTensors& ts, const char* op, const std::string& path) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : ts)
    if (!out.emplace(name, t).second)
      throw ValueError(std::string(op) + ": " + st::describe(path) + ": two parameters are named '" +
                       name + "'");
  return out;
}

NamedTensors named_params(const Graph& g) {
  NamedTensors out;
  for (Tensor t : g.params()) out.emplace_back(g.desc(t).name, t);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "'" : ", '") + x + "'";
  return s;
}

}  // namespace

void save_params(const Graph& g, const std::string& path, const std::map<std::string, std::string>& metadata) {
  save_tensors(g, path, named_params(g), metadata);
}

void load_params(Graph& g, const std::string& path, std::map<std::string, std::string>* metadata,
                 const std::string& skip_prefix) {
  load_tensors(g, path, named_params(g), metadata, skip_prefix);
}

void save_tensors(const Graph& g, const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<StTensorRef> refs;
  // Device memory (a CUDA graph) is copied to the host first, tensor by
  // tensor; host memory is written from where it is.
  const bool on_host = device(g.backend()).host_memory;
  std::vector<std::vector<char>> copies;
  for (const auto& [name, t] : by_name(tensors, "save_params", path)) {
    const TensorDesc& d = g.desc(t);
    const void* data = d.data;
    if (!on_host) {
      copies.emplace_back(static_cast<size_t>(d.shape.numel()) * dtype_size(d.dtype));
      g.to_host(t, copies.back().data());
      data = copies.back().data();
    }
    refs.push_back({name, d.dtype, dims_of(d.shape), data});
  }
  save_safetensors(path, refs, metadata);
}

void load_tensors(Graph& g, const std::string& path, const NamedTensors& tensors,
                  std::map<std::string, std::string>* metadata, const std::string& skip_prefix) {
  std::map<std::string, std::string> meta;
  std::vector<StTensor> file = load_safetensors(path, &meta);
  std::map<std::string, Tensor> params = by_name(tensors, "load_params", path);

  // Validate everything first: nothing is copied unless all of it fits.
  std::vector<std::string> problems, extra;
  std::vector<std::pair<const StTensor*, Tensor>> copies;
  std::set<std::string> seen;
  for (const StTensor& f : file) {
    auto it = params.find(f.name);
    if (it == params.end()) {
      if (skip_prefix.empty() || f.name.rfind(skip_prefix, 0) != 0) extra.push_back(f.name);
      continue;
    }
    seen.insert(f.name);
    const TensorDesc& d = g.desc(it->second);
    if (f.dtype != d.dtype)
      problems.push_back("tensor '" + f.name + "' is " + st_dtype_name(f.dtype) + " in the file but the parameter is " +
                         st_dtype_name(d.dtype));
    else if (f.shape != dims_of(d.shape))
      problems.push_back("tensor '" + f.name + "' has shape " + st::shape_str(f.shape) +
                         " in the file but the parameter has " + st::shape_str(dims_of(d.shape)));
    else
      copies.emplace_back(&f, it->second);
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : params)
    if (!seen.count(name)) missing.push_back(name);
  if (!missing.empty()) problems.push_back("missing parameters " + join(missing));
  if (!extra.empty()) problems.push_back("the file has tensors that are not parameters: " + join(extra));
  if (!problems.empty()) {
    std::string msg = "load_params: " + st::describe(path) + ": ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw ValueError(msg);
  }

  for (const auto& [f, t] : copies)
    if (!f->data.empty()) g.from_host(t, f->data.data());  // a copy to device memory on CUDA
  if (metadata) *metadata = std::move(meta);
}

}  // namespace lldl
