#include "cache/stripe_cache.h"

#include <algorithm>
#include <unordered_set>

#include "format/journal.h"

namespace r5::cache {

StripeCache::StripeCache(const geometry::Geometry& g)
    : g_(g),
      chunk_pages_(g.chunk_size / geometry::kPageSize),
      // The entry bytes of a metadata block less the largest parity entry;
      // open() refuses chunks whose full parity entry leaves less than 1 KiB.
      packed_(format::kMetaCapacity - (24 + 8ull * g.parity_count() * chunk_pages_)) {}

size_t StripeCache::full_count() const { return full_by_touched_.size(); }

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
    s.column_pages.assign(chunk_pages_, 0);
    s.dirtied = s.touched = now;
  }
  return s;
}

void StripeCache::add_page(Stripe& s, size_t slot, std::byte* page, uint64_t floor, Clock::time_point now) {
  s.pages[slot] = page;
  if (s.present++ == 0) {
    s.log_start = floor;
    s.dirtied = s.touched = now;
    by_log_.emplace(s.log_start, s.row);
    by_dirtied_.emplace(s.dirtied, s.row);
    by_touched_.emplace(s.touched, s.row);
  }
  const uint32_t col = uint32_t(slot % chunk_pages_);
  if (s.column_pages[col]++ == 0) ++s.dirty_columns;
  s.lo = std::min(s.lo, col);
  s.hi = std::max(s.hi, col + 1);
  if (s.full()) full_by_touched_.emplace(s.touched, s.row);
}

void StripeCache::touch(Stripe& s, Clock::time_point now) {
  if (s.present == 0 || s.touched == now) return;
  by_touched_.erase({s.touched, s.row});
  by_touched_.emplace(now, s.row);
  if (s.full()) {
    full_by_touched_.erase({s.touched, s.row});
    full_by_touched_.emplace(now, s.row);
  }
  s.touched = now;
}

void StripeCache::erase(uint64_t row, PagePool& pool) {
  auto it = stripes_.find(row);
  if (it == stripes_.end()) return;
  Stripe& s = it->second;
  if (s.present) {
    by_log_.erase({s.log_start, row});
    by_dirtied_.erase({s.dirtied, row});
    by_touched_.erase({s.touched, row});
    full_by_touched_.erase({s.touched, row});
  }
  for (std::byte* page : s.pages)
    if (page) pool.put(page);
  stripes_.erase(it);
}

uint64_t StripeCache::oldest_log_start(uint64_t none) const {
  return by_log_.empty() ? none : std::min(none, by_log_.begin()->first);
}

size_t flush_bytes(const Stripe& s, uint32_t members) {
  return (size_t(members) * (s.hi - s.lo) + s.present) * geometry::kPageSize;
}

std::vector<uint64_t> StripeCache::select(const FlushRequest& req) const {
  std::vector<uint64_t> rows;
  std::unordered_set<uint64_t> chosen;
  size_t freed = 0, bytes = 0;
  bool spent = false;  // the byte budget stopped a stripe: the batch is complete
  auto room = [&] { return rows.size() < req.max_stripes && !spent; };
  auto take = [&](uint64_t row) {
    if (!room()) return;
    auto it = stripes_.find(row);
    if (it == stripes_.end()) return;
    const Stripe& s = it->second;
    if (s.flushing || s.pins || s.present == 0 || chosen.count(row)) return;
    const size_t cost = flush_bytes(s, g_.members);
    if (!rows.empty() && bytes + cost > req.max_bytes) {
      spent = true;
      return;
    }
    chosen.insert(row);
    rows.push_back(row);
    bytes += cost;
    freed += s.present;
  };
  // Each order is walked only as far as it can still yield; stripes already
  // flushing or pinned (at most a batch and the leader's rows) are skipped.
  if (req.journal_pressure) {
    // Half a batch: enough to move the tail without starving memory reclaim.
    // These come before the waiters': every writer waits for the tail then,
    // and the log's slack lasts only so many batches that leave it in place.
    const size_t limit = std::max<size_t>(1, req.max_stripes / 2);
    for (auto it = by_log_.begin(); it != by_log_.end() && rows.size() < limit && room(); ++it) take(it->second);
  }
  for (uint64_t row : req.urgent) take(row);
  if (req.drain) {
    for (auto it = by_log_.begin(); it != by_log_.end() && room(); ++it) take(it->second);
    return rows;
  }
  if (req.memory_pressure) {
    for (auto it = full_by_touched_.begin(); it != full_by_touched_.end() && freed < req.target_pages && room(); ++it)
      take(it->second);
    for (auto it = by_touched_.begin(); it != by_touched_.end() && freed < req.target_pages && room(); ++it)
      take(it->second);
  }
  for (auto it = by_dirtied_.begin(); it != by_dirtied_.end() && req.now - it->first >= req.max_age; ++it) {
    if (!room()) break;
    const Stripe& s = stripes_.at(it->second);
    if (s.full() || req.idle) take(it->second);
  }
  return rows;
}

}  // namespace r5::cache
