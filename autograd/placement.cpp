#include "autograd/placement.h"

#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "backends/device.h"
#include "core/error.h"

namespace lldl {

// ---- CSV -------------------------------------------------------------------

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> f;
  std::string cur;
  for (char ch : line) {
    if (ch == ',') {
      f.push_back(cur);
      cur.clear();
    } else if (ch != '\r') {
      cur += ch;
    }
  }
  f.push_back(cur);
  return f;
}

double number(const std::string& s, const std::string& where) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v))
    throw ValueError(where + ": '" + s + "' is not a number");
  return v;
}

}  // namespace

std::vector<StudyRow> parse_study_csv(std::istream& in, const std::string& what) {
  std::string line;
  if (!std::getline(in, line)) throw ValueError(what + ": empty file, expected a CSV header");
  std::vector<std::string> head = split(line);
  auto col = [&](const char* name, bool required) {
    for (size_t i = 0; i < head.size(); ++i)
      if (head[i] == name) return static_cast<int>(i);
    if (required)
      throw ValueError(what + ": the header has no column '" + name + "' (header: " + line + ")");
    return -1;
  };
  const int c_op = col("op", true), c_size = col("size", false), c_flops = col("flops", true),
            c_bytes = col("bytes", true), c_thr = col("threads", true),
            c_backend = col("backend", true), c_tier = col("tier", false),
            c_phase = col("phase", true), c_time = col("median_s", true);
  std::vector<StudyRow> rows;
  for (int ln = 2; std::getline(in, line); ++ln) {
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> f = split(line);
    if (f.size() != head.size())
      throw ValueError(what + ":" + std::to_string(ln) + ": " + std::to_string(f.size()) +
                       " fields, the header has " + std::to_string(head.size()));
    auto where = [&](const char* c) { return what + ":" + std::to_string(ln) + ": column " + c; };
    StudyRow r;
    r.op = f[c_op];
    r.size = c_size >= 0 ? f[c_size] : "";
    r.backend = f[c_backend];
    r.tier = c_tier >= 0 ? f[c_tier] : "";
    r.phase = f[c_phase];
    r.flops = number(f[c_flops], where("flops"));
    r.bytes = number(f[c_bytes], where("bytes"));
    double t = number(f[c_thr], where("threads"));
    if (t != std::floor(t)) throw ValueError(where("threads") + ": '" + f[c_thr] + "' is not an integer");
    r.threads = static_cast<int>(t);
    r.seconds = number(f[c_time], where("median_s"));
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<StudyRow> read_study_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ValueError("read_study_csv: cannot open '" + path + "'");
  return parse_study_csv(in, path);
}

// ---- fitting ---------------------------------------------------------------

namespace {

// Solves the weighted least-squares problem on the columns in `mask` (bit j:
// column j) by the normal equations; false when they are singular.
bool solve_subset(const std::vector<double> (&X)[3], const std::vector<double>& y, unsigned mask,
                  double (&coef)[3]) {
  int idx[3], m = 0;
  for (int j = 0; j < 3; ++j)
    if (mask >> j & 1) idx[m++] = j;
  double A[3][4] = {};
  for (int r = 0; r < m; ++r) {
    for (int c = 0; c < m; ++c)
      for (size_t i = 0; i < y.size(); ++i) A[r][c] += X[idx[r]][i] * X[idx[c]][i];
    for (size_t i = 0; i < y.size(); ++i) A[r][m] += X[idx[r]][i] * y[i];
  }
  double scale = 0;
  for (int r = 0; r < m; ++r) scale = std::max(scale, std::fabs(A[r][r]));
  for (int p = 0; p < m; ++p) {  // Gaussian elimination with partial pivoting
    int best = p;
    for (int r = p + 1; r < m; ++r)
      if (std::fabs(A[r][p]) > std::fabs(A[best][p])) best = r;
    if (std::fabs(A[best][p]) <= 1e-10 * scale) return false;  // collinear columns
    for (int c = 0; c <= m; ++c) std::swap(A[p][c], A[best][c]);
    for (int r = 0; r < m; ++r) {
      if (r == p) continue;
      double f = A[r][p] / A[p][p];
      for (int c = p; c <= m; ++c) A[r][c] -= f * A[p][c];
    }
  }
  coef[0] = coef[1] = coef[2] = 0;
  for (int r = 0; r < m; ++r) coef[idx[r]] = A[r][m] / A[r][r];
  return true;
}

}  // namespace

Coeffs fit_nonnegative(const std::vector<double>& flops, const std::vector<double>& bytes,
                       const std::vector<double>& seconds) {
  const size_t n = seconds.size();
  if (flops.size() != n || bytes.size() != n)
    throw ValueError("fit_nonnegative: flops, bytes and seconds differ in length");
  if (n == 0) throw ValueError("fit_nonnegative: no rows");
  // Weighted rows (divided by the time: relative error) with each column
  // scaled to a largest value of 1, so FLOPs (1e9) and the constant (1) are
  // conditioned alike.
  std::vector<double> X[3], y(n, 1.0);
  double colscale[3] = {0, 0, 0};
  for (int j = 0; j < 3; ++j) X[j].resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (!(seconds[i] > 0)) throw ValueError("fit_nonnegative: row " + std::to_string(i) +
                                            " has a time <= 0");
    double w = 1.0 / seconds[i];
    X[0][i] = w;
    X[1][i] = flops[i] * w;
    X[2][i] = bytes[i] * w;
    for (int j = 0; j < 3; ++j) colscale[j] = std::max(colscale[j], std::fabs(X[j][i]));
  }
  for (int j = 0; j < 3; ++j)
    if (colscale[j] > 0)
      for (double& v : X[j]) v /= colscale[j];
  double best_err = INFINITY, best[3] = {0, 0, 0};
  // Subsets by size, so that on a tie (exact data fits several) the one with
  // fewer terms stays.
  for (unsigned mask : {1u, 2u, 4u, 3u, 5u, 6u, 7u}) {
    bool zero_col = false;
    for (int j = 0; j < 3; ++j) zero_col |= (mask >> j & 1) && colscale[j] == 0;
    if (zero_col) continue;
    double c[3];
    if (!solve_subset(X, y, mask, c)) continue;
    if (c[0] < 0 || c[1] < 0 || c[2] < 0) continue;
    double err = 0;
    for (size_t i = 0; i < n; ++i) {
      double r = c[0] * X[0][i] + c[1] * X[1][i] + c[2] * X[2][i] - y[i];
      err += r * r;
    }
    if (err < best_err * (1 - 1e-9) - 1e-24 * static_cast<double>(n)) {
      best_err = err;
      for (int j = 0; j < 3; ++j) best[j] = c[j];
    }
  }
  Coeffs out{0, 0, 0};
  double* o[3] = {&out.a, &out.b, &out.c};
  for (int j = 0; j < 3; ++j) *o[j] = colscale[j] > 0 ? best[j] / colscale[j] : 0.0;
  return out;
}

