// The one object the front ends (FUSE, tools) talk to for array I/O. It owns
// the assembled array and picks the write path from journal.mode: the
// journaled cache for "write-back" and "write-through", plain RAID5/6 with
// read-modify-write for "none" (fsync is then an fdatasync of every member).
// A configured journal is always replayed at open; in mode none it is then
// drained and left empty, so changing modes between mounts is safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <span>
#include <string>
#include <vector>

#include "array/raid_array.h"
#include "config/config.h"
#include "io/async_queue.h"
#include "engine/journaled_cache.h"
#include "engine/rebuilder.h"
#include "engine/scrubber.h"

namespace r5::engine {

// Requests by size class, as the front end sent them (status).
struct RequestCounters {
  static constexpr size_t kClasses = 5;
  static constexpr uint64_t kClassLimit[kClasses] = {4096, 16384, 65536, 262144, UINT64_MAX};
  static constexpr const char* kClassName[kClasses] = {"4k", "16k", "64k", "256k", "larger"};
  static size_t class_of(uint64_t bytes) {
    size_t c = 0;
    while (bytes > kClassLimit[c]) ++c;
    return c;
  }
  std::atomic<uint64_t> reads[kClasses] = {}, writes[kClasses] = {};
  std::atomic<uint64_t> fsyncs{0}, read_errors{0}, write_errors{0};
};

class Engine {
 public:
  // Assembles the members of `cfg` and marks the array dirty (in use).
  // Notices (re-ordered or left-out members, degraded start) go to the log.
  // Read-only: members opened read-only, no superblock written, no resync;
  // refused while the journal holds data not yet on the members.
  struct OpenOptions {
    bool read_only = false;
    bool force = false;  // replay a journal damaged in the middle up to the damage
  };
  static Result<std::unique_ptr<Engine>> open(const config::Config& cfg, const OpenOptions& options);
  static Result<std::unique_ptr<Engine>> open(const config::Config& cfg) { return open(cfg, OpenOptions{}); }
  ~Engine();

  uint64_t capacity() const { return array_->capacity(); }
  // The config the array was opened with (journal.mode and journal.path as
  // changed by the journal administration below: see mode()).
  const config::Config& config() const { return cfg_; }
  config::JournalMode mode() const { return mode_.load(); }
  array::RaidArray& array() { return *array_; }
  // The journaled cache; nullptr in mode none. Outside the engine's own
  // requests, hold hold_mode() while using it: a mode change replaces it.
  JournaledCache* journal_cache() { return cache_.get(); }
  std::shared_lock<std::shared_mutex> hold_mode() const { return std::shared_lock(mode_mu_); }

  // DESIGN §4: in the journal modes a write reply means the data is in the
  // journal file (write-through: also on the members); in mode none that
  // the members hold it in their volatile caches. fsync makes everything
  // replied before it durable.
  Status read(uint64_t offset, std::span<std::byte> out);
  // The same read without waiting for the members: `done` is called exactly
  // once with the result, on the ring thread or before this returns (pages
  // from the pool only, a degraded array, a piece that is not whole pages,
  // or before start_background: then it is read()). `out` stays valid until
  // then. A member read that fails fails its member, and the read is redone
  // with read() on `done`'s thread, reconstructing. Not after close().
  void read_async(uint64_t offset, std::span<std::byte> out, std::function<void(Status)> done);
  // Returns once every read_async's `done` has returned (before the FUSE
  // session that replies in them goes away).
  void wait_async_reads();
  Status write(uint64_t offset, std::span<const std::byte> in);
  Status fsync();
  // Makes [offset, offset + len) read as zeros (fallocate PUNCH_HOLE / ZERO_RANGE).
  Status write_zeros(uint64_t offset, uint64_t len);
  const RequestCounters& request_counters() const { return requests_; }

  // Administration (r5cfs(8) through the control socket).
  // Marks a member failed, as if it had returned an I/O error; refused when
  // the array would not survive it.
  Status fail_member(uint32_t slot);
  Status fail_member_locked(uint32_t slot, std::string_view reason);  // under admin_mu_
  // Writes everything in the journal to the members; the log is then empty.
  Status drain();
  // Rebuilds `slot` onto the device at `path` while the array serves I/O
  // (Rebuilder). A missing file is created with the members' size; an
  // existing device must be big enough and unused (unless `force`); an
  // active slot is failed first, when the array survives that.
  Status start_replace(uint32_t slot, const std::filesystem::path& path, bool force);
  Rebuilder::Progress rebuild_progress() const { return rebuilder_->progress(); }

  // Journal administration (r5cfs journal mode / remove / add), live.
  // Between write-back and write-through the mode changes at once (for the
  // next writes); to none the journal is drained first, and from none the
  // configured journal is opened (mode none leaves it clean).
  Status set_mode(config::JournalMode mode);
  // Mode none without the journal. `force` after a journal failure: the
  // pool's dirty data is written to the members without the journal (nothing
  // acknowledged is lost while the daemon lives; the write hole is open
  // meanwhile) and parity is resynchronised.
  Status remove_journal(bool force);
  // Formats a journal at `path` (created with `size` when missing) for this
  // array, which has none, and switches to `mode` on it.
  Status add_journal(const std::filesystem::path& path, uint64_t size, config::JournalMode mode, bool force);
  // The parity check (Scrubber). Without `restart` it resumes an interrupted
  // check of the same kind where it stopped. kBusy while one runs.
  Status start_check(bool repair, bool restart);
  void stop_check() { scrubber_->stop(); }
  Scrubber::Progress check_progress() const { return scrubber_->progress(); }
  // Starts background work (the parity resync after an unclean shutdown, an
  // interrupted parity check).
  // Called once the daemon has detached: no thread may cross its fork.
  void start_background();
  bool resync_pending() const { return resync_needed_ && !resync_done_; }
  // The resync thread runs (it may end without completing: resync_pending()).
  bool resync_running() const { return resync_running_; }
  // Starts the parity resync (after losing the journal). Under admin_mu_.
  void start_resync_locked();
  // Clean shutdown: background work stopped, the journal's tail recorded
  // (everything written out first with `drain`), members synced, superblocks
  // marked clean (left dirty while a resync is unfinished, so the next mount
  // resumes it). Idempotent.
  Status close(bool drain = false);

 private:
  Engine(config::Config cfg, std::unique_ptr<array::RaidArray> array, bool resync_needed);
  static Result<std::unique_ptr<JournaledCache>> open_journal(const config::Config& cfg, array::RaidArray& array,
                                                             const OpenOptions& options, bool& was_in_use);
  void resync();

  config::Config cfg_;
  std::unique_ptr<array::RaidArray> array_;
  // Readers and writers hold it shared; a change of mode (cache_ appears or
  // goes away) holds it exclusive.
  mutable std::shared_mutex mode_mu_;
  std::unique_ptr<JournaledCache> cache_;  // guarded by mode_mu_
  std::atomic<config::JournalMode> mode_;
  RequestCounters requests_;
  std::unique_ptr<Scrubber> scrubber_;
  std::unique_ptr<Rebuilder> rebuilder_;
  std::mutex admin_mu_;  // one administrative change at a time (fail_member's check and act)
  bool closed_ = false;
  std::atomic<bool> resync_needed_;
  std::atomic<bool> resync_done_{false};
  std::atomic<bool> resync_running_{false};
  std::atomic<bool> stopping_{false};
  std::thread resync_thread_;
  std::unique_ptr<io::AsyncQueue> reads_;  // from start_background until close
};

}  // namespace r5::engine
