// The flusher thread of the journaled cache: picks stripes by the reclaim
// policy and writes them out in batches. Per batch (DESIGN §2): parity is
// computed from the pool and what the members hold (the absent data pages,
// or the old dirty pages and old parity, whichever is fewer), logged and
// made durable before any member is touched; then the members are written
// concurrently and the pages freed (reads find the data on the members).
// A checkpoint, after many batches, syncs the members, logs the stripe-done
// records and writes the new log tail into the superblock: until then the
// log keeps every record of the flushed stripes, so a crash repairs them
// from it. A batch costs one journal sync; a checkpoint one member sync and
// one superblock write (which also syncs the done records).
#include <algorithm>
#include <cstring>

#include "array/aligned_buffer.h"
#include "base/log.h"
#include "engine/journaled_cache.h"
#include "io/batch.h"
#include "parity/parity.h"

namespace r5::engine {

using cache::Clock;
using format::kJournalBlock;
using geometry::kPageSize;

namespace {
constexpr auto kTick = std::chrono::milliseconds(100);  // age and idle checks
constexpr auto kIdle = std::chrono::seconds(1);         // no write for this long: flush old partial stripes too
// Stripes per batch: one journal sync and one member sync serve them all.
constexpr size_t kBatchStripes = 1024;
// The flush buffer (every role's column window of every stripe in a batch)
// counts against the daemon's memory beyond cache.memory: a batch is cut to
// fit it (about 100 full stripes of RAID5 4+1 at 64 KiB chunks, the whole
// 1024 of stripes with a page or two dirty).
constexpr size_t kFlushArenaBytes = 32 << 20;
// A checkpoint follows a flush when this many stripes or this much time have
// gathered since the last one, when the log is short of space and they hold
// its tail, or when the flusher has had nothing to do for a tick.
constexpr size_t kCheckpointStripes = 16384;
constexpr auto kCheckpointAge = std::chrono::seconds(1);
}  // namespace

uint64_t JournaledCache::slack_blocks(const geometry::Geometry& g) {
  // Under journal pressure a batch starts with half a batch of the stripes
  // holding the oldest records, cut to the flush buffer (flush_bytes: every
  // role over the window, and the data pages). One commit's rows (at most
  // kMaxBatchPages) share their oldest record: passing it takes this many
  // batches, each up to a block over, and a checkpoint, up to a block over.
  const uint64_t widest = uint64_t(g.members + g.data_count()) * g.chunk_size;
  const uint64_t per_batch = std::max<uint64_t>(1, std::min<uint64_t>(kBatchStripes / 2, kFlushArenaBytes / widest));
  const uint64_t batches = (kMaxBatchPages + per_batch - 1) / per_batch;
  // Two more: a batch that misses the oldest stripe (a writer has it pinned)
  // and a checkpoint due by age or count before the tail can move.
  return batches + 1 + 2;
}

Status JournaledCache::flush_here(bool then_checkpoint, std::vector<uint64_t> rows) {
  for (;;) {
    std::vector<cache::Stripe*> stripes;
    {
      std::lock_guard lock(mu_);
      if (failure_) return failure_error();
      cache::FlushRequest req = batch_request();  // the flusher's batches, without its other reasons
      req.drain = rows.empty();
      req.urgent = rows;
      req.max_age = Clock::duration::max();
      stripes = take_for_flush(req);
    }
    if (stripes.empty()) break;
    if (Status st = flush(stripes); !st.ok()) return fail(st.error());
    bool due;
    {
      std::lock_guard lock(mu_);
      due = checkpoint_due(Clock::now());
    }
    if (due)
      if (Status st = checkpoint(); !st.ok()) return fail(st.error());
  }
  if (!then_checkpoint) return {};
  if (Status st = checkpoint(); !st.ok()) return fail(st.error());
  return {};
}

cache::FlushRequest JournaledCache::batch_request() const {
  cache::FlushRequest req;
  req.now = Clock::now();
  req.journal_pressure = journal_pressure();
  req.max_stripes = kBatchStripes;
  req.max_bytes = kFlushArenaBytes;
  return req;
}

std::vector<cache::Stripe*> JournaledCache::take_for_flush(const cache::FlushRequest& req) {
  std::vector<cache::Stripe*> stripes;
  for (uint64_t row : cache_.select(req)) {
    cache::Stripe* s = cache_.find(row);
    s->flushing = true;
    stripes.push_back(s);
  }
  return stripes;
}

bool JournaledCache::checkpoint_due(Clock::time_point now) const {
  if (unsynced_rows_.empty()) return false;
  return unsynced_rows_.size() >= kCheckpointStripes || now - unsynced_since_ >= kCheckpointAge ||
         (journal_pressure() && unsynced_floor_ < cache_.oldest_log_start(next_sequence_.load()));
}

void JournaledCache::flusher_loop() {
  std::unique_lock lock(mu_);
  auto run_checkpoint = [&] {
    lock.unlock();
    Status st = checkpoint();
    if (!st.ok()) fail(st.error());
    lock.lock();
    changed_cv_.notify_all();
  };
  for (;;) {
    // Stopping: what was flushed is synced first (what is dirty stays logged).
    if (stop_ && drainers_ == 0 && (failure_ || unsynced_rows_.empty())) break;
    if (failure_) {
      // Stripes written to the members are made durable there once: the
      // journal that also holds them may be gone for good (no done records
      // now; a replay that finds their records repairs them again).
      if (!unsynced_rows_.empty()) {
        unsynced_rows_.clear();
        lock.unlock();
        (void)array_.sync();  // a member that fails it is failed by the array
        lock.lock();
        continue;
      }
      flusher_cv_.wait(lock);
      continue;
    }
    if (stop_ && drainers_ == 0) {
      run_checkpoint();
      continue;
    }
    cache::FlushRequest req = batch_request();
    req.drain = drainers_ > 0;
    const size_t used = pool_->used_pages(), cap = pool_->capacity();
    req.memory_pressure = memory_pressure();
    req.target_pages = std::max(used > cap / 2 ? used - cap / 2 : 0, memory_waiters_ ? kMaxBatchPages : 0);
    req.idle = req.now - last_write_ >= kIdle;
    req.max_age = options_.max_age;
    for (const auto& [row, waiters] : urgent_) req.urgent.push_back(row);
    const std::vector<cache::Stripe*> stripes = take_for_flush(req);
    if (stripes.empty()) {
      if (!unsynced_rows_.empty() && (req.drain || req.journal_pressure || req.now - last_flush_ >= kTick)) {
        run_checkpoint();
        continue;
      }
      flusher_cv_.wait_for(lock, kTick);
      continue;
    }
    std::vector<uint64_t> rows;
    for (const cache::Stripe* s : stripes) rows.push_back(s->row);
    lock.unlock();
    Status st = flush(stripes);
    if (!st.ok()) fail(st.error());
    lock.lock();
    if (!st.ok())
      for (uint64_t row : rows)
        if (cache::Stripe* s = cache_.find(row)) s->flushing = false;
    last_flush_ = Clock::now();
    changed_cv_.notify_all();
    wake_next_leader();  // writes left in the queue for these stripes may go now
    if (st.ok() && checkpoint_due(last_flush_)) run_checkpoint();
  }
}

// Reads the pages a flush needs but the pool lacks, all at once: straight
// from the data members in one io_uring batch while the array is healthy;
// through the array (which reconstructs) when a member has failed or fails.
Status JournaledCache::read_absent(std::span<const AbsentRun> runs) {
  if (runs.empty()) return {};
  array::MemberSet& members = array_.members();
  const uint64_t row_bytes = g_.row_data_bytes();
  std::vector<io::IoOp> ops;
  bool direct = members.failed_mask() == 0;
  for (size_t i = 0; i < runs.size() && direct; ++i) {
    const AbsentRun& r = runs[i];
    const uint64_t row = r.offset / row_bytes, in_row = r.offset % row_bytes;
    io::Device* dev = members.device(geometry::map_row(g_, row).data[in_row / g_.chunk_size]);
    if (dev == nullptr) direct = false;
    ops.push_back(io::IoOp::read(dev, members.data_offset() + row * g_.chunk_size + in_row % g_.chunk_size, r.buf, r.len));
  }
  if (direct) {
    io::run_batch(ops);
    for (const io::IoOp& o : ops) array_.count_member_read(o.len);
    if (std::all_of(ops.begin(), ops.end(), [](const io::IoOp& o) { return o.status.ok(); })) return {};
  }
  for (const AbsentRun& r : runs) R5_TRY(array_.read(r.offset, {r.buf, r.len}));
  return {};
}

std::vector<JournaledCache::ColumnRun> JournaledCache::parity_runs(const cache::Stripe& s) const {
  const uint32_t cp = cache_.chunk_pages();
  std::vector<ColumnRun> runs;
  for (uint32_t col = s.lo; col < s.hi; ++col) {
    bool dirty = false;
    for (uint32_t k = 0; k < g_.data_count() && !dirty; ++k) dirty = s.pages[size_t(k) * cp + col] != nullptr;
    if (!dirty) continue;
    if (!runs.empty() && runs.back().hi == col)
      ++runs.back().hi;
    else
      runs.push_back({col, col + 1});
  }
  return runs;
}

Status JournaledCache::prepare_flush(const std::vector<cache::Stripe*>& stripes, bool reuse_parity, FlushRows& out) {
  const uint32_t d = g_.data_count(), pc = g_.parity_count(), roles = d + pc, cp = cache_.chunk_pages();
  const uint64_t row_bytes = g_.row_data_bytes();
  array::MemberSet& members = array_.members();
  // The stripes are ours until this returns: writers to them wait, so their
  // pages hold still without the lock. Parity covers only the columns (page
  // offsets in the chunks) holding a dirty page: a few random pages in a row
  // cost a few columns of reads, parity writes and logged parity, not the
  // whole window between them. One RowWrite per run of such columns.
  //
  // Each run's parity comes from whichever reads fewer member pages, like the
  // array's own planner: reconstruct-write (the data pages the pool lacks are
  // read, parity computed) or, while the array is healthy, read-modify-write
  // (the old content of the dirty pages and the old parity are read, their
  // differences applied) unless a repair pass may be rewriting that parity;
  // a tie goes to reconstruct-write.
  auto& [writes, stripe_of, run_of] = out;
  std::vector<bool> rmw;  // per write
  const bool may_modify = reuse_parity && members.failed_mask() == 0;
  size_t arena = 0;
  for (size_t i = 0; i < stripes.size(); ++i)
    for (const ColumnRun& run : parity_runs(*stripes[i])) {
      const uint32_t pages = run.hi - run.lo;
      uint32_t present = 0;
      for (uint32_t k = 0; k < d; ++k)
        for (uint32_t col = run.lo; col < run.hi; ++col) present += stripes[i]->pages[size_t(k) * cp + col] != nullptr;
      const bool modify = may_modify && present + pc * pages < d * pages - present;
      array::RowWrite& w = writes.emplace_back();
      w.row = stripes[i]->row;
      w.lo = run.lo * uint32_t(kPageSize);
      stripe_of.push_back(i);
      run_of.push_back(run);
      rmw.push_back(modify);
      arena += (size_t(roles) * pages + (modify ? present : 0)) * kPageSize;  // blocks, then old pages
    }
  thread_local AlignedBuffer scratch;
  scratch.reserve(arena);
  std::vector<std::pair<size_t, AbsentRun>> absent;  // per write: the data pages the pool lacks
  std::vector<io::IoOp> old_reads;                   // read-modify-write: old data pages and parity
  struct OldPage {
    size_t write;
    uint32_t k, col;
    std::byte* old;
  };
  std::vector<OldPage> old_pages;
  std::byte* next = scratch.data();
  for (size_t j = 0; j < writes.size(); ++j) {
    const cache::Stripe& s = *stripes[stripe_of[j]];
    array::RowWrite& w = writes[j];
    const auto [lo, hi] = run_of[j];
    const geometry::RowMap map = geometry::map_row(g_, w.row);
    const uint64_t chunk_at = members.data_offset() + w.row * g_.chunk_size;
    for (uint32_t r = 0; r < roles; ++r, next += size_t(hi - lo) * kPageSize) w.block[r] = next;
    for (uint32_t k = 0; k < d; ++k) {
      // Runs of present pages are written; runs of absent ones are read.
      for (uint32_t col = lo; col < hi;) {
        const bool present = s.pages[size_t(k) * cp + col] != nullptr;
        uint32_t end = col;
        while (end < hi && (s.pages[size_t(k) * cp + end] != nullptr) == present) ++end;
        std::byte* dst = w.block[k] + size_t(col - lo) * kPageSize;
        if (present) {
          for (uint32_t c = col; c < end; ++c) {
            std::memcpy(dst + size_t(c - col) * kPageSize, s.pages[size_t(k) * cp + c], kPageSize);
            if (!rmw[j]) continue;
            old_pages.push_back({j, k, c, next});
            old_reads.push_back(io::IoOp::read(members.device(map.data[k]), chunk_at + c * kPageSize, next, kPageSize));
            next += kPageSize;
          }
          w.extents.push_back({k, col * uint32_t(kPageSize), end * uint32_t(kPageSize)});
        } else {
          absent.push_back({j, {s.row * row_bytes + uint64_t(k) * g_.chunk_size + uint64_t(col) * kPageSize, dst,
                                size_t(end - col) * kPageSize}});
        }
        col = end;
      }
    }
    for (uint32_t r = d; r < roles; ++r) {
      w.extents.push_back({r, lo * uint32_t(kPageSize), hi * uint32_t(kPageSize)});
      if (rmw[j])
        old_reads.push_back(io::IoOp::read(members.device(r == d ? map.p : map.q), chunk_at + lo * kPageSize, w.block[r],
                                           size_t(hi - lo) * kPageSize));
    }
  }
  // A member that failed meanwhile, or a failed read, turns every run to
  // reconstruct-write, whose reads go through the array when they must.
  if (!old_reads.empty()) {
    const bool gone = std::any_of(old_reads.begin(), old_reads.end(), [](const io::IoOp& o) { return o.device == nullptr; });
    if (!gone) {
      io::run_batch(old_reads);
      for (const io::IoOp& o : old_reads) array_.count_member_read(o.len);
    }
    if (gone || !std::all_of(old_reads.begin(), old_reads.end(), [](const io::IoOp& o) { return o.status.ok(); }))
      rmw.assign(rmw.size(), false);
  }
  std::vector<AbsentRun> reads;
  for (const auto& [j, run] : absent)
    if (!rmw[j]) reads.push_back(run);
  R5_TRY(read_absent(reads));
  for (size_t j = 0; j < writes.size(); ++j)
    if (!rmw[j])
      parity::compute({writes[j].block, d}, writes[j].block[d], pc == 2 ? writes[j].block[d + 1] : nullptr,
                      size_t(run_of[j].hi - run_of[j].lo) * kPageSize);
  for (const OldPage& o : old_pages) {
    if (!rmw[o.write]) continue;
    array::RowWrite& w = writes[o.write];
    const size_t at = size_t(o.col - run_of[o.write].lo) * kPageSize;
    parity::xor_into(o.old, w.block[o.k] + at, kPageSize);
    const parity::Delta delta{o.k, o.old};
    parity::apply_deltas(d, {&delta, 1}, w.block[d] + at, pc == 2 ? w.block[d + 1] + at : nullptr, kPageSize);
  }
  return {};
}

Status JournaledCache::flush(const std::vector<cache::Stripe*>& stripes) {
  const uint32_t d = g_.data_count(), pc = g_.parity_count(), roles = d + pc;
  FlushRows rows;
  const array::RaidArray::ParityReuse reuse(array_);  // until the member writes are done
  R5_TRY(prepare_flush(stripes, reuse.allowed(), rows));
  const auto& [writes, stripe_of, run_of] = rows;
  auto run_bytes = [&](size_t j) { return size_t(run_of[j].hi - run_of[j].lo) * kPageSize; };
  size_t full = 0;
  for (const cache::Stripe* s : stripes) full += s->full();

  // Parity into the log, and the log durable, before any member write. A full
  // stripe needs no parity for its repair: the log holds all its data, so
  // replay writes it out whole again. Its first column's parity is logged as
  // a mark that ends the row's generation in the log (replay tells by it
  // where the data of a later write to the row begins, see ReplayIndex). A
  // row gets one parity entry per run. The record goes through the page cache
  // whatever its size: it is synced right away.
  {
    std::unique_lock jl(journal_mu_);
    const uint64_t seed = writer_.superblock().seed();
    format::MetaBlock meta;
    std::vector<const std::byte*> payload;
    for (size_t j = 0; j < writes.size(); ++j) {
      const array::RowWrite& w = writes[j];
      const size_t logged = stripes[stripe_of[j]]->full() ? kPageSize : run_bytes(j);
      format::ParityEntry e;
      e.row = w.row;
      e.column_offset = w.lo;
      e.parity_count = pc;
      std::vector<const std::byte*> pages;
      for (uint32_t r = d; r < roles; ++r)
        for (size_t at = 0; at < logged; at += kPageSize) {
          pages.push_back(w.block[r] + at);
          e.page_checksums.push_back(
              format::payload_checksum(std::span<const std::byte, kJournalBlock>(w.block[r] + at, kJournalBlock), seed));
        }
      format::Entry entry = std::move(e);
      if (!format::fits(meta, entry)) {
        R5_TRY(append_locked(meta, payload, jl, true));
        meta.entries.clear();
        payload.clear();
      }
      meta.entries.push_back(std::move(entry));
      payload.insert(payload.end(), pages.begin(), pages.end());
    }
    if (!meta.entries.empty()) R5_TRY(append_locked(meta, payload, jl, true));
  }
  R5_TRY(sync_journal());
  {
    std::lock_guard lock(mu_);
    for (cache::Stripe* s : stripes) {  // the parity is logged: keep the block for the done record
      reserved_ -= s->reserved - cache_.done_share_bytes();
      s->reserved = cache_.done_share_bytes();
    }
    changed_cv_.notify_all();
  }

  R5_TRY(array_.write_rows(writes));
  {
    // On the members now (not yet synced there): the pages go, the log keeps
    // the records and the done record's share stays reserved until the
    // checkpoint.
    std::lock_guard lock(mu_);
    if (unsynced_rows_.empty()) unsynced_since_ = Clock::now();
    for (cache::Stripe* s : stripes) {
      unsynced_rows_.push_back(s->row);
      unsynced_floor_ = std::min(unsynced_floor_, s->log_start);
      cache_.erase(s->row, *pool_);
    }
  }
  counters_.flush_batches.fetch_add(1, std::memory_order_relaxed);
  counters_.stripes_flushed.fetch_add(stripes.size(), std::memory_order_relaxed);
  counters_.full_stripes_flushed.fetch_add(full, std::memory_order_relaxed);
  return {};
}

Status JournaledCache::checkpoint() {
  std::vector<uint64_t> rows;
  {
    std::lock_guard lock(mu_);
    rows = unsynced_rows_;  // only this thread adds to it
  }
  if (rows.empty()) return {};
  const size_t flushed = rows.size();
  R5_TRY(array_.sync());

  // A done record forgets, at replay, everything logged for its rows before
  // it. A row written to again since its flush has such newer records: it
  // gets none now (its flush's records stay until the tail passes them, and
  // a replay before that repairs them again, harmlessly, before the newer
  // data). The others are held, so that no write to them is logged before
  // their done record (writers to them wait, as for a stripe being flushed).
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  {
    std::lock_guard lock(mu_);
    std::erase_if(rows, [&](uint64_t row) { return cache_.find(row) != nullptr; });
    checkpointing_.insert(rows.begin(), rows.end());
  }
  Status logged;
  {
    // One record per kPerRecord stripes: each says its own rows are on the
    // members, so a crash between two of them only replays the rest.
    constexpr size_t kPerRecord = cache::StripeCache::kDoneRowsPerRecord;
    std::unique_lock jl(journal_mu_);
    for (size_t i = 0; i < rows.size() && logged.ok(); i += kPerRecord) {
      format::StripeDoneEntry e;
      e.rows.assign(rows.begin() + i, rows.begin() + std::min(rows.size(), i + kPerRecord));
      format::MetaBlock meta;
      meta.entries.push_back(std::move(e));
      logged = append_locked(meta, {}, jl);
    }
  }
  uint64_t tail;
  {
    std::lock_guard lock(mu_);
    checkpointing_.clear();
    reserved_ -= flushed * cache_.done_share_bytes();
    unsynced_rows_.erase(unsynced_rows_.begin(), unsynced_rows_.begin() + flushed);
    unsynced_floor_ = UINT64_MAX;
    tail = tail_sequence_locked();
    changed_cv_.notify_all();
    wake_next_leader();
  }
  R5_TRY(logged);
  R5_TRY(advance_tail(tail, 0));
  counters_.checkpoints.fetch_add(1, std::memory_order_relaxed);
  return {};
}

}  // namespace r5::engine
