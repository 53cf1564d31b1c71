#include "cache/page_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

namespace r5::cache {

PagePool::PagePool(size_t mapped, size_t budget) : mapped_(std::max(mapped, budget)), budget_(budget) {
  const size_t pages = mapped_;
  void* p = ::mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<std::byte*>(p);
  // Huge pages where the kernel allows: a replay fills hundreds of MiB of
  // pages at once, and 4 KiB page faults would cost more than the copy.
  (void)::madvise(p, pages * kPage, MADV_HUGEPAGE);
  free_.reserve(pages);
  // Handed out from the low end first, so untouched pages stay unmapped.
  for (size_t i = pages; i-- > 0;) free_.push_back(base_ + i * kPage);
}

PagePool::~PagePool() { ::munmap(base_, mapped_ * kPage); }

std::byte* PagePool::get() {
  if (free_.empty()) return nullptr;
  std::byte* page = free_.back();
  free_.pop_back();
  return page;
}

void PagePool::put(std::byte* page) { free_.push_back(page); }

}  // namespace r5::cache
