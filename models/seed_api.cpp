#include "models/seed_api.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "autograd/init.h"
#include "core/error.h"
#include "core/rng.h"
#include "dist/comm.h"

namespace lldl {

const char* layer_type_name(LayerType t) {
  switch (t) {
    case LayerType::Dense: return "Dense";
    case LayerType::Conv2D: return "Conv2D";
    case LayerType::MaxPool2D: return "MaxPool2D";
    case LayerType::AvgPool2D: return "AvgPool2D";
    case LayerType::Flatten: return "Flatten";
    case LayerType::Dropout: return "Dropout";
    case LayerType::BatchNorm: return "BatchNorm";
  }
  return "?";
}
const char* activation_name(ActivationType a) {
  switch (a) {
    case ActivationType::Linear: return "Linear";
    case ActivationType::Sigmoid: return "Sigmoid";
    case ActivationType::Tanh: return "Tanh";
    case ActivationType::ReLU: return "ReLU";
    case ActivationType::Softmax: return "Softmax";
  }
  return "?";
}
const char* loss_name(LossType l) { return l == LossType::MSE ? "MSE" : "CROSS_ENTROPY"; }

namespace {
constexpr int64_t kEvalChunk = 1024;

Tensor activate(ActivationType a, Tensor z) {
  switch (a) {
    case ActivationType::Linear: return z;
    case ActivationType::Sigmoid: return sigmoid(z);
    case ActivationType::Tanh: return tanh(z);
    case ActivationType::ReLU: return relu(z);
    case ActivationType::Softmax: return softmax(z);
  }
  throw ValueError("unknown activation " + std::to_string(int(a)));
}

void check_finite(const float* p, int64_t n, int64_t cols, const char* what) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]))
      throw ValueError(std::string(what) + " contains " + (std::isnan(p[i]) ? "NaN" : "Inf") +
                       " at row " + std::to_string(i / cols) + ", column " +
                       std::to_string(i % cols));
}

std::string dims(int64_t r, int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }
}  // namespace

// ---- NeuralNetwork2 ----------------------------------------------------------

namespace {
std::string layer_label(size_t i, const Layer2& l) {
  return "layer " + std::to_string(i) + " (" + layer_type_name(l.type) + ")";
}
std::string shape_text(const std::vector<int64_t>& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}
int64_t product(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}
}  // namespace

NeuralNetwork2::NeuralNetwork2(std::vector<Layer2> layers, LossType loss, uint64_t seed,
                               std::vector<int64_t> input_shape)
    : layers_(std::move(layers)), loss_(loss), seed_(seed), input_shape_(std::move(input_shape)) {
  if (layers_.empty()) throw ValueError("NeuralNetwork2: needs at least one layer");
  if (input_shape_.size() > 3)
    throw ValueError("NeuralNetwork2: input_shape has " + std::to_string(input_shape_.size()) +
                     " dimensions; one sample has at most 3 (channels, height, width)");
  for (int64_t d : input_shape_)
    if (d <= 0) throw ValueError("NeuralNetwork2: input_shape " + shape_text(input_shape_) +
                                 " has a dimension <= 0");
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer2& l = layers_[i];
    std::string who = "NeuralNetwork2: " + layer_label(i, l);
    if (static_cast<int>(l.type) > static_cast<int>(LayerType::BatchNorm))
      throw ValueError("NeuralNetwork2: layer " + std::to_string(i) + " has an unknown type");
    if ((l.type == LayerType::Dense || l.type == LayerType::Conv2D) && l.units <= 0)
      throw ValueError(who + " needs units > 0, got " + std::to_string(l.units));
    bool windowed = l.type == LayerType::Conv2D || l.type == LayerType::MaxPool2D ||
                    l.type == LayerType::AvgPool2D;
    if (windowed && l.kernel <= 0)
      throw ValueError(who + " needs kernel > 0, got " + std::to_string(l.kernel));
    if (l.stride < 0) throw ValueError(who + ": stride must be >= 0, got " + std::to_string(l.stride));
    if (l.padding < 0)
      throw ValueError(who + ": padding must be >= 0, got " + std::to_string(l.padding));
    if (l.type == LayerType::Dropout && !(l.rate >= 0.0f && l.rate < 1.0f))
      throw ValueError(who + ": rate must be in [0, 1), got " + std::to_string(l.rate));
  }
  if (loss != LossType::MSE && loss != LossType::CrossEntropy)
    throw ValueError("NeuralNetwork2: unknown loss type " + std::to_string(int(loss)));
  if (output_features() == 0)
    throw ValueError("NeuralNetwork2: the last layer must be Dense (optionally followed by "
                     "Dropout or BatchNorm), so that each sample has one output vector");
}

