#include "journal/replay_index.h"

#include <algorithm>
#include <cstring>

namespace r5::journal {

using geometry::kPageSize;

bool RowFlush::parity_covers_pages(uint32_t chunk_pages) const {
  for (const auto& [slot, page] : pages) {
    const uint32_t col = slot % chunk_pages;
    if (std::none_of(parity.begin(), parity.end(), [&](const ParityRun& run) { return col >= run.lo && col < run.lo + run.pages; }))
      return false;
  }
  return true;
}

bool RowFlush::full(const geometry::Geometry& g) const { return pages.size() == size_t(g.data_count()) * (g.chunk_size / kPageSize); }

size_t ReplayIndex::dirty_pages() const {
  size_t n = 0;
  for (const auto& [row, r] : rows)
    if (!r.parity_logged()) n += r.pages.size();
  return n;
}

ReplayIndexBuilder::ReplayIndexBuilder(const geometry::Geometry& g, PageStore store) : g_(g), store_(std::move(store)) {}

std::byte* ReplayIndexBuilder::keep(const std::byte* page) {
  std::byte* copy = store_.get();
  if (copy) std::memcpy(copy, page, kPageSize);
  return copy;
}

void ReplayIndexBuilder::drop_parity(RowFlush& r) {
  for (ParityRun& run : r.parity)
    for (std::byte* page : run.parity) store_.put(page);
  r.parity.clear();
}

void ReplayIndexBuilder::release(RowFlush& f) {
  for (auto& [slot, page] : f.pages) store_.put(page);
  drop_parity(f);
}

void ReplayIndexBuilder::forget(RowReplay& r) {
  for (RowFlush& f : r.flushed) release(f);
  release(r);
  r = RowReplay{};
}

// A flush ended the row's generation: it wrote the members before the write
// that follows was accepted (writers wait for the flush). Its parity covers
// its pages, or marks the flush of a full stripe: kept for the repair. Else
// the generation began behind the tail, which passed it only once the members
// were synced: nothing to repair.
void ReplayIndexBuilder::end_generation(RowReplay& r) {
  if (r.parity_covers_pages(g_.chunk_size / kPageSize) || r.full(g_))
    r.flushed.push_back(std::move(static_cast<RowFlush&>(r)));
  else
    release(r);
  static_cast<RowFlush&>(r) = RowFlush{};
}

ReplayIndex& ReplayIndexBuilder::finish() {
  const uint32_t chunk_pages = g_.chunk_size / kPageSize;
  index_.parity_dropped.clear();
  // A full stripe's mark ends a complete flush, repaired like any other.
  for (auto& [row, r] : index_.rows)
    if (r.parity_logged() && !r.parity_covers_pages(chunk_pages) && !r.full(g_)) {
      drop_parity(r);
      index_.parity_dropped.push_back(row);
    }
  return index_;
}

Status ReplayIndexBuilder::add(const Record& rec, const std::function<const std::byte*(size_t)>& payload) {
  const uint32_t chunk_pages = g_.chunk_size / kPageSize;
  const uint64_t row_bytes = g_.row_data_bytes();
  auto bad = [&](std::string what) {
    return corruption(fmt::format("journal record at block {} (sequence {}): {}", rec.meta.position, rec.meta.sequence, what));
  };
  auto page_at = [&](size_t i) -> Result<const std::byte*> {
    const std::byte* p = payload(i);
    if (p == nullptr) return io_error(EIO, fmt::format("journal: reading payload page {} of the record at block {}", i, rec.meta.position));
    return p;
  };
  auto no_memory = [&] { return io_error(ENOMEM, "journal replay: out of memory for the logged pages"); };

  size_t next = 0;  // payload page index
  for (const format::Entry& entry : rec.meta.entries) {
    if (const auto* d = std::get_if<format::DataEntry>(&entry)) {
      const uint64_t len = uint64_t(d->page_checksums.size()) * kPageSize;
      if (d->array_offset % kPageSize || d->array_offset > g_.capacity() || len > g_.capacity() - d->array_offset)
        return bad(fmt::format("data entry at array byte {} (+{}) lies outside the array ({} bytes)", d->array_offset, len,
                               g_.capacity()));
      for (size_t i = 0; i < d->page_checksums.size(); ++i) {
        const uint64_t at = d->array_offset + i * kPageSize;
        const uint64_t row = at / row_bytes, in_row = at % row_bytes;
        const uint32_t slot = uint32_t(in_row / g_.chunk_size) * chunk_pages + uint32_t(in_row % g_.chunk_size) / kPageSize;
        RowReplay& r = index_.rows[row];
        if (r.parity_logged()) end_generation(r);
        if (r.pages.empty()) r.first_sequence = rec.meta.sequence;
        R5_ASSIGN_OR_RETURN(const std::byte* src, page_at(next++));
        std::byte*& kept = r.pages[slot];
        if (kept == nullptr && (kept = store_.get()) == nullptr) return no_memory();
        std::memcpy(kept, src, kPageSize);
      }
    } else if (const auto* p = std::get_if<format::ParityEntry>(&entry)) {
      const uint32_t pages = p->pages();
      if (p->row >= g_.rows || p->parity_count != g_.parity_count() || p->column_offset % kPageSize ||
          p->column_offset / kPageSize + uint64_t(pages) > chunk_pages || pages == 0)
        return bad(fmt::format("parity entry for row {} (offset {}, {} pages, {} parities) does not fit the geometry", p->row,
                               p->column_offset, pages, p->parity_count));
      auto it = index_.rows.find(p->row);
      if (it != index_.rows.end() && !it->second.pages.empty()) {
        RowReplay& r = it->second;
        const uint32_t lo = p->column_offset / kPageSize;
        // One flush logs disjoint runs; an overlapping run can only be newer.
        std::erase_if(r.parity, [&](ParityRun& run) {
          if (run.lo >= lo + pages || lo >= run.lo + run.pages) return false;
          for (std::byte* page : run.parity) store_.put(page);
          return true;
        });
        ParityRun& run = r.parity.emplace_back();
        run.lo = lo;
        run.pages = pages;
        for (size_t i = 0; i < p->page_checksums.size(); ++i) {
          R5_ASSIGN_OR_RETURN(const std::byte* src, page_at(next + i));
          std::byte* kept = keep(src);
          if (kept == nullptr) return no_memory();
          run.parity.push_back(kept);
        }
      }
      next += p->page_checksums.size();
    } else {
      for (uint64_t row : std::get<format::StripeDoneEntry>(entry).rows) {
        if (row >= g_.rows) return bad(fmt::format("stripe-done entry for row {}, beyond the array's {} rows", row, g_.rows));
        auto it = index_.rows.find(row);
        if (it == index_.rows.end()) continue;
        forget(it->second);
        index_.rows.erase(it);
      }
    }
  }
  return {};
}

}  // namespace r5::journal