// ---- the model ---------------------------------------------------------------

namespace {
bool backend_from(const std::string& s, Backend* b) {
  for (int i = 0; i < kBackendCount; ++i)
    if (s == backend_name(Backend(i))) {
      *b = Backend(i);
      return true;
    }
  return false;
}
bool kind_from(const std::string& s, OpKind* k) {
  for (int i = 0; i < kOpCount; ++i)
    if (s == op_name(OpKind(i))) {
      *k = OpKind(i);
      return true;
    }
  return false;
}
}  // namespace

void CostModel::init_defaults() {
  for (int b = 0; b < kBackendCount; ++b)
    // A backend counts only when its kernels are built AND usable now (a CUDA
    // build on a machine without a GPU has kernels but no device).
    available_[b] = has_kernels(Backend(b), DType::F32, OpKind::MatMul) &&
                    device(Backend(b)).available();
  max_threads_ = std::max(1, omp_get_num_procs());
}

void CostModel::set_max_threads(int n) {
  if (n < 1) throw ValueError("CostModel: max threads must be >= 1, got " + std::to_string(n));
  max_threads_ = n;
}

CostModel::CostModel(const std::vector<StudyRow>& rows) {
  init_defaults();
  using Key = std::tuple<int, int, std::string, int, int>;  // kind, backend, tier, threads, phase
  struct Cols {
    std::vector<double> flops, bytes, seconds;
  };
  std::map<Key, Cols> groups;
  for (size_t i = 0; i < rows.size(); ++i) {
    const StudyRow& r = rows[i];
    if (r.phase == "forward_backward") continue;
    OpKind k;
    Backend b;
    if (!kind_from(r.op, &k) || !backend_from(r.backend, &b)) {
      ++skipped_;
      continue;
    }
    Phase ph;
    if (r.phase == "forward") ph = Phase::Forward;
    else if (r.phase == "backward") ph = Phase::Backward;
    else throw ValueError("CostModel: row " + std::to_string(i) + " (" + r.op + ") has phase '" +
                          r.phase + "', expected forward, backward or forward_backward");
    if (r.threads < 1)
      throw ValueError("CostModel: row " + std::to_string(i) + " (" + r.op + " " + r.size +
                       ") has threads " + std::to_string(r.threads) + ", must be >= 1");
    if (!(r.seconds > 0) || r.flops < 0 || r.bytes < 0)
      throw ValueError("CostModel: row " + std::to_string(i) + " (" + r.op + " " + r.size +
                       ") needs a time > 0 and FLOPs, bytes >= 0");
    Cols& c = groups[Key{int(k), int(b), r.tier, r.threads, int(ph)}];
    c.flops.push_back(r.flops);
    c.bytes.push_back(r.bytes);
    c.seconds.push_back(r.seconds);
  }
  for (auto& [key, c] : groups) {
    CostFit f{OpKind(std::get<0>(key)), Backend(std::get<1>(key)), std::get<2>(key),
              std::get<3>(key), Phase(std::get<4>(key))};
    Coeffs k = fit_nonnegative(c.flops, c.bytes, c.seconds);
    f.a = k.a;
    f.b = k.b;
    f.c = k.c;
    f.n = static_cast<int>(c.seconds.size());
    by_kind_[int(f.kind)].push_back(static_cast<int>(fits_.size()));
    fits_.push_back(std::move(f));
  }
}