void NeuralNetwork2::build(int64_t n_in) {
  if (n_in <= 0) throw ValueError("NeuralNetwork2: input feature count must be > 0");
  if (!input_shape_.empty() && n_in != product(input_shape_))
    throw ValueError("NeuralNetwork2: the data has " + std::to_string(n_in) +
                     " values per sample but input_shape " + shape_text(input_shape_) + " holds " +
                     std::to_string(product(input_shape_)));
  if (!graph_ || n_in != n_in_) {
    // Walk the layers once to check that each fits the shape it receives and
    // to create its parameters.
    auto g = std::make_unique<Graph>(DType::F32, Backend::CPU, size_t(4) << 20);
    g->set_profiling(profiling_);
    g->set_memory_planning(planning_);
    std::vector<LayerParams> ps;
    std::vector<int64_t> s = input_shape_.empty() ? std::vector<int64_t>{n_in} : input_shape_;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer2& l = layers_[i];
      std::string who = "NeuralNetwork2: " + layer_label(i, l);
      std::string name = "layers." + std::to_string(i) + ".";
      LayerParams p;
      bool windowed = l.type == LayerType::Conv2D || l.type == LayerType::MaxPool2D ||
                      l.type == LayerType::AvgPool2D;
      if (windowed && s.size() != 3)
        throw ValueError(who + " needs image input (channels x height x width), got " +
                         shape_text(s) + "; give NeuralNetwork2 an input_shape");
      if (windowed) {
        int64_t k = l.kernel, pad = l.type == LayerType::Conv2D ? l.padding : 0;
        int64_t st = l.stride ? l.stride : (l.type == LayerType::Conv2D ? 1 : k);
        if (s[1] + 2 * pad < k || s[2] + 2 * pad < k)
          throw ValueError(who + ": kernel " + std::to_string(k) + " is larger than its (padded) input " +
                           shape_text(s) + " with padding " + std::to_string(pad));
        int64_t oh = (s[1] + 2 * pad - k) / st + 1, ow = (s[2] + 2 * pad - k) / st + 1;
        if (l.type == LayerType::Conv2D) {
          p.w = g->param({l.units, s[0], k, k}, name + "weight");
          p.b = g->param({l.units}, name + "bias");
          s = {l.units, oh, ow};
        } else {
          s = {s[0], oh, ow};
        }
      } else if (l.type == LayerType::Dense) {
        p.w = g->param({product(s), l.units}, name + "weight");
        p.b = g->param({l.units}, name + "bias");
        s = {l.units};
      } else if (l.type == LayerType::Flatten) {
        s = {product(s)};
      } else if (l.type == LayerType::BatchNorm) {
        if (s.size() != 1 && s.size() != 3)
          throw ValueError(who + " needs features or channels x height x width, got " + shape_text(s));
        p.w = g->param({s[0]}, name + "weight");
        p.b = g->param({s[0]}, name + "bias");
        p.running_mean = g->buffer({s[0]}, DType::F32);
        p.running_var = g->buffer({s[0]}, DType::F32);
      }
      ps.push_back(p);
    }
    if (s.size() != 1 || s[0] != output_features())
      throw ValueError("NeuralNetwork2: the network outputs " + shape_text(s) +
                       " per sample; end with a Dense layer (Dropout or BatchNorm may follow it)");
    graph_ = std::move(g);
    params_ = std::move(ps);
    n_in_ = n_in;
  }
  graph_->reset();
  dropout_calls_ = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer2& l = layers_[i];
    LayerParams& p = params_[i];
    if (l.type == LayerType::Dense || l.type == LayerType::Conv2D) {
      Init how = l.activation == ActivationType::ReLU ? Init::HeUniform : Init::XavierUniform;
      const Shape& ws = graph_->shape(p.w);
      // A conv weight is (out, in, k, k): fan_in = in*k*k, fan_out = out*k*k.
      int64_t fan_in = l.type == LayerType::Conv2D ? ws[1] * ws[2] * ws[3] : ws[0];
      int64_t fan_out = l.type == LayerType::Conv2D ? ws[0] * ws[2] * ws[3] : ws[1];
      init_param(*graph_, p.w, how, seed_ * 1000003ull + i, fan_in, fan_out);
      init_param(*graph_, p.b, Init::Zeros, 0);
    } else if (l.type == LayerType::BatchNorm) {
      std::fill_n(graph_->data(p.w), graph_->shape(p.w).numel(), 1.0f);
      init_param(*graph_, p.b, Init::Zeros, 0);
      init_param(*graph_, p.running_mean, Init::Zeros, 0);
      std::fill_n(graph_->data(p.running_var), graph_->shape(p.running_var).numel(), 1.0f);
    }
  }
}

