// The stripe index and its reclaim policy (DESIGN §6): which stripes the
// flusher takes, in which order, under memory pressure, journal pressure,
// age, idleness, drains and write-through waiters.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <tuple>

#include "cache/stripe_cache.h"
#include "format/journal.h"

using namespace r5;
using cache::Clock;
using cache::Stripe;
using cache::StripeCache;

namespace {

// RAID5 4+1, 16 KiB chunks: a row is 4 data chunks of 4 pages (16 slots).
geometry::Geometry geo() {
  geometry::Geometry g;
  g.level = 5;
  g.members = 5;
  g.chunk_size = 16384;
  g.rows = 100;
  return g;
}

struct Fixture {
  cache::PagePool pool{4096, 4096};
  StripeCache cache{geo()};
  Clock::time_point t0 = Clock::now();

  // A stripe with `pages` dirty pages (16 = full), dirtied and written at t0 + age offsets.
  Stripe& add(uint64_t row, uint32_t pages, int dirtied_ms, int touched_ms, uint64_t log_start) {
    const auto dirtied = t0 + std::chrono::milliseconds(dirtied_ms);
    Stripe& s = cache.get_or_create(row, dirtied);
    for (uint32_t i = 0; i < pages; ++i) cache.add_page(s, i, pool.get(), log_start, dirtied);
    cache.touch(s, t0 + std::chrono::milliseconds(touched_ms));
    return s;
  }
  cache::FlushRequest at(int ms) {
    cache::FlushRequest r;
    r.now = t0 + std::chrono::milliseconds(ms);
    r.max_age = std::chrono::milliseconds(1000);
    return r;
  }
};

}  // namespace

TEST_CASE("nothing is flushed without a reason; full stripes go once older than max_age") {
  Fixture f;
  f.add(1, 16, 0, 0, 10);   // full, old
  f.add(2, 3, 0, 0, 11);    // partial, old
  f.add(3, 16, 900, 900, 12);  // full, young
  CHECK(f.cache.select(f.at(500)).empty());
  CHECK(f.cache.select(f.at(1500)) == std::vector<uint64_t>{1});
  auto idle = f.at(1500);
  idle.idle = true;  // no write lately: old partial stripes too
  auto rows = f.cache.select(idle);
  std::sort(rows.begin(), rows.end());
  CHECK(rows == std::vector<uint64_t>{1, 2});
  CHECK(f.cache.full_count() == 2);
  f.cache.erase(1, f.pool);
  CHECK(f.cache.full_count() == 1);
  CHECK(f.cache.select(f.at(1500)).empty());
}

TEST_CASE("memory pressure takes full stripes first, then the least recently written, until the target") {
  Fixture f;
  f.add(1, 2, 0, 50, 1);
  f.add(2, 2, 0, 10, 2);    // least recently written partial
  f.add(3, 16, 0, 90, 3);   // full
  f.add(4, 2, 0, 30, 4);
  auto r = f.at(100);
  r.memory_pressure = true;
  r.target_pages = 16 + 2 + 2;
  CHECK(f.cache.select(r) == std::vector<uint64_t>{3, 2, 4});
  r.max_stripes = 2;
  CHECK(f.cache.select(r) == std::vector<uint64_t>{3, 2});
}

TEST_CASE("a batch stops at the flush buffer budget, but always takes one stripe") {
  Fixture f;
  f.add(2, 2, 0, 10, 2);   // 2 columns of data index 0
  f.add(3, 16, 0, 90, 3);  // full: 4 columns
  f.add(4, 2, 0, 30, 4);
  // Every role's blocks over the window, plus the old pages of a read-modify-write.
  CHECK(cache::flush_bytes(*f.cache.find(3), 5) == (5 * 4 + 16) * 4096);
  CHECK(cache::flush_bytes(*f.cache.find(2), 5) == (5 * 2 + 2) * 4096);
  auto r = f.at(100);
  r.memory_pressure = true;
  r.target_pages = 20;
  r.max_bytes = (36 + 12) * 4096;
  CHECK(f.cache.select(r) == std::vector<uint64_t>{3, 2});
  r.max_bytes = (36 + 12) * 4096 - 1;
  CHECK(f.cache.select(r) == std::vector<uint64_t>{3});
  r.max_bytes = 1;  // smaller than any stripe: the first still goes
  CHECK(f.cache.select(r) == std::vector<uint64_t>{3});
  r.drain = true;
  r.max_bytes = 2 * 12 * 4096;  // by log order: 2, 3 would pass the budget
  CHECK(f.cache.select(r) == std::vector<uint64_t>{2});
}

TEST_CASE("journal pressure takes the stripes holding the oldest log records, before the waiters'") {
  Fixture f;
  f.add(1, 2, 0, 0, 40);
  f.add(2, 2, 0, 0, 7);
  f.add(3, 2, 0, 0, 19);
  f.add(4, 2, 0, 0, 3);
  auto r = f.at(10);
  r.journal_pressure = true;
  r.max_stripes = 4;  // half a batch for the tail
  CHECK(f.cache.select(r) == std::vector<uint64_t>{4, 2});
  r.urgent = {1};  // a write-through waiter comes after them: every writer waits for the tail
  CHECK(f.cache.select(r) == std::vector<uint64_t>{4, 2, 1});
  CHECK(f.cache.oldest_log_start(99) == 3);
  f.cache.erase(4, f.pool);
  CHECK(f.cache.oldest_log_start(99) == 7);
}

