// Every op kind, walked from the enum: its metadata row is complete, it has
// example inputs that its own shape rule accepts, and it has kernels on
// every backend it claims (the CPU in float32 and float64, CUDA in float32
// when compiled in). Adding a kind without one of these fails here.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "backends/backend.h"
#include "ops/op.h"

using namespace lldl;

TEST_CASE("every op kind has a complete metadata row and a unique name") {
  for (int i = 0; i < kOpCount; ++i) {
    const OpKind k = OpKind(i);
    const OpMeta& m = op_meta(k);
    INFO("op kind " << i << " (" << (m.name ? m.name : "no name") << ")");
    REQUIRE(m.name != nullptr);
    CHECK(m.arity >= 1);
    CHECK(m.arity <= kMaxInputs);
    CHECK(bool(m.shape));
    CHECK(bool(m.flops));
    CHECK(bool(m.bytes));
    CHECK(op_from_name(m.name) == k);
  }
}

TEST_CASE("every op kind has kernels on each backend it claims") {
  for (int i = 0; i < kOpCount; ++i) {
    const OpKind k = OpKind(i);
    INFO("op " << op_name(k));
    CHECK_MESSAGE(has_kernels(Backend::CPU, DType::F32, k), "no CPU float32 kernel pair");
    CHECK_MESSAGE(has_kernels(Backend::CPU, DType::F64, k), "no CPU float64 kernel pair");
#ifdef LLDL_HAVE_CUDA
    CHECK_MESSAGE(has_kernels(Backend::CUDA, DType::F32, k), "no CUDA float32 kernel pair");
#else
    CHECK_FALSE(has_kernels(Backend::CUDA, DType::F32, k));  // nothing claimed, nothing there
#endif
  }
}

TEST_CASE("every op kind has small and large example inputs that its shape rule accepts") {
  for (int i = 0; i < kOpCount; ++i) {
    const OpKind k = OpKind(i);
    const OpMeta& m = op_meta(k);
    int small = 0, large = 0;
    for (const OpExample& e : m.examples) {
      INFO("op " << m.name << ", example " << example_label(e));
      std::vector<Shape> in = example_shapes(e);
      REQUIRE(int(in.size()) == m.arity);
      CHECK_NOTHROW(m.shape(in.data(), e.attr));
      CHECK(e.lo < e.hi);
      for (int j = 0; j < m.arity; ++j)
        if (is_int_input(m, j))
          CHECK_MESSAGE(e.classes > 0, "int32 input " << j << " needs classes");
      ++(e.large ? large : small);
    }
    INFO("op " << m.name);
    CHECK_MESSAGE(small > 0, "no small example (ops/examples.h): the host tests would skip it");
    // Reshape is a view: a large copy of it would time nothing.
    if (k != OpKind::Reshape)
      CHECK_MESSAGE(large > 0, "no large example for the GPU and benchmarks");
  }
}

TEST_CASE("example shapes parse as written, and a malformed list is refused") {
  OpExample e{.shapes = "2x3x4 5  7x1"};
  std::vector<Shape> s = example_shapes(e);
  REQUIRE(s.size() == 3);
  CHECK(s[0] == Shape{2, 3, 4});
  CHECK(s[1] == Shape{5});
  CHECK(s[2] == Shape{7, 1});
  CHECK(example_label(OpExample{.shapes = "4x6", .note = "as 6x4"}) == "4x6, as 6x4");
  CHECK_THROWS_AS(example_shapes(OpExample{.shapes = "2xx3"}), ValueError);
  CHECK_THROWS_AS(example_shapes(OpExample{.shapes = "1x2x3x4x5"}), ValueError);
}
