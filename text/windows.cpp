#include "text/windows.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace lldl {

TokenWindows::TokenWindows(std::vector<int32_t> t, uint64_t seed) : tokens(std::move(t)), rng(seed) {}

namespace {

void check_sizes(int B, int T, size_t n) {
  if (B < 1 || T < 1)
    throw ValueError("TokenWindows.sample: B " + std::to_string(B) + " and T " + std::to_string(T) +
                     " must be at least 1");
  if (n <= size_t(T))
    throw ValueError("TokenWindows.sample: " + std::to_string(n) + " tokens are too few for windows of T " +
                     std::to_string(T) + " (need at least T + 1 = " + std::to_string(T + 1) + ")");
}

}  // namespace

void TokenWindows::sample(int B, int T, int32_t* x, int32_t* y) {
  size_t n = tokens.size();
  check_sizes(B, T, n);
  uint64_t starts = n - size_t(T);  // s in [0, n - T - 1]
  for (int b = 0; b < B; ++b) {
    size_t s = rng.below(starts);
    const int32_t* src = tokens.data() + s;
    std::copy(src, src + T, x + size_t(b) * T);
    std::copy(src + 1, src + T + 1, y + size_t(b) * T);
  }
}

void TokenWindows::sample_rows(int B, int T, int first, int rows, int32_t* x, int32_t* y) {
  size_t n = tokens.size();
  check_sizes(B, T, n);
  if (first < 0 || rows < 1 || first + rows > B)
    throw ValueError("TokenWindows.sample_rows: rows [" + std::to_string(first) + ", " +
                     std::to_string(first + rows) + ") are not inside a batch of " + std::to_string(B));
  uint64_t starts = n - size_t(T);
  for (int b = 0; b < B; ++b) {
    size_t s = rng.below(starts);  // drawn for every row, kept for ours
    if (b < first || b >= first + rows) continue;
    const int32_t* src = tokens.data() + s;
    std::copy(src, src + T, x + size_t(b - first) * T);
    std::copy(src + 1, src + T + 1, y + size_t(b - first) * T);
  }
}

void TokenWindows::sample(int B, int T, std::vector<int32_t>& x, std::vector<int32_t>& y) {
  check_sizes(B, T, tokens.size());
  x.resize(size_t(B) * size_t(T));
  y.resize(size_t(B) * size_t(T));
  sample(B, T, x.data(), y.data());
}

}  // namespace lldl
