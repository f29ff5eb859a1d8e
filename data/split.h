// Preparing a Dataset for training: a seeded shuffled train/test split and
// feature standardisation fitted on the training rows only (as scikit-learn's
// train_test_split and StandardScaler, though not the same shuffle).
#pragma once
#include <cstdint>
#include <vector>

#include "data/diabetes.h"

namespace lldl {

struct Split {
  Dataset train, test;
};

// Shuffles the row order with lldl::Rng(seed) (Fisher-Yates) and puts the
// first ceil(test_fraction * rows) shuffled rows in test, the rest in train.
// Raises ValueError unless both parts end up non-empty.
Split train_test_split(const Dataset& d, double test_fraction, uint64_t seed);

// Per-feature mean and population standard deviation (ddof 0); a constant
// feature gets scale 1 so that it maps to 0 rather than NaN.
struct Standardizer {
  std::vector<float> mean, scale;
  void fit(const Dataset& d);
  // x <- (x - mean) / scale, in place; raises ShapeError for another width.
  void transform(Dataset& d) const;
};

}  // namespace lldl
