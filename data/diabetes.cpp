#include "data/diabetes.h"

#include "core/error.h"
#include "data/table.h"

namespace lldl {

Dataset load_diabetes(const std::string& data_file, const std::string& target_file) {
  NumericTable x = read_table(data_file, kDiabetesFeatures);
  NumericTable y = read_table(target_file, 1);
  if (x.rows != y.rows)
    throw ValueError("load_diabetes: '" + data_file + "' has " + std::to_string(x.rows) +
                     " rows but '" + target_file + "' has " + std::to_string(y.rows));
  Dataset d;
  d.rows = x.rows;
  d.features = x.cols;
  d.x = std::move(x.values);
  d.y = std::move(y.values);
  return d;
}

Dataset load_diabetes(const std::string& dir) {
  std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  return load_diabetes(base + "diabetes_data_raw.csv.gz", base + "diabetes_target.csv.gz");
}

}  // namespace lldl
