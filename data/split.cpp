#include "data/split.h"

#include <cmath>
#include <numeric>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/rng.h"

namespace lldl {

namespace {
Dataset take_rows(const Dataset& d, const std::vector<int64_t>& rows, size_t from, size_t to) {
  Dataset out;
  out.rows = static_cast<int64_t>(to - from);
  out.features = d.features;
  out.x.reserve(static_cast<size_t>(out.rows * d.features));
  out.y.reserve(static_cast<size_t>(out.rows));
  for (size_t i = from; i < to; ++i) {
    const float* r = d.x.data() + rows[i] * d.features;
    out.x.insert(out.x.end(), r, r + d.features);
    out.y.push_back(d.y[static_cast<size_t>(rows[i])]);
  }
  return out;
}
}  // namespace

Split train_test_split(const Dataset& d, double test_fraction, uint64_t seed) {
  if (!(test_fraction > 0 && test_fraction < 1))
    throw ValueError("train_test_split: test_fraction must be in (0, 1), got " +
                     std::to_string(test_fraction));
  int64_t n_test = static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(d.rows)));
  if (n_test < 1 || n_test >= d.rows)
    throw ValueError("train_test_split: " + std::to_string(d.rows) + " rows with test_fraction " +
                     std::to_string(test_fraction) + " leave an empty train or test part");
  std::vector<int64_t> order(static_cast<size_t>(d.rows));
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(seed);
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  Split s;
  s.test = take_rows(d, order, 0, static_cast<size_t>(n_test));
  s.train = take_rows(d, order, static_cast<size_t>(n_test), order.size());
  return s;
}

void Standardizer::fit(const Dataset& d) {
  if (d.rows < 1) throw ValueError("standardizer: cannot fit on an empty data set");
  size_t f = static_cast<size_t>(d.features);
  std::vector<double> sum(f, 0.0), sq(f, 0.0);
  for (int64_t r = 0; r < d.rows; ++r)
    for (size_t j = 0; j < f; ++j) sum[j] += d.x[static_cast<size_t>(r) * f + j];
  mean.assign(f, 0.0f);
  scale.assign(f, 1.0f);
  for (size_t j = 0; j < f; ++j) sum[j] /= static_cast<double>(d.rows);
  // Two passes: the variance of centred values avoids cancellation.
  for (int64_t r = 0; r < d.rows; ++r)
    for (size_t j = 0; j < f; ++j) {
      double e = d.x[static_cast<size_t>(r) * f + j] - sum[j];
      sq[j] += e * e;
    }
  for (size_t j = 0; j < f; ++j) {
    double sd = std::sqrt(sq[j] / static_cast<double>(d.rows));
    mean[j] = static_cast<float>(sum[j]);
    scale[j] = sd > 0 ? static_cast<float>(sd) : 1.0f;
  }
}

void Standardizer::transform(Dataset& d) const {
  if (static_cast<size_t>(d.features) != mean.size())
    throw ShapeError("standardizer: fitted on " + std::to_string(mean.size()) +
                     " features, data has " + std::to_string(d.features));
  size_t f = mean.size();
  for (size_t i = 0; i < d.x.size(); ++i) d.x[i] = (d.x[i] - mean[i % f]) / scale[i % f];
}

}  // namespace lldl
