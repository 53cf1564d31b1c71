// The write journal's cache (journal modes write-back and write-through,
// DESIGN §2, §4-6): writes are copied into stripe pages of the pool and
// appended to the journal before they are replied; a flusher thread writes
// whole stripes out later (parity logged first, so a crash mid-stripe is
// repaired by replay); reads take dirty pages from the pool and the rest from
// the members; opening replays the log.
//
// Group commit (LevelDB's writer queue): writers queue up; one at a time
// leads: it takes a batch off the queue, applies it to the pool in queue
// order (pool order is log order), places its records in the log, lets the
// next writer lead and only then writes the records, so several batches are
// in flight at once (a 1 MiB write does not wait for the device write of the
// one before). Replies follow log order; a batch's stripes stay pinned until
// its records are written; a sync waits for every record placed before it,
// so a synced record never lies behind a hole. Writes to a stripe being
// flushed wait until it is on the members (so a parity record covers
// exactly the data logged before it) and stay in the queue with every later
// write to their rows, while writes to other rows pass them: a reply never
// overtakes the journal write of an earlier write to the same row
// (concurrent writes to different rows have no order a caller could rely
// on). Durability is separate: an fsync
// (or a write under journal.sync = "always", once appended) fdatasyncs the
// journal, and concurrent syncs share one fdatasync while the next batches
// are appended. Small records are written through the page cache
// (journal::Writer), so a reply waits for a copy rather than a device round
// trip.
//
// Journal space: every dirty stripe holds back the blocks its parity records
// and its share of a stripe-done record will need (a flushed stripe keeps the
// latter until the checkpoint that logs its done record), so the flusher can
// always write every stripe out and free the log; a leader waits until its
// records fit beside those reservations and a slack (slack_blocks()) for
// what the flusher logs beyond them before the tail moves.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "array/raid_array.h"
#include "cache/stripe_cache.h"
#include "config/config.h"
#include "journal/writer.h"

namespace r5::engine {

struct CacheCounters {
  std::atomic<uint64_t> journal_records{0}, journal_bytes{0}, journal_syncs{0};
  std::atomic<uint64_t> write_batches{0}, writes_batched{0};
  std::atomic<uint64_t> flush_batches{0}, stripes_flushed{0}, full_stripes_flushed{0}, checkpoints{0};
  std::atomic<uint64_t> pool_read_bytes{0};  // reads served from dirty pages
  std::atomic<uint64_t> space_waits{0}, memory_waits{0};
  // Recovery at open.
  uint64_t replay_records = 0, replay_blocks_read = 0, replay_repaired_rows = 0, replay_dirty_pages = 0;
  double replay_seconds = 0;
};

class JournaledCache {
 public:
  // The log never holds more unsynced blocks than this (beyond one record):
  // a crash can leave records past the end of the log only this far, which
  // is where recovery looks for them (and overwrites them).
  static constexpr uint64_t kUnsyncedWindowBlocks = 16384;  // 64 MiB
  // Pages one commit (a leader's batch) logs at most: a 1 MiB write.
  static constexpr size_t kMaxBatchPages = 256;
  struct Options {
    config::JournalMode mode = config::JournalMode::kWriteBack;
    bool sync_always = false;
    uint64_t memory = 256ull << 20;
    std::chrono::milliseconds max_age{10'000};
    bool force = false;  // accept a log damaged in the middle (what follows the damage is lost)
    uint64_t unsynced_window_blocks = kUnsyncedWindowBlocks;  // smaller in tests
    // Tests only: replay without the write-hole repair, so the crash suite
    // can show that its checker catches a broken recovery.
    bool test_skip_repair = false;
  };