Tensor NeuralNetwork2::forward(Tensor x, Tensor* logits, bool training) {
  Graph& g = *graph_;
  Tensor h = x;
  if (input_shape_.size() > 1) {
    Shape s;
    s.ndim = static_cast<int32_t>(input_shape_.size()) + 1;
    s.d[0] = g.shape(x)[0];
    for (size_t i = 0; i < input_shape_.size(); ++i) s.d[i + 1] = input_shape_[i];
    h = reshape(x, s);  // a view: the rows already hold the samples in this layout
  }
  if (training) ++dropout_calls_;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer2& l = layers_[i];
    const LayerParams& p = params_[i];
    Tensor z;
    switch (l.type) {
      case LayerType::Dense:
        if (g.shape(h).ndim > 2) h = flatten(h);
        z = linear(h, p.w, p.b);
        break;
      case LayerType::Conv2D:
        z = conv2d(h, p.w, p.b, static_cast<int>(l.stride ? l.stride : 1), static_cast<int>(l.padding));
        break;
      case LayerType::MaxPool2D: z = max_pool2d(h, int(l.kernel), int(l.stride)); break;
      case LayerType::AvgPool2D: z = avg_pool2d(h, int(l.kernel), int(l.stride)); break;
      case LayerType::Flatten: z = flatten(h); break;
      case LayerType::Dropout:
        z = training && l.rate > 0 ? dropout(h, l.rate, true, seed_ ^ (dropout_calls_ * 0x9e3779b97f4a7c15ull + i))
                                   : h;
        break;
      case LayerType::BatchNorm:
        z = batch_norm(h, p.w, p.b, p.running_mean, p.running_var, training);
        break;
    }
    bool last = i + 1 == layers_.size();
    // Max-pooling commutes with a non-decreasing activation, so a layer's
    // activation followed by a MaxPool2D layer runs after the pooling, on a
    // quarter of the values (2x2 windows): pool(relu(z)) = relu(pool(z)),
    // and the gradients are the same too (the window's first maximum is the
    // same element before and after; where the maximum is <= 0, ReLU's
    // gradient is 0 either way).
    if (!last && i + 2 < layers_.size() && layers_[i + 1].type == LayerType::MaxPool2D &&
        (l.activation == ActivationType::ReLU || l.activation == ActivationType::Sigmoid ||
         l.activation == ActivationType::Tanh)) {
      const Layer2& pool = layers_[i + 1];
      h = activate(pool.activation,
                   activate(l.activation, max_pool2d(z, int(pool.kernel), int(pool.stride))));
      ++i;  // the pooling layer is done
      continue;
    }
    if (last && logits) {
      *logits = z;
      // Cross-entropy takes logits: a final Softmax is fused into the loss.
      if (l.activation == ActivationType::Softmax) return z;
    }
    h = activate(l.activation, z);
    if (last && logits) *logits = h;
  }
  return h;
}

Tensor NeuralNetwork2::loss_of(Tensor x, Tensor targets, Tensor* output, bool training) {
  Tensor out;
  if (loss_ == LossType::CrossEntropy) forward(x, &out, training);
  else out = forward(x, nullptr, training);
  if (output) *output = out;
  return loss_ == LossType::CrossEntropy ? cross_entropy(out, targets) : mse_loss(out, targets);
}

