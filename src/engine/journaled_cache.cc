#include "engine/journaled_cache.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "array/aligned_buffer.h"
#include "base/log.h"

namespace r5::engine {

using cache::Clock;
using format::kJournalBlock;
using geometry::kPageSize;

namespace {

constexpr size_t kMaxWrite = JournaledCache::kMaxBatchPages * kPageSize;  // larger writes are committed in pieces
constexpr uint32_t kMaxEntryPages = 256;       // pages per data entry (2 KiB of checksums)

uint64_t page_floor(uint64_t v) { return v / kPageSize * kPageSize; }
uint64_t page_ceil(uint64_t v) { return (v + kPageSize - 1) / kPageSize * kPageSize; }

constexpr size_t kLingerBelow = 8;  // writes in a batch under which a leader waits for more once

struct ActiveWriter {  // counts writers between their entry and their reply
  explicit ActiveWriter(std::atomic<size_t>& n) : n_(n) { n_.fetch_add(1, std::memory_order_relaxed); }
  ~ActiveWriter() { n_.fetch_sub(1, std::memory_order_relaxed); }
  std::atomic<size_t>& n_;
};

}  // namespace

struct JournaledCache::Request {
  uint64_t offset = 0;
  std::span<const std::byte> data;
  bool sync = false;  // durable before the reply (journal.sync = "always")
  bool taken = false;  // in a leader's batch
  bool done = false;
  Status status;
  uint64_t floor = 0;  // no record of this write has a lower sequence
  AlignedBuffer edges;  // merged copies of a partially written first and last page

