// dist/ in a job of one rank (the normal suite; tests/dist/ runs under
// mpirun -np 2): the communicator's calls, the graph's grad-ready hook (every
// parameter once, its gradient final when reported) and GradSync's buckets,
// which start during backward and leave the gradients as they were.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "autograd/functions.h"
#include "autograd/init.h"
#include "core/error.h"
#include "dist/comm.h"
#include "dist/grad_sync.h"

using namespace lldl;

namespace {

// A 3-layer tanh MLP with a mean-squared loss on a fixed batch.
struct Net {
  std::vector<Tensor> w, b;
};
Net make_net(Graph& g, int width, int layers) {
  Net n;
  for (int l = 0; l < layers; ++l) {
    n.w.push_back(g.param({width, width}, "w" + std::to_string(l)));
    n.b.push_back(g.param({width}, "b" + std::to_string(l)));
    init_param(g, n.w.back(), Init::XavierUniform, 7 + l);
  }
  return n;
}
Tensor net_loss(Graph& g, const Net& n, int batch, int width) {
  std::vector<float> x(size_t(batch * width)), y(size_t(batch * width));
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = float(i % 7) * 0.1f - 0.3f;
    y[i] = float(i % 5) * 0.05f;
  }
  Tensor h = g.input({batch, width}, x.data(), DType::F32);
  for (size_t l = 0; l < n.w.size(); ++l) h = tanh(linear(h, n.w[l], n.b[l]));
  return mse_loss(h, g.input({batch, width}, y.data(), DType::F32));
}

}  // namespace

TEST_CASE("dist: one rank without mpirun") {
  dist::init();
  dist::init();  // idempotent
  CHECK(dist::initialized());
  CHECK(dist::rank() == 0);
  CHECK(dist::world_size() == 1);
  dist::barrier();
  std::vector<float> v{1.5f, -2.0f, 3.25f};
  dist::allreduce_mean(v.data(), v.size());
  CHECK(v == std::vector<float>{1.5f, -2.0f, 3.25f});
  CHECK(dist::allreduce_scalar(2.5) == 2.5);
  CHECK(dist::allreduce_scalar(2.5, dist::ReduceOp::Sum) == 2.5);
  CHECK(dist::allreduce_scalar(-1.0, dist::ReduceOp::Max) == -1.0);
  dist::check_same("a config", dist::hash_string("gpt d64"));
  CHECK(dist::hash_string("a") != dist::hash_string("b"));
  int x = 42;
  dist::broadcast(&x, sizeof x, 0);
  CHECK(x == 42);
  CHECK_THROWS_AS(dist::broadcast(&x, sizeof x, 1), ValueError);
  dist::fault_point(1);  // no LLDL_DIST_FAULT: nothing happens
}

TEST_CASE("dist: grad-ready hook reports each parameter once with its final gradient") {
  Graph g;
  Net n = make_net(g, 6, 3);
  std::vector<int32_t> order;
  std::map<int32_t, std::vector<float>> at_ready;
  g.set_grad_ready_hook([&](Tensor p) {
    order.push_back(p.id);
    at_ready[p.id] = g.host_grad(p);
  });
  Tensor unused = g.param({2}, "unused");
  g.backward(net_loss(g, n, 4, 6));
  REQUIRE(order.size() == g.num_params());
  CHECK(std::set<int32_t>(order.begin(), order.end()).size() == order.size());
  // The last layer's parameters are final first, the unread one comes last.
  CHECK((order[0] == n.b[2].id || order[0] == n.w[2].id));
  CHECK(order.back() == unused.id);
  for (Tensor p : g.params()) CHECK(at_ready[p.id] == g.host_grad(p));
  g.set_grad_ready_hook({});
  g.reset();
}

TEST_CASE("dist: GradSync on one rank leaves the gradients and overlaps backward") {
  Graph ref, g;
  Net nr = make_net(ref, 32, 4), n = make_net(g, 32, 4);
  ref.backward(net_loss(ref, nr, 8, 32));
  g.set_profiling(true);
  dist::GradSync sync(g, 4 * 32 * 33);  // about one layer a bucket
  for (int step = 0; step < 2; ++step) {
    g.reset_profile();
    g.backward(net_loss(g, n, 8, 32));
    sync.finish();
    for (size_t i = 0; i < g.params().size(); ++i)
      CHECK(g.host_grad(g.params()[i]) == ref.host_grad(ref.params()[i]));
    const auto& ev = g.profile().events;
    auto bw = std::find_if(ev.begin(), ev.end(), [](const ProfileEvent& e) { return e.name == "backward"; });
    REQUIRE(bw != ev.end());
    int buckets = 0;
    int64_t first_start = INT64_MAX;
    for (const ProfileEvent& e : ev)
      if (e.name == "allreduce") {
        ++buckets;
        if (e.index == 0) first_start = e.start_ns;
      }
    CHECK(buckets == int(sync.buckets().size()));
    CHECK(sync.buckets().size() >= 3);
    CHECK(first_start < bw->end_ns);  // the first bucket went out during backward
    g.reset();
  }
  CHECK(sync.stats().steps == 2);
  CHECK(sync.stats().buckets == 2 * int64_t(sync.buckets().size()));
}

TEST_CASE("dist: GradSync refuses a second backward before finish") {
  Graph g;
  Net n = make_net(g, 8, 2);
  dist::GradSync sync(g, 1 << 20);
  g.backward(net_loss(g, n, 2, 8));
  sync.finish();
  g.reset(true);
  g.backward(net_loss(g, n, 2, 8));
  g.reset(true);
  CHECK_THROWS_AS(g.backward(net_loss(g, n, 2, 8)), ValueError);
  sync.finish();  // the second backward's buckets
  g.reset();
  // Accumulation: inactive passes send nothing, finish() reduces everything.
  sync.set_active(false);
  g.backward(net_loss(g, n, 2, 8));
  g.reset(true);
  sync.set_active(true);
  g.backward(net_loss(g, n, 2, 8));
  sync.finish();
}

TEST_CASE("dist: shards split the global batch evenly, or refuse") {
  CHECK(dist::shard_of(8, 0, 1).first == 0);
  CHECK(dist::shard_of(8, 0, 1).rows == 8);
  CHECK(dist::shard_of(8, 1, 2).first == 4);
  CHECK(dist::shard_of(8, 1, 2).rows == 4);
  CHECK_THROWS_AS(dist::shard_of(7, 0, 2), ValueError);
  CHECK_THROWS_AS(dist::shard_of(8, 2, 2), ValueError);
  CHECK(dist::my_shard(6).rows == 6);
}
