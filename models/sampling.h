// Picking the next token from a row of logits: greedy, temperature, top-k
// and top-p (nucleus).
#pragma once
#include <cstdint>

#include "core/rng.h"

namespace lldl {

// Throws ValueError naming the argument: temperature must be a finite number
// >= 0 and top_k >= 1 (pass the vocabulary size, or more, for no restriction).
void check_sampling(float temperature, int64_t top_k);
// top_p must be in (0, 1] (1: no restriction).
void check_top_p(float top_p);

// temperature 0: the arg-max (greedy, no randomness). Otherwise the token is
// drawn from softmax(logits / temperature) restricted to the top_k largest
// logits (ties at the k-th value all kept), then to the smallest set of the
// most probable of those whose probabilities (renormalised over the top k)
// add up to at least top_p (the most probable token always stays). Logits
// must be finite.
int32_t sample_token(const float* logits, int64_t vocab, float temperature, int64_t top_k,
                     Rng& rng, float top_p = 1.0f);

}  // namespace lldl