  // Checks that the journal belongs to the array, replays its log (write-hole
  // repair, dirty data back into the pool) and continues it. The flusher
  // starts with start().
  static Result<std::unique_ptr<JournaledCache>> open(array::RaidArray& array, std::unique_ptr<io::Device> journal,
                                                     const Options& options);
  // Whether the journal modes support this geometry, and the least journal
  // (in blocks) they accept for it; checked by open() and by r5cfs create.
  static Status check_geometry(const geometry::Geometry& g);
  static uint64_t min_journal_blocks(const geometry::Geometry& g);
  // Journal blocks writers leave free beyond every stripe's reservation, for
  // what the flusher logs beyond them before the tail moves (DESIGN §4,
  // "Journal space is reserved").
  static uint64_t slack_blocks(const geometry::Geometry& g);
  ~JournaledCache();

  void start();
  Status read(uint64_t offset, std::span<std::byte> out);
  // The first half of read(): copies the pages the pool holds into `out` and
  // returns the byte ranges [from, to) the members must supply, which are
  // current there (a stripe leaves the pool only after the members hold it).
  using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
  Result<Ranges> read_from_pool(uint64_t offset, std::span<std::byte> out);
  Status write(uint64_t offset, std::span<const std::byte> in);
  // Everything replied before it is durable on the journal device.
  Status fsync();
  // Writes every dirty stripe to the members; the log is then empty.
  Status drain();
  // Tests, before start(): what the flusher does on this thread. A flush
  // writes the dirty stripes of `rows` (all when empty) to the members, whose
  // sync (and their done records) waits for the next checkpoint.
  Status flush_for_test(std::vector<uint64_t> rows = {}) { return flush_here(false, std::move(rows)); }
  Status checkpoint_for_test() {
    if (Status st = checkpoint(); !st.ok()) return fail(st.error());  // as on the flusher's thread
    return {};
  }
  // Stops the flusher (draining first when asked) and records the tail;
  // the journal is marked clean when nothing is left in it.
  Status close(bool drain);

  // Write-through (a write replies once on the members) or write-back, from
  // the next write on (r5cfs journal mode).
  void set_write_through(bool on) { write_through_ = on; }
  // After a journal failure: writes every dirty stripe to the members
  // through `array` directly (no parity logged: the write hole is open while
  // it runs), so that nothing acknowledged is lost when the journal is taken
  // out (r5cfs journal remove --force). Returns the stripes written.
  Result<size_t> salvage(array::RaidArray& array);
  // After salvage: records an empty, clean log in the journal superblock, so
  // that a mount that still names this journal replays none of its records
  // over what was written without it (best effort: the device has failed).
  Status retire();

  const CacheCounters& counters() const { return counters_; }
  // The first journal or array error, after which writes fail (sticky).
  std::optional<Error> failure() const;
  struct Usage {
    size_t stripes, full_stripes, pool_pages, pool_capacity;
    size_t unsynced_stripes;  // on the members, not yet synced there (until the next checkpoint)
    uint64_t journal_free, journal_blocks, reserved;
    // The log: oldest record still needed (as the superblock records it) and the next to write.
    uint64_t tail_position, tail_sequence, head_position, head_sequence;
  };
  Usage usage() const;

 private:
  struct Request;
  JournaledCache(array::RaidArray& array, std::unique_ptr<io::Device> journal, const format::JournalSuperblock& sb,
                 const Options& options, uint64_t head_position, uint64_t head_sequence,
                 std::unique_ptr<cache::PagePool> pool);

