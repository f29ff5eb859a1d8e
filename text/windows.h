// Random training windows over a token stream for next-token prediction:
// x = tokens[s .. s+T), y = tokens[s+1 .. s+T+1) with s uniform in
// [0, n - T - 1], drawn by lldl::Rng so a seed gives the same windows on
// every platform.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace lldl {

struct TokenWindows {
  TokenWindows(std::vector<int32_t> tokens, uint64_t seed);

  // Fills x and y, each B*T ids (row b is window b). B < 1, T < 1 or
  // n <= T (no room for one window plus its next token) -> ValueError naming
  // the sizes.
  void sample(int B, int T, int32_t* x, int32_t* y);
  // The same into vectors resized to B*T.
  void sample(int B, int T, std::vector<int32_t>& x, std::vector<int32_t>& y);

  // Rows [first, first + rows) of the batch sample(B, T) would draw, into x
  // and y of rows*T ids each; the generator advances by the whole batch.
  // Data-parallel training (dist/): with N ranks at B windows each, rank r
  // takes rows [r*B, (r+1)*B) of a global batch of N*B from the same seed,
  // so the N ranks together see exactly the windows one rank at N*B sees,
  // and no two ranks share a row.
  void sample_rows(int B, int T, int first, int rows, int32_t* x, int32_t* y);

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }

  std::vector<int32_t> tokens;
  Rng rng;
};

}  // namespace lldl
