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
  explicit PagePool(size_t pages);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  size_t capacity() const { return capacity_; }
  size_t free_pages() const { return free_.size(); }
  size_t used_pages() const { return capacity_ - free_.size(); }
  // nullptr when the pool is exhausted.
  std::byte* get();
  void put(std::byte* page);

 private:
  size_t capacity_;
  std::byte* base_;
  std::vector<std::byte*> free_;
};

}  // namespace r5::cache
