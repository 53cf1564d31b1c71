// The one object the front ends (FUSE, tools) talk to for array I/O. It owns
// the assembled array and picks the write path from journal.mode. This
// version implements mode "none": writes go to the members with RAID5/6
// read-modify-write; fsync is an fdatasync of every member.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <span>
#include <string>
#include <vector>

#include "array/raid_array.h"
#include "config/config.h"

namespace r5::engine {

class Engine {
 public:
  // Assembles the members of `cfg` and marks the array dirty (in use).
  // Notices (re-ordered or left-out members, degraded start) go to the log.
  // Read-only: members opened read-only, no superblock written, no resync.
  static Result<std::unique_ptr<Engine>> open(const config::Config& cfg, bool read_only = false);
  ~Engine();

  uint64_t capacity() const { return array_->capacity(); }
  const config::Config& config() const { return cfg_; }
  array::RaidArray& array() { return *array_; }

  // A write reply in mode none means the members hold the data (in their
  // volatile caches); fsync makes everything replied before it durable.
  Status read(uint64_t offset, std::span<std::byte> out);
  Status write(uint64_t offset, std::span<const std::byte> in);
  Status fsync();
  // Makes [offset, offset + len) read as zeros (fallocate PUNCH_HOLE / ZERO_RANGE).
  Status write_zeros(uint64_t offset, uint64_t len);
  // Starts background work (the parity resync after an unclean shutdown).
  // Called once the daemon has detached: no thread may cross its fork.
  void start_background();
  bool resync_pending() const { return resync_needed_ && !resync_done_; }
  // Clean shutdown: background work stopped, members synced, superblocks
  // marked clean (left dirty while a resync is unfinished, so the next mount
  // resumes it). Idempotent.
  Status close();

 private:
  Engine(config::Config cfg, std::unique_ptr<array::RaidArray> array, bool resync_needed);
  void resync();

  config::Config cfg_;
  std::unique_ptr<array::RaidArray> array_;
  bool closed_ = false;
  const bool resync_needed_;
  std::atomic<bool> resync_done_{false};
  std::atomic<bool> stopping_{false};
  std::thread resync_thread_;
};

}  // namespace r5::engine
