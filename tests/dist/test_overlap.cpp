// Communication overlaps backward: with profiling on, the profile's events
// show the first gradient bucket's all-reduce starting before the "backward"
// event ends, on every rank, and the buckets cover every parameter once.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "dist/comm.h"
#include "dist/grad_sync.h"
#include "models/gpt.h"

using namespace lldl;

TEST_CASE("data parallel: the first bucket's all-reduce starts before backward ends") {
  GPTConfig cfg;
  cfg.vocab_size = 64;
  cfg.block_size = 32;
  cfg.n_layer = 4;
  cfg.n_head = 4;
  cfg.n_embd = 64;
  GPT m(cfg, 1);
  dist::broadcast_params(m.graph());
  dist::GradSync sync(m.graph(), 64 << 10);  // 64 KiB buckets: about one block each
  m.graph().set_profiling(true);
  std::vector<int32_t> x(4 * 32), y(4 * 32);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = int32_t((i * 7 + size_t(dist::rank())) % 64);
    y[i] = int32_t((i * 11) % 64);
  }
  for (int step = 0; step < 3; ++step) {
    m.graph().reset_profile();
    m.loss(x.data(), y.data(), 4, 32);
    m.backward();
    sync.finish();
    const std::vector<ProfileEvent>& ev = m.graph().profile().events;
    auto bw = std::find_if(ev.begin(), ev.end(), [](const ProfileEvent& e) { return e.name == "backward"; });
    REQUIRE(bw != ev.end());
    std::vector<const ProfileEvent*> buckets;
    for (const ProfileEvent& e : ev)
      if (e.name == "allreduce") buckets.push_back(&e);
    REQUIRE(buckets.size() == sync.buckets().size());
    REQUIRE(buckets.size() >= 4);
    auto first = std::min_element(buckets.begin(), buckets.end(),
                                  [](auto* a, auto* b) { return a->start_ns < b->start_ns; });
    CHECK((*first)->index == 0);
    CHECK((*first)->start_ns > bw->start_ns);
    CHECK((*first)->start_ns < bw->end_ns);
    // How far ahead: the first bucket left this much of backward before its end.
    MESSAGE("rank " << dist::rank() << ": first bucket started "
                    << double(bw->end_ns - (*first)->start_ns) * 1e-6 << " ms before backward ended ("
                    << double(bw->end_ns - bw->start_ns) * 1e-6 << " ms), " << buckets.size() << " buckets");
    m.zero_grad();
  }
  size_t covered = 0;
  for (const auto& b : sync.buckets()) covered += b.params.size();
  CHECK(covered == m.graph().num_params());
  CHECK(sync.stats().steps == 3);
}
