// lldl-gpt: train a small GPT (or the char-LSTM) on text and sample from it.
//
//   lldl-gpt train --data PATH... --steps N --out CKPT [model and optimiser flags]
//   lldl-gpt train --data PATH... --resume CKPT --out CKPT   (continues the same run exactly)
//   lldl-gpt sample --ckpt CKPT --prompt TEXT --tokens N [--temperature T --top-k K --top-p P
//                   --seed S --batch B]
//   lldl-gpt export --ckpt CKPT --out DIR     (a Hugging Face GPT-2 directory)
//   scripts/mpirun.sh -np N lldl-gpt train ...  (data-parallel: N ranks, each at --batch,
//                                               so a step sees N x batch windows)
//
// `train --from DIR` starts from a Hugging Face GPT-2 directory (config.json +
// model.safetensors) instead of a fresh model.
//
// A --data PATH that is a directory is read as fortune files (entries split
// on '%' lines, e.g. /usr/share/games/fortunes); a file is read as plain text.
// The tokenizer (characters by default) travels inside the checkpoint's
// metadata, so `sample` needs nothing but the checkpoint.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/cuda/device.h"
#include "core/error.h"
#include "core/threads.h"
#include "dist/comm.h"
#include "io/safetensors.h"
#include "models/gpt.h"
#include "models/lm_train.h"
#include "models/lstm_lm.h"
#include "text/bpe.h"
#include "text/fortunes.h"
#include "text/io.h"
#include "text/tokenizer.h"

using namespace lldl;

namespace {

const char* kUsage =
    "usage:\n"
    "  lldl-gpt train --data PATH... --steps N --out CKPT [options]\n"
    "      --model gpt|lstm (gpt)   --tokenizer char|byte|bpe (char)  --bpe-vocab N (512)\n"
    "      --n-layer N (4) --n-head N (4) --n-embd N (128) --block N (128)     [gpt]\n"
    "      --init gpt2-124m (12 layers, 12 heads, 768, 1024 positions, vocab 50257) [gpt]\n"
    "      --lstm-embd N (64) --lstm-hidden N (256)                            [lstm]\n"
    "      --batch N (16) --grad-accum N (1) --lr X (1e-3) --min-lr X (lr/10) --warmup N (100)\n"
    "      --weight-decay X (0.1) --grad-clip X (1.0) --eval-every N (100) --eval-batches N (16)\n"
    "      --ckpt-every N (0: at the end) --val-fraction X (0.05) --seed N (1337) --threads N\n"
    "      --resume CKPT (a training checkpoint: continue its run) --stop-at N (stop after step N)\n"
    "      --loss-log FILE (append 'step loss lr' per step) --quiet --plan-memory 0|1 (1)\n"
    "      --precision fp32|bf16 (fp32; bf16: matmul and linear products with bf16 operands,\n"
    "                             float32 accumulation, weights and optimiser state)\n"
    "      --cuda-graph (GPT: each step one CUDA graph replay on --device cuda, the eager step on\n"
    "      the CPU; same losses; needs --grad-accum 1; memory planning off)\n"
    "      --from DIR (start from a Hugging Face GPT-2 directory)                [gpt]\n"
    "      --device cpu|cuda (cpu)  --tf32 (cuda GEMMs in TF32; with --precision bf16 on cuda\n"
    "      every GEMM, attention's too, multiplies bf16 copies of its operands)\n"
    "  lldl-gpt sample --ckpt CKPT --prompt TEXT --tokens N [--temperature X (0.8)]\n"
    "      [--top-k N (40)] [--top-p X (1.0)] [--seed N (1)] [--batch N (1)] [--threads N]\n"
    "      [--device cpu|cuda] [--tf32]\n"
    "      [--precision fp32|bf16|int8 (fp32): weight format for generation on the cpu;\n"
    "                   on cuda fp32|bf16, the GEMMs' operands]                  [gpt]\n"
    "  lldl-gpt export --ckpt CKPT --out DIR   (config.json + model.safetensors for transformers)\n"
    "      [--precision fp32|bf16 (fp32): tensor dtype of model.safetensors]\n";

[[noreturn]] void usage_error(const std::string& msg) {
  throw ValueError("lldl-gpt: " + msg + "\n" + kUsage);
}

// --flag value pairs; --data takes every following non-flag argument.
struct Args {
  std::map<std::string, std::string> kv;
  std::vector<std::string> data;
  std::vector<std::string> flags;

