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
  // `rebuilding`: the new device of the slot sb.rebuild names, found at
  // assembly (the rebuild resumes); without it an interrupted rebuild is
  // abandoned and the slot stays failed.
  MemberSet(format::MemberSuperblock sb, std::vector<MemberSlot> slots, bool read_only = false,
            MemberSlot rebuilding = {});
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

  // ---- Rebuilding a failed slot onto a new device (r5cfs replace) ----
  // The slot stays failed (reads reconstruct it, writes run degraded) until
  // the rebuild completes. Rows below rebuild_row() are valid on the new
  // device, and RaidArray writes them there too; both under the row locks.
  static constexpr uint32_t kNoRebuild = UINT32_MAX;
  uint32_t rebuild_slot() const { return rebuild_slot_.load(std::memory_order_acquire); }
  uint64_t rebuild_row() const { return rebuild_row_.load(std::memory_order_acquire); }
  // The new device when `row` is rebuilt already, else nullptr.
  io::Device* rebuild_device(uint64_t row) const {
    return rebuild_slot() != kNoRebuild && row < rebuild_row() ? rebuild_dev_ : nullptr;
  }
  io::Device* rebuild_device() const { return rebuild_slot() != kNoRebuild ? rebuild_dev_ : nullptr; }
  std::string rebuild_path() const;
  // Starts rebuilding failed `slot` onto `device`: writes the superblock with
  // the rebuild position to it and to every active member.
  Status begin_rebuild(uint32_t slot, std::unique_ptr<io::Device> device, std::string path);
  // Rows below `row` are on the new device (caller holds their row locks).
  void set_rebuild_row(uint64_t row) { rebuild_row_.store(row, std::memory_order_release); }
  // Records the position in the superblocks, so a restart resumes there.
  Status save_rebuild_position();
  // Every row is rebuilt: syncs the new device, makes it the slot's member
  // and clears the slot's failure, durably. The caller holds every row lock.
  Status finish_rebuild();
  // The new device failed: the rebuild ends, the slot stays failed.
  void abort_rebuild(std::string_view reason);
 private:
  Status write_superblocks_locked();
  void abort_rebuild_locked(std::string_view reason);

  geometry::Geometry geometry_;
  uint64_t data_offset_;
  std::vector<MemberSlot> slots_;
  const bool read_only_;
  std::atomic<uint64_t> failed_mask_{0};
  std::atomic<uint32_t> rebuild_slot_{kNoRebuild};
  std::atomic<uint64_t> rebuild_row_{0};
  io::Device* rebuild_dev_ = nullptr;  // set before rebuild_slot_ is published
  mutable std::mutex sb_mutex_;    // guards sb_, rebuild_path_, retired_; held across superblock writes
  format::MemberSuperblock sb_;
  std::string rebuild_path_;
  // Devices replaced or abandoned: kept open until the end, since a request
  // that sampled one before the change may still use it.
  std::vector<std::unique_ptr<io::Device>> retired_;
};

}  // namespace r5::array
