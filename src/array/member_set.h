// The members of an assembled array: their devices, the shared superblock
// state (events, clean/dirty, failed members) and the rule that a failure is
// recorded in the superblocks of every surviving member before it counts.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "format/ondisk.h"
#include "io/device.h"

namespace r5::array {

struct MemberSlot {
  std::string path;                    // as configured, for messages
  std::unique_ptr<io::Device> device;  // null when missing at assembly
};

class MemberSet {
 public:
  // `sb` is the freshest superblock; slots in slot order. Slots without a
  // device, or named in sb.failed_mask, are failed from the start.
  // A read-only set (mount -o ro) never writes a superblock: failures are
  // then only recorded in memory.
  MemberSet(format::MemberSuperblock sb, std::vector<MemberSlot> slots, bool read_only = false);
  bool read_only() const { return read_only_; }

  const geometry::Geometry& geometry() const { return geometry_; }
  uint64_t data_offset() const { return data_offset_; }
  uint32_t count() const { return uint32_t(slots_.size()); }
  const std::string& path(uint32_t slot) const { return slots_[slot].path; }

  // The device of an active member, nullptr for a failed or missing one.
  io::Device* device(uint32_t slot) const {
    return (failed_mask() >> slot) & 1 ? nullptr : slots_[slot].device.get();
  }
  // Whether the member was found at assembly (a failed member may still be present).
  bool present(uint32_t slot) const { return slots_[slot].device != nullptr; }
  uint64_t failed_mask() const { return failed_mask_.load(std::memory_order_acquire); }
  uint32_t failed_count() const;
  // False once more members failed than parity can cover: all I/O fails.
  bool usable() const { return failed_count() <= geometry_.parity_count(); }

  // Records slot as failed in memory and in every surviving superblock.
  // Idempotent. Returns an error only if no superblock could be written.
  Status mark_failed(uint32_t slot, std::string_view reason);
  // Bumps events and writes `state` to every active member, then syncs them.
  Status write_superblocks(format::ArrayState state);
  // Records where an interrupted parity check resumes (nullopt: none), the same way.
  Status write_check_position(std::optional<format::CheckPosition> check);
  // The in-memory superblock (for info and status).
  format::MemberSuperblock superblock() const;

 private:
  Status write_superblocks_locked();

  geometry::Geometry geometry_;
  uint64_t data_offset_;
  std::vector<MemberSlot> slots_;
  const bool read_only_;
  std::atomic<uint64_t> failed_mask_{0};
  mutable std::mutex sb_mutex_;    // guards sb_; held across superblock writes
  format::MemberSuperblock sb_;
};

}  // namespace r5::array
