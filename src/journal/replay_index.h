// What recovery makes of a scanned log: for every row the newest logged copy
// of each data page since the row was last written out, and whether a
// complete parity record follows those pages (the flusher logged parity and
// may have been writing the members when it stopped: the write-hole repair
// writes the logged data and parity again). Built one record at a time while
// the scan streams the log, so the log is read once; the pages it keeps are
// copies in memory the caller provides (the stripe pool).
//
// Per row, in log order: data pages accumulate; parity records over pages
// present mark the row "parity logged" (a flush logs one parity entry per
// run of dirty columns, so a row may get several; the flush of a full stripe
// logs only its first column's parity, as a mark: the log holds all its
// data); a stripe-done record forgets the row (everything logged for it
// before the record is durable on the members). Data after parity ends a
// generation: the flush before it wrote the members (writers wait for that),
// but the members are synced only at the next checkpoint, so the flushed
// generation is kept and repaired before the newer one, in log order, unless
// it began behind the tail (then it was synced: its parity covers neither
// its pages nor a full stripe). A parity record for a row with no logged data
// is left from a flush whose data is behind the tail: already durable. When
// the log ends with parity covering only some of a row's pages, the rest of
// that flush's parity never became durable, so it never touched the members
// (or it was a full stripe's mark): the row is dirty data again (finish()).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "geometry/layout.h"
#include "journal/reader.h"

namespace r5::journal {

struct ParityRun {
  uint32_t lo = 0, pages = 0;        // columns [lo, lo + pages), in pages
  std::vector<std::byte*> parity;    // P pages, then Q pages: kept copies
};

// One flush's worth of a row: the data pages it wrote and the parity it logged.
struct RowFlush {
  std::map<uint32_t, std::byte*> pages;  // by slot (data index * chunk pages + column): a kept copy
  std::vector<ParityRun> parity;         // logged by the flush that followed the pages, if any

  bool parity_logged() const { return !parity.empty(); }
  bool parity_covers_pages(uint32_t chunk_pages) const;
  bool full(const geometry::Geometry& g) const;  // every data page of the row
};

struct RowReplay : RowFlush {
  std::vector<RowFlush> flushed;  // earlier generations, flushed, no done record: repaired first, in order
  uint64_t first_sequence = 0;    // oldest record holding one of the newest generation's pages

  // The generations the write-hole repair writes, oldest first.
  size_t repair_count() const { return flushed.size() + (parity_logged() ? 1 : 0); }
  const RowFlush& repair(size_t i) const { return i < flushed.size() ? flushed[i] : *this; }
};

struct ReplayIndex {
  std::map<uint64_t, RowReplay> rows;
  // Dirty rows whose log ends with parity that does not cover their pages:
  // that parity stays in the log after their data, so the open writes them
  // out before any newer data can follow it (see JournaledCache::open).
  std::vector<uint64_t> parity_dropped;
  size_t dirty_pages() const;  // pages of rows that go back into the cache
};

class ReplayIndexBuilder {
 public:
  struct PageStore {
    std::function<std::byte*()> get;  // memory for one kept page; nullptr when exhausted
    std::function<void(std::byte*)> put;
  };
  ReplayIndexBuilder(const geometry::Geometry& g, PageStore store);

  // Applies one validated record; payload(i) is its i-th payload page.
  // kCorruption when it does not fit the geometry (an entry beyond the
  // array, a parity record of the wrong shape).
  Status add(const Record& rec, const std::function<const std::byte*(size_t)>& payload);
  // After the last record: rows whose logged parity does not cover all their
  // pages (and is not a full stripe's mark) become dirty rows. Returns the index.
  ReplayIndex& finish();

 private:
  std::byte* keep(const std::byte* page);
  void release(RowFlush& f);  // its pages back to the store
  void end_generation(RowReplay& r);
  void forget(RowReplay& r);
  void drop_parity(RowFlush& r);

  geometry::Geometry g_;
  PageStore store_;
  ReplayIndex index_;
};

}  // namespace r5::journal
