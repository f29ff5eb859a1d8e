// Placement by measurement: a cost model fitted from the study's CSV
// (bench/study) that predicts an op's time on each backend and thread count
// and picks the fastest.
//
// Per (op kind, backend, tier, threads, phase) the model fits
//     time = a + b * flops + c * bytes,   a, b, c >= 0
// by least squares on the relative error (each row weighted by 1 / time, so
// a 2-microsecond op counts as much as a 2-second one), with the
// non-negativity enforced exactly: every subset of {a, b, c} is solved and
// the best feasible one kept. a is the fixed cost of a call (dispatch,
// starting threads), b the time per FLOP, c the time per byte.
//
//   CostModel m = CostModel::from_csv("bench/out/study.csv");
//   Placement p = m.choose(OpKind::MatMul, shapes, matmul_attr(false, false));
//   g.set_auto_placement(&m);   // every op then runs at the thread count m picks
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "autograd/profiler.h"
#include "ops/op.h"

namespace lldl {

// One CSV row of the study: the columns the model uses (others are ignored).
// phase is "forward", "backward" or "forward_backward" (the last is skipped
// by the model: it is the sum of the other two).
struct StudyRow {
  std::string op, size, backend, tier, phase;
  double flops = 0, bytes = 0;
  int threads = 1;
  double seconds = 0;  // median time of one call
};

// Reads the study CSV (a header naming at least op, flops, bytes, threads,
// backend, phase and median_s; size and tier optional). Throws ValueError
// naming the file, line and column of a bad field, or a missing column.
std::vector<StudyRow> read_study_csv(const std::string& path);
std::vector<StudyRow> parse_study_csv(std::istream& in, const std::string& what);

struct CostFit {
  OpKind kind;
  Backend backend;
  std::string tier;
  int threads;
  Phase phase;
  double a = 0, b = 0, c = 0;  // seconds, seconds per FLOP, seconds per byte
  int n = 0;                   // rows fitted
  double seconds(double flops, double bytes) const { return a + b * flops + c * bytes; }
};

struct Placement {
  Backend backend = Backend::CPU;
  int threads = 0;  // 0: the model has no data for this op (keep the current setting)
  std::string tier;
  double seconds = 0;  // predicted time
  bool found() const { return threads > 0; }
};

class CostModel {
 public:
  CostModel() { init_defaults(); }
  // Fits one CostFit per (op, backend, tier, threads, phase) group of rows.
  // Rows naming an op or backend this build does not know are skipped
  // (counted in skipped()); a row with threads < 1 or a time <= 0 is a
  // ValueError.
  explicit CostModel(const std::vector<StudyRow>& rows);
  static CostModel from_csv(const std::string& path) { return CostModel(read_study_csv(path)); }

  const std::vector<CostFit>& fits() const { return fits_; }
  int skipped() const { return skipped_; }
  // The fit of one group, or null.
  const CostFit* find(OpKind k, Backend b, int threads, Phase ph, const std::string& tier = "") const;

  // Backends the choice may use. Default: the CPU, and the CUDA backend when
  // this build has its kernels (has_kernels) and a device is usable
  // (device(b).available()): a CUDA build on a machine without a GPU places on the CPU.
  void set_available(Backend b, bool on) { available_[int(b)] = on; }
  bool available(Backend b) const { return available_[int(b)]; }
  // Largest thread count the choice may use; default: this machine's cores.
  // Raises ValueError below 1.
  void set_max_threads(int n);
  int max_threads() const { return max_threads_; }

  // The fastest (backend, tier, threads) for the op on these input shapes;
  // the inputs are checked with the op's shape rule (ShapeError as in
  // record). Backward FLOPs and bytes are kBackwardFactor x the forward ones.
  Placement choose(OpKind k, const Shape* in, const OpAttr& attr, Phase ph = Phase::Forward) const;
  // The same from the FLOPs and bytes of one call; `only` restricts the
  // choice to one backend (a graph's own).
  Placement choose_cost(OpKind k, Phase ph, double flops, double bytes,
                        const Backend* only = nullptr) const;

 private:
  std::vector<CostFit> fits_;
  std::vector<int> by_kind_[kOpCount];  // indices into fits_
  bool available_[kBackendCount] = {};
  int max_threads_ = 1;
  int skipped_ = 0;
  void init_defaults();
};

// Fits time = a + b*flops + c*bytes with a, b, c >= 0, rows weighted by
// 1/time; exposed for tests. Returns {a, b, c}.
struct Coeffs {
  double a, b, c;
};
Coeffs fit_nonnegative(const std::vector<double>& flops, const std::vector<double>& bytes,
                       const std::vector<double>& seconds);

}  // namespace lldl
