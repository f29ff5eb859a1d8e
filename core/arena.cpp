#include "core/arena.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace lldl {

namespace {
void* host_alloc(size_t bytes) {
  bytes = (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  return std::aligned_alloc(kArenaAlign, bytes);
}
void host_free(void* p) { std::free(p); }
size_t round_up(size_t n) { return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }
}  // namespace

ArenaAllocator host_allocator() { return {host_alloc, host_free}; }

Arena::Arena(size_t block_bytes, ArenaAllocator a)
    : block_bytes_(round_up(block_bytes ? block_bytes : kArenaAlign)), alloc_(a) {}

Arena::~Arena() {
  for (Pool* p : {&persistent_, &step_})
    for (Block& b : p->blocks) alloc_.free(b.base);
}

Arena::Pool& Arena::pool(Region r) {
  if (r == Region::Persistent) return persistent_;
  if (r == Region::Step) return step_;
  throw ValueError("arena: region External is not arena memory");
}
const Arena::Pool& Arena::pool(Region r) const { return const_cast<Arena*>(this)->pool(r); }

void Arena::add_block(Pool& p, size_t min_bytes, bool exact) {
  size_t size = round_up(exact || min_bytes > block_bytes_ ? min_bytes : block_bytes_);
  void* mem = alloc_.alloc(size);
  if (!mem) throw std::bad_alloc();
  p.blocks.push_back({static_cast<char*>(mem), size});
  p.st.reserved += size;
  p.st.blocks = p.blocks.size();
  p.st.system_allocs++;
}

void* Arena::alloc(Region r, size_t bytes, size_t* offset) {
  Pool& p = pool(r);
  size_t need = round_up(bytes ? bytes : 1);
  // Move on to the next block (or a new one) when the current one is full.
  while (p.cur < p.blocks.size() && p.used + need > p.blocks[p.cur].size) {
    p.before += p.blocks[p.cur].size;
    p.st.in_use += p.blocks[p.cur].size - p.used;  // the tail is lost until reset
    p.cur++;
    p.used = 0;
  }
  if (p.cur == p.blocks.size()) add_block(p, need);
  char* ptr = p.blocks[p.cur].base + p.used;
  if (offset) *offset = p.before + p.used;
  p.used += need;
  p.st.in_use += need;
  if (p.st.in_use > p.st.high_water) p.st.high_water = p.st.in_use;
  return ptr;
}

void Arena::reset_step() {
  Pool& p = step_;
  if (p.blocks.size() > 1 && step_holds_ > 0) {
    // Held: keep the first block in place, drop the overflow.
    for (size_t i = 1; i < p.blocks.size(); ++i) {
      p.st.reserved -= p.blocks[i].size;
      alloc_.free(p.blocks[i].base);
    }
    p.blocks.resize(1);
    p.st.blocks = 1;
  } else if (p.blocks.size() > 1) {
    // The step did not fit one block: replace them with one block big enough
    // for the whole step, so the next step is a single bump region.
    size_t total = p.st.high_water;
    for (Block& b : p.blocks) alloc_.free(b.base);
    p.blocks.clear();
    p.st.reserved = 0;
    add_block(p, total);
  }
  p.cur = 0;
  p.used = 0;
  p.before = 0;
  p.st.in_use = 0;
}

void Arena::fit_step(size_t bytes) {
  Pool& p = step_;
  if (p.st.in_use != 0) throw ValueError("arena: fit_step while step memory is in use");
  size_t size = round_up(bytes ? bytes : 1);
  if (p.blocks.size() == 1 && p.blocks[0].size == size) return;
  if (step_holds_ > 0)
    throw ValueError("arena: fit_step while the step block is held (a captured step points into it)");
  for (Block& b : p.blocks) alloc_.free(b.base);
  p.blocks.clear();
  p.st.reserved = 0;
  add_block(p, size, true);
  p.cur = 0;
  p.used = 0;
  p.before = 0;
}

ArenaStats Arena::stats(Region r) const { return pool(r).st; }

void Arena::hold_step(bool on) {
  if (on) ++step_holds_;
  else if (step_holds_ > 0) --step_holds_;
}

}  // namespace lldl
