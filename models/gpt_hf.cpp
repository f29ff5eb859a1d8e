// GPT::from_pretrained / save_pretrained: Hugging Face GPT-2 directories.
//
// A directory holds config.json (io/hf_config.h) and model.safetensors. The
// tensor names are GPT-2's state dict, which lldl's parameters already use:
// GPT2Model writes them bare ("h.0.attn.c_attn.weight"), GPT2LMHeadModel
// under "transformer." plus "lm_head.weight", the tied copy of wte that
// transformers usually leaves out of the file (a shared tensor is stored
// once) but may store. Conv1D weights are (in, out) in both, as here, so
// every tensor is copied as it is, F16 / BF16 widened exactly to F32.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "models/gpt.h"

namespace lldl {
namespace {

namespace fs = std::filesystem;

const std::string kPrefix = "transformer.", kHead = "lm_head.weight";

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// The layer index i of "h.<i>.<rest>" (and <rest> in *rest); -1 otherwise.
int64_t layer_of(const std::string& name, std::string* rest = nullptr) {
  if (!starts_with(name, "h.")) return -1;
  size_t dot = name.find('.', 2);
  if (dot == std::string::npos || dot == 2 || dot > 12) return -1;
  int64_t i = 0;
  for (size_t k = 2; k < dot; ++k) {
    if (name[k] < '0' || name[k] > '9') return -1;
    i = i * 10 + (name[k] - '0');
  }
  if (rest) *rest = name.substr(dot + 1);
  return i;
}

// The attention mask buffers older transformers saved with the weights.
bool is_mask_buffer(const std::string& name, int64_t n_layer) {
  std::string rest;
  int64_t i = layer_of(name, &rest);
  return i >= 0 && i < n_layer && (rest == "attn.bias" || rest == "attn.masked_bias");
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Why a tensor of layer i is missing or extra when the config disagrees.
std::string layer_hint(const std::string& name, const GPTConfig& c) {
  return layer_of(name) >= 0 ? " (config.json says n_layer " + std::to_string(c.n_layer) + ")" : "";
}

std::string config_sizes(const GPTConfig& c) {
  return "config.json (vocab_size " + std::to_string(c.vocab_size) + ", n_positions " +
         std::to_string(c.block_size) + ", n_embd " + std::to_string(c.n_embd) + ")";
}

std::string model_file(const std::string& dir, const std::string& where) {
  std::string st = dir + "/model.safetensors";
  if (fs::exists(st)) return st;
  if (fs::exists(dir + "/model.safetensors.index.json"))
    throw ValueError(where + "sharded checkpoints (model.safetensors.index.json) are not supported");
  if (fs::exists(dir + "/pytorch_model.bin"))
    throw ValueError(where + "has pytorch_model.bin but no model.safetensors (lldl reads only safetensors; "
                             "re-save with safe_serialization=True)");
  throw ValueError(where + "has no model.safetensors");
}

// Matches the file's tensors to the model's parameters; every problem is
// collected so that one error lists them all.
struct Matcher {
  const GPTConfig& cfg;
  std::map<std::string, Tensor> params;  // bare name -> parameter
  std::map<std::string, const StTensor*> found;
  const StTensor* head = nullptr;
  bool prefixed = false;  // GPT2LMHeadModel's keys
  std::vector<std::string> problems;

  std::string key(const std::string& bare) const { return (prefixed ? kPrefix : "") + bare; }

  void match(const std::vector<StTensor>& file, const Graph& g) {
    for (const StTensor& f : file) prefixed |= starts_with(f.name, kPrefix);
    // Embeddings and ln_f first, then layer by layer: the first problems
    // listed are the telling ones (a wrong vocab_size shows on wte).
    std::vector<const StTensor*> order;
    for (const StTensor& f : file) order.push_back(&f);
    auto rank = [&](const StTensor* f) {
      std::string bare = starts_with(f->name, kPrefix) ? f->name.substr(kPrefix.size()) : f->name;
      return std::make_pair(layer_of(bare), f->name);
    };
    std::sort(order.begin(), order.end(), [&](auto* a, auto* b) { return rank(a) < rank(b); });
    for (const StTensor* fp : order) {
      const StTensor& f = *fp;
      if (f.name == kHead) {
        head = &f;
        continue;
      }
      if (prefixed && !starts_with(f.name, kPrefix)) {
        problems.push_back("unexpected tensor '" + f.name + "' (the other keys are GPT2LMHeadModel's, under '" +
                           kPrefix + "')");
        continue;
      }
      std::string bare = prefixed ? f.name.substr(kPrefix.size()) : f.name;
      if (is_mask_buffer(bare, cfg.n_layer)) continue;
      auto it = params.find(bare);
      if (it == params.end()) {
        problems.push_back("unexpected tensor '" + f.name + "'" + layer_hint(bare, cfg));
        continue;
      }
      if (check(f, g.shape(it->second))) found[bare] = &f;
    }
    if (!found.count("wte.weight") && head && check(*head, g.shape(params.at("wte.weight"))))
      found["wte.weight"] = head;  // only the tied copy was stored
    else if (head)
      check_tied(g);
    for (const auto& [bare, t] : params)
      if (!found.count(bare)) problems.push_back("missing tensor '" + key(bare) + "'" + layer_hint(bare, cfg));
  }

  bool check(const StTensor& f, const Shape& want) {
    std::vector<int64_t> w(want.d, want.d + want.ndim);
    if (f.dtype != DType::F32) {
      problems.push_back("tensor '" + f.name + "' is " + st_dtype_name(f.dtype) +
                         " (GPT-2 weights are read from F32, F16 or BF16)");
      return false;
    }
    if (f.shape != w) {
      problems.push_back("tensor '" + f.name + "' has shape " + shape_str(f.shape) + " but " +
                         config_sizes(cfg) + " implies " + shape_str(w));
      return false;
    }
    return true;
  }

  // A stored lm_head must be the very same matrix as wte: lldl ties them.
  void check_tied(const Graph& g) {
    auto it = found.find("wte.weight");
    if (it == found.end() || !check(*head, g.shape(params.at("wte.weight")))) return;
    if (head->data != it->second->data)
      problems.push_back("tensor '" + kHead + "' differs from '" + key("wte.weight") +
                         "', but lldl's GPT ties them (tie_word_embeddings)");
  }
};

std::string join_problems(const std::vector<std::string>& p) {
  std::string s;
  const size_t shown = std::min<size_t>(p.size(), 8);
  for (size_t i = 0; i < shown; ++i) s += (i ? "; " : "") + p[i];
  if (p.size() > shown) s += "; and " + std::to_string(p.size() - shown) + " more";
  return s;
}

}  // namespace

std::unique_ptr<GPT> GPT::from_pretrained(const std::string& dir, Backend backend) {
  const std::string where = "GPT.from_pretrained: '" + dir + "': ";
  if (!fs::is_directory(dir)) throw ValueError(where + "is not a directory");
  HfGpt2Config hc = read_hf_gpt2_config(dir + "/config.json");
  GPTConfig c;
  c.vocab_size = hc.vocab_size;
  c.block_size = hc.n_positions;
  c.n_layer = hc.n_layer;
  c.n_head = hc.n_head;
  c.n_embd = hc.n_embd;
  c.layer_norm_epsilon = hc.layer_norm_epsilon;
  try {
    c.validate();
  } catch (const ValueError& e) {
    throw ValueError(where + "config.json: " + e.what());
  }
  std::vector<StTensor> file = load_safetensors(model_file(dir, where), nullptr, StHalf::WidenToF32);

  auto m = std::make_unique<GPT>(c, GPT::Uninitialised{}, backend);
  Matcher mt{c, {}, {}, nullptr, false, {}};
  for (const auto& [name, t] : m->named_params()) mt.params[name] = t;
  mt.match(file, m->graph());
  if (!mt.problems.empty()) throw ValueError(where + "model.safetensors: " + join_problems(mt.problems));
  for (const auto& [bare, f] : mt.found)
    m->graph().from_host(mt.params.at(bare), f->data.data());  // copied to device memory on CUDA
  return m;
}

void GPT::save_pretrained(const std::string& dir, const std::string& precision) const {
  const WeightFormat format = weight_format_from_name(precision);
  if (format == WeightFormat::Q8)
    throw ValueError("GPT.save_pretrained: precision must be fp32 or bf16, got 'int8' (a Hugging "
                     "Face directory holds no int8 weights)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw IOError("GPT.save_pretrained: cannot create directory '" + dir + "': " + ec.message());
  HfGpt2Config hc;
  hc.vocab_size = cfg_.vocab_size;
  hc.n_positions = cfg_.block_size;
  hc.n_layer = cfg_.n_layer;
  hc.n_head = cfg_.n_head;
  hc.n_embd = cfg_.n_embd;
  hc.layer_norm_epsilon = cfg_.layer_norm_epsilon;
  std::vector<StTensorRef> refs;
  std::vector<std::vector<uint16_t>> halves;  // bf16 copies, alive until written
  halves.reserve(params_.size());
  for (const auto& [name, t] : params_) {
    const Shape& s = g_.shape(t);
    refs.push_back({kPrefix + name, DType::F32, std::vector<int64_t>(s.d, s.d + s.ndim), g_.desc(t).data});
    if (format == WeightFormat::BF16) {
      auto& h = halves.emplace_back(static_cast<size_t>(s.numel()));
      bf16_pack_n(static_cast<const float*>(g_.desc(t).data), h.data(), s.numel());
      refs.back().data = h.data();
      refs.back().bf16 = true;
    }
  }
  // transformers refuses a safetensors file whose metadata lacks the format.
  save_safetensors(dir + "/model.safetensors", refs, {{"format", "pt"}});
  write_hf_gpt2_config(dir + "/config.json", hc);
}

}  // namespace lldl