  Args(int argc, char** argv, int from) {
    for (int i = from; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) usage_error("unexpected argument '" + a + "'");
      std::string key = a.substr(2);
      if (key == "quiet" || key == "tf32" || key == "cuda-graph") {
        flags.push_back(key);
        continue;
      }
      if (key == "data") {
        while (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) data.push_back(argv[++i]);
        if (data.empty()) usage_error("--data needs at least one path");
        continue;
      }
      if (i + 1 >= argc) usage_error("--" + key + " needs a value");
      kv[key] = argv[++i];
    }
  }
  bool has(const std::string& k) const { return kv.count(k) > 0; }
  bool flag(const std::string& k) const {
    for (const std::string& f : flags)
      if (f == k) return true;
    return false;
  }
  std::string str(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  int64_t num(const std::string& k, int64_t def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    try {
      size_t used = 0;
      long long v = std::stoll(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    usage_error("--" + k + " must be an integer, got '" + it->second + "'");
  }
  double real(const std::string& k, double def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    try {
      size_t used = 0;
      double v = std::stod(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    usage_error("--" + k + " must be a number, got '" + it->second + "'");
  }
  void allow(std::initializer_list<const char*> known) const {
    for (const auto& [k, v] : kv) {
      bool ok = false;
      for (const char* n : known) ok |= k == n;
      if (!ok) usage_error("unknown option --" + k);
    }
  }
};

// The tokenizer named in a checkpoint's metadata, behind one interface.
struct Tokenizer {
  std::string kind;
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
  int64_t vocab = 0;
  std::map<std::string, std::string> meta;  // goes into the checkpoint
};

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) h += {d[c >> 4], d[c & 15]};
  return h;
}
std::string unhex(const std::string& h) {
  auto v = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw ValueError("checkpoint: tokenizer.vocab is not hexadecimal");
  };
  if (h.size() % 2) throw ValueError("checkpoint: tokenizer.vocab has an odd length");
  std::string s;
  for (size_t i = 0; i < h.size(); i += 2) s += static_cast<char>(v(h[i]) * 16 + v(h[i + 1]));
  return s;
}

Tokenizer make_char(const std::string& corpus) {
  auto t = std::make_shared<CharTokenizer>(corpus);
  return {"char", [t](const std::string& s) { return t->encode(s); },
          [t](const std::vector<int32_t>& ids) { return t->decode(ids); }, t->vocab_size(),
          {{"tokenizer", "char"}, {"tokenizer.vocab", hex(t->vocab())}}};
}
Tokenizer make_byte() {
  auto t = std::make_shared<ByteTokenizer>();
  return {"byte", [t](const std::string& s) { return t->encode(s); },
          [t](const std::vector<int32_t>& ids) { return t->decode(ids); }, 256,
          {{"tokenizer", "byte"}}};
}
// The BPE file format is text; it is stored whole in the metadata.
Tokenizer make_bpe(BpeTokenizer bpe, const std::string& file_text) {
  auto t = std::make_shared<BpeTokenizer>(std::move(bpe));
  return {"bpe", [t](const std::string& s) { return t->encode(s); },
          [t](const std::vector<int32_t>& ids) { return t->decode(ids); }, t->vocab_size(),
          {{"tokenizer", "bpe"}, {"tokenizer.bpe", file_text}}};
}
std::string temp_path(const std::string& near) {
  return near + ".tok." + std::to_string(::getpid());
}
Tokenizer train_bpe(const std::string& corpus, int vocab, const std::string& out) {
  BpeTokenizer bpe = BpeTokenizer::train(corpus, vocab);
  std::string tmp = temp_path(out);
  bpe.save(tmp);
  std::string text = read_file(tmp, "bpe");
  std::remove(tmp.c_str());
  return make_bpe(std::move(bpe), text);
}

Tokenizer tokenizer_from_metadata(const std::map<std::string, std::string>& m,
                                  const std::string& ckpt) {
  auto it = m.find("tokenizer");
  std::string kind = it == m.end() ? "" : it->second;
  auto field = [&](const char* k) {
    auto f = m.find(k);
    if (f == m.end()) throw ValueError("checkpoint " + ckpt + ": metadata has no '" + k + "'");
    return f->second;
  };
  if (kind == "char") return make_char(unhex(field("tokenizer.vocab")));
  if (kind == "byte") return make_byte();
  if (kind == "bpe") {
    std::string tmp = temp_path(ckpt);
    write_file(tmp, field("tokenizer.bpe"), "bpe");
    try {
      BpeTokenizer b = BpeTokenizer::load(tmp);
      std::remove(tmp.c_str());
      return make_bpe(std::move(b), field("tokenizer.bpe"));
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
  }
  throw ValueError("checkpoint " + ckpt + ": unknown tokenizer '" + kind + "'");
}

void read_corpus(const std::vector<std::string>& paths, std::vector<std::string>* entries) {
  for (const std::string& p : paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) throw ValueError("--data: no such file or directory: " + p);
    if (S_ISDIR(st.st_mode)) {
      for (std::string& e : load_fortunes(p)) entries->push_back(std::move(e));
    } else {
      // A plain text file: fortune-style '%' separators split it into
      // entries when present; otherwise it is one entry.
      std::vector<std::string> es = corpus_entries(read_file(p, "--data"));
      for (std::string& e : es) entries->push_back(std::move(e));
    }
  }
  if (entries->empty()) throw ValueError("--data: empty corpus (no text in " + paths[0] + ")");
}

// --device, --tf32 and --precision: where the model runs and, on cuda, the
// GEMM precision of the CUDA backend (backends/cuda/device.h); --tf32 needs
// --device cuda.
Backend device_flags(const Args& a) {
  const std::string d = a.str("device", "cpu"), prec = a.str("precision", "fp32");
  if (d != "cpu" && d != "cuda") usage_error("--device must be cpu or cuda, got '" + d + "'");
  const Backend b = d == "cuda" ? Backend::CUDA : Backend::CPU;
  if (b == Backend::CPU && a.flag("tf32")) usage_error("--tf32 needs --device cuda");
  // On the cpu, --precision is the command's own (train: bf16 products;
  // sample: the weight format), checked there.
  if (b == Backend::CUDA) {
    if (prec != "fp32" && prec != "bf16")
      usage_error("--precision on --device cuda must be fp32 or bf16, got '" + prec + "'");
    if (!cuda_available())
      throw UnavailableError("--device cuda: CUDA is not available (" + cuda_status() + ")");
    set_cuda_tf32(a.flag("tf32"));
    set_cuda_bf16_gemm(prec == "bf16");
    std::fprintf(stderr, "device: %s; GEMMs in %s\n", cuda_status().c_str(),
                 prec == "bf16" ? "bf16 (float accumulation)" : a.flag("tf32") ? "tf32" : "fp32");
  }
  return b;
}

// The settings given on the command line over `c` (defaults, or a resumed
// run's own settings).
void train_flags(const Args& a, LMTrainConfig& c) {
  c.steps = a.num("steps", c.steps);
  c.batch = a.num("batch", c.batch);
  c.grad_accum = a.num("grad-accum", c.grad_accum);
  c.seq = a.num("block", c.seq);
  c.lr = a.real("lr", c.lr);
  c.min_lr = a.real("min-lr", a.has("lr") && !a.has("min-lr") ? c.lr / 10 : c.min_lr);
  c.warmup = a.num("warmup", c.warmup);
  c.weight_decay = a.real("weight-decay", c.weight_decay);
  c.grad_clip = a.real("grad-clip", c.grad_clip);
  c.seed = static_cast<uint64_t>(a.num("seed", static_cast<int64_t>(c.seed)));
  c.eval_every = a.num("eval-every", c.eval_every);
  c.eval_batches = a.num("eval-batches", c.eval_batches);
  c.ckpt_every = a.num("ckpt-every", c.ckpt_every);
  c.stop_at = a.num("stop-at", 0);
  c.out = a.str("out", "");
  c.loss_log = a.str("loss-log", "");
  c.resume = a.str("resume", "");
  c.precision = a.str("precision", c.precision);
  c.progress = !a.flag("quiet");
  const int64_t plan = a.num("plan-memory", 1);
  if (plan != 0 && plan != 1) usage_error("--plan-memory must be 0 or 1");
  c.plan_memory = plan == 1;
  c.cuda_graph = a.flag("cuda-graph");
}

GPTConfig gpt_config(const Args& a, int64_t vocab, int64_t seq) {
  GPTConfig g;
  std::string init = a.str("init", "");
  if (init == "gpt2-124m") {
    // GPT-2 small. The tokenizer's ids must fit its vocabulary; a smaller
    // tokenizer leaves the rest of the 50257 rows unused.
    g = GPTConfig{50257, 1024, 12, 12, 768};
    if (vocab > g.vocab_size)
      usage_error("--init gpt2-124m: the tokenizer's vocabulary (" + std::to_string(vocab) +
                  ") is larger than GPT-2's 50257");
    if (seq > g.block_size) usage_error("--block " + std::to_string(seq) + " is longer than GPT-2's 1024 positions");
  } else if (!init.empty()) {
    usage_error("--init must be gpt2-124m, got '" + init + "'");
  } else {
    g.vocab_size = vocab;
    g.block_size = seq;
  }
  g.n_layer = a.num("n-layer", g.n_layer);
  g.n_head = a.num("n-head", g.n_head);
  g.n_embd = a.num("n-embd", g.n_embd);
  return g;
}

void print_memory(const LMTrainLog& log) {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  const double mib = 1024.0 * 1024.0;
  const MemoryReport& r = log.step_memory;
  std::printf("memory: step planned %.1f MiB (unplanned %.1f MiB, live lower bound %.1f MiB), "
              "persistent %.1f MiB (parameters, gradients, AdamW moments), peak RSS %.1f MiB\n",
              r.peak_planned / mib, r.peak_unplanned / mib, r.max_live_bytes / mib,
              log.persistent_bytes / mib, static_cast<double>(ru.ru_maxrss) / 1024.0);
}

template <class Model>
LMTrainLog train_model(Model& m, const char* name, const std::vector<int32_t>& train,
                       const std::vector<int32_t>& val, const LMTrainConfig& c,
                       const Tokenizer& tok) {
  if (dist::rank() == 0) std::fprintf(stderr, "%s: %lld parameters\n", name, (long long)m.num_parameters());
  return train_lm(m, train, val, c, tok.meta);
}

// The GPT to train: a resumed run's, the one in --from DIR (whose config fixes
// the sizes; the block defaults to at most n_positions), or a fresh one of the
// flags' sizes.
std::unique_ptr<GPT> make_gpt(const Args& a, int64_t vocab, LMTrainConfig* c, Backend dev) {
  if (!c->resume.empty()) {
    if (a.has("from")) usage_error("--from conflicts with --resume (the checkpoint holds the model)");
    return GPT::from_checkpoint(c->resume, nullptr, dev);
  }
  if (!a.has("from")) return std::make_unique<GPT>(gpt_config(a, vocab, c->seq), c->seed, dev);
  for (const char* k : {"n-layer", "n-head", "n-embd", "init"})
    if (a.has(k)) usage_error(std::string("--") + k + " conflicts with --from (the directory's config.json sets it)");
  std::unique_ptr<GPT> m = GPT::from_pretrained(a.str("from", ""), dev);
  const GPTConfig& g = m->config();
  if (!a.has("block")) c->seq = std::min(c->seq, g.block_size);
  if (c->seq > g.block_size)
    usage_error("--block " + std::to_string(c->seq) + " exceeds the model's n_positions " +
                std::to_string(g.block_size));
  if (vocab > g.vocab_size)
    usage_error("the tokenizer has " + std::to_string(vocab) + " tokens but the model in --from has only " +
                std::to_string(g.vocab_size));
  return m;
}

int cmd_train(const Args& a) {
  a.allow({"steps", "out", "model", "tokenizer", "bpe-vocab", "n-layer", "n-head", "n-embd",
           "block", "lstm-embd", "lstm-hidden", "batch", "grad-accum", "lr", "min-lr", "warmup",
           "weight-decay", "grad-clip", "eval-every", "eval-batches", "ckpt-every",
           "val-fraction", "seed", "threads", "init", "resume", "stop-at", "loss-log", "from",
           "device", "precision", "plan-memory"});
  if (a.data.empty()) usage_error("train needs --data PATH...");
  if (!a.has("out")) usage_error("train needs --out CKPT");
  if (a.has("threads")) set_num_threads(static_cast<int>(a.num("threads", 1)));
  // Under mpirun: one rank of a data-parallel job (models/lm_train.h); rank 0
  // alone prints and writes the checkpoint.
  dist::init();
  const bool lead = dist::rank() == 0;
  const Backend dev = device_flags(a);
  std::vector<std::string> entries;
  read_corpus(a.data, &entries);
  LMTrainConfig c;
  c.world = dist::world_size();
  c.min_lr = c.lr / 10;
  std::map<std::string, std::string> resumed;  // the checkpoint's metadata when resuming
  if (a.has("resume")) {
    load_safetensors(a.str("resume", ""), &resumed);
    c = c.with_metadata(resumed);
  }
  train_flags(a, c);
  TextSplit split = split_corpus(entries, a.real("val-fraction", 0.05), a.num("seed", 1337));
  std::string kind = a.str("tokenizer", "char");
  Tokenizer tok = !resumed.empty() ? tokenizer_from_metadata(resumed, c.resume)
                  : kind == "char" ? make_char(split.train + split.val)
                  : kind == "byte" ? make_byte()
                  : kind == "bpe"  ? train_bpe(split.train, static_cast<int>(a.num("bpe-vocab", 512)),
                                               a.str("out", ""))
                                   : (usage_error("--tokenizer must be char, byte or bpe"), make_byte());
  std::vector<int32_t> train = tok.encode(split.train), val = tok.encode(split.val);
  std::string model = !resumed.empty() ? resumed["lldl.model"] : a.str("model", "gpt");
  if (a.has("from") && model != "gpt") usage_error("--from needs --model gpt");
  if (lead)
    std::fprintf(stderr, "corpus: %zu entries, %zu train / %zu val tokens, %s tokenizer (vocab %lld)%s\n",
                 entries.size(), train.size(), val.size(), tok.kind.c_str(), (long long)tok.vocab,
                 c.world > 1 ? (", " + std::to_string(c.world) + " ranks x batch " + std::to_string(c.batch) +
                                " = global batch " + std::to_string(c.world * c.batch)).c_str() : "");
  LMTrainLog log;
  if (model == "gpt") {
    std::unique_ptr<GPT> m = make_gpt(a, tok.vocab, &c, dev);
    log = train_model(*m, "gpt", train, val, c, tok);
  } else if (model == "lstm") {
    LSTMConfig l;
    l.vocab_size = tok.vocab;
    l.n_embd = a.num("lstm-embd", 64);
    l.n_hidden = a.num("lstm-hidden", 256);
    auto m = !resumed.empty() ? LSTMLM::from_checkpoint(c.resume, nullptr, dev)
                              : std::make_unique<LSTMLM>(l, c.seed, dev);
    log = train_model(*m, "lstm", train, val, c, tok);
  } else {
    usage_error("--model must be gpt or lstm, got '" + model + "'");
  }
  if (!lead) return 0;
  const int64_t done = log.first_step + static_cast<int64_t>(log.train_loss.size());
  std::printf("trained %lld steps: final train loss %.4f, val loss %.4f nats/token, %.0f tokens/s\n",
              (long long)done, log.train_loss.empty() ? -1.0 : log.train_loss.back(),
              log.val_loss.empty() ? -1.0 : log.val_loss.back(), log.tokens_per_s);
  if (log.step_seconds.size() > 1) {
    // Without the first step (allocation, library start-up): the steady rate.
    std::vector<double> t(log.step_seconds.begin() + 1, log.step_seconds.end());
    std::sort(t.begin(), t.end());
    const double med = t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
    std::printf("steady: %.1f tokens/s (median step %.6f s, min %.6f, max %.6f, over %zu steps after the first)\n",
                double(c.batch * c.seq * c.grad_accum) / med, med, t.front(), t.back(), t.size());
  }
  print_memory(log);
  if (c.world > 1 && log.comm.steps > 0)
    std::printf("communication (rank 0): gradient all-reduce %.2f ms/step in %lld buckets, %.2f ms/step "
                "waited after backward (%.0f%% hidden under backward)\n",
                1e3 * log.comm.comm_s / double(log.comm.steps),
                (long long)(log.comm.buckets / log.comm.steps), 1e3 * log.comm.exposed_s / double(log.comm.steps),
                100.0 * log.comm.hidden_fraction());
  std::printf("checkpoint: %s\n", c.out.c_str());
  return 0;
}

int cmd_sample(const Args& a) {
  a.allow({"ckpt", "prompt", "tokens", "temperature", "top-k", "top-p", "seed", "threads", "batch",
           "device", "precision"});
  if (!a.has("ckpt")) usage_error("sample needs --ckpt CKPT");
  if (!a.has("prompt")) usage_error("sample needs --prompt TEXT");
  if (a.has("threads")) set_num_threads(static_cast<int>(a.num("threads", 1)));
  const Backend dev = device_flags(a);
  std::string path = a.str("ckpt", "");
  std::map<std::string, std::string> meta;
  load_safetensors(path, &meta);
  Tokenizer tok = tokenizer_from_metadata(meta, path);
  std::string prompt = a.str("prompt", "");
  if (prompt.empty()) throw ValueError("--prompt is empty (give at least one character)");
  std::vector<int32_t> ids = tok.encode(prompt);
  int64_t n = a.num("tokens", 200);
  float temp = static_cast<float>(a.real("temperature", 0.8));
  int64_t top_k = a.num("top-k", 40);
  uint64_t seed = static_cast<uint64_t>(a.num("seed", 1));
  float top_p = static_cast<float>(a.real("top-p", 1.0));
  int64_t batch = a.num("batch", 1);
  if (batch < 1) usage_error("--batch must be >= 1, got " + std::to_string(batch));
  std::vector<std::vector<int32_t>> outs;
  const std::string precision = a.str("precision", "fp32");
  weight_format_from_name(precision);  // an unknown name fails before the model loads
  if (meta["lldl.model"] == "lstm") {
    if (top_p != 1.0f) usage_error("--top-p is for gpt checkpoints");
    if (precision != "fp32") usage_error("--precision is for gpt checkpoints");
    if (dev != Backend::CPU) usage_error("lstm checkpoints sample on the cpu (--device cpu)");
    auto m = LSTMLM::from_checkpoint(path);
    for (int64_t b = 0; b < batch; ++b)
      outs.push_back(m->generate(ids, n, temp, std::min(top_k, tok.vocab), seed + b));
  } else {
    // Only the tokenizer's ids are sampled: a model may have more rows
    // (--init gpt2-124m with a smaller tokenizer).
    auto m = GPT::from_checkpoint(path, nullptr, dev);
    // The packed weight formats are CPU kernels; on cuda --precision picked the GEMMs' operands.
    if (dev == Backend::CPU) m->set_inference_precision(precision);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(batch), ids);
    outs = m->generate_batch(prompts, n, temp, std::min(top_k, tok.vocab), seed, top_p,
                             std::min(tok.vocab, m->config().vocab_size));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "generated %lld tokens x %lld sequences in %.3f s: %.1f tokens/s (%s)\n",
                 (long long)n, (long long)batch, secs, secs > 0 ? double(n * batch) / secs : 0.0,
                 backend_name(dev));
  }
  for (size_t b = 0; b < outs.size(); ++b) {
    std::string text = tok.decode(outs[b]);
    if (outs.size() > 1) std::printf("--- sample %zu\n", b);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
  }
  return 0;
}

