// The seed's API: a network described as a list of layers, compiled onto the
// engine's tape, and a Trainer that fits it.
//
//   NeuralNetwork2 nn({{LayerType::Dense, 16, ActivationType::Sigmoid},
//                      {LayerType::Dense, 1, ActivationType::Linear}}, LossType::MSE);
//   Trainer trainer(nn, OptimiserType::SGD, 0.01f);
//   History h = trainer.fit(train, test, epochs, eval_every, batch_size, restart, verbose);
//
// These are descriptions, not a second engine: every forward pass records
// matmul / bias_add / activation ops on the network's Graph.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/functions.h"
#include "autograd/optim.h"
#include "dist/grad_sync.h"

namespace lldl {

enum class LayerType : uint8_t { Dense, Conv2D, MaxPool2D, AvgPool2D, Flatten, Dropout, BatchNorm };
enum class ActivationType : uint8_t { Linear, Sigmoid, Tanh, ReLU, Softmax };
enum class LossType : uint8_t { MSE, CrossEntropy };
using OptimiserType = OptimKind;

const char* layer_type_name(LayerType t);
const char* activation_name(ActivationType a);
const char* loss_name(LossType l);

// One layer. `units` is the output width of Dense and the output channels of
// Conv2D; kernel/stride/padding apply to Conv2D (stride 0 means 1) and the
// pools (stride 0 means kernel); rate is Dropout's drop probability. The
// activation is applied after the layer's op (any layer type).
struct Layer2 {
  LayerType type = LayerType::Dense;
  int64_t units = 0;
  ActivationType activation = ActivationType::Linear;
  int64_t kernel = 0, stride = 0, padding = 0;
  float rate = 0.0f;
};

// A borrowed row-major float32 matrix (rows x cols).
struct Matrix {
  const float* data = nullptr;
  int64_t rows = 0, cols = 0;
};
// Training targets: float rows (regression values, or one-hot/soft class
// probabilities) or int32 class labels (one per row; cols is 1).
struct Targets {
  const float* values = nullptr;
  const int32_t* labels = nullptr;
  int64_t rows = 0, cols = 0;
};

class NeuralNetwork2 {
 public:
  // input_shape: the shape of one sample, e.g. {1, 28, 28} for images given
  // as rows of 784 values (or (N, 1, 28, 28) arrays); empty: the feature
  // count of the first training data, for dense networks.
  NeuralNetwork2(std::vector<Layer2> layers, LossType loss, uint64_t seed = 42,
                 std::vector<int64_t> input_shape = {});

  const std::vector<Layer2>& layers() const { return layers_; }
  LossType loss() const { return loss_; }
  int64_t input_features() const { return n_in_; }   // 0 until built
  const std::vector<int64_t>& input_shape() const { return input_shape_; }
  int64_t output_features() const;
  bool built() const { return n_in_ > 0; }
  uint64_t seed() const { return seed_; }

  // Creates (or re-creates) the parameters for n_in input features with the
  // seeded initialisation (He for ReLU layers, Xavier otherwise); checks that
  // every layer fits the shape it receives (ValueError naming the layer).
  void build(int64_t n_in);
  // Records the forward pass on graph() for x (rows x input_features). When
  // `logits` is non-null it gets the pre-activation of the last layer
  // (cross-entropy works on those). `training` turns on dropout and batch
  // statistics.
  Tensor forward(Tensor x, Tensor* logits = nullptr, bool training = false);
  // Loss of a batch: cross-entropy from the logits (a final Softmax is fused
  // into the loss), MSE on the output. `output` receives what the loss was
  // computed on (logits or network output).
  Tensor loss_of(Tensor x, Tensor targets, Tensor* output = nullptr, bool training = false);
  // Network output for every row of X (rows x output_features), computed in
  // chunks; X must have input_features() columns.
  std::vector<float> predict(const Matrix& X);
  // Checks X against the built network (feature count, finite, non-empty).
  void check_input(const Matrix& X, const char* what) const;

  // Marks the network as in use (fit, predict, evaluate, reading parameters)
  // until the returned guard is destroyed. Python releases the GIL while
  // training, so a second thread could otherwise touch the same graph; it
  // gets a ValueError naming `what` instead of a data race.
  class InUse {
   public:
    explicit InUse(std::atomic<bool>* flag) : flag_(flag) {}
    InUse(InUse&& o) noexcept : flag_(std::exchange(o.flag_, nullptr)) {}
    InUse(const InUse&) = delete;
    InUse& operator=(const InUse&) = delete;
    InUse& operator=(InUse&&) = delete;
    ~InUse() {
      if (flag_) flag_->store(false);
    }

   private:
    std::atomic<bool>* flag_;
  };
  InUse claim(const char* what);

  Graph& graph() { return *graph_; }
  int64_t num_parameters() const;

  // The profiler of the network's graph (autograd/profiler.h). The setting
  // carries over when build() makes a new graph (another input size), the
  // figures do not. Before the first build the profile is empty.
  void set_profiling(bool on);
  bool profiling() const { return profiling_; }
  const Profile& profile() const;

  // Memory planning of the network's graph (Graph::set_memory_planning):
  // training and evaluation steps are served from a planned block after
  // their first run. Carries over when build() makes a new graph, like
  // profiling. memory_report() is that of the graph (zeros before a build).
  void set_memory_planning(bool on);
  bool memory_planning() const { return planning_; }
  MemoryReport memory_report() const;

