// The study harness: sweeps op kinds over problem sizes, thread counts and
// backends, and appends one CSV row per (op, size, threads, backend, phase).
//
//   study [--quick] [--config FILE.json] [--op NAME=SIZE,SIZE ...]
//         [--threads 1,2] [--backends cpu] [--repeats N] [--warmup N]
//         [--min-time SECONDS] [--csv PATH] [--peak PATH] [--list]
//
// Each op is recorded on a Graph with random inputs (float inputs are
// parameters, so backward reaches them). A repeat runs the op k times, k
// chosen so that a repeat lasts at least --min-time, and yields the mean time
// of one call; the CSV holds the median over repeats. Phases: "forward"
// (record: shape rule, allocation, kernel), "backward" (the backward() call
// alone) and "forward_backward" (both). FLOPs and bytes are the metadata
// row's; backward counts kBackwardFactor x, forward_backward 1 + that.
//
// The whole configuration is checked before anything runs (unknown op, a
// size the op cannot take, threads < 1: an error naming it, exit 2). Rows are
// flushed one by one and the CSV is appended to, so an error during the
// sweep keeps what was measured. --peak writes the machine's measured peak
// (autograd/profiler.h) per thread count, for the report's roofline.
//
// JSON config (needs nlohmann-json at build time):
//   {"threads": [1, 2], "repeats": 5, "warmup": 1, "min_time": 0.02,
//    "backends": ["cpu"], "ops": {"matmul": ["64", "128x256x64"], "relu": [4096]}}
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/graph.h"
#include "autograd/profiler.h"
#include "backends/cuda/device.h"
#include "bench/peak.h"
#include "bench/study_ops.h"
#include "core/rng.h"
#include "core/threads.h"
#ifdef LLDL_HAVE_JSON
#include <nlohmann/json.hpp>
#endif

using namespace lldl;
using namespace lldl::study;

namespace {

struct Config {
  std::vector<std::pair<std::string, std::vector<std::string>>> ops;  // name -> size labels
  std::vector<int> threads;
  std::vector<std::string> backends;
  int repeats = 5, warmup = 1;
  double min_time = 0.02;
  std::string csv = "bench/out/study.csv", peak = "bench/out/peak.csv";
  bool quick = false;
};

// A validated unit of work.
struct Job {
  const OpEntry* entry;
  OpKind kind;
  std::string label;
  Case c;
};

const char* kHeader = "op,size,flops,bytes,threads,backend,tier,phase,median_s,gflops,gbs";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

int to_int(const std::string& s, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end) throw ValueError(std::string(what) + ": '" + s + "' is not an integer");
  return static_cast<int>(v);
}

const OpEntry* find_entry(const std::string& name) {
  for (const OpEntry& e : kStudyOps)
    if (name == e.name) return &e;
  std::string known;
  for (const OpEntry& e : kStudyOps) known += std::string(known.empty() ? "" : ", ") + e.name;
  throw ValueError("study: unknown op '" + name + "' (the study knows: " + known + ")");
}

bool in_build(const char* name) {
  for (int i = 0; i < kOpCount; ++i)
    if (std::strcmp(op_name(OpKind(i)), name) == 0) return true;
  return false;
}

Dims parse_dims(const std::string& op, const std::string& label) {
  Dims d;
  for (const std::string& p : split(label, 'x')) {
    char* end = nullptr;
    long long v = std::strtoll(p.c_str(), &end, 10);
    if (*end || v < 1)
      throw ValueError("study: " + op + " size '" + label + "': '" + p +
                       "' is not a positive integer");
    d.push_back(v);
  }
  if (d.empty()) throw ValueError("study: " + op + ": empty size");
  return d;
}

