// The index of the journal cache: one Stripe per array row with dirty data,
// holding that data in pool pages, plus the reclaim policy that picks which
// stripes the flusher writes out next. No I/O and no locking: the journaled
// cache calls it under its mutex.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/page_pool.h"
#include "geometry/layout.h"

namespace r5::cache {

using Clock = std::chrono::steady_clock;

struct Stripe {
  uint64_t row = 0;
  // Data pages of the row: slot k * chunk_pages + column for data index k.
  // nullptr: the members hold that page. Every present page is dirty.
  std::vector<std::byte*> pages;
  uint32_t present = 0;
  uint32_t lo = 0, hi = 0;  // column window [lo, hi) in pages covering every present page
  std::vector<uint16_t> column_pages;  // present pages per column (page offset in the chunks)
  uint32_t dirty_columns = 0;          // columns with a present page: the ones its flush computes parity for
  // No journal record this stripe still needs has a lower sequence: the log
  // tail may not pass it until the stripe is durable on the members.
  uint64_t log_start = 0;
  uint64_t reserved = 0;  // journal bytes held back for its flush (StripeCache::reserve_bytes)
  Clock::time_point dirtied, touched;
  bool flushing = false;  // the flusher owns it; writes to the row wait
  uint32_t pins = 0;      // a writer is filling it; the flusher leaves it alone

  bool full() const { return present == pages.size(); }
};

struct FlushRequest {
  Clock::time_point now;
  bool drain = false;           // everything
  bool memory_pressure = false;  // free `target_pages`: full stripes first, then least recently written
  bool journal_pressure = false; // stripes holding the oldest log records first
  bool idle = false;            // no write lately: stripes of any fill older than max_age
  size_t target_pages = 0;
  Clock::duration max_age{};
  size_t max_stripes = 64;
  // The flush buffer the batch may need (flush_bytes of each stripe): a
  // batch stops before the stripe that would pass it (the first one is
  // always taken).
  size_t max_bytes = SIZE_MAX;
  std::vector<uint64_t> urgent;  // rows that write-through writers wait for
};

// What flushing `s` holds in the flusher's buffer at most: every role's
// blocks over its column window, plus the old pages a read-modify-write reads.
size_t flush_bytes(const Stripe& s, uint32_t members);

class StripeCache {
 public:
  explicit StripeCache(const geometry::Geometry& g);

  const geometry::Geometry& geometry() const { return g_; }
  uint32_t chunk_pages() const { return chunk_pages_; }
  size_t size() const { return stripes_.size(); }
  size_t full_count() const;

  Stripe* find(uint64_t row);
  const Stripe* find(uint64_t row) const { return const_cast<StripeCache*>(this)->find(row); }
  // A new stripe has no pages until add_page().
  Stripe& get_or_create(uint64_t row, Clock::time_point now);
  // Puts `page` in empty slot `slot` (data index * chunk pages + column).
  // The first page makes the stripe dirty: dirtied = now, log_start = floor.
  void add_page(Stripe& s, size_t slot, std::byte* page, uint64_t floor, Clock::time_point now);
  // Records a write to the stripe (least-recently-written order).
  void touch(Stripe& s, Clock::time_point now);
  // Returns the stripe's pages to the pool and forgets it.
  void erase(uint64_t row, PagePool& pool);

  // Journal bytes a stripe with `columns` dirty columns in a window of
  // `window` columns holds back for its flush: P and Q pages for those
  // columns, and its share of metadata blocks (its parity entries, one per
  // run of dirty columns, so at most one per two columns of the window, and
  // its row in a stripe-done entry). Entries never straddle blocks, so a
  // block packs at least capacity - largest entry bytes: the share is scaled
  // by that. A flush batch may round up by one metadata block for parity and
  // the checkpoint after it by one for its done records (kBatchSlackBlocks).
  // The journal's slack (JournaledCache::slack_blocks) covers more.
  uint64_t reserve_bytes(uint32_t columns, uint32_t window) const {
    const uint64_t runs = std::min(columns, (window + 1) / 2);
    return uint64_t(g_.parity_count()) * columns * kPage + meta_share(24 * runs + 8ull * g_.parity_count() * columns) +
           done_share_bytes();
  }
  uint64_t reserve_for(const Stripe& s) const { return reserve_bytes(s.dirty_columns, s.hi - s.lo); }
  // A checkpoint logs one record (one metadata block) per this many rows (8
  // bytes each after the entry's header: at most 4008 of its 4048 bytes); a
  // row's share covers 1/500 of that block.
  static constexpr size_t kDoneRowsPerRecord = 500;
  static constexpr uint64_t done_share_bytes() { return (kPage + kDoneRowsPerRecord - 1) / kDoneRowsPerRecord; }
  static constexpr uint64_t kBatchSlackBlocks = 2;
  // Lowest log_start over stripes holding data, or `none` without any.
  uint64_t oldest_log_start(uint64_t none) const;

  // Rows to flush now, in order, per the reclaim policy (DESIGN §6). Never
  // a stripe already flushing or pinned.
  std::vector<uint64_t> select(const FlushRequest& req) const;

  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [row, s] : stripes_) f(s);
  }

 private:
  static constexpr uint64_t kPage = 4096;
  uint64_t meta_share(uint64_t entry_bytes) const { return (entry_bytes * kPage + packed_ - 1) / packed_; }

  geometry::Geometry g_;
  uint32_t chunk_pages_;
  uint64_t packed_;  // metadata bytes a block surely holds
  std::unordered_map<uint64_t, Stripe> stripes_;
  // Orders over the stripes holding pages, so the policy never scans them
  // all: by log_start, by time dirtied, by last write (all and full ones).
  using TimeRow = std::pair<Clock::time_point, uint64_t>;
  std::set<std::pair<uint64_t, uint64_t>> by_log_;
  std::set<TimeRow> by_dirtied_, by_touched_, full_by_touched_;
};

}  // namespace r5::cache