void NeuralNetwork2::check_input(const Matrix& X, const char* what) const {
  if (!built()) throw ValueError("NeuralNetwork2: not trained yet (call fit first)");
  if (X.rows <= 0) throw ValueError(std::string(what) + " is empty (0 rows)");
  if (X.cols != n_in_)
    throw ValueError(std::string(what) + " has " + std::to_string(X.cols) +
                     " features but the network was built for " + std::to_string(n_in_) +
                     " (" + what + " is " + dims(X.rows, X.cols) + ")");
  check_finite(X.data, X.rows * X.cols, X.cols, what);
}

NeuralNetwork2::InUse NeuralNetwork2::claim(const char* what) {
  if (busy_->exchange(true))
    throw ValueError(std::string(what) + ": the network is in use (fit or predict running in "
                     "another thread)");
  return InUse(busy_.get());
}

std::vector<float> NeuralNetwork2::predict(const Matrix& X) {
  InUse in_use = claim("predict");
  check_input(X, "X");
  int64_t out = output_features();
  std::vector<float> y(static_cast<size_t>(X.rows * out));
  Graph& g = *graph_;
  for (int64_t r = 0; r < X.rows; r += kEvalChunk) {
    int64_t n = std::min(kEvalChunk, X.rows - r);
    g.reset();
    Tensor x = g.external({n, X.cols}, const_cast<float*>(X.data + r * X.cols), DType::F32);
    Tensor o = forward(x);
    std::memcpy(y.data() + r * out, g.data(o), static_cast<size_t>(n * out) * sizeof(float));
  }
  g.reset();
  return y;
}

int64_t NeuralNetwork2::num_parameters() const {
  int64_t n = 0;
  if (graph_)
    for (Tensor p : graph_->params()) n += graph_->shape(p).numel();
  return n;
}

int64_t NeuralNetwork2::output_features() const {
  // The width of the last Dense layer; Dropout and BatchNorm keep it.
  for (size_t i = layers_.size(); i-- > 0;) {
    LayerType t = layers_[i].type;
    if (t == LayerType::Dense) return layers_[i].units;
    if (t != LayerType::Dropout && t != LayerType::BatchNorm) return 0;
  }
  return 0;
}

// ---- Trainer -------------------------------------------------------------------

Trainer::Trainer(NeuralNetwork2& nn, OptimiserType kind, float lr, OptimConfig extra)
    : nn_(nn), cfg_(extra) {
  cfg_.kind = kind;
  cfg_.lr = lr;
  validate(cfg_);
  sink_ = [](const std::string& s) {
    std::cout << s;
    std::cout.flush();
  };
}

void Trainer::check_targets(const Matrix& X, const Targets& Y, const char* xname,
                            const char* yname) const {
  if (X.rows <= 0) throw ValueError(std::string(xname) + " is empty (0 rows)");
  if (Y.rows != X.rows)
    throw ValueError(std::string(xname) + " and " + yname + " have different row counts: " +
                     xname + " is " + dims(X.rows, X.cols) + ", " + yname + " is " +
                     dims(Y.rows, Y.cols));
  check_finite(X.data, X.rows * X.cols, X.cols, xname);
  int64_t units = nn_.output_features();
  if (Y.labels) {
    if (nn_.loss() != LossType::CrossEntropy)
      throw TypeError(std::string(yname) + " holds integer labels but the loss is MSE, which "
                      "needs float targets of width " + std::to_string(units));
    for (int64_t i = 0; i < Y.rows; ++i)
      if (Y.labels[i] < 0 || Y.labels[i] >= units)
        throw ValueError(std::string(yname) + ": label " + std::to_string(Y.labels[i]) +
                         " at row " + std::to_string(i) + " is out of range for " +
                         std::to_string(units) + " classes");
    return;
  }
  if (Y.cols != units)
    throw ValueError(std::string(yname) + " has " + std::to_string(Y.cols) +
                     " columns but the network outputs " + std::to_string(units) + " (" + yname +
                     " is " + dims(Y.rows, Y.cols) + ")" +
                     (nn_.loss() == LossType::CrossEntropy
                          ? "; give one-hot rows of that width or integer labels"
                          : ""));
  check_finite(Y.values, Y.rows * Y.cols, Y.cols, yname);
}

