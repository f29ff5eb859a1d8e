// The tensor arena: large aligned blocks, bump-allocated.
//
// Two regions. Persistent holds parameters, their gradients and optimiser
// state: it only grows. Step holds one training step's activations and
// gradients: reset() rewinds it in O(1), nothing is freed op by op. When a
// step outgrows its block, reset() merges the blocks into one block of the
// high-water size, so from the second step on a step region is one block and
// allocates nothing from the system.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lldl {

enum class Region : uint8_t { Persistent, Step, External };

constexpr size_t kArenaAlign = 64;

// How an arena obtains memory: host (aligned_alloc) by default, device memory
// for a GPU backend.
struct ArenaAllocator {
  void* (*alloc)(size_t bytes);
  void (*free)(void* p);
};
ArenaAllocator host_allocator();

struct ArenaStats {
  size_t in_use = 0;      // bytes handed out (including alignment padding)
  size_t high_water = 0;  // largest in_use seen since construction
  size_t reserved = 0;    // bytes of blocks obtained from the allocator
  size_t blocks = 0;      // number of blocks
  size_t system_allocs = 0;  // allocator calls since construction
};

class Arena {
 public:
  explicit Arena(size_t block_bytes = size_t(16) << 20, ArenaAllocator a = host_allocator());
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Returns 64-byte aligned memory for `bytes` in region r (Persistent or
  // Step); `offset` receives the byte offset within the region's address
  // space (block order), which the profiler and planner report.
  void* alloc(Region r, size_t bytes, size_t* offset = nullptr);
  // Rewinds the step region; persistent memory is untouched.
  void reset_step();
  // After reset_step(): makes the step region one block of exactly `bytes`
  // (rounded to 64) unless it is one already; the memory planner sizes it to
  // its plan. Throws ValueError while step memory is in use.
  void fit_step(size_t bytes);
  // While held, the step region's first block stays where it is: a step
  // captured into a CUDA graph (autograd/step_graph.h) points into it for as
  // long as the graph lives. reset_step() then frees only the blocks a
  // larger step added after it (so such a step allocates again each time),
  // and fit_step() refuses to move it. Counted: each hold needs a release.
  void hold_step(bool on);
  bool step_held() const { return step_holds_ > 0; }

  ArenaStats stats(Region r) const;

 private:
  struct Block {
    char* base;
    size_t size;
  };
  struct Pool {
    std::vector<Block> blocks;
    size_t cur = 0;      // block being bumped
    size_t used = 0;     // bytes used in blocks[cur]
    size_t before = 0;   // bytes of the blocks before cur (for offsets)
    ArenaStats st;
  };
  Pool& pool(Region r);
  const Pool& pool(Region r) const;
  void add_block(Pool& p, size_t min_bytes, bool exact = false);

  size_t block_bytes_;
  ArenaAllocator alloc_;
  Pool persistent_, step_;
  int step_holds_ = 0;
};

}  // namespace lldl
