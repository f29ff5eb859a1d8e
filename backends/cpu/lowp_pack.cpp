// Packing float32 weights into bf16 / Q8 rows (once per model), and Q8
// matrices from stored parts.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <string>

#include "backends/lowp.h"
#include "core/error.h"

namespace lldl {
namespace {

int64_t padded(int64_t cols) { return (cols + kQ8Block - 1) / kQ8Block * kQ8Block; }

void check_dims(int64_t rows, int64_t cols, const std::string& what) {
  if (rows < 1 || cols < 1)
    throw ValueError("lowp: " + what + ": a weight matrix needs rows >= 1 and cols >= 1, got " +
                     std::to_string(rows) + " x " + std::to_string(cols));
}

}  // namespace

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return "fp32";
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::Q8: return "int8";
  }
  return "?";
}

WeightFormat weight_format_from_name(const std::string& name) {
  if (name == "fp32") return WeightFormat::F32;
  if (name == "bf16") return WeightFormat::BF16;
  if (name == "int8") return WeightFormat::Q8;
  throw ValueError("precision: unknown name '" + name + "' (expected fp32, bf16 or int8)");
}

float LowpMatrix::at(int64_t n, int64_t k) const {
  if (format == WeightFormat::BF16) return bf16_widen(bf16[n * ld + k]);
  return static_cast<float>(q[n * ld + k]) * scale[n * blocks() + k / kQ8Block];
}

LowpMatrix lowp_pack(const float* w, int64_t rows, int64_t cols, bool transposed,
                     WeightFormat format, const std::string& what) {
  check_dims(rows, cols, what);
  if (format == WeightFormat::F32)
    throw ValueError("lowp: " + what + ": fp32 weights are not packed (use them as they are)");
  using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  MatR t;  // the [rows, cols] view when w is stored transposed
  if (transposed) t = Eigen::Map<const MatR>(w, cols, rows).transpose();
  const float* src = transposed ? t.data() : w;
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(src[i]))
      throw ValueError("lowp: " + what + ": non-finite weight at row " + std::to_string(i / cols) +
                       ", column " + std::to_string(i % cols));
  LowpMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.ld = padded(cols);
  if (format == WeightFormat::BF16) {
    m.bf16.assign(static_cast<size_t>(rows * m.ld), 0);
    for (int64_t n = 0; n < rows; ++n) bf16_pack_n(src + n * cols, m.bf16.data() + n * m.ld, cols);
    return m;
  }
  m.q.assign(static_cast<size_t>(rows * m.ld), 0);
  m.scale.assign(static_cast<size_t>(rows * m.blocks()), 0.0f);
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t b = 0; b < m.blocks(); ++b) {
      const int64_t k0 = b * kQ8Block, k1 = std::min(cols, k0 + kQ8Block);
      float amax = 0;
      for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(src[n * cols + k]));
      const float s = amax / 127.0f;
      m.scale[n * m.blocks() + b] = s;
      if (s == 0) continue;
      for (int64_t k = k0; k < k1; ++k) {
        const float r = std::nearbyint(src[n * cols + k] / s);
        m.q[n * m.ld + k] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
      }
    }
  return m;
}

LowpMatrix lowp_from_q8(const int8_t* q, const float* scale, int64_t rows, int64_t cols,
                        int64_t n_scale, const std::string& what) {
  check_dims(rows, cols, what);
  LowpMatrix m;
  m.format = WeightFormat::Q8;
  m.rows = rows;
  m.cols = cols;
  m.ld = padded(cols);
  if (n_scale != rows * m.blocks())
    throw ValueError("lowp: " + what + ": int8 weights [" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "] need " + std::to_string(rows * m.blocks()) +
                     " scales (one per block of 32 along a row), got " + std::to_string(n_scale));
  m.q.assign(static_cast<size_t>(rows * m.ld), 0);
  m.scale.assign(scale, scale + n_scale);
  for (int64_t i = 0; i < n_scale; ++i)
    if (!std::isfinite(scale[i]) || scale[i] < 0)
      throw ValueError("lowp: " + what + ": scale " + std::to_string(i) +
                       " is negative or not finite (" + std::to_string(scale[i]) + ")");
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < cols; ++k) {
      // -128 has no negation in int8: the sign trick of the VNNI kernel needs |q| <= 127.
      if (q[n * cols + k] == -128)
        throw ValueError("lowp: " + what + ": int8 weight -128 at row " + std::to_string(n) +
                         " (values must lie in [-127, 127])");
      m.q[n * m.ld + k] = q[n * cols + k];
    }
  return m;
}

}  // namespace lldl