  uint64_t first_page() const { return page_floor(offset); }
  uint64_t end_page() const { return page_ceil(offset + data.size()); }
  size_t pages() const { return data.empty() ? 0 : size_t((end_page() - first_page()) / kPageSize); }
  // The bytes of the journal payload page at array offset `at`.
  const std::byte* payload(uint64_t at) const {
    if (at < offset) return edges.data();
    if (at + kPageSize > offset + data.size()) return edges.data() + kPageSize;
    return data.data() + (at - offset);
  }
};

JournaledCache::JournaledCache(array::RaidArray& array, std::unique_ptr<io::Device> journal,
                               const format::JournalSuperblock& sb, const Options& options, uint64_t head_position,
                               uint64_t head_sequence, std::unique_ptr<cache::PagePool> pool)
    : array_(array),
      g_(array.members().geometry()),
      options_(options),
      write_through_(options.mode == config::JournalMode::kWriteThrough),
      ring_blocks_(sb.ring_blocks()),
      slack_blocks_(slack_blocks(g_)),
      journal_dev_(std::move(journal)),
      pool_(std::move(pool)),
      cache_(g_),
      writer_(*journal_dev_, sb, head_position, head_sequence) {
  publish_locked();
}

JournaledCache::~JournaledCache() {
  if (Status st = close(false); !st.ok()) log::error("closing the journal: {}", st.error().message);
}

void JournaledCache::publish_locked() {
  journal_free_.store(writer_.free_blocks(), std::memory_order_release);
  next_sequence_.store(writer_.head_sequence(), std::memory_order_release);
}

void JournaledCache::start() {
  if (!flusher_.joinable()) flusher_ = std::thread([this] { flusher_loop(); });
}

std::optional<Error> JournaledCache::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

Error JournaledCache::failure_error() const {
  return io_error(EIO, fmt::format("array is read-only after a failure: {}", failure_->message));
}

Error JournaledCache::fail(const Error& e) {
  std::lock_guard lock(mu_);
  return fail_locked(e);
}

Error JournaledCache::fail_locked(const Error& e) {
  if (!failure_) {
    failure_ = e;
    log::error("journal cache stopped accepting writes (reads still work): {}", e.message);
  }
  changed_cv_.notify_all();
  flusher_cv_.notify_all();
  for (Request* r : queue_) cv_of(r).notify_all();
  return failure_error();
}

JournaledCache::Usage JournaledCache::usage() const {
  // The log's ends first, on their own: journal_mu_ is held across journal
  // writes and syncs, and waiting for it with mu_ held would stop every read
  // and write behind a status query for as long as the journal takes.
  uint64_t tail_position, tail_sequence, head_position, head_sequence;
  {
    std::lock_guard journal_lock(journal_mu_);
    const format::JournalSuperblock& sb = writer_.superblock();
    tail_position = sb.tail_position;
    tail_sequence = sb.tail_sequence;
    head_position = writer_.head_position();
    head_sequence = writer_.head_sequence();
  }
  std::lock_guard lock(mu_);
  return {cache_.size(),         cache_.full_count(), pool_->used_pages(), pool_->capacity(), unsynced_rows_.size(),
          journal_free_.load(),  ring_blocks_,        reserved_ / kJournalBlock,
          tail_position,         tail_sequence,       head_position,       head_sequence};
}

bool JournaledCache::memory_pressure() const {
  return memory_waiters_ > 0 || pool_->used_pages() * 4 > pool_->capacity() * 3;
}

bool JournaledCache::row_held(uint64_t row) const {
  const cache::Stripe* s = cache_.find(row);
  return (s && s->flushing) || checkpointing_.count(row);
}

uint64_t JournaledCache::tail_sequence_locked() const {
  return std::min(cache_.oldest_log_start(next_sequence_.load()), unsynced_floor_);
}

bool JournaledCache::journal_pressure() const {
  return space_waiters_ > 0 || journal_free_.load() * kJournalBlock < reserved_ + ring_blocks_ * kJournalBlock / 3;
}

// ---- Reads ------------------------------------------------------------------

Status JournaledCache::read(uint64_t offset, std::span<std::byte> out) {
  R5_ASSIGN_OR_RETURN(Ranges gaps, read_from_pool(offset, out));
  for (auto [a, b] : gaps) R5_TRY(array_.read(a, out.subspan(a - offset, b - a)));
  return {};
}

Result<JournaledCache::Ranges> JournaledCache::read_from_pool(uint64_t offset, std::span<std::byte> out) {
  if (offset > g_.capacity() || out.size() > g_.capacity() - offset)
    return invalid(fmt::format("read at {} (+{}) beyond the array capacity {}", offset, out.size(), g_.capacity()));
  const uint64_t end = offset + out.size();
  const uint64_t row_bytes = g_.row_data_bytes();
  const uint32_t cp = cache_.chunk_pages();
  Ranges gaps;
  std::lock_guard lock(mu_);
  uint64_t from_pool = 0;
  for (uint64_t page = page_floor(offset); page < end; page += kPageSize) {
    const uint64_t a = std::max(page, offset), b = std::min(page + kPageSize, end);
    const uint64_t row = page / row_bytes, in_row = page % row_bytes;
    cache::Stripe* s = cache_.find(row);
    std::byte* src = s ? s->pages[size_t(in_row / g_.chunk_size) * cp + (in_row % g_.chunk_size) / kPageSize] : nullptr;
    if (src) {
      std::memcpy(out.data() + (a - offset), src + (a - page), b - a);
      from_pool += b - a;
    } else if (!gaps.empty() && gaps.back().second == a) {
      gaps.back().second = b;
    } else {
      gaps.emplace_back(a, b);
    }
  }
  counters_.pool_read_bytes.fetch_add(from_pool, std::memory_order_relaxed);
  return gaps;
}

// ---- Writes and group commit ---------------------------------------------------

Status JournaledCache::write(uint64_t offset, std::span<const std::byte> in) {
  if (offset > g_.capacity() || in.size() > g_.capacity() - offset)
    return invalid(fmt::format("write at {} (+{}) beyond the array capacity {}", offset, in.size(), g_.capacity()));
  for (size_t done = 0; done < in.size();) {
    // A piece never spans more than kMaxWrite of pages.
    const uint64_t at = offset + done;
    const size_t n = std::min<size_t>(in.size() - done, kMaxWrite - size_t(at - page_floor(at)));
    ActiveWriter active(active_writers_);
    Request r;
    r.offset = at;
    r.data = in.subspan(done, n);
    r.sync = options_.sync_always;
    R5_TRY(commit(r));
    if (write_through_) R5_TRY(wait_written_out(r));
    done += n;
  }
  return {};
}

Status JournaledCache::fsync() {
  {
    std::lock_guard lock(mu_);
    if (failure_) return failure_error();
  }
  // Every write replied before this call is appended already.
  return sync_or_fail();
}

Status JournaledCache::sync_or_fail() {
  if (Status st = sync_journal(); !st.ok()) return fail(st.error());  // never retried: the pages may be lost
  return {};
}

Status JournaledCache::commit(Request& r) {
  std::unique_lock lock(mu_);
  if (failure_) return failure_error();
  queue_.push_back(&r);
  std::vector<std::condition_variable*> to_wake;  // the writers of its batch, once this one lets go of mu_
  while (!r.done) {
    if (leading_ || r.taken) {
      cv_of(&r).wait(lock);
      continue;
    }
    // No one leads: this writer commits what it can of the queue, its own
    // write or not.
    leading_ = true;
    std::vector<Request*> batch = take_batch(0);
    if (!batch.empty() && batch.size() < kLingerBelow && active_writers_.load() > queue_.size() + batch.size()) {
      // Other writers are on their way here: let them queue once, so that
      // they share this batch's metadata block instead of each writing one.
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
      size_t pages = 0;
      for (Request* q : batch) pages += q->pages();
      std::vector<Request*> more = take_batch(pages);
      batch.insert(batch.end(), more.begin(), more.end());
    }
    if (batch.empty()) {  // every queued write waits for a flush of its stripe
      leading_ = false;
      cv_of(&r).wait(lock);  // woken when a flush ends or after the next batch
      continue;
    }
    for (Request* q : batch) q->taken = true;
    PlacedBatch placed;
    Status st = lead(batch, placed, lock);
    // The next writer leads while this one writes the batch's records, so
    // several large records are in flight at once.
    leading_ = false;
    if (placed.bytes.size() > 0) {
      std::condition_variable* next = next_leader_cv();
      lock.unlock();
      if (next) next->notify_all();
      const Status written = write_placed(placed);
      lock.lock();
      if (st.ok()) st = written;
    } else {
      wake_next_leader();
    }
    st = finish_batch(batch, placed.rows, st);
    for (Request* q : batch) {
      q->status = st;
      q->done = true;
      std::condition_variable* cv = &cv_of(q);
      if (q != &r && std::find(to_wake.begin(), to_wake.end(), cv) == to_wake.end()) to_wake.push_back(cv);
    }
    if (!r.done) {  // it leads again, or waits: wake them now
      for (std::condition_variable* cv : to_wake) cv->notify_all();
      to_wake.clear();
    }
  }
  lock.unlock();
  for (std::condition_variable* cv : to_wake) cv->notify_all();
  if (!r.status.ok() || !r.sync) return r.status;
  // Appended; now durable. The next batches are appended meanwhile, and
  // concurrent syncs share one fdatasync.
  return sync_or_fail();
}

std::condition_variable* JournaledCache::next_leader_cv() {
  return !leading_ && !queue_.empty() ? &cv_of(queue_.front()) : nullptr;
}

void JournaledCache::wake_next_leader() {
  if (std::condition_variable* cv = next_leader_cv()) cv->notify_all();
}

std::vector<JournaledCache::Request*> JournaledCache::take_batch(size_t pages) {
  const uint64_t row_bytes = g_.row_data_bytes();
  std::vector<Request*> batch;
  std::set<uint64_t> held;  // rows being flushed or written by a write left in the queue
  for (auto it = queue_.begin(); it != queue_.end();) {
    Request* q = *it;
    const uint64_t first = q->first_page() / row_bytes, last = (q->end_page() - 1) / row_bytes;
    bool waits = false;
    for (uint64_t row = first; row <= last && !waits; ++row) waits = held.count(row) || row_held(row);
    if (waits && !failure_) {
      // It waits for that flush; later writes to its rows wait behind it.
      for (uint64_t row = first; row <= last; ++row) held.insert(row);
      ++it;
      continue;
    }
    if (pages > 0 && pages + q->pages() > kMaxBatchPages) break;
    batch.push_back(q);
    pages += q->pages();
    it = queue_.erase(it);
  }
  return batch;
}

// Waits until no stripe of `rows` is being flushed, the batch's records fit
// beside every stripe's reservation, computed for the column windows the
// stripes will have after the batch (returned in new_reserve), and the pool
// has the pages the batch adds.
Status JournaledCache::wait_for_room(const std::vector<Request*>& batch, const std::set<uint64_t>& rows,
                                     uint64_t record_blocks, std::unordered_map<uint64_t, uint64_t>& new_reserve,
                                     std::unique_lock<std::mutex>& lock) {
  const uint64_t row_bytes = g_.row_data_bytes();
  const uint32_t cp = cache_.chunk_pages();
  std::vector<bool> new_columns;
  for (;;) {
    if (failure_) return failure_error();
    if (std::any_of(rows.begin(), rows.end(), [&](uint64_t row) { return row_held(row); })) {
      changed_cv_.wait(lock);
      continue;
    }
    uint64_t delta = 0;
    new_reserve.clear();
    for (uint64_t row : rows) {
      cache::Stripe* s = cache_.find(row);
      uint32_t lo = s && s->present ? s->lo : cp, hi = s && s->present ? s->hi : 0;
      // Dirty columns after the batch: the stripe's and the ones it adds.
      uint32_t columns = s ? s->dirty_columns : 0;
      new_columns.assign(cp, false);
      for (const Request* q : batch) {
        const uint64_t a = std::max(q->first_page(), row * row_bytes), b = std::min(q->end_page(), (row + 1) * row_bytes);
        for (uint64_t at = a; at < b && columns < cp; at += kPageSize) {
          const uint32_t col = uint32_t((at % g_.chunk_size) / kPageSize);
          if ((!s || s->column_pages[col] == 0) && !new_columns[col]) {
            new_columns[col] = true;
            ++columns;
          }
        }
        if (a >= b) continue;
        // Columns covered within the row: a whole chunk once the range spans chunks.
        const uint64_t ka = (a - row * row_bytes) / g_.chunk_size, kb = (b - 1 - row * row_bytes) / g_.chunk_size;
        const uint32_t ca = uint32_t((a % g_.chunk_size) / kPageSize), cb = uint32_t(((b - 1) % g_.chunk_size) / kPageSize) + 1;
        lo = std::min(lo, ka == kb ? ca : 0u);
        hi = std::max(hi, ka == kb ? cb : cp);
      }
      const uint64_t held = s ? s->reserved : 0;
      const uint64_t need = std::max(cache_.reserve_bytes(columns, hi - lo), held);
      new_reserve[row] = need;
      delta += need - held;
    }
    const uint64_t free = journal_free_.load(std::memory_order_acquire);
    const bool room =
        free * kJournalBlock >= reserved_ + delta + (record_blocks + slack_blocks_) * kJournalBlock;
    // Pool pages too, before the rows are pinned: the flusher leaves pinned
    // rows alone, and it may have to write out these very rows to free pages.
    // Only the leader takes pages, so they are still there when it applies.
    const bool pages = pool_->available() >= missing_pages(batch);
    if (room && pages) return {};
    (room ? counters_.memory_waits : counters_.space_waits).fetch_add(1, std::memory_order_relaxed);
    uint32_t& waiters = room ? memory_waiters_ : space_waiters_;
    ++waiters;
    flusher_cv_.notify_one();
    changed_cv_.wait(lock);
    --waiters;
  }
}

size_t JournaledCache::missing_pages(const std::vector<Request*>& batch) const {
  const uint64_t row_bytes = g_.row_data_bytes();
  const uint32_t cp = cache_.chunk_pages();
  size_t missing = 0;
  for (const Request* q : batch)
    for (uint64_t at = q->first_page(); at < q->end_page(); at += kPageSize) {
      const cache::Stripe* s = cache_.find(at / row_bytes);
      const uint64_t in_row = at % row_bytes;
      missing += !s || !s->pages[size_t(in_row / g_.chunk_size) * cp + size_t(in_row % g_.chunk_size) / kPageSize];
    }
  return missing;
}

Status JournaledCache::lead(std::vector<Request*>& batch, PlacedBatch& placed, std::unique_lock<std::mutex>& lock) {
  size_t pages = 0;
  for (Request* q : batch) pages += q->pages();

  const uint64_t row_bytes = g_.row_data_bytes();
  const uint32_t cp = cache_.chunk_pages();
  std::set<uint64_t>& rows = placed.rows;
  for (Request* q : batch)
    if (!q->data.empty())
      for (uint64_t row = q->first_page() / row_bytes; row <= (q->end_page() - 1) / row_bytes; ++row) rows.insert(row);
  // Metadata blocks: one per data entry at worst.
  const uint64_t record_blocks = pages + pages / kMaxEntryPages + batch.size();

  std::unordered_map<uint64_t, uint64_t> new_reserve;  // per touched row: its reservation after the batch
  if (Status st = wait_for_room(batch, rows, record_blocks, new_reserve, lock); !st.ok()) {
    rows.clear();  // nothing pinned
    return st;
  }

  // Pin the stripes: the flusher leaves them alone until the records are in
  // the log, so a parity record never precedes the data it covers.
  const Clock::time_point now = Clock::now();
  for (uint64_t row : rows) cache_.get_or_create(row, now).pins++;
  auto slot_of = [&](uint64_t at) {
    const uint64_t in_row = at % row_bytes;
    return size_t(in_row / g_.chunk_size) * cp + size_t(in_row % g_.chunk_size) / kPageSize;
  };
  auto page_ref = [&](uint64_t at) -> std::byte*& { return cache_.find(at / row_bytes)->pages[slot_of(at)]; };

  // Partly written pages that only the members hold are read first.
  std::vector<uint64_t> edge_pages;
  for (Request* q : batch) {
    if (q->data.empty()) continue;
    if (q->offset != q->first_page() && !page_ref(q->first_page())) edge_pages.push_back(q->first_page());
    const uint64_t last = q->end_page() - kPageSize, end = q->offset + q->data.size();
    if (end != q->end_page() && !page_ref(last) && (edge_pages.empty() || edge_pages.back() != last))
      edge_pages.push_back(last);
  }
  AlignedBuffer old_pages(edge_pages.size() * kPageSize);
  Status st;
  if (!edge_pages.empty()) {
    lock.unlock();
    for (size_t i = 0; i < edge_pages.size() && st.ok(); ++i)
      st = array_.read(edge_pages[i], {old_pages.data() + i * kPageSize, kPageSize});
    lock.lock();
  }

  if (st.ok() && failure_) st = failure_error();

  if (st.ok()) {
    // Apply in queue order: the pool then reads as the log will replay.
    const uint64_t floor = next_sequence_.load(std::memory_order_acquire);
    for (Request* q : batch) {
      if (q->data.empty()) continue;
      q->floor = floor;
      const uint64_t end = q->offset + q->data.size();
      for (uint64_t at = q->first_page(); at < q->end_page(); at += kPageSize) {
        cache::Stripe& s = *cache_.find(at / row_bytes);
        std::byte*& page = page_ref(at);
        const bool partial = at < q->offset || at + kPageSize > end;
        if (!page) {
          std::byte* fresh = pool_->get();
          if (partial) {
            auto it = std::find(edge_pages.begin(), edge_pages.end(), at);
            std::memcpy(fresh, old_pages.data() + size_t(it - edge_pages.begin()) * kPageSize, kPageSize);
          }
          cache_.add_page(s, slot_of(at), fresh, floor, now);
        }
        const uint64_t a = std::max(at, q->offset), b = std::min(at + kPageSize, end);
        std::memcpy(page + (a - at), q->data.data() + (a - q->offset), b - a);
        cache_.touch(s, now);
        if (partial) {
          if (q->edges.size() == 0) q->edges = AlignedBuffer(2 * kPageSize);
          std::memcpy(q->edges.data() + (at < q->offset ? 0 : kPageSize), page, kPageSize);
        }
      }
    }
    for (uint64_t row : rows) {
      cache::Stripe& s = *cache_.find(row);
      reserved_ += new_reserve[row] - s.reserved;
      s.reserved = new_reserve[row];
    }
    last_write_ = now;
    lock.unlock();
    st = place_batch(batch, placed);
    lock.lock();
  }
  return st;
}

Status JournaledCache::finish_batch(const std::vector<Request*>& batch, const std::set<uint64_t>& rows, Status st) {
  for (uint64_t row : rows) {
    cache::Stripe* s = cache_.find(row);
    if (--s->pins == 0 && s->present == 0) cache_.erase(row, *pool_);
  }
  // The flusher looks at ages on its own tick; it is woken only for pressure.
  if (memory_pressure() || journal_pressure()) flusher_cv_.notify_one();
  counters_.write_batches.fetch_add(1, std::memory_order_relaxed);
  counters_.writes_batched.fetch_add(batch.size(), std::memory_order_relaxed);
  if (!st.ok() && st.error().kind != ErrorKind::kInvalid) return fail_locked(st.error());
  return st;
}

Status JournaledCache::place_batch(const std::vector<Request*>& batch, PlacedBatch& placed) {
  // The records (metadata blocks and their pages), checksummed outside the
  // journal lock.
  struct Record {
    format::MetaBlock meta;
    std::vector<const std::byte*> payload;
  };
  std::vector<Record> records(1);
  const uint64_t seed = writer_.superblock().seed();  // constant
  for (Request* q : batch) {
    for (uint64_t at = q->first_page(); at < q->end_page();) {
      format::DataEntry e;
      e.array_offset = at;
      const uint64_t n = std::min<uint64_t>(kMaxEntryPages, (q->end_page() - at) / kPageSize);
      std::vector<const std::byte*> pages;
      for (uint64_t i = 0; i < n; ++i, at += kPageSize) {
        const std::byte* p = q->payload(at);
        pages.push_back(p);
        e.page_checksums.push_back(format::payload_checksum(std::span<const std::byte, kJournalBlock>(p, kJournalBlock), seed));
      }
      format::Entry entry = std::move(e);
      if (!format::fits(records.back().meta, entry)) records.emplace_back();
      records.back().meta.entries.push_back(std::move(entry));
      records.back().payload.insert(records.back().payload.end(), pages.begin(), pages.end());
    }
  }
  if (records.back().meta.entries.empty()) records.pop_back();
  if (records.empty()) return {};
  size_t blocks = 0;
  for (const Record& rec : records) blocks += 1 + rec.payload.size();
  // The leader's own buffer: it writes these records itself, after the
  // next leader has taken over.
  thread_local AlignedBuffer buffer;
  buffer.reserve(blocks * kJournalBlock);
  placed.bytes = {buffer.data(), blocks * kJournalBlock};
  {
    std::unique_lock jl(journal_mu_);
    if (Status st = bound_unsynced(blocks, jl); !st.ok()) {
      placed.bytes = {};
      return st;
    }
    placed.position = writer_.head_position();
    placed.first_sequence = writer_.head_sequence();
    std::byte* next = buffer.data();
    for (Record& rec : records) {
      const uint64_t position = writer_.head_position();
      rec.meta.synced_sequence = synced_sequence_.load(std::memory_order_acquire);
      const Status st = writer_.place(rec.meta, rec.payload.size(), std::span<std::byte, kJournalBlock>(next, kJournalBlock));
      if (!st.ok()) {  // the space was reserved: a bug, but the log must not be synced past the hole
        write_failed_ = true;
        placed.bytes = {};
        return st;
      }
      records_.emplace_back(rec.meta.sequence, position);
      next += (1 + rec.payload.size()) * kJournalBlock;
    }
    in_flight_.insert(placed.first_sequence);
    counters_.journal_records.fetch_add(records.size(), std::memory_order_relaxed);
    counters_.journal_bytes.fetch_add(blocks * kJournalBlock, std::memory_order_relaxed);
    publish_locked();
  }
  std::byte* next = buffer.data();
  for (const Record& rec : records) {
    next += kJournalBlock;
    for (const std::byte* page : rec.payload) {
      std::memcpy(next, page, kJournalBlock);
      next += kJournalBlock;
    }
  }
  return {};
}

Status JournaledCache::write_placed(const PlacedBatch& placed) {
  const Status st = writer_.write_at(placed.position, placed.bytes);
  std::unique_lock jl(journal_mu_);
  if (!st.ok()) write_failed_ = true;  // a hole in the log: it is never synced past it
  in_flight_.erase(placed.first_sequence);
  written_cv_.notify_all();
  // Replies in log order: a reply never overtakes the journal write of an
  // earlier write.
  written_cv_.wait(jl, [&] { return write_failed_ || in_flight_.empty() || *in_flight_.begin() > placed.first_sequence; });
  if (st.ok() && write_failed_) return io_error(EIO, fmt::format("{}: an earlier journal write failed", journal_dev_->name()));
  return st;
}

Status JournaledCache::bound_unsynced(uint64_t blocks, std::unique_lock<std::mutex>& jl) {
  for (;;) {
    // The first record not known durable.
    const auto it = std::lower_bound(records_.begin(), records_.end(),
                                     std::make_pair(synced_sequence_.load(std::memory_order_acquire), uint64_t(0)));
    const uint64_t unsynced = it == records_.end() ? 0 : writer_.distance_to_head(it->second);
    if (unsynced == 0 || unsynced + blocks <= options_.unsynced_window_blocks) return {};
    jl.unlock();
    const Status st = sync_journal();
    jl.lock();
    R5_TRY(st);
  }
}

Status JournaledCache::append_locked(format::MetaBlock& meta, std::span<const std::byte* const> payload,
                                     std::unique_lock<std::mutex>& jl, bool through_cache) {
  R5_TRY(bound_unsynced(1 + payload.size(), jl));
  const uint64_t position = writer_.head_position();
  meta.synced_sequence = synced_sequence_.load(std::memory_order_acquire);
  const uint64_t sequence = writer_.head_sequence();
  if (Status st = writer_.append(meta, payload, through_cache); !st.ok()) {
    if (writer_.head_sequence() != sequence) {  // placed, not written: a hole, never synced past
      write_failed_ = true;
      written_cv_.notify_all();
    }
    return st;
  }
  records_.emplace_back(meta.sequence, position);
  counters_.journal_records.fetch_add(1, std::memory_order_relaxed);
  counters_.journal_bytes.fetch_add((1 + payload.size()) * kJournalBlock, std::memory_order_relaxed);
  publish_locked();
  return {};
}

Status JournaledCache::sync_journal(bool always) {
  uint64_t target;  // every record placed before the call
  {
    std::unique_lock jl(journal_mu_);
    target = writer_.head_sequence();
    if (!always && synced_sequence_.load(std::memory_order_acquire) >= target) return {};
    // Records placed before it and still being written by their leaders
    // are waited for: a synced record behind a hole would be lost at replay.
    written_cv_.wait(jl, [&] { return write_failed_ || in_flight_.empty() || *in_flight_.begin() >= target; });
    if (write_failed_) return io_error(EIO, fmt::format("{}: a journal write failed", journal_dev_->name()));
  }
  std::lock_guard sl(sync_mu_);
  // A sync that started after our records were written covered them.
  if (!always && synced_sequence_.load(std::memory_order_acquire) >= target) return {};
  // After a failed fdatasync the kernel may have dropped the dirty pages and
  // cleared the error: a second fdatasync could succeed with data lost.
  if (sync_failed_) return io_error(EIO, fmt::format("{}: an earlier fdatasync failed", journal_dev_->name()));
  uint64_t covered;  // every record below it is written
  {
    std::lock_guard jl(journal_mu_);
    // A write that failed since the check above (its batch no longer in
    // flight) left a hole below the head.
    if (write_failed_) return io_error(EIO, fmt::format("{}: a journal write failed", journal_dev_->name()));
    covered = in_flight_.empty() ? writer_.head_sequence() : *in_flight_.begin();
  }
  counters_.journal_syncs.fetch_add(1, std::memory_order_relaxed);
  if (Status st = journal_dev_->sync(); !st.ok()) {
    sync_failed_ = true;
    return st;
  }
  synced_sequence_.store(std::max(synced_sequence_.load(), covered), std::memory_order_release);
  return {};
}

Status JournaledCache::advance_tail(uint64_t tail_sequence, uint32_t flags) {
  uint64_t position, sequence;
  {
    std::lock_guard jl(journal_mu_);
    auto it = std::lower_bound(records_.begin(), records_.end(), std::make_pair(tail_sequence, uint64_t(0)));
    position = it == records_.end() ? writer_.head_position() : it->second;
    sequence = it == records_.end() ? writer_.head_sequence() : it->first;
    R5_TRY(writer_.write_superblock_block(position, sequence, flags));
  }
  // Also makes every record appended so far durable (the done records).
  R5_TRY(sync_journal(/*always=*/true));
  std::lock_guard jl(journal_mu_);
  writer_.set_tail(position, sequence, flags);
  records_.erase(records_.begin(),
                 std::lower_bound(records_.begin(), records_.end(), std::make_pair(sequence, uint64_t(0))));
  publish_locked();
  return {};
}

Status JournaledCache::wait_written_out(const Request& r) {
  const uint64_t row_bytes = g_.row_data_bytes();
  std::vector<uint64_t> rows;
  for (uint64_t row = r.first_page() / row_bytes; row <= (r.end_page() - 1) / row_bytes; ++row) rows.push_back(row);
  std::unique_lock lock(mu_);
  for (uint64_t row : rows) ++urgent_[row];
  flusher_cv_.notify_one();
  auto written = [&] {
    for (uint64_t row : rows) {
      cache::Stripe* s = cache_.find(row);
      if (s && s->present && s->log_start <= r.floor) return false;
    }
    return true;
  };
  while (!failure_ && !written()) changed_cv_.wait(lock);
  for (uint64_t row : rows)
    if (--urgent_[row] == 0) urgent_.erase(row);
  if (!written()) return failure_error();
  return {};
}

Status JournaledCache::drain() {
  if (!flusher_.joinable()) return flush_here(true);  // before start()
  std::unique_lock lock(mu_);
  ++drainers_;
  flusher_cv_.notify_one();
  while (!failure_ && (cache_.size() > 0 || !queue_.empty() || !unsynced_rows_.empty())) changed_cv_.wait(lock);
  --drainers_;
  if (failure_) return failure_error();
  return {};
}

Result<size_t> JournaledCache::salvage(array::RaidArray& array) {
  std::vector<uint64_t> rows;
  {
    std::lock_guard lock(mu_);
    stop_ = true;  // the flusher would only fail on the journal
    flusher_cv_.notify_all();
    cache_.for_each([&](const cache::Stripe& s) { rows.push_back(s.row); });
  }
  if (flusher_.joinable()) flusher_.join();
  const uint64_t row_bytes = g_.row_data_bytes();
  AlignedBuffer buffer(row_bytes);
  for (uint64_t row : rows) {
    // The newest data of the whole row (pool pages over member pages).
    R5_TRY(read(row * row_bytes, buffer.span()));
    R5_TRY(array.write(row * row_bytes, buffer.span()));
  }
  R5_TRY(array.sync());
  return rows.size();
}

Status JournaledCache::retire() {
  std::lock_guard jl(journal_mu_);
  // Nothing valid lies at the head: records of earlier laps have lower
  // sequences, and every record of this lap lies behind it.
  return writer_.write_superblock(writer_.head_position(), writer_.head_sequence(), format::kJournalClean);
}

Status JournaledCache::close(bool drain_first) {
  if (closed_) return {};
  closed_ = true;
  Status drained = drain_first ? drain() : Status{};
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    flusher_cv_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
  R5_TRY(drained);
  std::unique_lock lock(mu_);
  if (failure_) return failure_error();
  const bool empty = cache_.size() == 0 && unsynced_rows_.empty();
  const uint64_t tail = tail_sequence_locked();
  lock.unlock();
  R5_TRY(advance_tail(tail, empty ? uint32_t(format::kJournalClean) : 0u));
  const CacheCounters& k = counters_;
  if (k.writes_batched == 0 && k.stripes_flushed == 0) {
    log::info("journal closed: {}", empty ? "empty (clean)" : "dirty stripes kept in the log for the next mount");
    return {};
  }
  log::info("journal closed: {}; {} writes in {} commits, {} journal syncs, {} MiB logged; {} stripes flushed "
            "({} full) in {} batches; {} waits for journal space, {} for memory",
            empty ? "empty (clean)" : "dirty stripes kept in the log for the next mount", k.writes_batched.load(),
            k.write_batches.load(), k.journal_syncs.load(), k.journal_bytes.load() >> 20, k.stripes_flushed.load(),
            k.full_stripes_flushed.load(), k.flush_batches.load(), k.space_waits.load(), k.memory_waits.load());
  return {};
}

}  // namespace r5::engine
