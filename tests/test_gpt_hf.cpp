// Hugging Face GPT-2 directories: GPT::save_pretrained / from_pretrained
// round trips, the key sets of GPT2LMHeadModel and GPT2Model, half-precision
// tensors, and every refusal (missing, extra or misshapen tensor, a config
// that contradicts the tensors, an unsupported activation, a truncated
// file). The comparison with transformers itself is tests/python/test_gpt_hf.py.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/gpt.h"
#include "tests/st_corpus.h"

using namespace lldl;
namespace fs = std::filesystem;

namespace {

GPTConfig small_cfg() {
  GPTConfig c{17, 8, 2, 2, 16};
  c.layer_norm_epsilon = 1e-6;
  return c;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lldl_hf_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
  std::string file(const std::string& n) const { return (path / n).string(); }
};

std::vector<float> logits(GPT& m) {
  std::vector<int32_t> ids = {1, 5, 16, 0, 3, 3, 9, 2};
  Tensor l = m.forward(ids.data(), 1, 8);
  const float* p = m.graph().data<float>(l);
  return std::vector<float>(p, p + m.graph().shape(l).numel());
}

// Rewrites dir/model.safetensors through `edit` on its tensors.
template <class F>
void edit_tensors(const std::string& dir, F edit) {
  std::string path = dir + "/model.safetensors";
  std::map<std::string, std::string> meta;
  std::vector<StTensor> ts = load_safetensors(path, &meta);
  edit(ts);
  std::vector<StTensorRef> refs;
  for (const StTensor& t : ts) refs.push_back({t.name, t.dtype, t.shape, t.data.data()});
  save_safetensors(path, refs, meta);
}

void replace_in_config(const std::string& dir, const std::string& from, const std::string& to) {
  std::string path = dir + "/config.json";
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "config.json has no " << from);
  s.replace(at, from.size(), to);
  std::ofstream(path) << s;
}

