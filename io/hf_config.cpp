// config.json of Hugging Face GPT-2 directories (see io/hf_config.h).
#include "io/hf_config.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace lldl {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ValueError("GPT-2 config '" + path + "': " + what);
}

std::string brief(const json& v) {
  std::string s = v.dump();
  return s.size() <= 40 ? s : s.substr(0, 36) + " ...";
}

int64_t size_field(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key)) fail(path, std::string("has no '") + key + "'");
  const json& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    fail(path, std::string("'") + key + "' must be a positive integer, got " + brief(v));
  return v.get<int64_t>();
}

// The field's value if present and of type `is`, else `def`; a present field
// of another type is an error naming it.
template <class T, class Is>
T optional_field(const json& j, const char* key, T def, Is is, const char* type, const std::string& path) {
  if (!j.contains(key)) return def;
  const json& v = j[key];
  if (!(v.*is)()) fail(path, std::string("'") + key + "' must be " + type + ", got " + brief(v));
  return v.get<T>();
}

// The fields that would change GPT-2's arithmetic to something lldl's GPT
// does not compute.
void check_architecture(const json& j, const HfGpt2Config& c, const std::string& path) {
  std::string model_type = optional_field<std::string>(j, "model_type", "gpt2", &json::is_string, "a string", path);
  if (model_type != "gpt2") fail(path, "model_type is '" + model_type + "', not 'gpt2'");
  if (c.activation_function != "gelu_new" && c.activation_function != "gelu_pytorch_tanh")
    fail(path, "activation_function '" + c.activation_function +
                   "' is not supported (lldl's GPT uses the tanh GELU: 'gelu_new' or 'gelu_pytorch_tanh')");
  if (!c.tie_word_embeddings)
    fail(path, "tie_word_embeddings is false, but lldl's GPT ties lm_head to wte");
  if (j.contains("n_inner") && !j["n_inner"].is_null() &&
      !(j["n_inner"].is_number_integer() && j["n_inner"].get<int64_t>() == 4 * c.n_embd))
    fail(path, "n_inner " + brief(j["n_inner"]) + " is not supported (lldl's MLP is 4 * n_embd = " +
                   std::to_string(4 * c.n_embd) + ")");
  if (!optional_field<bool>(j, "scale_attn_weights", true, &json::is_boolean, "a boolean", path))
    fail(path, "scale_attn_weights false is not supported (lldl scales scores by 1/sqrt(head size))");
  if (optional_field<bool>(j, "scale_attn_by_inverse_layer_idx", false, &json::is_boolean, "a boolean", path))
    fail(path, "scale_attn_by_inverse_layer_idx true is not supported");
  if (optional_field<bool>(j, "add_cross_attention", false, &json::is_boolean, "a boolean", path))
    fail(path, "add_cross_attention true is not supported");
}

}  // namespace

HfGpt2Config read_hf_gpt2_config(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ValueError("GPT-2 config '" + path + "': cannot be read (missing?)");
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    fail(path, std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(path, "is not a JSON object");
  HfGpt2Config c;
  c.vocab_size = size_field(j, "vocab_size", path);
  c.n_positions = size_field(j, "n_positions", path);
  c.n_layer = size_field(j, "n_layer", path);
  c.n_head = size_field(j, "n_head", path);
  c.n_embd = size_field(j, "n_embd", path);
  c.layer_norm_epsilon = optional_field<double>(j, "layer_norm_epsilon", 1e-5, &json::is_number, "a number", path);
  if (!std::isfinite(c.layer_norm_epsilon) || c.layer_norm_epsilon < 0)
    fail(path, "layer_norm_epsilon must be finite and >= 0, got " + brief(j["layer_norm_epsilon"]));
  c.activation_function =
      optional_field<std::string>(j, "activation_function", "gelu_new", &json::is_string, "a string", path);
  c.tie_word_embeddings = optional_field<bool>(j, "tie_word_embeddings", true, &json::is_boolean, "a boolean", path);
  check_architecture(j, c, path);
  return c;
}

void write_hf_gpt2_config(const std::string& path, const HfGpt2Config& c) {
  json j = {{"architectures", {"GPT2LMHeadModel"}},
            {"model_type", "gpt2"},
            {"vocab_size", c.vocab_size},
            {"n_positions", c.n_positions},
            {"n_ctx", c.n_positions},
            {"n_layer", c.n_layer},
            {"n_head", c.n_head},
            {"n_embd", c.n_embd},
            {"n_inner", nullptr},
            {"activation_function", c.activation_function},
            {"layer_norm_epsilon", c.layer_norm_epsilon},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"scale_attn_weights", true},
            {"attn_pdrop", 0.0},
            {"embd_pdrop", 0.0},
            {"resid_pdrop", 0.0},
            {"initializer_range", 0.02},
            {"use_cache", true}};
  // GPT2Config's default token ids are GPT-2's <|endoftext|>, 50256; a smaller
  // vocabulary has no such token, and transformers warns about an id outside it.
  const json eot = c.vocab_size > 50256 ? json(50256) : json(nullptr);
  j["bos_token_id"] = eot;
  j["eos_token_id"] = eot;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw IOError("GPT-2 config '" + path + "': cannot open " + tmp + " for writing");
    f << j.dump(2) << "\n";
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw IOError("GPT-2 config '" + path + "': error while writing " + tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw IOError("GPT-2 config '" + path + "': rename from " + tmp + " failed: " + ec.message());
  }
}

}  // namespace lldl