// Target tensor for rows[begin, begin+count) (or rows begin.. in order when
// `rows` is null).
Tensor Trainer::targets_tensor(const Targets& Y, const std::vector<int64_t>* rows, int64_t begin,
                               int64_t count) {
  Graph& g = nn_.graph();
  if (Y.labels) {
    if (!rows)
      return g.external({count}, const_cast<int32_t*>(Y.labels + begin), DType::I32);
    Tensor t = g.input({count}, DType::I32);
    int32_t* p = g.data<int32_t>(t);
    for (int64_t i = 0; i < count; ++i) p[i] = Y.labels[(*rows)[begin + i]];
    return t;
  }
  if (!rows)
    return g.external({count, Y.cols}, const_cast<float*>(Y.values + begin * Y.cols), DType::F32);
  Tensor t = g.input({count, Y.cols}, DType::F32);
  float* p = g.data(t);
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(p + i * Y.cols, Y.values + (*rows)[begin + i] * Y.cols, Y.cols * sizeof(float));
  return t;
}

std::pair<double, double> Trainer::evaluate(const Matrix& X, const Targets& Y) {
  NeuralNetwork2::InUse in_use = nn_.claim("evaluate");
  nn_.check_input(X, "X");
  check_targets(X, Y, "X", "Y");
  return evaluate_checked(X, Y);
}

std::pair<double, double> Trainer::evaluate_checked(const Matrix& X, const Targets& Y) {
  Graph& g = nn_.graph();
  bool classify = nn_.loss() == LossType::CrossEntropy;
  int64_t units = nn_.output_features();
  double loss = 0, correct = 0;
  for (int64_t r = 0; r < X.rows; r += kEvalChunk) {
    int64_t n = std::min(kEvalChunk, X.rows - r);
    g.reset();
    Tensor x = g.external({n, X.cols}, const_cast<float*>(X.data + r * X.cols), DType::F32);
    Tensor y = targets_tensor(Y, nullptr, r, n);
    Tensor out;
    loss += g.item(nn_.loss_of(x, y, &out)) * static_cast<double>(n);
    if (!classify) continue;
    const float* o = g.data(out);  // logits: their argmax is the predicted class
    for (int64_t i = 0; i < n; ++i) {
      const float* row = o + i * units;
      int64_t pred = std::max_element(row, row + units) - row;
      int64_t truth = Y.labels ? Y.labels[r + i]
                               : std::max_element(Y.values + (r + i) * units,
                                                  Y.values + (r + i + 1) * units) -
                                     (Y.values + (r + i) * units);
      correct += pred == truth;
    }
  }
  g.reset();
  return {loss / static_cast<double>(X.rows),
          classify ? correct / static_cast<double>(X.rows) : -1.0};
}

// Refuses bad arguments and data before fit touches any parameter.
void Trainer::check_fit(const Matrix& X, const Targets& Y, const Matrix& Xt, const Targets& Yt,
                        int64_t epochs, int64_t eval_every, int64_t batch_size, bool restart,
                        int verbose) const {
  if (epochs < 0) throw ValueError("fit: epochs must be >= 0, got " + std::to_string(epochs));
  if (eval_every <= 0)
    throw ValueError("fit: eval_every must be > 0, got " + std::to_string(eval_every));
  if (batch_size <= 0)
    throw ValueError("fit: batch_size must be > 0, got " + std::to_string(batch_size));
  if (verbose < 0 || verbose > 2)
    throw ValueError("fit: verbose must be 0, 1 or 2, got " + std::to_string(verbose));
  if (X.cols <= 0)
    throw ValueError("fit: X_train has no feature columns (X_train is " + dims(X.rows, X.cols) + ")");
  if (nn_.built() && !restart && X.cols != nn_.input_features())
    throw ValueError("fit: X_train has " + std::to_string(X.cols) +
                     " features but the network was built for " +
                     std::to_string(nn_.input_features()) + " (X_train is " + dims(X.rows, X.cols) +
                     "); pass restart=True to rebuild it");
  check_targets(X, Y, "X_train", "Y_train");
  if (Xt.rows > 0 || Yt.rows > 0) {
    if (Xt.cols != X.cols)
      throw ValueError("fit: X_test has " + std::to_string(Xt.cols) + " features, X_train has " +
                       std::to_string(X.cols) + " (X_test is " + dims(Xt.rows, Xt.cols) +
                       ", X_train is " + dims(X.rows, X.cols) + ")");
    check_targets(Xt, Yt, "X_test", "Y_test");
  }
}

