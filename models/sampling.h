// Picking the next token from a row of logits: greedy, temperature and top-k.
#pragma once
#include <cstdint>

#include "core/rng.h"

namespace lldl {

// Throws ValueError naming the argument: temperature must be a finite number
// >= 0 and top_k >= 1 (pass the vocabulary size, or more, for no restriction).
void check_sampling(float temperature, int64_t top_k);

// temperature 0: the arg-max (greedy, no randomness). Otherwise the token is
// drawn from softmax(logits / temperature) restricted to the top_k largest
// logits (ties at the k-th value all kept). Logits must be finite.
int32_t sample_token(const float* logits, int64_t vocab, float temperature, int64_t top_k,
                     Rng& rng);

}  // namespace lldl