// Checks the whole configuration; every error names the entry at fault.
std::vector<Job> plan(const Config& cfg) {
  if (cfg.threads.empty()) throw ValueError("study: no thread counts");
  for (int t : cfg.threads)
    if (t < 1) throw ValueError("study: thread count must be >= 1, got " + std::to_string(t));
  if (cfg.repeats < 1 || cfg.warmup < 0 || !(cfg.min_time >= 0))
    throw ValueError("study: repeats must be >= 1, warmup >= 0 and min_time >= 0");
  for (const std::string& b : cfg.backends) {
    Backend be = Backend::Count;
    for (int i = 0; i < kBackendCount; ++i)
      if (b == backend_name(Backend(i))) be = Backend(i);
    if (be == Backend::Count) throw ValueError("study: unknown backend '" + b + "' (cpu, cuda)");
    if (!has_kernels(be, DType::F32, OpKind::MatMul))
      throw UnavailableError("study: backend '" + b + "' is not available in this build");
    if (be == Backend::CUDA && !cuda_available())
      throw UnavailableError("study: backend 'cuda' is not usable here: " + cuda_status());
  }
  std::vector<Job> jobs;
  for (const auto& [name, labels] : cfg.ops) {
    const OpEntry* e = find_entry(name);
    if (!in_build(e->name))
      throw UnavailableError("study: op '" + name + "' is not in this build");
    OpKind kind = op_from_name(e->name);
    const OpMeta& m = op_meta(kind);
    for (const std::string& label : labels) {
      Case c;
      try {
        c = e->make(parse_dims(name, label));
      } catch (const std::exception& ex) {
        throw ValueError(std::string("study: ") + name + " size '" + label + "' (" + e->layout +
                         "): " + ex.what());
      }
      if (static_cast<int>(c.shapes.size()) != m.arity)
        throw ValueError("study: " + name + " builds " + std::to_string(c.shapes.size()) +
                         " inputs, the op takes " + std::to_string(m.arity));
      try {
        m.shape(c.shapes.data(), c.attr);
      } catch (const std::exception& ex) {
        throw ShapeError("study: " + name + " cannot take size '" + label + "': " + ex.what());
      }
      jobs.push_back({e, kind, label, c});
    }
  }
  if (jobs.empty()) throw ValueError("study: no op to measure");
  return jobs;
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
  double fwd, bwd, both;
};

// Times one job at the current thread count on backend b.
Timing measure(const Job& j, Backend b, const Config& cfg) {
  Graph g(DType::F32, b);
  Rng rng(1234);
  std::vector<Tensor> in;
  for (size_t i = 0; i < j.c.shapes.size(); ++i) {
    const Shape& s = j.c.shapes[i];
    int64_t bound = i < j.c.int_bound.size() ? j.c.int_bound[i] : 0;
    // Filled on the host and copied in, so that a CUDA graph gets the same data.
    if (bound > 0) {
      Tensor t = g.buffer(s, DType::I32);
      std::vector<int32_t> h(static_cast<size_t>(s.numel()));
      for (auto& v : h) v = static_cast<int32_t>(rng.below(bound));
      g.from_host(t, h.data());
      in.push_back(t);
    } else {
      Tensor t = g.param(s);
      std::vector<float> h(static_cast<size_t>(s.numel()));
      for (auto& v : h) v = static_cast<float>(rng.uniform(-1, 1));
      g.from_host(t, h.data());
      in.push_back(t);
    }
  }
  const int n_in = static_cast<int>(in.size());
  Tensor probe = g.record(j.kind, in.data(), n_in, j.c.attr);
  // The upstream gradient lives in the graph's memory, so that backward on
  // a GPU times kernels, not a host-to-device copy of the seed.
  std::vector<float> ones(static_cast<size_t>(g.shape(probe).numel()), 1.0f);
  Tensor seed = g.buffer(g.shape(probe), DType::F32);
  g.from_host(seed, ones.data());
  g.reset(true);
  // Calls per repeat: enough for min_time, from one timed call.
  // CUDA launches are asynchronous: every reading of the clock waits for the
  // device first (sync() is a no-op on the CPU).
  auto sync = [&] {
    if (b == Backend::CUDA) cuda_synchronize();
  };
  for (int w = 0; w < 2; ++w) {  // first touch: arena blocks, cuBLAS handles, module load
    Tensor y = g.record(j.kind, in.data(), n_in, j.c.attr);
    g.backward(y, seed);
    g.reset(true);
  }
  sync();
  auto t0 = Clock::now();
  Tensor y = g.record(j.kind, in.data(), n_in, j.c.attr);
  g.backward(y, seed);
  g.reset(true);
  sync();
  double one = std::max(since(t0), 1e-7);
  int k = static_cast<int>(std::clamp(cfg.min_time / one, 1.0, 100000.0));

  std::vector<double> fwd, bwd, both;
  for (int r = -cfg.warmup; r < cfg.repeats; ++r) {
    auto a = Clock::now();
    for (int i = 0; i < k; ++i) {
      g.record(j.kind, in.data(), n_in, j.c.attr);
      g.reset(true);  // keep_grads: no zeroing of the parameters' gradients
    }
    sync();
    double tf = since(a) / k, tb = 0;
    auto c = Clock::now();
    for (int i = 0; i < k; ++i) {
      Tensor out = g.record(j.kind, in.data(), n_in, j.c.attr);
      sync();
      auto d = Clock::now();
      g.backward(out, seed);
      sync();
      tb += since(d);
      g.reset(true);
    }
    sync();
    double tfb = since(c) / k;
    if (r >= 0) {
      fwd.push_back(tf);
      bwd.push_back(tb / k);
      both.push_back(tfb);
    }
  }
  return {median(fwd), median(bwd), median(both)};
}

