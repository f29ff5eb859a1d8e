// NCCL's all-reduce on device buffers (backends/nccl.h), issue 15. With one
// GPU this is NCCL's single-rank path: the sum (and the mean) over one rank
// must give back the buffer bit for bit, in order with the CUDA backend's
// kernels on the default stream. Suite "gpu": skipped without a usable
// device and NCCL; "gpu: NCCL status" always runs and prints why.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "autograd/optim.h"
#include "backends/cuda/device.h"
#include "backends/nccl.h"
#include "core/error.h"
#include "core/rng.h"
#include "dist/device_comm.h"
#include "dist/grad_sync.h"

using namespace lldl;

namespace {

const bool kNoNccl = !nccl_available();

// A device copy of host floats, freed on scope exit.
struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(const std::vector<float>& h) {
    p = static_cast<float*>(cuda_alloc(h.size() * sizeof(float)));
    cuda_to_device(p, h.data(), h.size() * sizeof(float));
  }
  ~DeviceFloats() { cuda_free(p); }
  std::vector<float> host(size_t n) const {
    std::vector<float> h(n);
    cuda_to_host(h.data(), p, n * sizeof(float));
    return h;
  }
};

std::vector<float> random_floats(size_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(r.uniform(-3, 3));
  return v;
}

// How train_on_gpu averages gradients after backward: not at all, by
// dist::allreduce_grads_device, or through GradSync (whose device path is NCCL).
enum class Sync { None, Device, GradSync };

