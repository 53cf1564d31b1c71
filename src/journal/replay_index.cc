#include "journal/replay_index.h"

#include "journal/ring.h"

namespace r5::journal {

size_t ReplayIndex::repair_rows() const {
  size_t n = 0;
  for (const auto& [row, r] : rows) n += r.parity_logged;
  return n;
}

size_t ReplayIndex::dirty_pages() const {
  size_t n = 0;
  for (const auto& [row, r] : rows)
    if (!r.parity_logged) n += r.pages.size();
  return n;
}

Result<ReplayIndex> build_replay_index(const ScanResult& scan, const geometry::Geometry& g, uint64_t ring_blocks) {
  const Ring ring(ring_blocks + 1);
  const uint32_t chunk_pages = g.chunk_size / geometry::kPageSize;
  const uint64_t row_bytes = g.row_data_bytes();
  ReplayIndex index;
  auto bad = [](const Record& rec, std::string what) {
    return corruption(fmt::format("journal record at block {} (sequence {}): {}", rec.meta.position, rec.meta.sequence, what));
  };

  for (const Record& rec : scan.records) {
    uint64_t payload = rec.payload_position;
    for (const format::Entry& entry : rec.meta.entries) {
      if (const auto* d = std::get_if<format::DataEntry>(&entry)) {
        const uint64_t len = uint64_t(d->page_checksums.size()) * geometry::kPageSize;
        if (d->array_offset % geometry::kPageSize || d->array_offset > g.capacity() || len > g.capacity() - d->array_offset)
          return bad(rec, fmt::format("data entry at array byte {} (+{}) lies outside the array ({} bytes)",
                                      d->array_offset, len, g.capacity()));
        for (size_t i = 0; i < d->page_checksums.size(); ++i, payload = ring.advance(payload, 1)) {
          const uint64_t at = d->array_offset + i * geometry::kPageSize;
          const uint64_t row = at / row_bytes, in_row = at % row_bytes;
          const uint32_t slot = uint32_t(in_row / g.chunk_size) * chunk_pages + uint32_t(in_row % g.chunk_size) / geometry::kPageSize;
          RowReplay& r = index.rows[row];
          if (r.parity_logged) r = RowReplay{};  // that flush finished before this write was accepted
          if (r.pages.empty()) r.first_sequence = rec.meta.sequence;
          r.pages[slot] = {payload, d->page_checksums[i]};
        }
      } else if (const auto* p = std::get_if<format::ParityEntry>(&entry)) {
        const uint32_t pages = p->pages();
        if (p->row >= g.rows || p->parity_count != g.parity_count() || p->column_offset % geometry::kPageSize ||
            p->column_offset / geometry::kPageSize + uint64_t(pages) > chunk_pages || pages == 0)
          return bad(rec, fmt::format("parity entry for row {} (offset {}, {} pages, {} parities) does not fit the geometry",
                                      p->row, p->column_offset, pages, p->parity_count));
        auto it = index.rows.find(p->row);
        const bool has_data = it != index.rows.end() && !it->second.pages.empty();
        if (has_data) {
          RowReplay& r = it->second;
          r.parity_logged = true;
          r.parity_lo = p->column_offset / geometry::kPageSize;
          r.parity_pages = pages;
          r.parity.clear();
          for (uint32_t slot_page = 0; slot_page < p->page_checksums.size(); ++slot_page)
            r.parity.push_back({ring.advance(payload, slot_page), p->page_checksums[slot_page]});
          for (const auto& [slot, page] : r.pages) {
            const uint32_t col = slot % chunk_pages;
            if (col < r.parity_lo || col >= r.parity_lo + pages)
              return bad(rec, fmt::format("parity for row {} does not cover its logged page {}", p->row, slot));
          }
        }
        payload = ring.advance(payload, p->page_checksums.size());
      } else {
        for (uint64_t row : std::get<format::StripeDoneEntry>(entry).rows) index.rows.erase(row);
      }
    }
  }
  return index;
}

}  // namespace r5::journal
