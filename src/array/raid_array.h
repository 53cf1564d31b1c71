// Plain RAID5/6 I/O over a MemberSet (journal mode "none" and, later, the
// flusher's member writes). A request is cut into row jobs: one row and a
// page-aligned window of in-chunk bytes. Writes pick, per job, a full-stripe
// write, a reconstruct-write or a read-modify-write, whichever reads fewer
// pages; with a failed member in the row they reconstruct and write what
// survives. Rows are locked (writes exclusive, reads shared), so writes to one
// row are serialized and different rows proceed in parallel. A member I/O
// error fails that member (recorded in the other superblocks) and the request
// is redone degraded, under the same locks.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <vector>

#include "io/batch.h"

#include "array/member_set.h"

namespace r5::array {

struct ArrayCounters {
  std::atomic<uint64_t> reads{0}, writes{0}, syncs{0};
  std::atomic<uint64_t> bytes_read{0}, bytes_written{0};
  std::atomic<uint64_t> full_stripe_writes{0}, reconstruct_writes{0}, read_modify_writes{0}, degraded_writes{0};
  std::atomic<uint64_t> degraded_reads{0};
  std::atomic<uint64_t> member_bytes_read{0}, member_bytes_written{0};
  std::atomic<uint64_t> resync_rows_checked{0}, resync_rows_repaired{0};
  std::atomic<uint64_t> rebuilt_rows{0};
  std::atomic<uint64_t> scrub_rows_checked{0}, scrub_mismatches{0}, scrub_repaired{0};
};

// Blocks of one row as the flusher or the journal replay computed them:
// block[role] points at in-chunk byte `lo` of that role (data indices, then
// P, then Q). Only the extents are written.
struct RowWrite {
  struct Extent {
    uint32_t role, from, to;  // in-chunk bytes, page aligned
  };
  uint64_t row = 0;
  uint32_t lo = 0;
  std::byte* block[geometry::kMaxMembers] = {};
  std::vector<Extent> extents;
};

class RaidArray {
 public:
  explicit RaidArray(std::unique_ptr<MemberSet> members);
  ~RaidArray();

  uint64_t capacity() const { return members_->geometry().capacity(); }
  MemberSet& members() { return *members_; }
  const ArrayCounters& counters() const { return counters_; }
  // Member reads others issue straight to the devices (the flusher's reads
  // for parity), counted with the array's own.
  void count_member_read(uint64_t bytes) { counters_.member_bytes_read.fetch_add(bytes, std::memory_order_relaxed); }

  // Any offset and length inside the capacity.
  Status read(uint64_t offset, std::span<std::byte> out);
  Status write(uint64_t offset, std::span<const std::byte> in);
  // The asynchronous read path (Engine::read_async): appends to `ops` the
  // member reads that fill `out` straight from the data chunks, and returns
  // true, when every member the range touches is active and every piece is
  // whole pages into a page-aligned place; else false, `ops` unchanged, and
  // the caller uses read(). The ops run without row locks: see the .cc.
  bool plan_direct_read(uint64_t offset, std::span<std::byte> out, std::vector<io::IoOp>& ops);
  // Counts such a read once its ops completed, or fails the member of each
  // op that failed and returns the first error: the caller then redoes the
  // range with read(), which reconstructs.
  Status finish_direct_read(std::span<const io::IoOp> ops, uint64_t bytes);
  // Writes every extent of every row in one concurrent batch, under the row
  // locks. Data and parity are complete, so a member failing here is marked
  // failed and the rows stay correct through the others: no retry. An error
  // only when the array has failed.
  Status write_rows(std::span<const RowWrite> rows);
  // fdatasync of every active member.
  Status sync();
  // Rebuilds rows [first, first + count) of the slot MemberSet is rebuilding
  // onto its new device, from the other members, under the row locks, and
  // moves the rebuild position past them. kBusy when a member failed on the
  // way (the caller retries: the rows are redone from the survivors).
  Status rebuild_rows(uint64_t first, uint32_t count);
  // Completes a rebuild (MemberSet::finish_rebuild) with every row locked.
  Status finish_rebuild();

  // Makes P (and Q) of one row match its data, under the row lock (the
  // resync after an unclean shutdown). A degraded array has nothing to
  // compare: parity then defines the missing data, so the row is left alone.
  Status resync_row(uint64_t row);

  // Scrub of one row (raid_array_scrub.cc): reads every chunk of the row
  // under its lock and compares parity with data. With `repair`, a mismatch
  // is fixed: a RAID6 block that locate_corruption singles out is rebuilt
  // from the others; otherwise (RAID5, or two bad blocks) P and Q are
  // rewritten from the data, as md's "repair" does. An error only when the
  // array has failed.
  struct RowCheck {
    bool checked = false;  // false: degraded, nothing to compare
    bool mismatch = false;
    bool repaired = false;
    std::optional<uint32_t> bad_member;  // slot located as corrupt (RAID6), if any
  };
  Result<RowCheck> check_row(uint64_t row, bool repair);

  // The flusher's read-modify-write reads old parity without the row lock
  // and writes the new one under it: a resync or scrub repair rewriting that
  // row's parity in between would be undone. So the two exclude each other.
  // A repair pass (resync, check with repair) holds a RepairPass, which waits
  // for the flushes reusing old parity to end; a flush holds a ParityReuse
  // from its reads to its member writes, and reconstructs parity from data
  // instead while a repair pass runs.
  class RepairPass {
   public:
    explicit RepairPass(RaidArray& array);
    ~RepairPass() { array_.repair_passes_.fetch_sub(1); }
    RepairPass(const RepairPass&) = delete;
    RepairPass& operator=(const RepairPass&) = delete;

   private:
    RaidArray& array_;
  };
  class ParityReuse {
   public:
    explicit ParityReuse(RaidArray& array);
    ~ParityReuse() {
      if (allowed_) array_.parity_reusers_.fetch_sub(1);
    }
    ParityReuse(const ParityReuse&) = delete;
    ParityReuse& operator=(const ParityReuse&) = delete;
    bool allowed() const { return allowed_; }

   private:
    RaidArray& array_;
    bool allowed_;
  };

  struct Job;  // one row window; defined in raid_array.cc

 private:
  static constexpr size_t kLockCount = 1024;
  // op_slots tag of a write to the new device of a rebuild (fail_members).
  static constexpr uint32_t kRebuildOp = MemberSet::kNoRebuild;
  enum class Op { kRead, kWrite };

  Status run(Op op, uint64_t offset, std::byte* buf, size_t len);
  // One attempt at the jobs; sets `retry` when a member failed on the way.
  Status execute(Op op, std::vector<Job>& jobs, std::byte* buf, bool& retry);
  // Fails the members of the failed ops; true when any op failed.
  bool fail_members(std::span<const io::IoOp> ops, std::span<const uint32_t> op_slots);
  // What check_row and resync_row do with a mismatching row: kReport leaves
  // it, kLocate rebuilds the block locate_corruption names (else parity),
  // kParity trusts the data (after a crash, parity is what may be stale).
  enum class Fix { kReport, kLocate, kParity };
  Result<RowCheck> scrub_row(uint64_t row, Fix fix);

  std::unique_ptr<MemberSet> members_;
  std::atomic<int> repair_passes_{0}, parity_reusers_{0};  // see RepairPass
  ArrayCounters counters_;
  // Row r is guarded by row_locks_[r % kLockCount]. Lock order: a request
  // takes its distinct lock indices in ascending order, then nothing else but
  // MemberSet::sb_mutex_.
  std::array<std::shared_mutex, kLockCount> row_locks_;
};

}  // namespace r5::array
