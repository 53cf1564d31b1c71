#include "array/member_set.h"

#include <bit>
#include <ctime>

#include "array/aligned_buffer.h"
#include "base/log.h"

namespace r5::array {

MemberSet::MemberSet(format::MemberSuperblock sb, std::vector<MemberSlot> slots, bool read_only, MemberSlot rebuilding)
    : geometry_(sb.geometry()), data_offset_(sb.data_offset), slots_(std::move(slots)), read_only_(read_only), sb_(std::move(sb)) {
  uint64_t mask = sb_.failed_mask;
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].device) mask |= uint64_t(1) << i;
  failed_mask_ = mask;
  sb_.failed_mask = mask;
  if (sb_.rebuild && rebuilding.device && !read_only_) {
    rebuild_path_ = rebuilding.path;
    rebuild_dev_ = rebuilding.device.get();
    retired_.push_back(std::move(rebuilding.device));
    rebuild_row_ = sb_.rebuild->next_row;
    rebuild_slot_ = sb_.rebuild->slot;
  } else if (sb_.rebuild && !read_only_) {
    log::warn("the rebuild of slot {} cannot resume: its new member is not among array.members; the slot stays failed",
              sb_.rebuild->slot);
    sb_.rebuild.reset();  // recorded at the next superblock update
  }
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

Status MemberSet::begin_rebuild(uint32_t slot, std::unique_ptr<io::Device> device, std::string path) {
  std::lock_guard lock(sb_mutex_);
  if (rebuild_slot() != kNoRebuild) return invalid(fmt::format("slot {} is being rebuilt already", rebuild_slot()));
  if (!((failed_mask() >> slot) & 1)) return invalid(fmt::format("slot {} has not failed", slot));
  sb_.rebuild = format::RebuildPosition{slot, 0, sb_.events + 1};
  rebuild_path_ = std::move(path);
  rebuild_dev_ = device.get();
  retired_.push_back(std::move(device));
  rebuild_row_ = 0;
  rebuild_slot_.store(slot, std::memory_order_release);
  R5_TRY(write_superblocks_locked());
  if (rebuild_slot() == kNoRebuild) return io_error(EIO, fmt::format("{}: cannot write its superblock", rebuild_path_));
  return {};
}

std::string MemberSet::rebuild_path() const {
  std::lock_guard lock(sb_mutex_);
  return rebuild_path_;
}

Status MemberSet::save_rebuild_position() {
  std::lock_guard lock(sb_mutex_);
  if (!sb_.rebuild || rebuild_slot() == kNoRebuild) return {};
  const uint64_t row = rebuild_row();
  // The rows below the new position must be durable on the new device
  // before the superblocks say so.
  if (Status st = rebuild_dev_->sync(); !st.ok()) {
    abort_rebuild_locked(st.error().message);
    return write_superblocks_locked();
  }
  sb_.rebuild->next_row = row;
  return write_superblocks_locked();
}

Status MemberSet::finish_rebuild() {
  std::lock_guard lock(sb_mutex_);
  const uint32_t slot = rebuild_slot();
  if (slot == kNoRebuild) return io_error(EIO, "the rebuild was abandoned");
  if (Status st = rebuild_dev_->sync(); !st.ok()) {
    abort_rebuild_locked(st.error().message);
    (void)write_superblocks_locked();  // the members must forget the rebuild too
    return st;
  }
  // The old device may still be in use by a request that sampled it.
  if (slots_[slot].device) retired_.push_back(std::move(slots_[slot].device));
  for (auto& d : retired_)
    if (d.get() == rebuild_dev_) slots_[slot].device = std::move(d);
  std::erase(retired_, nullptr);
  slots_[slot].path = rebuild_path_;
  rebuild_slot_.store(kNoRebuild, std::memory_order_release);
  sb_.rebuild.reset();
  failed_mask_.fetch_and(~(uint64_t(1) << slot), std::memory_order_acq_rel);
  log::info("slot {} rebuilt onto {}: array has {} of {} members failed", slot, slots_[slot].path, failed_count(), count());
  return write_superblocks_locked();
}

void MemberSet::abort_rebuild(std::string_view reason) {
  std::lock_guard lock(sb_mutex_);
  abort_rebuild_locked(reason);
  (void)write_superblocks_locked();
}

void MemberSet::abort_rebuild_locked(std::string_view reason) {
  const uint32_t slot = rebuild_slot();
  if (slot == kNoRebuild) return;
  rebuild_slot_.store(kNoRebuild, std::memory_order_release);
  sb_.rebuild.reset();
  log::error("rebuild of slot {} onto {} abandoned: {}; the slot stays failed", slot, rebuild_path_, reason);
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
    if (const uint32_t slot = rebuild_slot(); slot != kNoRebuild) {
      // The new member carries the same superblock under its slot, so that
      // assembly finds it again after a restart.
      format::MemberSuperblock s = sb_;
      s.slot = slot;
      encode(s, std::span<std::byte, format::kSuperblockSize>(block.data(), format::kSuperblockSize));
      Status st = rebuild_dev_->write(0, {block.data(), format::kSuperblockSize});
      if (st.ok()) st = rebuild_dev_->sync();
      if (!st.ok()) {
        abort_rebuild_locked(fmt::format("superblock update: {}", st.error().message));
        continue;  // the others must forget the rebuild too
      }
    }
    if (!newly_failed) return {};
  }
  return io_error(EIO, "member superblocks could not be made consistent");
}

}  // namespace r5::array
