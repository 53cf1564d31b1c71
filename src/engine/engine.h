// The one object the front ends (FUSE, tools) talk to for array I/O. It owns
// the assembled array and picks the write path from journal.mode. This
// version implements mode "none": writes go to the members with RAID5/6
// read-modify-write; fsync is an fdatasync of every member.
#pragma once

#include <memory>
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
  static Result<std::unique_ptr<Engine>> open(const config::Config& cfg);
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
  // Clean shutdown: members synced, superblocks marked clean. Idempotent.
  Status close();

 private:
  Engine(config::Config cfg, std::unique_ptr<array::RaidArray> array);

  config::Config cfg_;
  std::unique_ptr<array::RaidArray> array_;
  bool closed_ = false;
};

}  // namespace r5::engine
