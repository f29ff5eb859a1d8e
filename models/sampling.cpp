#include "models/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"

namespace lldl {

void check_sampling(float temperature, int64_t top_k) {
  if (!(temperature >= 0) || !std::isfinite(temperature))
    throw ValueError("temperature must be a finite number >= 0 (0: greedy), got " +
                     std::to_string(temperature));
  if (top_k < 1)
    throw ValueError("top_k must be >= 1 (the vocabulary size for no restriction), got " +
                     std::to_string(top_k));
}

void check_top_p(float top_p) {
  if (!(top_p > 0 && top_p <= 1))
    throw ValueError("top_p must be in (0, 1] (1: no restriction), got " + std::to_string(top_p));
}

namespace {

// Zeroes the weights outside the nucleus: the fewest most probable tokens
// whose weights reach top_p of the total. Returns the new total.
double nucleus(std::vector<double>& p, double total, float top_p) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < static_cast<int64_t>(p.size()); ++i)
    if (p[i] > 0) order.push_back(i);
  // Larger weight first; equal weights by index, so the cut is deterministic.
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return p[a] != p[b] ? p[a] > p[b] : a < b;
  });
  const double need = double(top_p) * total;
  double kept = 0;
  size_t n = 0;
  while (n < order.size() && (n == 0 || kept < need)) kept += p[order[n++]];
  for (size_t j = n; j < order.size(); ++j) p[order[j]] = 0;
  return kept;
}

}  // namespace

int32_t sample_token(const float* logits, int64_t vocab, float temperature, int64_t top_k,
                     Rng& rng, float top_p) {
  check_sampling(temperature, top_k);
  check_top_p(top_p);
  if (vocab < 1) throw ValueError("sample_token: empty vocabulary");
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isfinite(logits[i]))
      throw ValueError("sample_token: logit " + std::to_string(i) + " is not finite");
  int64_t best = std::max_element(logits, logits + vocab) - logits;
  if (temperature == 0) return static_cast<int32_t>(best);

  // The k-th largest logit is the cut-off; everything at or above it stays.
  float cut = -INFINITY;
  if (top_k < vocab) {
    std::vector<float> v(logits, logits + vocab);
    std::nth_element(v.begin(), v.begin() + (top_k - 1), v.end(), std::greater<float>());
    cut = v[top_k - 1];
  }
  // Max-subtracted so that exp never overflows, whatever the temperature.
  const double mx = logits[best];
  double total = 0;
  std::vector<double> p(vocab, 0.0);
  for (int64_t i = 0; i < vocab; ++i)
    if (logits[i] >= cut) total += p[i] = std::exp((logits[i] - mx) / temperature);
  if (top_p < 1) total = nucleus(p, total, top_p);
  double u = rng.uniform() * total;
  for (int64_t i = 0; i < vocab; ++i) {
    if (p[i] == 0) continue;
    if (u < p[i]) return static_cast<int32_t>(i);
    u -= p[i];
  }
  return static_cast<int32_t>(best);  // rounding left u just above the total
}

}  // namespace lldl