// A GPT checkpoint of lldl as a Hugging Face GPT-2 directory.
int cmd_export(const Args& a) {
  a.allow({"ckpt", "out", "precision"});
  if (!a.has("ckpt")) usage_error("export needs --ckpt CKPT");
  if (!a.has("out")) usage_error("export needs --out DIR");
  std::string path = a.str("ckpt", ""), dir = a.str("out", "");
  std::map<std::string, std::string> meta;
  load_safetensors(path, &meta);
  if (meta["lldl.model"] != "gpt")
    throw ValueError("export: " + path + " is not a GPT checkpoint (lldl.model '" + meta["lldl.model"] + "')");
  GPT::from_checkpoint(path)->save_pretrained(dir, a.str("precision", "fp32"));
  std::printf("exported %s to %s (config.json, model.safetensors)\n", path.c_str(), dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) usage_error("missing command");
    std::string cmd = argv[1];
    Args a(argc, argv, 2);
    if (cmd == "train") return cmd_train(a);
    if (cmd == "sample") return cmd_sample(a);
    if (cmd == "export") return cmd_export(a);
    usage_error("unknown command '" + cmd + "'");
  } catch (const std::exception& e) {
    if (lldl::dist::world_size() > 1) {
      // The other ranks may be waiting in a collective this rank never
      // reaches: end the whole job rather than leave them to time out.
      std::fprintf(stderr, "rank %d: %s\n", lldl::dist::rank(), e.what());
      lldl::dist::abort_job(2);
    }
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
