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

namespace lldl {

enum class LayerType : uint8_t { Dense };
enum class ActivationType : uint8_t { Linear, Sigmoid, Tanh, ReLU, Softmax };
enum class LossType : uint8_t { MSE, CrossEntropy };
using OptimiserType = OptimKind;

const char* layer_type_name(LayerType t);
const char* activation_name(ActivationType a);
const char* loss_name(LossType l);

struct Layer2 {
  LayerType type = LayerType::Dense;
  int64_t units = 0;
  ActivationType activation = ActivationType::Linear;
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
  NeuralNetwork2(std::vector<Layer2> layers, LossType loss, uint64_t seed = 42);

  const std::vector<Layer2>& layers() const { return layers_; }
  LossType loss() const { return loss_; }
  int64_t input_features() const { return n_in_; }   // 0 until built
  int64_t output_features() const { return layers_.back().units; }
  bool built() const { return n_in_ > 0; }
  uint64_t seed() const { return seed_; }

  // Creates (or re-creates) the parameters for n_in input features with the
  // seeded initialisation (He for ReLU layers, Xavier otherwise).
  void build(int64_t n_in);
  // Records the forward pass on graph(). When `logits` is non-null it gets
  // the pre-activation of the last layer (cross-entropy works on those).
  Tensor forward(Tensor x, Tensor* logits = nullptr);
  // Loss of a batch: cross-entropy from the logits (a final Softmax is fused
  // into the loss), MSE on the output. `output` receives what the loss was
  // computed on (logits or network output).
  Tensor loss_of(Tensor x, Tensor targets, Tensor* output = nullptr);
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
  std::vector<Tensor> weights() const { return W_; }
  std::vector<Tensor> biases() const { return b_; }
  int64_t num_parameters() const;

 private:
  std::vector<Layer2> layers_;
  LossType loss_;
  uint64_t seed_;
  int64_t n_in_ = 0;
  std::unique_ptr<Graph> graph_;
  std::vector<Tensor> W_, b_;
  std::unique_ptr<std::atomic<bool>> busy_ = std::make_unique<std::atomic<bool>>(false);
};

struct EvalRecord {
  int64_t epoch = 0;
  double train_loss = 0, test_loss = 0;
  double train_accuracy = -1, test_accuracy = -1;  // -1 for regression
  double elapsed_s = 0;
  double samples_per_s = 0;
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
  const OptimConfig& config() const { return cfg_; }
  uint64_t shuffle_seed = 1234;

 private:
  void check_targets(const Matrix& X, const Targets& Y, const char* xname,
                     const char* yname) const;
  std::pair<double, double> evaluate_checked(const Matrix& X, const Targets& Y);
  Tensor targets_tensor(const Targets& Y, const std::vector<int64_t>* rows, int64_t begin,
                        int64_t count);

  NeuralNetwork2& nn_;
  OptimConfig cfg_;
  std::unique_ptr<Optimizer> opt_;
  TextSink sink_;
  std::function<void()> interrupt_;
  uint64_t epochs_done_ = 0;
};

}  // namespace lldl
