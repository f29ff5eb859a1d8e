// Shape of a row-major tensor: up to 4 dimensions; ndim 0 is a scalar.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/error.h"

namespace lldl {

constexpr int kMaxDims = 4;

struct Shape {
  int32_t ndim = 0;
  int64_t d[kMaxDims] = {1, 1, 1, 1};

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= d[i];
    return n;
  }
  int64_t operator[](int i) const { return d[i]; }
  int64_t last() const { return ndim ? d[ndim - 1] : 1; }
  // Rows when the tensor is seen as a matrix over its last dimension.
  int64_t rows() const { return ndim ? numel() / (last() ? last() : 1) : 1; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "32x10", "scalar"
};

// Checked construction from user-given dimensions (negative, too many dims or
// an element count that overflows raise ShapeError naming `what`).
Shape make_shape(const int64_t* dims, int ndim, const char* what);

}  // namespace lldl
