// The stripe page pool: a fixed budget of 4 KiB pages (cache.memory) that
// holds the dirty data of the write journal's cache. The pages come from one
// anonymous mapping, so the daemon's resident memory grows only with the
// pages actually used. Not thread-safe: the cache's mutex guards it.
#pragma once

#include <cstddef>
#include <vector>

namespace r5::cache {

class PagePool {
 public:
  static constexpr size_t kPage = 4096;
  // `mapped` pages of address space, of which `budget` may be in use in
  // normal operation. Replay may go over the budget (a log written under a
  // larger cache.memory); writers then wait until the flusher is back under it.
  PagePool(size_t mapped, size_t budget);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  size_t capacity() const { return budget_; }
  size_t used_pages() const { return mapped_ - free_.size(); }
  // Pages writers may still take within the budget.
  size_t available() const { return used_pages() < budget_ ? budget_ - used_pages() : 0; }
  // nullptr when every mapped page is in use.
  std::byte* get();
  void put(std::byte* page);

 private:
  size_t mapped_, budget_;
  std::byte* base_;
  std::vector<std::byte*> free_;
};

}  // namespace r5::cache