// What one fit call carries from batch to batch: its settings, the clocks
// behind samples/s and the progress bar, and the history so far.
struct Trainer::FitRun {
  using clock = std::chrono::steady_clock;
  int64_t epochs = 0;
  int verbose = 0;
  bool has_test = false, classify = false;
  clock::time_point t0 = clock::now(), last_draw = t0;
  double seen = 0, eval_s = 0;  // samples/s counts training time only
  History hist;
  // Data parallel (after dist::init()): this rank of `world`, and the
  // gradient averaging; null when the job was never joined.
  int rank = 0, world = 1;
  std::unique_ptr<dist::GradSync> sync;
};

// Input rows[begin, begin+count) of X (or rows begin.. in order, without a
// copy, when `rows` is null).
Tensor Trainer::inputs_tensor(const Matrix& X, const std::vector<int64_t>* rows, int64_t begin,
                              int64_t count) {
  Graph& g = nn_.graph();
  if (!rows)
    return g.external({count, X.cols}, const_cast<float*>(X.data + begin * X.cols), DType::F32);
  Tensor x = g.input({count, X.cols}, DType::F32);
  float* p = g.data(x);
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(p + i * X.cols, X.data + (*rows)[begin + i] * X.cols, X.cols * sizeof(float));
  return x;
}

// The epoch's row order. It depends only on (shuffle_seed, epochs done), so
// fit(..., restart=false) resumes exactly where the last fit stopped.
void Trainer::shuffle_rows(std::vector<int64_t>& order) const {
  const int64_t n = static_cast<int64_t>(order.size());
  Rng rng(shuffle_seed + epochs_done_);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
}

// One optimiser step on this rank's rows of a batch; returns the whole
// batch's mean loss. Data parallel, the batch's `total` rows are split over
// the ranks, each with `count` of them (count may be 0 on a short last
// batch): each rank's loss is weighted by count * world / total, so that the
// mean of the ranks' gradients (GradSync) is the gradient of the batch's
// mean loss, as one process would compute it.
double Trainer::train_batch(Tensor x, Tensor y, int64_t count, int64_t total, int64_t epoch, FitRun& run) {
  Graph& g = nn_.graph();
  Tensor loss;
  double lv = 0;
  if (count > 0) {
    loss = nn_.loss_of(x, y, nullptr, true);
    lv = g.item(loss);
  }
  if (run.sync) lv = dist::allreduce_scalar(lv * double(count), dist::ReduceOp::Sum) / double(total);
  // Checked on every rank alike (the sum carries a NaN), so none waits alone.
  if (!std::isfinite(lv))
    throw ValueError("fit: the training loss became " + std::string(std::isnan(lv) ? "NaN" : "Inf") +
                     " at epoch " + std::to_string(epoch) + "; lower the learning rate (" +
                     std::to_string(cfg_.lr) + ")");
  if (count > 0) {
    const int64_t even = total / run.world;
    bool uneven = run.sync && !(count == even && total % run.world == 0);
    g.backward(uneven ? scale(loss, float(double(count) * run.world / double(total))) : loss);
  }
  if (run.sync) run.sync->finish();
  opt_->step();
  return lv;
}