// Opens the CSV for appending; writes the header into a new or empty file
// and refuses a file with another header.
void make_parent(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
}

std::ofstream open_csv(const std::string& path) {
  make_parent(path);
  std::string first;
  {
    std::ifstream in(path);
    if (in) std::getline(in, first);
  }
  if (!first.empty() && first != kHeader)
    throw ValueError("study: " + path + " has another header ('" + first +
                     "'); remove it or pass another --csv");
  std::ofstream out(path, std::ios::app);
  if (!out) throw ValueError("study: cannot write " + path);
  if (first.empty()) out << kHeader << "\n" << std::flush;
  return out;
}

// Rewrites the peak file with this run's thread counts, keeping the others.
void write_peaks(const std::string& path, const std::vector<int>& threads) {
  std::map<int, std::string> rows;
  {
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line) && line == "threads,gflops,gbs,load1")
      while (std::getline(in, line))
        if (!line.empty()) rows[std::atoi(line.c_str())] = line;
  }
  for (int t : threads) {
    set_num_threads(t);
    const Peak& p = measure_peak();
    double load[1] = {-1};
    getloadavg(load, 1);  // other processes on the cores stretch multi-thread timings
    char buf[128];
    std::snprintf(buf, sizeof buf, "%d,%.3f,%.3f,%.2f", t, p.gflops, p.gbs, load[0]);
    rows[t] = buf;
    std::printf("peak at %d thread(s): %.1f GFLOP/s (GEMM), %.1f GB/s (triad)\n", t, p.gflops, p.gbs);
  }
  make_parent(path);
  std::ofstream out(path);
  if (!out) throw ValueError("study: cannot write " + path);
  out << "threads,gflops,gbs,load1\n";
  for (auto& [t, line] : rows) out << line << "\n";
}

void usage() {
  std::printf("study [--quick] [--config FILE.json] [--op NAME=SIZE,SIZE ...] [--threads 1,2]\n"
              "      [--backends cpu] [--repeats N] [--warmup N] [--min-time S] [--csv PATH]\n"
              "      [--peak PATH] [--list]\nops (size layout; default sizes):\n");
  for (const OpEntry& e : kStudyOps)
    std::printf("  %-18s %-38s %s%s\n", e.name, e.layout, e.sizes,
                in_build(e.name) ? "" : "  [not in this build]");
}

void load_json(const std::string& path, Config& cfg) {
#ifdef LLDL_HAVE_JSON
  std::ifstream in(path);
  if (!in) throw ValueError("study: cannot open config " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw ValueError("study: config " + path + " is not valid JSON: " + e.what());
  }
  for (auto& [key, v] : j.items()) {
    if (key == "threads") cfg.threads = v.get<std::vector<int>>();
    else if (key == "backends") cfg.backends = v.get<std::vector<std::string>>();
    else if (key == "repeats") cfg.repeats = v.get<int>();
    else if (key == "warmup") cfg.warmup = v.get<int>();
    else if (key == "min_time") cfg.min_time = v.get<double>();
    else if (key == "csv") cfg.csv = v.get<std::string>();
    else if (key == "peak") cfg.peak = v.get<std::string>();
    else if (key == "ops") {
      for (auto& [name, sizes] : v.items()) {
        std::vector<std::string> labels;
        for (auto& s : sizes) labels.push_back(s.is_string() ? s.get<std::string>() : s.dump());
        cfg.ops.emplace_back(name, labels);
      }
    } else {
      throw ValueError("study: config " + path + ": unknown key '" + key +
                       "' (threads, backends, repeats, warmup, min_time, csv, peak, ops)");
    }
  }
#else
  (void)cfg;
  throw UnavailableError("study: built without nlohmann-json, cannot read " + path +
                         "; use the command-line flags");
#endif
}

