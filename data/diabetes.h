// The diabetes regression data set (Efron et al., 2004) as scikit-learn ships
// it: 442 patients, 10 baseline features (age, sex, bmi, bp, s1..s6) and a
// disease-progression target one year later.
//
// The files are sklearn/datasets/data/diabetes_data_raw.csv.gz (442 rows of
// 10 space-separated raw, unscaled values) and diabetes_target.csv.gz (442
// rows of one value). diabetes_files() finds them under a directory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lldl {

// A regression data set in float32, row-major.
struct Dataset {
  int64_t rows = 0, features = 0;
  std::vector<float> x;  // rows x features
  std::vector<float> y;  // rows (one target per row)
};

constexpr int64_t kDiabetesFeatures = 10;

// Loads the two files; raises ValueError for a missing, unreadable, truncated
// or corrupt file, a wrong column count, or row counts that differ.
Dataset load_diabetes(const std::string& data_file, const std::string& target_file);
// Same, from `dir`/diabetes_data_raw.csv.gz and `dir`/diabetes_target.csv.gz.
Dataset load_diabetes(const std::string& dir);

}  // namespace lldl