// At most every 0.1 s: the interrupt check, and at verbose 1 the progress bar
// (`frac` of all epochs done, the last batch's loss).
void Trainer::report_progress(FitRun& run, int64_t epoch, double frac, double loss) {
  auto now = FitRun::clock::now();
  if (std::chrono::duration<double>(now - run.last_draw).count() <= 0.1) return;
  run.last_draw = now;
  if (interrupt_) interrupt_();
  if (run.verbose != 1) return;
  double el = std::chrono::duration<double>(now - run.t0).count() - run.eval_s;
  int bars = static_cast<int>(frac * 30);
  char buf[256];
  std::snprintf(buf, sizeof buf, "\repoch %lld/%lld [%-30s] %3d%% loss %.4f %.0f samples/s",
                (long long)epoch, (long long)run.epochs, std::string(bars, '#').c_str(),
                int(frac * 100), loss, run.seen / el);
  sink_(buf);
}

// One pass over (X, Y) in batches of bs rows; returns the summed loss (each
// batch's mean times its rows). Data parallel, a batch has world * bs rows
// and rank r trains on its r-th slice of it (the shuffle is the same on
// every rank): N ranks at batch B take the steps of one process at N * B.
double Trainer::train_epoch(const Matrix& X, const Targets& Y, int64_t epoch, int64_t bs,
                            std::vector<int64_t>& order, FitRun& run) {
  Graph& g = nn_.graph();
  const int64_t n = X.rows;
  const bool full = bs == n;  // one batch: no shuffle, no copy
  if (!full) shuffle_rows(order);
  const std::vector<int64_t>* rows = full ? nullptr : &order;
  double epoch_loss = 0;
  for (int64_t b = 0; b < n; b += bs) {
    int64_t m = std::min(bs, n - b);
    int64_t begin = b + m * run.rank / run.world, count = b + m * (run.rank + 1) / run.world - begin;
    g.reset();
    Tensor x, y;
    if (count > 0) {
      x = inputs_tensor(X, rows, begin, count);
      y = targets_tensor(Y, rows, begin, count);
    }
    double lv = train_batch(x, y, count, m, epoch, run);
    epoch_loss += lv * static_cast<double>(m);
    run.seen += static_cast<double>(m);
    double frac = (static_cast<double>(epoch - 1) + static_cast<double>(b + m) / n) / run.epochs;
    report_progress(run, epoch, frac, lv);
  }
  return epoch_loss;
}

// The history's record after an epoch: train loss, accuracies and test loss
// (evaluation time is kept out of samples/s).
EvalRecord Trainer::evaluation_record(const Matrix& X, const Targets& Y, const Matrix& Xt,
                                      const Targets& Yt, double epoch_loss, FitRun& run) {
  auto eval_start = FitRun::clock::now();
  EvalRecord r;
  r.epoch = static_cast<int64_t>(epochs_done_);
  r.train_loss = epoch_loss / static_cast<double>(X.rows);
  if (run.classify) r.train_accuracy = evaluate_checked(X, Y).second;
  if (run.has_test) std::tie(r.test_loss, r.test_accuracy) = evaluate_checked(Xt, Yt);
  auto now = FitRun::clock::now();
  run.eval_s += std::chrono::duration<double>(now - eval_start).count();
  r.elapsed_s = std::chrono::duration<double>(now - run.t0).count();
  r.samples_per_s = r.elapsed_s > run.eval_s ? run.seen / (r.elapsed_s - run.eval_s) : 0;
  return r;
}

// verbose 2: one line per evaluation.
void Trainer::print_record(const EvalRecord& r, int64_t epoch, const FitRun& run) {
  char buf[256];
  int k = std::snprintf(buf, sizeof buf, "epoch %lld/%lld  train loss %.6g",
                        (long long)epoch, (long long)run.epochs, r.train_loss);
  if (run.has_test) k += std::snprintf(buf + k, sizeof buf - k, "  test loss %.6g", r.test_loss);
  if (run.classify)
    k += std::snprintf(buf + k, sizeof buf - k, "  train acc %.4f", r.train_accuracy);
  if (run.classify && run.has_test)
    k += std::snprintf(buf + k, sizeof buf - k, "  test acc %.4f", r.test_accuracy);
  std::snprintf(buf + k, sizeof buf - k, "  elapsed %.3f s\n", r.elapsed_s);
  sink_(buf);
}