Config parse_args(int argc, char** argv) {
  Config cfg;
  std::vector<std::pair<std::string, std::vector<std::string>>> cli_ops;
  std::string threads, backends;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw ValueError("study: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") cfg.quick = true;
    else if (a == "--list" || a == "--help") { usage(); std::exit(0); }
    else if (a == "--config") load_json(next(), cfg);
    else if (a == "--threads") threads = next();
    else if (a == "--backends") backends = next();
    else if (a == "--repeats") cfg.repeats = to_int(next(), "--repeats");
    else if (a == "--warmup") cfg.warmup = to_int(next(), "--warmup");
    else if (a == "--min-time") cfg.min_time = std::atof(next().c_str());
    else if (a == "--csv") cfg.csv = next();
    else if (a == "--peak") cfg.peak = next();
    else if (a == "--op") {
      std::string v = next();
      size_t eq = v.find('=');
      std::string name = v.substr(0, eq);
      std::vector<std::string> sizes;
      if (eq != std::string::npos) sizes = split(v.substr(eq + 1), ',');
      if (sizes.empty()) sizes = split(find_entry(name)->sizes, ' ');
      cli_ops.emplace_back(name, sizes);
    } else {
      throw ValueError("study: unknown argument '" + a + "' (--help lists them)");
    }
  }
  if (!cli_ops.empty()) cfg.ops = cli_ops;
  if (!threads.empty()) {
    cfg.threads.clear();
    for (const std::string& t : split(threads, ',')) cfg.threads.push_back(to_int(t, "--threads"));
    if (cfg.threads.empty()) throw ValueError("study: --threads is empty");
  }
  if (!backends.empty()) cfg.backends = split(backends, ',');
  if (cfg.ops.empty())  // the default sweep: every op of the table this build has
    for (const OpEntry& e : kStudyOps)
      if (in_build(e.name) && *(cfg.quick ? e.quick : e.sizes))
        cfg.ops.emplace_back(e.name, split(cfg.quick ? e.quick : e.sizes, ' '));
  if (cfg.threads.empty()) {
    int procs = std::max(1, omp_get_num_procs());
    for (int t = 1; t < procs; t *= 2) cfg.threads.push_back(t);
    cfg.threads.push_back(procs);
  }
  if (cfg.backends.empty())
    for (int i = 0; i < kBackendCount; ++i)
      if (has_kernels(Backend(i), DType::F32, OpKind::MatMul) &&
          (Backend(i) != Backend::CUDA || cuda_available()))  // built, and a device present
        cfg.backends.push_back(backend_name(Backend(i)));
  if (cfg.quick) {
    cfg.repeats = std::min(cfg.repeats, 3);
    cfg.min_time = std::min(cfg.min_time, 0.005);
  }
  return cfg;
}

int run(int argc, char** argv) {
  Config cfg;
  std::vector<Job> jobs;
  try {
    cfg = parse_args(argc, argv);
    jobs = plan(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "study: configuration error: %s\n", e.what());
    return 2;
  }
  std::ofstream csv = open_csv(cfg.csv);
  write_peaks(cfg.peak, cfg.threads);
  int rows = 0;
  // The CPU runs at every thread count; the GPU once per kernel tier (naive,
  // fast) at the first thread count (host threads only launch its kernels).
  struct Target {
    Backend b;
    std::string name, tier;
  };
  std::vector<Target> targets;
  for (const std::string& bname : cfg.backends) {
    if (bname == "cuda") {
      targets.push_back({Backend::CUDA, bname, "naive"});
      targets.push_back({Backend::CUDA, bname, "fast"});
    } else {
      targets.push_back({Backend::CPU, bname, "cpu"});
    }
  }
  for (const Job& j : jobs)
    for (const Target& tg : targets) {
      const Backend b = tg.b;
      if (b == Backend::CUDA)
        set_cuda_tier(tg.tier == "naive" ? CudaTier::Naive : CudaTier::Fast);
      const OpMeta& m = op_meta(j.kind);
      Shape out = m.shape(j.c.shapes.data(), j.c.attr);
      const double flops = m.flops(j.c.shapes.data(), out, j.c.attr);
      const double bytes = m.bytes(j.c.shapes.data(), out, j.c.attr);
      std::vector<int> threads = cfg.threads;
      if (b == Backend::CUDA) threads.resize(1);
      for (int t : threads) {
        set_num_threads(t);
        Timing tm = measure(j, b, cfg);
        struct {
          const char* phase;
          double k, s;
        } ph[] = {{"forward", 1.0, tm.fwd},
                  {"backward", kBackwardFactor, tm.bwd},
                  {"forward_backward", 1.0 + kBackwardFactor, tm.both}};
        for (auto& p : ph) {
          char line[512];
          std::snprintf(line, sizeof line, "%s,%s,%.6g,%.6g,%d,%s,%s,%s,%.6g,%.6g,%.6g\n",
                        m.name, j.label.c_str(), p.k * flops, p.k * bytes, t, tg.name.c_str(),
                        tg.tier.c_str(), p.phase, p.s, p.k * flops / p.s * 1e-9,
                        p.k * bytes / p.s * 1e-9);
          csv << line << std::flush;
          ++rows;
        }
        std::printf("%-10s %-20s %-4s %-5s %2d thr  fwd %10.3f us  bwd %10.3f us  (%.2f GFLOP/s)\n",
                    m.name, j.label.c_str(), tg.name.c_str(), tg.tier.c_str(), t, tm.fwd * 1e6,
                    tm.bwd * 1e6, flops / tm.fwd * 1e-9);
        std::fflush(stdout);
      }
    }
  std::printf("study: %d rows appended to %s\n", rows, cfg.csv.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "study: error (rows written so far are kept): %s\n", e.what());
    return 1;
  }
}