 private:
  std::vector<Layer2> layers_;
  LossType loss_;
  uint64_t seed_;
  std::vector<int64_t> input_shape_;
  int64_t n_in_ = 0;
  std::unique_ptr<Graph> graph_;
  // Per layer: weight and bias (Dense, Conv2D; BatchNorm's scale and shift),
  // and BatchNorm's running statistics.
  struct LayerParams {
    Tensor w, b, running_mean, running_var;
  };
  std::vector<LayerParams> params_;
  uint64_t dropout_calls_ = 0;
  bool profiling_ = false;  // seeds a fresh dropout mask per training step
  bool planning_ = false;
  std::unique_ptr<std::atomic<bool>> busy_ = std::make_unique<std::atomic<bool>>(false);
};

struct EvalRecord {
  int64_t epoch = 0;
  double train_loss = 0, test_loss = 0;
  double train_accuracy = -1, test_accuracy = -1;  // -1 for regression
  double elapsed_s = 0;
  double samples_per_s = 0;  // training samples per second, evaluation excluded
};
using History = std::vector<EvalRecord>;

// Where progress text goes (stdout by default; Python redirects it to
// sys.stdout so notebooks show it). `line_end` is false for the in-place
// progress bar.
using TextSink = std::function<void(const std::string& text)>;

class Trainer {
 public:
  Trainer(NeuralNetwork2& nn, OptimiserType kind, float lr, OptimConfig extra = {});

  // Trains for `epochs` passes over (X, Y) in shuffled batches of
  // batch_size rows (larger than the data: one batch), evaluating on the
  // train and test sets every eval_every epochs (and after the last).
  // restart re-initialises parameters and optimiser state. verbose: 0 quiet,
  // 1 progress bar, 2 one line per evaluation. Test data may be empty
  // (rows 0) to skip test evaluation.
  // Under mpirun after dist::init() (dist/comm.h), fit is data parallel:
  // every rank passes the same data; batch_size is per rank, each step takes
  // world_size x batch_size rows of the shuffled data, rank r its r-th slice,
  // gradients are averaged over the ranks, the losses in the history are the
  // whole batches' and only rank 0 prints.
  History fit(const Matrix& X, const Targets& Y, const Matrix& Xtest, const Targets& Ytest,
              int64_t epochs, int64_t eval_every, int64_t batch_size, bool restart = true,
              int verbose = 0);

  // (loss, accuracy or -1) over a whole data set, in chunks, without training.
  std::pair<double, double> evaluate(const Matrix& X, const Targets& Y);

  void set_sink(TextSink s) { sink_ = std::move(s); }
  // Per-process stop check (Python's KeyboardInterrupt); throwing from it
  // aborts fit cleanly between batches.
  void set_interrupt_check(std::function<void()> f) { interrupt_ = std::move(f); }
  NeuralNetwork2& network() { return nn_; }
  // The gradient averaging of the last data-parallel fit (zeros otherwise):
  // steps, buckets, communication time and the time not hidden under backward.
  const dist::GradSyncStats& dist_stats() const { return dist_stats_; }
  const OptimConfig& config() const { return cfg_; }
  uint64_t shuffle_seed = 1234;

 private:
  void check_targets(const Matrix& X, const Targets& Y, const char* xname,
                     const char* yname) const;
  std::pair<double, double> evaluate_checked(const Matrix& X, const Targets& Y);
  Tensor targets_tensor(const Targets& Y, const std::vector<int64_t>* rows, int64_t begin,
                        int64_t count);
  Tensor inputs_tensor(const Matrix& X, const std::vector<int64_t>* rows, int64_t begin,
                       int64_t count);

  // fit, by idea: checks, the epoch loop (shuffle, batches, steps), the
  // evaluation records and the progress text.
  struct FitRun;
  void check_fit(const Matrix& X, const Targets& Y, const Matrix& Xt, const Targets& Yt,
                 int64_t epochs, int64_t eval_every, int64_t batch_size, bool restart,
                 int verbose) const;
  void shuffle_rows(std::vector<int64_t>& order) const;
  void start_data_parallel(const Matrix& X, int64_t epochs, int64_t batch_size, FitRun& run);
  double train_batch(Tensor x, Tensor y, int64_t count, int64_t total, int64_t epoch, FitRun& run);
  double train_epoch(const Matrix& X, const Targets& Y, int64_t epoch, int64_t bs,
                     std::vector<int64_t>& order, FitRun& run);
  void report_progress(FitRun& run, int64_t epoch, double frac, double loss);
  EvalRecord evaluation_record(const Matrix& X, const Targets& Y, const Matrix& Xt,
                               const Targets& Yt, double epoch_loss, FitRun& run);
  void print_record(const EvalRecord& r, int64_t epoch, const FitRun& run);
  void print_summary(const FitRun& run);

  NeuralNetwork2& nn_;
  OptimConfig cfg_;
  std::unique_ptr<Optimizer> opt_;
  TextSink sink_;
  std::function<void()> interrupt_;
  uint64_t epochs_done_ = 0;
  dist::GradSyncStats dist_stats_;
};

// Issue 4's Fashion-MNIST network, for input_shape (1, 28, 28): conv5x5
// 1->16 pad 2, ReLU, max-pool 2, conv5x5 16->32 pad 2, ReLU, max-pool 2,
// dense 1568->128 ReLU, dense 128->10 (examples/fashion_cnn.cpp and
// bench/bench_memory.cpp build it from here).
std::vector<Layer2> fashion_cnn_layers();

}  // namespace lldl