std::string load_error(const std::string& dir) {
  try {
    GPT::from_pretrained(dir);
  } catch (const ValueError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("gpt hf: save_pretrained then from_pretrained gives the same model") {
  TempDir d;
  GPT a(small_cfg(), 7);
  a.save_pretrained(d.str());
  CHECK(fs::exists(d.file("config.json")));
  std::unique_ptr<GPT> b = GPT::from_pretrained(d.str());
  CHECK(b->config().n_layer == 2);
  CHECK(b->config().vocab_size == 17);
  CHECK(b->config().layer_norm_epsilon == 1e-6);
  for (size_t i = 0; i < a.named_params().size(); ++i) {
    Tensor ta = a.named_params()[i].second, tb = b->named_params()[i].second;
    const int64_t n = a.graph().shape(ta).numel();
    CHECK(std::memcmp(a.graph().data<float>(ta), b->graph().data<float>(tb), n * 4) == 0);
  }
  CHECK(logits(a) == logits(*b));
  // Keys are GPT2LMHeadModel's, lm_head left to the tie, format metadata set.
  std::map<std::string, std::string> meta;
  std::vector<StTensor> ts = load_safetensors(d.file("model.safetensors"), &meta);
  CHECK(meta["format"] == "pt");
  CHECK(ts.size() == a.named_params().size());
  for (const StTensor& t : ts) CHECK(t.name.rfind("transformer.", 0) == 0);
}

TEST_CASE("gpt hf: GPT2Model keys, a stored lm_head and mask buffers load") {
  TempDir d;
  GPT a(small_cfg(), 3);
  a.save_pretrained(d.str());
  const std::vector<float> want = logits(a);
  std::vector<float> mask(64, 1.0f);
  edit_tensors(d.str(), [&](std::vector<StTensor>& ts) {
    for (StTensor& t : ts) t.name = t.name.substr(std::strlen("transformer."));
    ts.push_back({"h.0.attn.bias", DType::F32, {1, 1, 8, 8}, {}});
    ts.back().data.assign(reinterpret_cast<uint8_t*>(mask.data()), reinterpret_cast<uint8_t*>(mask.data() + 64));
  });
  CHECK(logits(*GPT::from_pretrained(d.str())) == want);

  a.save_pretrained(d.str());
  edit_tensors(d.str(), [&](std::vector<StTensor>& ts) {
    for (const StTensor& t : ts)
      if (t.name == "transformer.wte.weight") ts.push_back({"lm_head.weight", t.dtype, t.shape, t.data});
  });
  CHECK(logits(*GPT::from_pretrained(d.str())) == want);

  // An lm_head that is not wte cannot be tied.
  edit_tensors(d.str(), [&](std::vector<StTensor>& ts) {
    for (StTensor& t : ts)
      if (t.name == "lm_head.weight") t.data[5] ^= 0x40;
  });
  CHECK(load_error(d.str()).find("'lm_head.weight' differs from 'transformer.wte.weight'") != std::string::npos);
}

TEST_CASE("gpt hf: F16 and BF16 tensors are widened exactly") {
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0xC000) == -2.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(f16_to_f32(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(f16_to_f32(0x7E00)));
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(bf16_to_f32(0xC0A0) == -5.0f);
  // A file of one F16 and one BF16 tensor: refused by default, widened on request.
  std::vector<uint8_t> f = st_valid_half_file();
  CHECK_THROWS_WITH_AS(parse_safetensors(f.data(), f.size()), doctest::Contains("tensor 'a': unsupported dtype 'F16'"),
                       ValueError);
  std::vector<StTensor> ts = parse_safetensors(f.data(), f.size(), nullptr, StHalf::WidenToF32);
  REQUIRE(ts.size() == 2);
  CHECK(ts[0].dtype == DType::F32);
  REQUIRE(ts[0].data.size() == 8);
  float v[2];
  std::memcpy(v, ts[0].data.data(), 8);
  CHECK(v[0] == 1.0f);
  CHECK(v[1] == -2.0f);
  std::memcpy(v, ts[1].data.data(), 4);
  CHECK(v[0] == 1.0f);
  // The byte count is checked against 2-byte elements.
  std::vector<uint8_t> bad =
      st_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", std::vector<uint8_t>(8));
  CHECK_THROWS_WITH_AS(parse_safetensors(bad.data(), bad.size(), nullptr, StHalf::WidenToF32),
                       doctest::Contains("span 8 bytes but shape [2] of F16 needs 4"), ValueError);
}

TEST_CASE("gpt hf: bad directories are refused naming the key") {
  TempDir d;
  GPT a(small_cfg(), 5);
  auto fresh = [&] { a.save_pretrained(d.str()); };

  fresh();
  edit_tensors(d.str(), [](std::vector<StTensor>& ts) {
    std::erase_if(ts, [](const StTensor& t) { return t.name == "transformer.h.1.mlp.c_fc.bias"; });
  });
  CHECK(load_error(d.str()).find("missing tensor 'transformer.h.1.mlp.c_fc.bias'") != std::string::npos);

  fresh();
  edit_tensors(d.str(), [](std::vector<StTensor>& ts) {
    ts.push_back({"transformer.extra", DType::F32, {1}, {0, 0, 0, 0}});
  });
  CHECK(load_error(d.str()).find("unexpected tensor 'transformer.extra'") != std::string::npos);

  fresh();
  edit_tensors(d.str(), [](std::vector<StTensor>& ts) {
    for (StTensor& t : ts)
      if (t.name == "transformer.h.0.attn.c_attn.weight") t.shape = {48, 16};  // transposed
  });
  CHECK(load_error(d.str()).find("tensor 'transformer.h.0.attn.c_attn.weight' has shape [48, 16] but config.json") !=
        std::string::npos);

  fresh();
  replace_in_config(d.str(), "\"n_layer\": 2", "\"n_layer\": 3");
  std::string e = load_error(d.str());
  CHECK(e.find("missing tensor 'transformer.h.2.ln_1.weight' (config.json says n_layer 3)") != std::string::npos);

  fresh();
  replace_in_config(d.str(), "\"vocab_size\": 17", "\"vocab_size\": 50257");
  CHECK(load_error(d.str()).find("'transformer.wte.weight' has shape [17, 16] but config.json (vocab_size 50257") !=
        std::string::npos);

  fresh();
  replace_in_config(d.str(), "\"gelu_new\"", "\"relu\"");
  CHECK(load_error(d.str()).find("activation_function 'relu' is not supported") != std::string::npos);

  fresh();
  replace_in_config(d.str(), "\"gelu_new\"", "\"gelu_pytorch_tanh\"");
  CHECK_NOTHROW(GPT::from_pretrained(d.str()));

  fresh();
  replace_in_config(d.str(), "\"n_head\": 2", "\"n_head\": \"2\"");
  CHECK(load_error(d.str()).find("'n_head' must be a positive integer") != std::string::npos);

  fresh();
  fs::resize_file(d.file("model.safetensors"), fs::file_size(d.file("model.safetensors")) - 3);
  CHECK(load_error(d.str()).find("(file truncated?)") != std::string::npos);

  fresh();
  fs::remove(d.file("model.safetensors"));
  CHECK(load_error(d.str()).find("has no model.safetensors") != std::string::npos);
  fs::remove(d.file("config.json"));
  CHECK(load_error(d.str()).find("config.json': cannot be read") != std::string::npos);
  CHECK(load_error(d.file("absent")).find("is not a directory") != std::string::npos);
}