TEST_CASE("stripes being flushed or pinned are never chosen; waiters and drains come first") {
  Fixture f;
  f.add(1, 16, 0, 0, 1).flushing = true;
  f.add(2, 16, 0, 0, 2).pins = 1;
  f.add(3, 1, 5, 5, 3);
  f.add(4, 1, 5, 5, 4);
  auto r = f.at(5000);
  r.idle = true;
  r.urgent = {4, 1};
  auto rows = f.cache.select(r);
  CHECK(rows.front() == 4);
  CHECK(std::find(rows.begin(), rows.end(), 1) == rows.end());
  CHECK(std::find(rows.begin(), rows.end(), 2) == rows.end());
  auto d = f.at(0);
  d.drain = true;
  rows = f.cache.select(d);
  std::sort(rows.begin(), rows.end());
  CHECK(rows == std::vector<uint64_t>{3, 4});
}

TEST_CASE("reservations cover a stripe's parity pages and its metadata share; erase returns the pages") {
  Fixture f;
  StripeCache& c = f.cache;
  // One page of parity and a share of two metadata blocks, well under two blocks.
  CHECK(c.reserve_bytes(1, 1) > 4096);
  CHECK(c.reserve_bytes(1, 1) < 2 * 4096);
  CHECK(c.reserve_bytes(4, 4) - c.reserve_bytes(1, 1) >= 3 * 4096);  // a page of P per dirty column
  CHECK(c.reserve_bytes(2, 4) < c.reserve_bytes(4, 4));              // columns 0 and 3: two runs of P, not four columns
  CHECK(c.reserve_bytes(2, 4) > c.reserve_bytes(2, 2));              // two parity entries' metadata, not one
  const size_t used = f.pool.used_pages();
  Stripe& s = f.add(7, 5, 0, 0, 1);
  CHECK(s.lo == 0);
  CHECK(s.hi == 4);  // slots 0..4: columns 0..3 of data index 0, column 0 of index 1
  CHECK(s.dirty_columns == 4);
  CHECK(s.column_pages[0] == 2);
  CHECK(c.reserve_for(s) == c.reserve_bytes(4, 4));
  CHECK(f.pool.used_pages() == used + 5);
  c.erase(7, f.pool);
  CHECK(f.pool.used_pages() == used);
  CHECK(c.find(7) == nullptr);
}

TEST_CASE("the reservations of a batch cover the journal blocks its flush and its checkpoint log") {
  // The flusher logs one parity entry per run of dirty columns (P and Q
  // pages for the run; one column for a full stripe), packed into records
  // as the format allows, then one done record per kDoneRowsPerRecord rows.
  // All of it must fit in what the stripes reserved, but for the batch's
  // slack: the flusher writes every stripe out even when writers have filled
  // the log to the last unreserved block.
  std::mt19937_64 rng(11);
  for (auto [level, members, chunk] : {std::tuple{5u, 5u, 16384u}, {6u, 6u, 65536u}, {5u, 3u, 4096u}, {6u, 8u, 131072u}}) {
    geometry::Geometry g;
    g.level = level;
    g.members = members;
    g.chunk_size = chunk;
    g.rows = 1 << 20;
    const StripeCache c(g);
    const uint32_t cp = c.chunk_pages(), pc = g.parity_count();
    for (size_t stripes : {1, 7, 64, 500, 1024, 16384}) {
      CAPTURE(level);
      CAPTURE(chunk);
      CAPTURE(stripes);
      uint64_t reserved = 0, blocks = 0;
      format::MetaBlock meta;
      size_t payload = 0;
      auto add = [&](uint32_t lo, uint32_t pages) {
        format::ParityEntry e;
        e.column_offset = lo;
        e.parity_count = pc;
        e.page_checksums.assign(size_t(pc) * pages, 0);
        format::Entry entry = std::move(e);
        if (!format::fits(meta, entry)) {
          blocks += 1 + payload;
          meta.entries.clear();
          payload = 0;
        }
        meta.entries.push_back(std::move(entry));
        payload += size_t(pc) * pages;
      };
      for (size_t i = 0; i < stripes; ++i) {
        if (rng() % 8 == 0) {  // full: the mark only
          reserved += c.reserve_bytes(cp, cp);
          add(0, 1);
          continue;
        }
        // Dirty columns: random, worst case (every other one) or a single one.
        std::vector<bool> dirty(cp);
        const int shape = int(rng() % 3);
        for (uint32_t col = 0; col < cp; ++col)
          dirty[col] = shape == 0 ? rng() % 2 : shape == 1 ? col % 2 == 0 : col == rng() % cp;
        if (std::find(dirty.begin(), dirty.end(), true) == dirty.end()) dirty[rng() % cp] = true;
        const uint32_t lo = uint32_t(std::find(dirty.begin(), dirty.end(), true) - dirty.begin());
        const uint32_t hi = cp - uint32_t(std::find(dirty.rbegin(), dirty.rend(), true) - dirty.rbegin());
        reserved += c.reserve_bytes(uint32_t(std::count(dirty.begin(), dirty.end(), true)), hi - lo);
        for (uint32_t col = lo; col < hi;) {
          if (!dirty[col]) {
            ++col;
            continue;
          }
          uint32_t end = col;
          while (end < hi && dirty[end]) ++end;
          add(col, end - col);
          col = end;
        }
      }
      blocks += 1 + payload;
      blocks += (stripes + StripeCache::kDoneRowsPerRecord - 1) / StripeCache::kDoneRowsPerRecord;
      CHECK(blocks * 4096 <= reserved + StripeCache::kBatchSlackBlocks * 4096);
    }
  }
}
