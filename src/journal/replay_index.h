// What recovery makes of a scanned log: for every row the newest logged copy
// of each data page since the row was last written out, and whether a
// complete parity record follows those pages (the flusher logged parity and
// may have been writing the members when it stopped: the write-hole repair
// writes the logged data and parity again). Pure: no I/O.
//
// Per row, in log order: data pages accumulate; a parity record over pages
// present marks the row "parity logged"; a stripe-done record forgets the
// row (it is durable on the members); data after a parity record also means
// the earlier flush had finished (writers wait for it), so the row starts
// over with the new data. A parity record for a row with no logged data is
// left from a flush whose data is behind the tail: already complete.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "geometry/layout.h"
#include "journal/reader.h"

namespace r5::journal {

struct LoggedPage {
  uint64_t position = 0;  // ring block
  uint64_t checksum = 0;
};

struct RowReplay {
  std::map<uint32_t, LoggedPage> pages;  // by slot: data index * chunk pages + column
  uint64_t first_sequence = 0;           // oldest record holding one of them
  bool parity_logged = false;
  uint32_t parity_lo = 0, parity_pages = 0;  // window of the parity record, in pages
  std::vector<LoggedPage> parity;            // P pages, then Q pages
};

struct ReplayIndex {
  std::map<uint64_t, RowReplay> rows;
  size_t repair_rows() const;
  size_t dirty_pages() const;  // pages of rows that go back into the cache
};

// kCorruption when a record does not fit the geometry (an entry beyond the
// array, a parity record of the wrong shape).
Result<ReplayIndex> build_replay_index(const ScanResult& scan, const geometry::Geometry& g, uint64_t ring_blocks);

}  // namespace r5::journal
