// Data loaders: Fashion-MNIST (idx files, read in C++ with zlib).
#include <pybind11/numpy.h>

#include "bindings/module.h"
#include "data/idx.h"

namespace lldl::py_bind {

namespace py = pybind11;

void bind_data(py::module_& m) {
  m.def("load_fashion_mnist",
        [](const std::string& split, int64_t limit, const std::string& dir) {
          ImageSet s;
          {
            py::gil_scoped_release nogil;
            s = load_fashion_mnist(dir, split, limit);
          }
          py::array_t<float> x({s.count, s.channels, s.height, s.width});
          std::copy(s.images.begin(), s.images.end(), x.mutable_data());
          py::array_t<int32_t> y(s.count);
          std::copy(s.labels.begin(), s.labels.end(), y.mutable_data());
          return py::make_tuple(x, y);
        },
        py::arg("split") = "train", py::arg("limit") = 0, py::arg("dir") = kFashionMnistDir,
        "(images float32 (N, 1, 28, 28) scaled to [0, 1], labels int32 (N,)) of the 'train' "
        "or 't10k' split; limit > 0 keeps the first `limit` examples.");
}

}  // namespace lldl::py_bind
