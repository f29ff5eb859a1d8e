#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"

namespace lldl::dist {

void broadcast_params(Graph& g, int root) {
  // The same parameters everywhere first, or the broadcast would scramble them.
  std::string layout = std::string(dtype_name(g.dtype())) + ";";
  size_t bytes = 0;
  for (Tensor p : g.params()) {
    const TensorDesc& d = g.desc(p);
    layout += d.name + ":" + d.shape.str() + ";";
    bytes += size_t(d.shape.numel()) * dtype_size(d.dtype);
  }
  check_same("the model's parameters (names, shapes, dtype)", hash_string(layout));
  if (world_size() == 1) return;
  std::vector<unsigned char> buf(bytes);
  size_t at = 0;
  const std::vector<Tensor> ps = g.params();
  for (Tensor p : ps) {
    g.to_host(p, buf.data() + at);
    at += size_t(g.desc(p).shape.numel()) * dtype_size(g.desc(p).dtype);
  }
  for (size_t off = 0; off < bytes; off += size_t(1) << 30)  // MPI counts are int
    broadcast(buf.data() + off, std::min(bytes - off, size_t(1) << 30), root);
  at = 0;
  for (Tensor p : ps) {
    g.from_host(p, buf.data() + at);
    at += size_t(g.desc(p).shape.numel()) * dtype_size(g.desc(p).dtype);
  }
}

}  // namespace lldl::dist
