// Deterministic parameter initialisation from a seed. A weight is stored as
// (fan_in, fan_out), so that a dense layer is x @ W.
#pragma once
#include <cstdint>

#include "autograd/graph.h"

namespace lldl {

enum class Init : uint8_t { Zeros, XavierUniform, XavierNormal, HeUniform, HeNormal };

// Fills parameter (or buffer) t. fan_in/fan_out default (0) to the first and
// last dimension of t's shape.
void init_param(Graph& g, Tensor t, Init how, uint64_t seed, int64_t fan_in = 0,
                int64_t fan_out = 0);
void init_uniform(Graph& g, Tensor t, double lo, double hi, uint64_t seed);
void init_normal(Graph& g, Tensor t, double mean, double std, uint64_t seed);

}  // namespace lldl
