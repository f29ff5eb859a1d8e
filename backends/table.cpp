#include <string>

#include "backends/backend.h"
#include "backends/device.h"
#include "core/error.h"

namespace lldl {

namespace {
struct Table {
  KernelPair k[kBackendCount][kDTypeCount][kOpCount] = {};
  Table() {
    cpu_fill_table(k[int(Backend::CPU)][int(DType::F32)], k[int(Backend::CPU)][int(DType::F64)]);
#ifdef LLDL_HAVE_CUDA
    cuda_fill_table(k[int(Backend::CUDA)][int(DType::F32)]);
#endif
  }
};
const Table& table() {
  static const Table t;
  return t;
}
}  // namespace

bool has_kernels(Backend b, DType t, OpKind k) {
  int bi = int(b), ti = int(t), ki = int(k);
  if (bi < 0 || bi >= kBackendCount || ti < 0 || ti >= kDTypeCount || ki < 0 || ki >= kOpCount)
    return false;
  const KernelPair& p = table().k[bi][ti][ki];
  return p.forward && p.backward;
}

const KernelPair& kernels(Backend b, DType t, OpKind k) {
  const OpMeta& m = op_meta(k);  // throws for an unknown kind
  if (!has_kernels(b, t, k))
    throw UnavailableError(std::string(m.name) + ": no " + dtype_name(t) + " kernel on backend '" +
                           backend_name(b) + "'");
  return table().k[int(b)][int(t)][int(k)];
}

const DeviceFns& device(Backend b) {
  switch (b) {
    case Backend::CPU: return cpu_device();
    case Backend::CUDA: return cuda_device();
    case Backend::Count: break;
  }
  throw UnavailableError("device: unknown backend " + std::to_string(int(b)));
}

const CaptureFns& capture_fns(Backend b) {
  switch (b) {
    case Backend::CPU: return cpu_capture_fns();
    case Backend::CUDA: return cuda_capture_fns();
    case Backend::Count: break;
  }
  throw UnavailableError("capture_fns: unknown backend " + std::to_string(int(b)));
}

}  // namespace lldl
