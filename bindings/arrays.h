// NumPy <-> lldl: every array is taken as py::array and checked here, so each
// message names the argument. The rules (documented in README):
//  - float32 C-contiguous arrays are used in place, no copy;
//  - other floating dtypes (float64, float16), Fortran order and strided
//    views are converted once to float32 C order;
//  - integer arrays are class labels where labels are allowed, a TypeError
//    elsewhere; bool, complex and object arrays are a TypeError;
//  - rank is never guessed: a 1-D array is not an N x 1 matrix.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "models/seed_api.h"

namespace lldl::py_bind {

namespace py = pybind11;

std::string shape_str(const py::array& a);

// A float32 C-contiguous matrix view of `obj` (2-D), converting if needed.
// `keep` receives the array whose memory the view points to.
Matrix as_matrix(const py::handle& obj, const char* name, py::array& keep);

// Samples for a network whose one sample has `sample_shape` (may be empty):
// a 2-D (N, features) array as as_matrix, or an (N, *sample_shape) array
// seen as N rows (no copy for float32 C order).
Matrix as_samples(const py::handle& obj, const char* name, const std::vector<int64_t>& sample_shape,
                  py::array& keep);

// Targets for a network output of `units`: integer arrays (N,) or (N, 1) as
// int32 labels (only when labels_ok), float arrays (N, units) as values.
Targets as_targets(const py::handle& obj, const char* name, bool labels_ok, py::array& keep);

// A float32 C-contiguous array of any rank 0..4 (for graph inputs), or an
// int32 array when the input has an integer dtype and ints_ok.
py::array as_tensor_array(const py::handle& obj, const char* name, bool ints_ok);

}  // namespace lldl::py_bind