// A small MLP regression trained for `steps` Adam steps on the GPU; returns
// each step's loss and the final W1.
std::pair<std::vector<double>, std::vector<float>> train_on_gpu(Sync sync, int steps) {
  const int64_t n = 32, d = 9, h = 17;
  std::vector<float> x = random_floats(n * d, 5), y = random_floats(n, 6);
  Graph g(DType::F32, Backend::CUDA, size_t(1) << 20);
  Tensor W1 = g.param({d, h}, "W1"), b1 = g.param({h}, "b1"), W2 = g.param({h, 1}, "W2");
  init_param(g, W1, Init::XavierUniform, 21);
  init_param(g, W2, Init::XavierUniform, 22);
  OptimConfig cfg;
  cfg.kind = OptimKind::Adam;
  cfg.lr = 0.01f;
  Optimizer opt(g, cfg);
  std::unique_ptr<dist::GradSync> gs = sync == Sync::GradSync ? std::make_unique<dist::GradSync>(g) : nullptr;
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    Tensor xt = g.input({n, d}, x.data(), DType::F32);
    Tensor yt = g.input({n, 1}, y.data(), DType::F32);
    Tensor loss = mse_loss(matmul(tanh(bias_add(matmul(xt, W1), b1)), W2), yt);
    g.backward(loss);
    if (sync == Sync::Device) dist::allreduce_grads_device(g);
    if (gs) gs->finish();
    losses.push_back(g.item(loss));
    opt.step();
    g.reset();
  }
  std::vector<float> w(d * h);
  g.to_host(W1, w.data());
  return {losses, w};
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("gpu: gradients averaged on the device by NCCL over one rank leave training unchanged" *
            doctest::skip(kNoNccl)) {
    // The communicator's device path (dist/device_comm.h): one rank's mean
    // is the gradient itself, so 10 Adam steps must match bit for bit.
    auto [plain, w_plain] = train_on_gpu(Sync::None, 10);
    CHECK(plain.back() < plain.front());  // it trains
    for (Sync how : {Sync::Device, Sync::GradSync}) {
      auto [synced, w_synced] = train_on_gpu(how, 10);
      INFO((how == Sync::Device ? "allreduce_grads_device" : "GradSync"));
      CHECK(plain == synced);
      CHECK(w_plain == w_synced);
    }
  }

  TEST_CASE("gpu: the device all-reduce refuses a host graph by name") {
    Graph g(DType::F32, Backend::CPU, size_t(1) << 16);
    g.param({2}, "w");
    CHECK_THROWS_WITH_AS(dist::allreduce_grads_device(g), doctest::Contains("gradients are in host memory"),
                         ValueError);
  }

  TEST_CASE("gpu: NCCL status") {
    MESSAGE("NCCL: " << std::string(kNoNccl ? "skipping the NCCL tests: " : "available, ") << nccl_status());
    // A build with NCCL on a machine with a GPU must load it: otherwise the
    // NCCL cases below would be skipped silently on the GPU machine.
    bool built_with = nccl_status().rfind("built without", 0) != 0;
    if (cuda_available() && built_with) CHECK_MESSAGE(nccl_available(), "NCCL failed to load: " << nccl_status());
  }

  TEST_CASE("gpu: NCCL all-reduce over one rank returns the buffer, sum and mean" * doctest::skip(kNoNccl)) {
    NcclComm comm(nccl_unique_id(), 0, 1);
    CHECK(comm.rank() == 0);
    CHECK(comm.ranks() == 1);
    for (size_t n : {size_t(1), size_t(7), size_t(1000003)}) {  // odd lengths: no vector-width tail hides
      std::vector<float> h = random_floats(n, 11 + n);
      DeviceFloats d(h);
      for (bool average : {false, true}) {
        nccl_allreduce(comm, d.p, static_cast<int64_t>(n), average);
        std::vector<float> back = d.host(n);
        INFO("n = " << n << (average ? ", mean" : ", sum"));
        CHECK(std::memcmp(back.data(), h.data(), n * sizeof(float)) == 0);
      }
    }
    nccl_allreduce(comm, nullptr, 0, true);  // an empty buffer is a no-op
  }

  TEST_CASE("gpu: NCCL all-reduce runs in order with the default stream's copies" * doctest::skip(kNoNccl)) {
    // Writes, reduces and reads back repeatedly: a reduction that ran ahead
    // of the preceding copy would return the previous round's values.
    NcclComm comm(nccl_unique_id(), 0, 1);
    const size_t n = 1 << 20;
    DeviceFloats d(random_floats(n, 1));
    for (int round = 0; round < 4; ++round) {
      std::vector<float> h = random_floats(n, 100 + round);
      cuda_to_device(d.p, h.data(), n * sizeof(float));
      nccl_allreduce(comm, d.p, static_cast<int64_t>(n), true);
      CHECK_MESSAGE(std::memcmp(d.host(n).data(), h.data(), n * sizeof(float)) == 0, "round " << round);
    }
  }

  TEST_CASE("gpu: NCCL refuses bad arguments by name" * doctest::skip(kNoNccl)) {
    NcclComm comm(nccl_unique_id(), 0, 1);
    DeviceFloats d(random_floats(4, 2));
    CHECK_THROWS_WITH_AS(nccl_allreduce(comm, d.p, -1, false), doctest::Contains("n is -1"), ValueError);
    CHECK_THROWS_WITH_AS(nccl_allreduce(comm, nullptr, 4, false), doctest::Contains("buf is null"), ValueError);
  }
}

TEST_CASE("nccl: bad ranks are refused, and without NCCL every call says why") {
  NcclUniqueId id{};
  CHECK_THROWS_WITH_AS(NcclComm(id, 2, 2), doctest::Contains("rank 2 is outside [0, 2)"), ValueError);
  CHECK_THROWS_WITH_AS(NcclComm(id, 0, 0), doctest::Contains("ranks must be >= 1"), ValueError);
  if (nccl_available()) return;
  CHECK_THROWS_WITH_AS(nccl_unique_id(), doctest::Contains("NCCL is not available"), UnavailableError);
  CHECK_THROWS_WITH_AS(NcclComm(id, 0, 1), doctest::Contains(nccl_status().c_str()), UnavailableError);
  CHECK_THROWS_WITH_AS(nccl_allreduce(NcclComm(id, 0, 1), nullptr, 1, false), doctest::Contains("not available"),
                       UnavailableError);
}
