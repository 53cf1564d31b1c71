// Opening the journaled cache: check the journal belongs to the array, scan
// its log, repair the write hole of stripes whose parity was logged, and put
// the remaining dirty data back into the pool (DESIGN §5, "Recovery").
// Recovery reads the log sequentially and never waits on the flusher.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>

#include "array/aligned_buffer.h"
#include "base/log.h"
#include "base/units.h"
#include "engine/journaled_cache.h"
#include "journal/reader.h"
#include "journal/replay_index.h"
#include "parity/parity.h"

namespace r5::engine {

using format::kJournalBlock;
using geometry::kPageSize;

namespace {

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

Status JournaledCache::check_geometry(const geometry::Geometry& g) {
  // A full-window parity entry must leave room in its metadata block (see
  // StripeCache::reserve_bytes); a run of columns is never split over entries.
  constexpr uint64_t kMaxParityEntry = format::kMetaCapacity - 1024;
  const uint64_t pc = g.parity_count(), cp = g.chunk_size / kPageSize;
  if (24 + 8 * pc * cp <= kMaxParityEntry) return {};
  uint64_t max_chunk_pages = 1;
  while (24 + 8 * pc * max_chunk_pages * 2 <= kMaxParityEntry) max_chunk_pages *= 2;
  return invalid(fmt::format("the journal modes support chunks of up to {} KiB with RAID{} in this version (chunk size "
                             "{} KiB); use journal.mode = \"none\" or a smaller chunk",
                             max_chunk_pages * 4, g.level, g.chunk_size / 1024));
}

uint64_t JournaledCache::min_journal_blocks(const geometry::Geometry& g) {
  // The largest commit (a 1 MiB write: its pages, their metadata and the
  // reservations of the rows it touches) must fit twice, with the slack,
  // into an otherwise empty log, or writers could wait forever.
  const uint64_t rows_per_write = (1 << 20) / g.row_data_bytes() + 2;
  const uint64_t ring =
      2 * (258 + slack_blocks(g) + rows_per_write * (2 + uint64_t(g.parity_count()) * (g.chunk_size / kPageSize)));
  return std::max(ring + format::JournalSuperblock::kCopies, format::kMinJournalBlocks);
}

Result<std::unique_ptr<JournaledCache>> JournaledCache::open(array::RaidArray& array, std::unique_ptr<io::Device> journal,
                                                            const Options& options) {
  const auto started = std::chrono::steady_clock::now();
  const geometry::Geometry g = array.members().geometry();
  const uint32_t cp = g.chunk_size / kPageSize, d = g.data_count(), pc = g.parity_count(), roles = d + pc;
  R5_ASSIGN_OR_RETURN(format::JournalSuperblock sb, journal::read_superblock(*journal));
  R5_TRY(check_journal_matches(*journal, sb, array.members().superblock()));

  if (Status st = check_geometry(g); !st.ok()) return st.error().with_context(journal->name());
  if (sb.block_count < min_journal_blocks(g))
    return invalid(fmt::format("{}: a journal of {} is too small for chunk size {} KiB and {} members: it needs at least "
                               "{} (r5cfs create with a larger journal.size)",
                               journal->name(), format_size(sb.block_count * kJournalBlock), g.chunk_size / 1024, g.members,
                               format_size(min_journal_blocks(g) * kJournalBlock)));

  // One pass over the log: each record is applied to the replay index as the
  // scan validates it; kept pages live in the pool, which may map up to the
  // whole journal during replay (address space only) but keeps its budget.
  auto pool = std::make_unique<cache::PagePool>(sb.ring_blocks(), options.memory / kPageSize);
  cache::PagePool* kept = pool.get();
  journal::ReplayIndexBuilder builder(g, {[kept] { return kept->get(); }, [kept](std::byte* p) { kept->put(p); }});
  journal::ScanOptions scan_options;
  scan_options.lookahead_blocks = options.unsynced_window_blocks;
  scan_options.keep_records = false;
  std::deque<std::pair<uint64_t, uint64_t>> records;  // (sequence, position)
  scan_options.on_record = [&](const journal::Record& rec, const std::function<const std::byte*(size_t)>& payload) {
    records.emplace_back(rec.meta.sequence, rec.meta.position);
    return builder.add(rec, payload);
  };
  R5_ASSIGN_OR_RETURN(journal::ScanResult scan, journal::scan(*journal, sb, scan_options));
  const auto scanned = std::chrono::steady_clock::now();
  if (scan.corrupt) {
    if (!options.force)
      return corruption(fmt::format("{}: {}. Refusing to replay: the records after the damage would be lost. Mount with "
                                    "-o force to replay the log up to the damage and discard what follows it",
                                    journal->name(), scan.corruption));
    log::warn("{}: {}; replaying up to the damage (forced), later records are discarded", journal->name(), scan.corruption);
  }
  // Records past the end would read as the log's continuation once new
  // records reach their place with the sequences they carry (a crash then
  // replays them after newer data): they are overwritten before the log
  // continues.
  if (!scan.discarded.empty()) {
    AlignedBuffer zeros(kJournalBlock);
    for (uint64_t at : scan.discarded) R5_TRY(journal->write(at * kJournalBlock, zeros.span()));
    R5_TRY(journal->sync());
    log::info("{}: {} records past the end of the log overwritten", journal->name(), scan.discarded.size());
  }
  journal::ReplayIndex& index = builder.finish();
  const size_t dirty = index.dirty_pages();
  std::unique_ptr<JournaledCache> c(
      new JournaledCache(array, std::move(journal), sb, options, scan.head_position, scan.head_sequence, std::move(pool)));
  c->records_ = std::move(records);

  // Dirty rows go back into the cache as they were, in the pages replay kept.
  const cache::Clock::time_point now = cache::Clock::now();
  for (const auto& [row, r] : index.rows) {
    if (r.parity_logged() || r.pages.empty()) continue;
    cache::Stripe& s = c->cache_.get_or_create(row, now);
    for (const auto& [slot, page] : r.pages) c->cache_.add_page(s, slot, page, r.first_sequence, now);
    s.reserved = c->cache_.reserve_for(s);
    c->reserved_ += s.reserved;
  }
  const auto indexed = std::chrono::steady_clock::now();

  // Write-hole repair: every flush whose parity was logged (and no done
  // record followed) gets its logged data and parity written again
  // (idempotent), then the members are synced. A row flushed more than once
  // since its last done record is repaired generation by generation, oldest
  // first: round i writes every row's i-th, so writes to one place never
  // race. Each write's buffers span its parity runs' window; only the runs
  // are written. The flush of a full stripe logged only a mark: its whole
  // row is written, parity computed from the logged data. A round goes out
  // in parts of at most kRepairBytes of buffers (a log holds up to a
  // checkpoint's worth of flushes, each up to a whole row wide).
  constexpr size_t kRepairBytes = 32 << 20;
  auto window = [cp](const journal::RowFlush& f) {
    if (!f.parity_covers_pages(cp)) return std::pair{0u, cp};
    uint32_t lo = ~0u, hi = 0;
    for (const journal::ParityRun& run : f.parity) lo = std::min(lo, run.lo), hi = std::max(hi, run.lo + run.pages);
    return std::pair{lo, hi};
  };
  using Flush = std::pair<uint64_t, const journal::RowFlush*>;
  auto bytes_of = [&](const journal::RowFlush& f) { return size_t(roles) * (window(f).second - window(f).first) * kPageSize; };
  // Writes one part of a round: flushes of distinct rows.
  auto repair_part = [&](const std::vector<Flush>& flushes, size_t arena) -> Status {
    std::vector<array::RowWrite> repairs;
    AlignedBuffer repair_buf(arena);
    std::byte* next = repair_buf.data();
    for (const auto& [row, f] : flushes) {
      const auto [lo, hi] = window(*f);
      array::RowWrite& w = repairs.emplace_back();
      w.row = row;
      w.lo = lo * uint32_t(kPageSize);
      for (uint32_t role = 0; role < roles; ++role, next += size_t(hi - lo) * kPageSize) w.block[role] = next;
      for (const auto& [slot, page] : f->pages) {
        const uint32_t k = slot / cp, col = slot % cp;
        std::memcpy(w.block[k] + size_t(col - lo) * kPageSize, page, kPageSize);
        w.extents.push_back({k, col * uint32_t(kPageSize), (col + 1) * uint32_t(kPageSize)});
        c->pool_->put(page);
      }
      const bool mark = !f->parity_covers_pages(cp);
      for (const journal::ParityRun& run : f->parity) {
        for (size_t i = 0; i < run.parity.size(); ++i) {
          if (!mark)
            std::memcpy(w.block[d + i / run.pages] + (run.lo - lo + i % run.pages) * kPageSize, run.parity[i], kPageSize);
          c->pool_->put(run.parity[i]);
        }
        if (!mark)
          for (uint32_t role = d; role < roles; ++role)
            w.extents.push_back({role, run.lo * uint32_t(kPageSize), (run.lo + run.pages) * uint32_t(kPageSize)});
      }
      if (mark) {
        parity::compute({w.block, d}, w.block[d], pc == 2 ? w.block[d + 1] : nullptr, size_t(hi - lo) * kPageSize);
        for (uint32_t role = d; role < roles; ++role) w.extents.push_back({role, 0, uint32_t(g.chunk_size)});
      }
    }
    if (options.test_skip_repair) return {};
    return array.write_rows(repairs);
  };
  size_t repaired_flushes = 0;
  for (size_t round = 0;; ++round) {
    std::vector<Flush> flushes;
    for (const auto& [row, r] : index.rows)
      if (round < r.repair_count()) flushes.emplace_back(row, &r.repair(round));
    if (flushes.empty()) break;
    repaired_flushes += flushes.size();
    for (size_t i = 0; i < flushes.size();) {
      size_t j = i, arena = 0;
      for (; j < flushes.size() && (j == i || arena + bytes_of(*flushes[j].second) <= kRepairBytes); ++j)
        arena += bytes_of(*flushes[j].second);
      R5_TRY(repair_part({flushes.begin() + i, flushes.begin() + j}, arena));
      i = j;
    }
  }

  if (repaired_flushes > 0 && !options.test_skip_repair) R5_TRY(array.sync());
  const auto repaired = std::chrono::steady_clock::now();
  const uint64_t tail = c->cache_.oldest_log_start(scan.head_sequence);
  R5_TRY(c->advance_tail(tail, 0));  // in use: not clean until closed empty
  // A row whose parity a crash left incomplete has that parity in the log
  // after its data. Data logged behind it would read at the next replay as a
  // newer generation after a flush that began behind the tail, and the
  // row's older pages would be dropped: such rows are written out (and
  // checkpointed) before the cache takes a write.
  if (!index.parity_dropped.empty() && !options.test_skip_repair) R5_TRY(c->flush_here(true, index.parity_dropped));

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CacheCounters& k = c->counters_;
  k.replay_records = scan.record_count;
  k.replay_blocks_read = scan.blocks_read;
  k.replay_repaired_rows = repaired_flushes;
  k.replay_dirty_pages = dirty;
  k.replay_seconds = seconds;
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  if (scan.record_count > 0)
    log::info("journal replay: {} records ({} MiB read) in {:.3f} s ({:.0f} MiB/s; scan {:.3f} s, rebuild {:.3f} s, "
              "repair {:.3f} s); {} stripes repaired on the members, {} MiB of dirty data back in the cache",
              scan.record_count, k.replay_blocks_read * kJournalBlock >> 20, seconds,
              double(k.replay_blocks_read * kJournalBlock) / (1 << 20) / std::max(seconds, 1e-9), secs(started, scanned),
              secs(scanned, indexed), secs(indexed, repaired), repaired_flushes, dirty * kPageSize >> 20);
  return c;
}

}  // namespace r5::engine