const CostFit* CostModel::find(OpKind k, Backend b, int threads, Phase ph,
                               const std::string& tier) const {
  for (int i : by_kind_[int(k)]) {
    const CostFit& f = fits_[i];
    if (f.backend == b && f.threads == threads && f.phase == ph && f.tier == tier) return &f;
  }
  return nullptr;
}

Placement CostModel::choose_cost(OpKind k, Phase ph, double flops, double bytes,
                                 const Backend* only) const {
  Placement best;
  for (int pass = 0; pass < 2 && !best.found(); ++pass) {
    // Backward without backward rows: fall back to the forward fits.
    Phase want = pass == 0 ? ph : Phase::Forward;
    if (pass == 1 && ph == Phase::Forward) break;
    for (int i : by_kind_[int(k)]) {
      const CostFit& f = fits_[i];
      if (f.phase != want || !available_[int(f.backend)] || f.threads > max_threads_) continue;
      if (only && f.backend != *only) continue;
      double t = f.seconds(flops, bytes);
      if (!best.found() || t < best.seconds) best = {f.backend, f.threads, f.tier, t};
    }
  }
  return best;
}

Placement CostModel::choose(OpKind k, const Shape* in, const OpAttr& attr, Phase ph) const {
  const OpMeta& m = op_meta(k);
  Shape out = m.shape(in, attr);
  double flops = m.flops(in, out, attr), bytes = m.bytes(in, out, attr);
  if (ph == Phase::Backward) {
    flops *= kBackwardFactor;
    bytes *= kBackwardFactor;
  }
  return choose_cost(k, ph, flops, bytes);
}

}  // namespace lldl