  Status commit(Request& r);
  // Under mu_: takes the next batch off the queue, in queue order, leaving
  // there the writes to stripes being flushed and every later write to their
  // rows (so a row's writes reach the pool and the log in order).
  // `pages`: already in the batch (a leader that lingered takes twice).
  std::vector<Request*> take_batch(size_t pages);
  void wake_next_leader();  // under mu_: a queued writer leads next, if none does
  std::condition_variable* next_leader_cv();  // under mu_: whom wake_next_leader wakes, or null
  // A queued writer waits on the condition variable of its slot, not on one
  // of its own: a leader then wakes the writers of its batch after it lets
  // go of mu_ (so they do not wake only to block on it), when a writer that
  // saw its write done may already have returned. Writers sharing a slot
  // wake each other now and then, and look again.
  std::condition_variable& cv_of(const Request* r) {
    return writer_cvs_[(reinterpret_cast<uintptr_t>(r) / alignof(std::max_align_t)) % writer_cvs_.size()];
  }
  Status sync_or_fail();  // sync_journal(); a failure stops writes for good
  // A batch's records, placed in the log by its leader and written by it
  // once the next writer leads.
  struct PlacedBatch {
    std::set<uint64_t> rows;  // pinned until the records are written
    uint64_t position = 0, first_sequence = 0;
    std::span<std::byte> bytes;  // the records (in the leader's buffer); empty: nothing placed
  };
  // Applies the batch to the pool and places its records in the log.
  Status lead(std::vector<Request*>& batch, PlacedBatch& placed, std::unique_lock<std::mutex>& lock);
  Status place_batch(const std::vector<Request*>& batch, PlacedBatch& placed);  // without mu_
  // Without mu_: writes the records, then waits until every batch placed
  // before them is written too.
  Status write_placed(const PlacedBatch& placed);
  // Under mu_, once the records are written: unpins the rows; returns what the batch's writers reply.
  Status finish_batch(const std::vector<Request*>& batch, const std::set<uint64_t>& rows, Status st);
  size_t missing_pages(const std::vector<Request*>& batch) const;  // under mu_: pool pages the batch adds
  Status wait_for_room(const std::vector<Request*>& batch, const std::set<uint64_t>& rows, uint64_t record_blocks,
                       std::unordered_map<uint64_t, uint64_t>& new_reserve, std::unique_lock<std::mutex>& lock);
  Status wait_written_out(const Request& r);
  // Record the first failure (writes stop for good) and return what the
  // caller replies: EIO with the cause, whatever the device said (a journal's
  // ENOSPC is not the user's full file system).
  Error fail(const Error& e);
  Error fail_locked(const Error& e);  // under mu_
  Error failure_error() const;

  // Under mu_: the pool is over 75 % full or a writer waits for pages; the
  // log has less than a third of its space unreserved or a writer waits.
  bool memory_pressure() const;
  bool journal_pressure() const;
  // Under mu_: the stripes the policy picks for `req`, marked flushing.
  // Under mu_: a request with the batch shape slack_blocks() counts on (its
  // stripe and flush-buffer bounds, oldest first under journal pressure).
  cache::FlushRequest batch_request() const;
  std::vector<cache::Stripe*> take_for_flush(const cache::FlushRequest& req);
  void flusher_loop();
  // Writes the stripes to the members (parity logged and durable first) and
  // frees their pages; they are synced on the members at the next checkpoint.
  Status flush(const std::vector<cache::Stripe*>& stripes);
  // On the flusher's thread: syncs the members, logs the done records of the
  // stripes flushed since the last checkpoint and advances the log tail.
  Status checkpoint();
  // Before start(): flushes the dirty stripes of `rows` (all when empty) on
  // the caller's thread, then checkpoints if asked.
  Status flush_here(bool then_checkpoint, std::vector<uint64_t> rows = {});
  bool checkpoint_due(cache::Clock::time_point now) const;  // under mu_, after a flush
  // Under mu_: a write to `row` waits (the row is being flushed, or its done
  // record is being logged).
  bool row_held(uint64_t row) const;
  // Under mu_: the oldest sequence the log still needs.
  uint64_t tail_sequence_locked() const;
  struct ColumnRun {
    uint32_t lo, hi;  // pages within the chunk
  };
  // The runs of columns in which some data page of the stripe is dirty.
  std::vector<ColumnRun> parity_runs(const cache::Stripe& s) const;
  struct AbsentRun {
    uint64_t offset;  // array byte offset
    std::byte* buf;
    size_t len;
  };
  Status read_absent(std::span<const AbsentRun> runs);
  // The member writes of a flush (one per run of dirty columns of a stripe),
  // data copied from the pool and parity computed.
  struct FlushRows {
    std::vector<array::RowWrite> writes;
    std::vector<size_t> stripe_of;  // per write: its stripe
    std::vector<ColumnRun> run_of;  // per write: its columns
  };
  // `reuse_parity`: read-modify-write may use the members' old parity (no
  // repair pass runs; see RaidArray::RepairPass).
  Status prepare_flush(const std::vector<cache::Stripe*>& stripes, bool reuse_parity, FlushRows& out);
  // Under journal_mu_ (held by `jl`): before `blocks` more are placed, syncs
  // the journal (dropping the lock) while the unsynced log would grow past
  // options_.unsynced_window_blocks.
  Status bound_unsynced(uint64_t blocks, std::unique_lock<std::mutex>& jl);
  // Under journal_mu_ (held by `jl`, which bound_unsynced may drop meanwhile).
  Status append_locked(format::MetaBlock& meta, std::span<const std::byte* const> payload, std::unique_lock<std::mutex>& jl,
                       bool through_cache = false);
  void publish_locked();
  // Without journal_mu_: makes every record placed before the call durable
  // (waiting for those still being written); concurrent callers share one
  // fdatasync unless `always` (after a superblock write).
  Status sync_journal(bool always = false);
  // Writes the superblock with the tail at the oldest record of sequence >=
  // tail_sequence (or the head), syncs, then lets the space behind it be reused.
  Status advance_tail(uint64_t tail_sequence, uint32_t flags);

