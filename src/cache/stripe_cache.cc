#include "cache/stripe_cache.h"

#include <algorithm>
#include <unordered_set>

namespace r5::cache {

StripeCache::StripeCache(const geometry::Geometry& g)
    : g_(g),
      chunk_pages_(g.chunk_size / geometry::kPageSize),
      // 4056 bytes of entries per metadata block (format::kMetaCapacity)
      // less the largest parity entry; open() refuses chunks whose full
      // parity entry leaves less than 1 KiB.
      packed_(4056 - (24 + 8ull * g.parity_count() * chunk_pages_)) {}

size_t StripeCache::full_count() const {
  return size_t(std::count_if(stripes_.begin(), stripes_.end(), [](const auto& kv) { return kv.second.full(); }));
}

Stripe* StripeCache::find(uint64_t row) {
  auto it = stripes_.find(row);
  return it == stripes_.end() ? nullptr : &it->second;
}

Stripe& StripeCache::get_or_create(uint64_t row, Clock::time_point now) {
  auto [it, added] = stripes_.try_emplace(row);
  Stripe& s = it->second;
  if (added) {
    s.row = row;
    s.pages.assign(size_t(g_.data_count()) * chunk_pages_, nullptr);
    s.lo = chunk_pages_;
    s.hi = 0;
    s.dirtied = s.touched = now;
  }
  return s;
}

void StripeCache::erase(uint64_t row, PagePool& pool) {
  auto it = stripes_.find(row);
  if (it == stripes_.end()) return;
  for (std::byte* page : it->second.pages)
    if (page) pool.put(page);
  stripes_.erase(it);
}

uint64_t StripeCache::oldest_log_start(uint64_t none) const {
  uint64_t oldest = none;
  for (const auto& [row, s] : stripes_)
    if (s.present) oldest = std::min(oldest, s.log_start);
  return oldest;
}

std::vector<uint64_t> StripeCache::select(const FlushRequest& req) const {
  std::vector<const Stripe*> candidates;
  for (const auto& [row, s] : stripes_)
    if (!s.flushing && s.pins == 0 && s.present > 0) candidates.push_back(&s);

  std::vector<uint64_t> rows;
  std::unordered_set<uint64_t> chosen;
  size_t freed = 0;
  auto take = [&](const Stripe* s) {
    if (rows.size() >= req.max_stripes || !chosen.insert(s->row).second) return;
    rows.push_back(s->row);
    freed += s->present;
  };

  for (uint64_t row : req.urgent) {
    auto it = stripes_.find(row);
    if (it != stripes_.end() && !it->second.flushing && it->second.pins == 0 && it->second.present > 0) take(&it->second);
  }
  if (req.drain) {
    for (const Stripe* s : candidates) take(s);
    return rows;
  }
  // Only the first max_stripes of an order can be taken: partial sorts keep
  // a batch O(n log batch) however many stripes are dirty.
  auto first = [&](auto less) {
    std::vector<const Stripe*> v = candidates;
    const size_t k = std::min(v.size(), req.max_stripes);
    std::partial_sort(v.begin(), v.begin() + ptrdiff_t(k), v.end(), less);
    v.resize(k);
    return v;
  };
  if (req.journal_pressure) {
    auto by_log = first([](auto* a, auto* b) { return a->log_start < b->log_start; });
    // Half a batch: enough to move the tail without starving memory reclaim.
    for (size_t i = 0; i < by_log.size() && rows.size() < std::max<size_t>(1, req.max_stripes / 2); ++i) take(by_log[i]);
  }
  if (req.memory_pressure) {
    auto lru = first([](auto* a, auto* b) {
      if (a->full() != b->full()) return a->full();
      return a->touched < b->touched;
    });
    for (size_t i = 0; i < lru.size() && freed < req.target_pages; ++i) take(lru[i]);
  }
  for (const Stripe* s : candidates) {
    const bool old = req.now - s->dirtied >= req.max_age;
    if (old && (s->full() || req.idle)) take(s);
  }
  return rows;
}

}  // namespace r5::cache
