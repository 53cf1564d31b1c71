// Opening the journaled cache: check the journal belongs to the array, scan
// its log, repair the write hole of stripes whose parity was logged, and put
// the remaining dirty data back into the pool (DESIGN §5, "Recovery").
// Recovery reads the log sequentially and never waits on the flusher.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "array/aligned_buffer.h"
#include "base/log.h"
#include "engine/journaled_cache.h"
#include "journal/reader.h"
#include "journal/replay_index.h"

namespace r5::engine {

using format::kJournalBlock;
using geometry::kPageSize;

namespace {

struct Load {
  journal::LoggedPage page;
  std::byte* dest;
};

// Reads logged pages in position order, contiguous runs in one read, and
// checks each against the checksum its record gave.
Status read_logged(io::Device& dev, uint64_t seed, std::vector<Load>& loads) {
  constexpr size_t kRun = 1024;  // 4 MiB reads
  std::sort(loads.begin(), loads.end(), [](const Load& a, const Load& b) { return a.page.position < b.page.position; });
  AlignedBuffer buf(kRun * kJournalBlock);
  for (size_t i = 0; i < loads.size();) {
    size_t n = 1;
    while (i + n < loads.size() && n < kRun && loads[i + n].page.position == loads[i].page.position + n) ++n;
    R5_TRY(dev.read(loads[i].page.position * kJournalBlock, {buf.data(), n * kJournalBlock}));
    for (size_t j = 0; j < n; ++j) {
      std::span<const std::byte, kJournalBlock> page(buf.data() + j * kJournalBlock, kJournalBlock);
      if (format::payload_checksum(page, seed) != loads[i + j].page.checksum)
        return corruption(fmt::format("{}: block {} changed since the scan validated it", dev.name(), loads[i + j].page.position));
      std::memcpy(loads[i + j].dest, page.data(), kJournalBlock);
    }
    i += n;
  }
  return {};
}

Status check_journal_matches(const io::Device& dev, const format::JournalSuperblock& sb, const format::MemberSuperblock& msb) {
  if (sb.array_uuid != msb.array_uuid)
    return invalid(fmt::format("{}: this journal belongs to another array (array UUID {}, the members say {})", dev.name(),
                               format::uuid_to_string(sb.array_uuid), format::uuid_to_string(msb.array_uuid)));
  if (sb.level != msb.level || sb.layout != msb.layout || sb.chunk_size != msb.chunk_size ||
      sb.member_count != msb.member_count || sb.data_size != msb.data_size)
    return invalid(fmt::format("{}: the journal records a different geometry than the members (RAID{} {} members chunk {} "
                               "vs RAID{} {} members chunk {})",
                               dev.name(), sb.level, sb.member_count, sb.chunk_size, msb.level, msb.member_count, msb.chunk_size));
  return {};
}

}  // namespace

Result<std::unique_ptr<JournaledCache>> JournaledCache::open(array::RaidArray& array, std::unique_ptr<io::Device> journal,
                                                            const Options& options) {
  const auto started = std::chrono::steady_clock::now();
  const geometry::Geometry g = array.members().geometry();
  const uint32_t cp = g.chunk_size / kPageSize, d = g.data_count(), pc = g.parity_count(), roles = d + pc;
  R5_ASSIGN_OR_RETURN(format::JournalSuperblock sb, journal::read_superblock(*journal));
  R5_TRY(check_journal_matches(*journal, sb, array.members().superblock()));

  // A full-window parity entry must leave room in its metadata block (see
  // StripeCache::reserve_bytes); this version does not split parity entries.
  constexpr uint64_t kMaxParityEntry = format::kMetaCapacity - 1024;
  if (24 + 8ull * pc * cp > kMaxParityEntry) {
    uint64_t max_chunk_pages = 1;
    while (24 + 8ull * pc * max_chunk_pages * 2 <= kMaxParityEntry) max_chunk_pages *= 2;
    return invalid(fmt::format("{}: the journal modes support chunks of up to {} KiB with RAID{} in this version (chunk "
                               "size {} KiB); use journal.mode = \"none\" or a smaller chunk",
                               journal->name(), max_chunk_pages * 4, g.level, g.chunk_size / 1024));
  }

  // The largest commit (a 1 MiB write over its rows' reservations) must fit
  // in an otherwise empty log, or writers could wait forever.
  const uint64_t rows_per_write = (1 << 20) / g.row_data_bytes() + 2;
  const uint64_t min_blocks = 2 * (258 + 2 + rows_per_write * (2 + uint64_t(pc) * cp));
  if (sb.ring_blocks() < min_blocks)
    return invalid(fmt::format("{}: a journal of {} MiB is too small for chunk size {} KiB and {} members: it needs at "
                               "least {} MiB (r5cfs create with a larger journal.size)",
                               journal->name(), sb.block_count * kJournalBlock >> 20, g.chunk_size / 1024, g.members,
                               (min_blocks + 1) * kJournalBlock / (1 << 20) + 1));

  R5_ASSIGN_OR_RETURN(journal::ScanResult scan, journal::scan(*journal, sb));
  const auto scanned = std::chrono::steady_clock::now();
  if (scan.corrupt) {
    if (!options.force)
      return corruption(fmt::format("{}: {}. Refusing to replay: the records after the damage would be lost. Mount with "
                                    "-o force to replay the log up to the damage and discard what follows it",
                                    journal->name(), scan.corruption));
    log::warn("{}: {}; replaying up to the damage (forced), later records are discarded", journal->name(), scan.corruption);
  }
  R5_ASSIGN_OR_RETURN(journal::ReplayIndex index, journal::build_replay_index(scan, g, sb.ring_blocks()));

  const size_t dirty = index.dirty_pages();
  const size_t pool_pages = std::max<size_t>(options.memory / kPageSize, dirty + 1024);
  std::unique_ptr<JournaledCache> c(
      new JournaledCache(array, std::move(journal), sb, options, scan.head_position, scan.head_sequence, pool_pages));
  for (const journal::Record& rec : scan.records) c->records_.emplace_back(rec.meta.sequence, rec.meta.position);

  // Write-hole repair: rows whose parity was logged get their logged data
  // and parity written again (idempotent), then the members are synced.
  std::vector<array::RowWrite> repairs;
  std::vector<Load> loads;
  size_t arena = 0;
  for (const auto& [row, r] : index.rows)
    if (r.parity_logged) arena += size_t(roles) * r.parity_pages * kPageSize;
  AlignedBuffer repair_buf(arena);
  std::byte* next = repair_buf.data();
  for (const auto& [row, r] : index.rows) {
    if (!r.parity_logged) continue;
    array::RowWrite& w = repairs.emplace_back();
    w.row = row;
    w.lo = r.parity_lo * uint32_t(kPageSize);
    for (uint32_t role = 0; role < roles; ++role, next += size_t(r.parity_pages) * kPageSize) w.block[role] = next;
    for (const auto& [slot, page] : r.pages) {
      const uint32_t k = slot / cp, col = slot % cp;
      loads.push_back({page, w.block[k] + size_t(col - r.parity_lo) * kPageSize});
      w.extents.push_back({k, col * uint32_t(kPageSize), (col + 1) * uint32_t(kPageSize)});
    }
    for (size_t i = 0; i < r.parity.size(); ++i)
      loads.push_back({r.parity[i], w.block[d + i / r.parity_pages] + (i % r.parity_pages) * kPageSize});
    for (uint32_t role = d; role < roles; ++role)
      w.extents.push_back({role, w.lo, w.lo + r.parity_pages * uint32_t(kPageSize)});
  }

  // Dirty rows go back into the pool as they were.
  const cache::Clock::time_point now = cache::Clock::now();
  for (const auto& [row, r] : index.rows) {
    if (r.parity_logged || r.pages.empty()) continue;
    cache::Stripe& s = c->cache_.get_or_create(row, now);
    for (const auto& [slot, page] : r.pages) {
      std::byte* mem = c->pool_.get();
      s.pages[slot] = mem;
      loads.push_back({page, mem});
      s.lo = std::min(s.lo, slot % cp);
      s.hi = std::max(s.hi, slot % cp + 1);
      ++s.present;
    }
    s.log_start = r.first_sequence;
    s.reserved = c->cache_.reserve_bytes(s.lo, s.hi);
    c->reserved_ += s.reserved;
  }
  const uint64_t seed = sb.seed();
  const auto indexed = std::chrono::steady_clock::now();
  R5_TRY(read_logged(*c->journal_dev_, seed, loads));
  const auto loaded = std::chrono::steady_clock::now();
  if (!repairs.empty()) {
    R5_TRY(array.write_rows(repairs));
    R5_TRY(array.sync());
  }
  const uint64_t tail = c->cache_.oldest_log_start(scan.head_sequence);
  R5_TRY(c->advance_tail(tail, 0));  // in use: not clean until closed empty

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CacheCounters& k = c->counters_;
  k.replay_records = scan.records.size();
  k.replay_blocks_read = scan.blocks_read + loads.size();
  k.replay_repaired_rows = repairs.size();
  k.replay_dirty_pages = dirty;
  k.replay_seconds = seconds;
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  if (!scan.records.empty())
    log::info("journal replay: {} records ({} MiB read) in {:.3f} s ({:.0f} MiB/s; scan {:.3f} s, index {:.3f} s, "
              "page loads {:.3f} s); {} stripes repaired on the members, {} MiB of dirty data back in the cache",
              scan.records.size(), k.replay_blocks_read * kJournalBlock >> 20, seconds,
              double(k.replay_blocks_read * kJournalBlock) / (1 << 20) / std::max(seconds, 1e-9), secs(started, scanned),
              secs(scanned, indexed), secs(indexed, loaded), repairs.size(), dirty * kPageSize >> 20);
  return c;
}

}  // namespace r5::engine
