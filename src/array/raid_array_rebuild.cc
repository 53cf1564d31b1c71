// Rebuilding a failed slot onto a new device (r5cfs replace): each row's
// chunk of the slot is reconstructed from the other members and written to
// the new device under the row's lock, and the rebuild position moves past
// it in the same critical section, so a write to the row either comes before
// (and is part of what is reconstructed) or after (and goes to the new device
// too, see RaidArray::execute and write_rows).
#include <algorithm>

#include "array/aligned_buffer.h"
#include "array/raid_array.h"
#include "parity/parity.h"

namespace r5::array {

Status RaidArray::rebuild_rows(uint64_t first, uint32_t count) {
  const geometry::Geometry& g = members_->geometry();
  const uint32_t slot = members_->rebuild_slot();
  io::Device* target = members_->rebuild_device();
  if (slot == MemberSet::kNoRebuild || target == nullptr) return io_error(EIO, "the rebuild was abandoned");
  const uint32_t d = g.data_count(), pc = g.parity_count(), roles = d + pc;
  const size_t len = g.chunk_size;
  const uint64_t base = members_->data_offset();

  std::vector<size_t> locks;
  for (uint64_t row = first; row < first + count; ++row) locks.push_back(row % kLockCount);
  std::sort(locks.begin(), locks.end());
  locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
  for (size_t i : locks) row_locks_[i].lock();
  struct Unlock {
    RaidArray* self;
    const std::vector<size_t>& locks;
    ~Unlock() {
      for (size_t i : locks) self->row_locks_[i].unlock();
    }
  } unlock{this, locks};

  thread_local AlignedBuffer scratch;
  scratch.reserve(size_t(count) * roles * len);
  struct RowPlan {
    std::byte* block[geometry::kMaxMembers];
    unsigned missing[2];
    unsigned missing_count = 0;
    unsigned slot_role = 0;
  };
  std::vector<RowPlan> plans(count);
  std::vector<io::IoOp> ops;
  std::vector<uint32_t> op_slots;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t row = first + i;
    const geometry::RowMap map = geometry::map_row(g, row);
    RowPlan& p = plans[i];
    for (uint32_t r = 0; r < roles; ++r) {
      p.block[r] = scratch.data() + (size_t(i) * roles + r) * len;
      const uint32_t m = r < d ? map.data[r] : r == d ? map.p : map.q;
      if (m == slot) p.slot_role = r;
      io::Device* dev = members_->device(m);
      if (dev == nullptr) {
        if (p.missing_count == pc) return io_error(EIO, "array has failed: too many members lost to rebuild");
        p.missing[p.missing_count++] = r;
        continue;
      }
      ops.push_back(io::IoOp::read(dev, base + row * len, p.block[r], len));
      op_slots.push_back(m);
    }
  }
  io::run_batch(ops);
  for (const io::IoOp& o : ops) counters_.member_bytes_read.fetch_add(o.len, std::memory_order_relaxed);
  if (fail_members(ops, op_slots)) {
    if (!members_->usable()) return io_error(EIO, "array has failed during the rebuild");
    return Error{ErrorKind::kBusy, EAGAIN, "a member failed during the rebuild; the rows are redone"};
  }

  ops.clear();
  for (uint32_t i = 0; i < count; ++i) {
    RowPlan& p = plans[i];
    R5_TRY(parity::reconstruct(pc, {p.block, roles}, {p.missing, p.missing_count}, len));
    ops.push_back(io::IoOp::write(target, base + (first + i) * len, p.block[p.slot_role], len));
  }
  io::run_batch(ops);
  for (const io::IoOp& o : ops) {
    counters_.member_bytes_written.fetch_add(o.len, std::memory_order_relaxed);
    if (!o.status.ok()) {
      members_->abort_rebuild(o.status.error().message);
      return o.status;
    }
  }
  counters_.rebuilt_rows.fetch_add(count, std::memory_order_relaxed);
  members_->set_rebuild_row(first + count);
  return {};
}

Status RaidArray::finish_rebuild() {
  // Every row locked: no request runs with a plan made before the slot
  // becomes active again.
  for (auto& l : row_locks_) l.lock();
  Status st = members_->finish_rebuild();
  for (auto& l : row_locks_) l.unlock();
  return st;
}

}  // namespace r5::array
