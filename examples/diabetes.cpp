// Trains the seed's diabetes network with lldl's graph API:
//
//   10 features -> dense 16, sigmoid -> dense 16, sigmoid -> dense 1 -> MSE
//
// with plain SGD on the full training set each epoch (one step per epoch).
// The data are scikit-learn's packaged diabetes files, standardised with the
// training rows' mean and standard deviation; the split and the Xavier
// initialisation are seeded, so a run is reproducible.
//
//   diabetes --data-dir DIR [--epochs N] [--lr X] [--eval-every K] [--seed S]
//
// DIR holds diabetes_data_raw.csv.gz and diabetes_target.csv.gz
// (.venv/lib/python3.*/site-packages/sklearn/datasets/data).
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <type_traits>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "core/error.h"
#include "data/diabetes.h"
#include "data/split.h"

using namespace lldl;

namespace {

struct Options {
  std::string data_dir;
  // With lr 0.01 on the raw target scale the network overfits after a few
  // hundred steps (train MSE keeps falling, test MSE rises again), so the
  // default stops early; --epochs 2000 shows the whole curve.
  int64_t epochs = 200;
  float lr = 0.01f;
  int64_t eval_every = 20;
  uint64_t seed = 42;
};

const char* kUsage =
    "usage: diabetes --data-dir DIR [--epochs N] [--lr X] [--eval-every K] [--seed S]\n";

// Parses a whole argument as a number or raises ValueError naming the flag.
template <class T>
T number(const std::string& flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  T v;
  if constexpr (std::is_floating_point_v<T>) v = static_cast<T>(std::strtod(text, &end));
  else v = static_cast<T>(std::strtoll(text, &end, 10));
  if (errno || end == text || *end != '\0')
    throw ValueError(flag + ": '" + text + "' is not a number");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) throw ValueError(a + ": missing value (or unknown flag)\n" + kUsage);
    const char* v = argv[++i];
    if (a == "--data-dir") o.data_dir = v;
    else if (a == "--epochs") o.epochs = number<int64_t>(a, v);
    else if (a == "--lr") o.lr = number<float>(a, v);
    else if (a == "--eval-every") o.eval_every = number<int64_t>(a, v);
    else if (a == "--seed") o.seed = number<uint64_t>(a, v);
    else throw ValueError("unknown flag '" + a + "'\n" + kUsage);
  }
  if (o.data_dir.empty()) throw ValueError(std::string("--data-dir is required\n") + kUsage);
  if (o.epochs < 0) throw ValueError("--epochs must be >= 0");
  if (o.eval_every < 1) throw ValueError("--eval-every must be >= 1");
  return o;
}

struct Net {
  Tensor W1, b1, W2, b2, W3, b3;
};

Net make_net(Graph& g, int64_t features, uint64_t seed) {
  Net n{g.param({features, 16}, "W1"), g.param({16}, "b1"), g.param({16, 16}, "W2"),
        g.param({16}, "b2"),           g.param({16, 1}, "W3"), g.param({1}, "b3")};
  // Biases stay zero; each weight matrix gets its own stream of the seed.
  init_param(g, n.W1, Init::XavierUniform, seed + 1);
  init_param(g, n.W2, Init::XavierUniform, seed + 2);
  init_param(g, n.W3, Init::XavierUniform, seed + 3);
  return n;
}

Tensor forward(const Net& n, Tensor x) {
  Tensor h1 = sigmoid(bias_add(matmul(x, n.W1), n.b1));
  Tensor h2 = sigmoid(bias_add(matmul(h1, n.W2), n.b2));
  return bias_add(matmul(h2, n.W3), n.b3);
}

// The data stay in the caller's vectors; external() maps them for one step.
Tensor mse_on(Graph& g, const Net& n, Dataset& d) {
  Tensor x = g.external({d.rows, d.features}, d.x.data(), DType::F32);
  Tensor y = g.external({d.rows, 1}, d.y.data(), DType::F32);
  return mse_loss(forward(n, x), y);
}

double eval_mse(Graph& g, const Net& n, Dataset& d) {
  double v = g.item(mse_on(g, n, d));
  g.reset(/*keep_grads=*/true);
  return v;
}

int run(const Options& o) {
  Dataset all = load_diabetes(o.data_dir);
  Split s = train_test_split(all, 0.2, o.seed);
  Standardizer scaler;
  scaler.fit(s.train);
  scaler.transform(s.train);
  scaler.transform(s.test);
  std::printf("diabetes: %lld rows x %lld features, train %lld, test %lld; "
              "10->16 sigmoid->16 sigmoid->1, MSE, SGD lr %g, %lld epochs, seed %llu\n",
              (long long)all.rows, (long long)all.features, (long long)s.train.rows,
              (long long)s.test.rows, double(o.lr), (long long)o.epochs,
              (unsigned long long)o.seed);

  Graph g;
  Net net = make_net(g, s.train.features, o.seed);
  OptimConfig cfg;
  cfg.kind = OptimKind::SGD;
  cfg.lr = o.lr;
  Optimizer opt(g, cfg);

  std::printf("%8s %12s %12s %10s\n", "epoch", "train_mse", "test_mse", "ms");
  auto t0 = std::chrono::steady_clock::now();
  auto report = [&](int64_t epoch) {
    double tr = eval_mse(g, net, s.train), te = eval_mse(g, net, s.test);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
    std::printf("%8lld %12.2f %12.2f %10.1f\n", (long long)epoch, tr, te, ms);
    return te;
  };
  double test_mse = report(0), best = test_mse;
  int64_t best_epoch = 0;
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    g.backward(mse_on(g, net, s.train));
    opt.step();
    g.reset();  // rewinds the step's activations and zeroes the gradients
    if (epoch % o.eval_every == 0 || epoch == o.epochs) {
      test_mse = report(epoch);
      if (test_mse < best) best = test_mse, best_epoch = epoch;
    }
  }

  // Baseline: predict the training mean for every test row.
  double ybar = 0, base = 0;
  for (float y : s.train.y) ybar += y;
  ybar /= double(s.train.rows);
  for (float y : s.test.y) base += (y - ybar) * (y - ybar);
  base /= double(s.test.rows);
  std::printf("test MSE: network %.2f, predicting the train mean (%.1f) %.2f (ratio %.3f)\n",
              test_mse, ybar, base, test_mse / base);
  std::printf("lowest test MSE among the evaluations: %.2f at epoch %lld\n", best,
              (long long)best_epoch);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {  // lldl errors and bad_alloc alike
    std::fprintf(stderr, "diabetes: error: %s\n", e.what());
    return 1;
  }
}
