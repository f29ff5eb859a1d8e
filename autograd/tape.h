// The tape: a flat array of tagged plain structs, one per recorded op.
// Backward walks it in reverse and calls each entry's backward kernel.
#pragma once
#include <cstdint>
#include <type_traits>

#include "ops/op.h"

namespace lldl {

// Tensor ids: >= 0 index the step's tensors, < 0 the persistent ones
// (-1 is persistent tensor 0). kNoTensor marks an unused input slot.
constexpr int32_t kNoTensor = INT32_MIN;

struct TapeEntry {
  OpKind kind;
  uint8_t n_in;
  int32_t in[kMaxInputs];
  int32_t out;
  int32_t ws;  // the workspace tensor (OpMeta::workspace), or kNoTensor
  OpAttr attr;
};
static_assert(std::is_trivially_copyable_v<TapeEntry>);

}  // namespace lldl