  array::RaidArray& array_;
  const geometry::Geometry g_;
  const Options options_;
  std::atomic<bool> write_through_;
  const uint64_t ring_blocks_;
  const uint64_t slack_blocks_;
  std::unique_ptr<io::Device> journal_dev_;

  // Lock order: mu_, then journal_mu_. Neither is held across member I/O;
  // journal_mu_ is held across journal writes and syncs.
  mutable std::mutex mu_;
  // Guarded by mu_:
  std::unique_ptr<cache::PagePool> pool_;
  cache::StripeCache cache_;
  uint64_t reserved_ = 0;          // journal blocks all stripes hold back
  std::list<Request*> queue_;      // group commit queue, in arrival order
  std::array<std::condition_variable, 61> writer_cvs_;  // cv_of
  bool leading_ = false;           // a writer is committing a batch
  std::atomic<size_t> active_writers_{0};  // in write(), queued or not
  std::unordered_map<uint64_t, uint32_t> urgent_;  // rows write-through writers wait for
  // Stripes flushed since the last checkpoint: on the members, not yet synced
  // there. The log keeps their records (the tail stays at or before
  // unsynced_floor_) and reserved_ their done records' share; the member
  // sync and done records are batched over many flushes, like md's log
  // reclaim, rather than paid per flush.
  std::vector<uint64_t> unsynced_rows_;
  uint64_t unsynced_floor_ = UINT64_MAX;  // lowest log_start among them
  cache::Clock::time_point unsynced_since_{}, last_flush_{};
  std::set<uint64_t> checkpointing_;  // rows whose done record is being logged
  uint32_t drainers_ = 0, space_waiters_ = 0, memory_waiters_ = 0;
  bool stop_ = false;
  std::optional<Error> failure_;
  cache::Clock::time_point last_write_{};
  std::condition_variable flusher_cv_;  // work for the flusher
  std::condition_variable changed_cv_;  // a flush finished, space or pages freed, a failure

  mutable std::mutex journal_mu_;
  // Guarded by journal_mu_:
  journal::Writer writer_;
  std::deque<std::pair<uint64_t, uint64_t>> records_;  // (sequence, position) of each record since the tail
  std::set<uint64_t> in_flight_;  // first sequences of placed batches their leaders are still writing
  bool write_failed_ = false;     // a placed record was not written: the log is never synced past it
  std::condition_variable written_cv_;  // a placed batch was written
  std::atomic<uint64_t> synced_sequence_{0};  // records below it are durable (sync_mu_ orders updates)
  std::mutex sync_mu_;  // one fdatasync at a time; taken without the others
  bool sync_failed_ = false;  // under sync_mu_: a failed fdatasync is never retried
  // Copies of writer_ state readable under mu_ alone.
  std::atomic<uint64_t> journal_free_{0}, next_sequence_{0};

  CacheCounters counters_;
  std::thread flusher_;
  bool closed_ = false;
};

}  // namespace r5::engine
