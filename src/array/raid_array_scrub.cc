// Row scrub and resync: read a whole row, compare its parity with its data,
// repair a mismatch. check_row (scrub) and resync_row (after an unclean
// shutdown) share scrub_row; they differ only in which block they trust.
#include <chrono>
#include <cstring>
#include <thread>

#include "array/aligned_buffer.h"
#include "array/raid_array.h"
#include "parity/parity.h"

namespace r5::array {

Result<RaidArray::RowCheck> RaidArray::check_row(uint64_t row, bool repair) {
  R5_ASSIGN_OR_RETURN(RowCheck check, scrub_row(row, repair ? Fix::kLocate : Fix::kReport));
  if (check.checked) counters_.scrub_rows_checked.fetch_add(1, std::memory_order_relaxed);
  if (check.mismatch) counters_.scrub_mismatches.fetch_add(1, std::memory_order_relaxed);
  if (check.repaired) counters_.scrub_repaired.fetch_add(1, std::memory_order_relaxed);
  return check;
}

Status RaidArray::resync_row(uint64_t row) {
  R5_ASSIGN_OR_RETURN(RowCheck check, scrub_row(row, Fix::kParity));
  if (check.checked) counters_.resync_rows_checked.fetch_add(1, std::memory_order_relaxed);
  if (check.repaired) counters_.resync_rows_repaired.fetch_add(1, std::memory_order_relaxed);
  return {};
}

// Each side announces itself, then looks at the other (sequentially
// consistent): at least one of them sees the other. A pass that starts
// waits for the flushes that saw no pass, at most one batch each.
RaidArray::RepairPass::RepairPass(RaidArray& array) : array_(array) {
  array_.repair_passes_.fetch_add(1);
  while (array_.parity_reusers_.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

RaidArray::ParityReuse::ParityReuse(RaidArray& array) : array_(array), allowed_(true) {
  array_.parity_reusers_.fetch_add(1);
  if (array_.repair_passes_.load() != 0) {
    array_.parity_reusers_.fetch_sub(1);
    allowed_ = false;
  }
}

Result<RaidArray::RowCheck> RaidArray::scrub_row(uint64_t row, Fix fix) {
  const geometry::Geometry& g = members_->geometry();
  const uint32_t d = g.data_count(), pc = g.parity_count(), roles = d + pc;
  const size_t len = g.chunk_size;
  const uint64_t offset = members_->data_offset() + row * len;
  const geometry::RowMap map = geometry::map_row(g, row);
  auto member = [&](uint32_t role) { return role < d ? map.data[role] : role == d ? map.p : map.q; };
  auto array_failed = [&] {
    return io_error(EIO, fmt::format("array has failed: {} of {} members lost", members_->failed_count(),
                                     members_->count()));
  };
  // A degraded row has nothing to compare: parity then defines the missing
  // data, so the row is left alone.
  auto degraded = [&]() -> Result<RowCheck> {
    if (!members_->usable()) return array_failed();
    return RowCheck{};
  };

  // The flusher's write_rows takes the same exclusive lock: the row is not
  // half-written while it is read here or repaired.
  std::unique_lock lock(row_locks_[row % kLockCount]);
  if (members_->failed_mask() != 0) return degraded();
  // The row's blocks by role, then P and Q computed from its data.
  thread_local AlignedBuffer scratch;
  scratch.reserve(size_t(roles + pc) * len);
  std::byte* block[geometry::kMaxMembers + 2];
  for (uint32_t r = 0; r < roles + pc; ++r) block[r] = scratch.data() + size_t(r) * len;
  std::byte* const* fresh = block + roles;

  std::vector<io::IoOp> ops;
  std::vector<uint32_t> slots;
  auto queue = [&](io::IoOp::Kind kind, uint32_t role, std::byte* buf) {
    io::Device* dev = members_->device(member(role));
    if (dev == nullptr) return false;  // failed since failed_mask() was read
    ops.push_back(io::IoOp{dev, kind, offset, buf, len, {}});
    slots.push_back(member(role));
    return true;
  };
  for (uint32_t r = 0; r < roles; ++r)
    if (!queue(io::IoOp::Kind::kRead, r, block[r])) return degraded();
  io::run_batch(ops);
  for (const io::IoOp& o : ops) counters_.member_bytes_read.fetch_add(o.len, std::memory_order_relaxed);
  if (fail_members(ops, slots)) return degraded();

  RowCheck check;
  check.checked = true;
  parity::compute({block, d}, fresh[0], pc == 2 ? fresh[1] : nullptr, len);
  const bool p_bad = std::memcmp(block[d], fresh[0], len) != 0;
  const bool q_bad = pc == 2 && std::memcmp(block[d + 1], fresh[1], len) != 0;
  if (!p_bad && !q_bad) return check;
  check.mismatch = true;
  std::optional<unsigned> bad_role;
  if (fix != Fix::kParity) bad_role = parity::locate_corruption(pc, {block, roles}, len);
  if (bad_role) check.bad_member = member(*bad_role);
  if (fix == Fix::kReport) return check;

  ops.clear();
  slots.clear();
  bool queued = true;
  if (bad_role && *bad_role < d) {
    // Only that data block is wrong, so P is intact: rebuild it in place.
    const unsigned missing = *bad_role;
    R5_TRY(parity::reconstruct(pc, {block, roles}, {&missing, 1}, len));
    queued = queue(io::IoOp::Kind::kWrite, missing, block[missing]);
  } else {
    // A located P or Q is also the only parity that mismatches, so in every
    // other case rewriting the mismatching parities from the data is the fix.
    if (p_bad) queued = queue(io::IoOp::Kind::kWrite, d, fresh[0]);
    if (q_bad) queued = queue(io::IoOp::Kind::kWrite, d + 1, fresh[1]) && queued;
  }
  io::run_batch(ops);
  for (const io::IoOp& o : ops) counters_.member_bytes_written.fetch_add(o.len, std::memory_order_relaxed);
  // A member that failed on the way holds the block that was wrong; the row
  // is right through the others, but it was not repaired here.
  check.repaired = !fail_members(ops, slots) && queued;
  if (!members_->usable()) return array_failed();
  return check;
}

}  // namespace r5::array
