// Element types. The engine computes in float32; float64 exists so that the
// very same kernels can be gradient-checked in double precision; int32 holds
// class labels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace lldl {

enum class DType : uint8_t { F32, F64, I32, Count };
constexpr int kDTypeCount = static_cast<int>(DType::Count);

constexpr size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }
constexpr const char* dtype_name(DType t) {
  return t == DType::F32 ? "float32" : t == DType::F64 ? "float64" : "int32";
}

// The DType of a C++ element type (float, double, int32_t).
template <class T>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                    std::is_same_v<T, int32_t>,
                "lldl tensors hold float, double or int32_t");
  return std::is_same_v<T, float> ? DType::F32 : std::is_same_v<T, double> ? DType::F64 : DType::I32;
}

}  // namespace lldl
