// lldl errors: every failure is an exception whose message names the op, the
// argument and the shapes involved. Nothing in the library aborts.
#pragma once
#include <stdexcept>
#include <string>

namespace lldl {

// Wrong shape, rank or size of an argument (maps to Python ValueError).
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Wrong element type or memory layout (maps to Python TypeError).
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Any other bad value: NaN in data, label out of range, stale tensor id ...
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// The operating system refused a file operation (open, write, fsync,
// rename ...); the message names the file and the call.
struct IOError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A request the build or machine cannot serve (e.g. CUDA without a GPU).
struct UnavailableError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace lldl
