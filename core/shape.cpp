#include "core/shape.h"

#include <limits>

namespace lldl {

Shape::Shape(std::initializer_list<int64_t> dims) {
  *this = make_shape(dims.begin(), static_cast<int>(dims.size()), "shape");
}

bool Shape::operator==(const Shape& o) const {
  if (ndim != o.ndim) return false;
  for (int i = 0; i < ndim; ++i)
    if (d[i] != o.d[i]) return false;
  return true;
}

std::string Shape::str() const {
  if (ndim == 0) return "scalar";
  std::string s;
  for (int i = 0; i < ndim; ++i) {
    if (i) s += 'x';
    s += std::to_string(d[i]);
  }
  return s;
}

Shape make_shape(const int64_t* dims, int ndim, const char* what) {
  if (ndim < 0 || ndim > kMaxDims)
    throw ShapeError(std::string(what) + ": rank " + std::to_string(ndim) +
                     " is not supported (0 to " + std::to_string(kMaxDims) + " dimensions)");
  Shape s;
  s.ndim = ndim;
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) {
    if (dims[i] < 0)
      throw ShapeError(std::string(what) + ": dimension " + std::to_string(i) + " is negative (" +
                       std::to_string(dims[i]) + ")");
    s.d[i] = dims[i];
    if (dims[i] && n > std::numeric_limits<int64_t>::max() / 8 / dims[i])
      throw ShapeError(std::string(what) + ": element count overflows");
    n *= dims[i];
  }
  return s;
}

}  // namespace lldl
