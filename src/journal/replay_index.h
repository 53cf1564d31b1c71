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
// run of dirty columns, so a row may get several); a stripe-done record
// forgets the row (it is durable on the members); data after a parity record
// also means the earlier flush had finished (writers wait for it), so the
// row starts over with the new data. A parity record for a row with no
// logged data is left from a flush whose data is behind the tail: already
// complete. When the log ends with parity covering only some of a row's
// pages, the rest of that flush's parity never became durable, so it never
// touched the members: the row is dirty data again (finish()).
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

struct RowReplay {
  std::map<uint32_t, std::byte*> pages;  // by slot (data index * chunk pages + column): a kept copy
  uint64_t first_sequence = 0;           // oldest record holding one of them
  std::vector<ParityRun> parity;         // logged by the flush that followed the pages, if any

  bool parity_logged() const { return !parity.empty(); }
};

struct ReplayIndex {
  std::map<uint64_t, RowReplay> rows;
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
  // pages become dirty rows. Returns the index.
  ReplayIndex& finish();

 private:
  std::byte* keep(const std::byte* page);
  void forget(RowReplay& r);
  void drop_parity(RowReplay& r);

  geometry::Geometry g_;
  PageStore store_;
  ReplayIndex index_;
};

}  // namespace r5::journal
