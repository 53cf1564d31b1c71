#include "array/member_set.h"

#include <bit>
#include <ctime>

#include "array/aligned_buffer.h"
#include "base/log.h"

namespace r5::array {

MemberSet::MemberSet(format::MemberSuperblock sb, std::vector<MemberSlot> slots, bool read_only)
    : geometry_(sb.geometry()), data_offset_(sb.data_offset), slots_(std::move(slots)), read_only_(read_only), sb_(std::move(sb)) {
  uint64_t mask = sb_.failed_mask;
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].device) mask |= uint64_t(1) << i;
  failed_mask_ = mask;
  sb_.failed_mask = mask;
}

uint32_t MemberSet::failed_count() const { return uint32_t(std::popcount(failed_mask())); }

format::MemberSuperblock MemberSet::superblock() const {
  std::lock_guard lock(sb_mutex_);
  return sb_;
}

Status MemberSet::mark_failed(uint32_t slot, std::string_view reason) {
  std::lock_guard lock(sb_mutex_);
  uint64_t bit = uint64_t(1) << slot;
  if (failed_mask() & bit) return {};
  failed_mask_.fetch_or(bit, std::memory_order_acq_rel);
  sb_.failed_mask |= bit;
  log::error("member {} (slot {}) failed: {}; array is {} ({} of {} members failed)", slots_[slot].path, slot, reason,
             usable() ? "degraded" : "FAILED", failed_count(), count());
  return write_superblocks_locked();
}

Status MemberSet::write_superblocks(format::ArrayState state) {
  std::lock_guard lock(sb_mutex_);
  sb_.state = state;
  return write_superblocks_locked();
}

Status MemberSet::write_check_position(std::optional<format::CheckPosition> check) {
  std::lock_guard lock(sb_mutex_);
  sb_.check = check;
  return write_superblocks_locked();
}

Status MemberSet::write_superblocks_locked() {
  if (read_only_) return {};
  // A member whose superblock cannot be written is failed too; repeat until
  // every surviving member holds the same, newest superblock.
  for (uint32_t attempt = 0; attempt <= count(); ++attempt) {
    ++sb_.events;
    sb_.update_time = uint64_t(std::time(nullptr));
    sb_.failed_mask = failed_mask();
    AlignedBuffer block(format::kSuperblockSize);
    uint32_t written = 0;
    bool newly_failed = false;
    for (uint32_t i = 0; i < count(); ++i) {
      io::Device* dev = device(i);
      if (dev == nullptr) continue;
      format::MemberSuperblock s = sb_;
      s.slot = i;
      encode(s, std::span<std::byte, format::kSuperblockSize>(block.data(), format::kSuperblockSize));
      Status st = dev->write(0, {block.data(), format::kSuperblockSize});
      if (st.ok()) st = dev->sync();
      if (!st.ok()) {
        failed_mask_.fetch_or(uint64_t(1) << i, std::memory_order_acq_rel);
        log::error("member {} (slot {}) failed: superblock update: {}", slots_[i].path, i, st.error().message);
        newly_failed = true;
        continue;
      }
      ++written;
    }
    if (written == 0) return io_error(EIO, "no member superblock could be written");
    if (!newly_failed) return {};
  }
  return io_error(EIO, "member superblocks could not be made consistent");
}

}  // namespace r5::array