// verbose 1: the full progress bar with the last record's figures.
void Trainer::print_summary(const FitRun& run) {
  const EvalRecord& r = run.hist.back();
  char buf[256];
  std::snprintf(buf, sizeof buf, "\repoch %lld/%lld [%-30s] 100%% loss %.4f %.0f samples/s %.2f s\n",
                (long long)run.epochs, (long long)run.epochs, std::string(30, '#').c_str(),
                r.train_loss, r.samples_per_s, r.elapsed_s);
  sink_(buf);
}

// Joins fit to the data-parallel job (dist::init() was called): the same
// data and settings on every rank (checked), rank 0's parameters everywhere,
// gradients averaged by a GradSync, and progress printed by rank 0 only.
void Trainer::start_data_parallel(const Matrix& X, int64_t epochs, int64_t batch_size, FitRun& run) {
  run.rank = dist::rank();
  run.world = dist::world_size();
  dist::check_same("fit's data and settings (rows x cols, epochs, batch_size, shuffle_seed)",
                   dist::hash_string(std::to_string(X.rows) + "x" + std::to_string(X.cols) + " " +
                                     std::to_string(epochs) + " " + std::to_string(batch_size) + " " +
                                     std::to_string(shuffle_seed)));
  dist::broadcast_params(nn_.graph());
  run.sync = std::make_unique<dist::GradSync>(nn_.graph());
  if (run.rank != 0) run.verbose = 0;
}

History Trainer::fit(const Matrix& X, const Targets& Y, const Matrix& Xt, const Targets& Yt,
                     int64_t epochs, int64_t eval_every, int64_t batch_size, bool restart,
                     int verbose) {
  NeuralNetwork2::InUse in_use = nn_.claim("fit");
  check_fit(X, Y, Xt, Yt, epochs, eval_every, batch_size, restart, verbose);
  // All checks passed: only now touch the parameters.
  if (restart || !nn_.built()) {
    nn_.build(X.cols);
    opt_.reset();
    epochs_done_ = 0;
  }
  if (!opt_ || opt_->g != &nn_.graph()) opt_ = std::make_unique<Optimizer>(nn_.graph(), cfg_);

  FitRun run;
  run.epochs = epochs;
  run.verbose = verbose;
  run.has_test = Xt.rows > 0 || Yt.rows > 0;
  run.classify = nn_.loss() == LossType::CrossEntropy;
  if (dist::initialized()) start_data_parallel(X, epochs, batch_size, run);
  std::vector<int64_t> order(static_cast<size_t>(X.rows));
  const int64_t bs = std::min(batch_size * run.world, X.rows);  // the batch of all ranks together
  for (int64_t e = 1; e <= epochs; ++e) {
    double epoch_loss = train_epoch(X, Y, e, bs, order, run);
    ++epochs_done_;
    if (e % eval_every != 0 && e != epochs) continue;
    run.hist.push_back(evaluation_record(X, Y, Xt, Yt, epoch_loss, run));
    if (run.verbose == 2) print_record(run.hist.back(), e, run);
  }
  if (run.verbose == 1 && epochs > 0) print_summary(run);
  dist_stats_ = run.sync ? run.sync->stats() : dist::GradSyncStats{};
  nn_.graph().reset();
  return run.hist;
}

void NeuralNetwork2::set_profiling(bool on) {
  profiling_ = on;
  if (graph_) graph_->set_profiling(on);
}

void NeuralNetwork2::set_memory_planning(bool on) {
  planning_ = on;
  if (graph_) graph_->set_memory_planning(on);
}

MemoryReport NeuralNetwork2::memory_report() const {
  return graph_ ? graph_->memory_report() : MemoryReport{};
}

const Profile& NeuralNetwork2::profile() const {
  static const Profile empty;
  return graph_ ? graph_->profile() : empty;
}

std::vector<Layer2> fashion_cnn_layers() {
  using L = LayerType;
  using A = ActivationType;
  auto conv = [](int64_t channels) {
    Layer2 l{L::Conv2D, channels, A::ReLU};
    l.kernel = 5;
    l.padding = 2;
    return l;
  };
  Layer2 pool{L::MaxPool2D};
  pool.kernel = 2;
  return {conv(16), pool, conv(32), pool, {L::Flatten}, {L::Dense, 128, A::ReLU},
          {L::Dense, 10, A::Linear}};
}

}  // namespace lldl
