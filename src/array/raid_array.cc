#include "array/raid_array.h"

#include <algorithm>
#include <cstring>

#include "array/aligned_buffer.h"
#include "base/log.h"
#include "parity/parity.h"

namespace r5::array {

using geometry::kPageSize;

namespace {

uint32_t round_down(uint32_t v) { return v / kPageSize * kPageSize; }
uint32_t round_up(uint32_t v) { return (v + kPageSize - 1) / kPageSize * kPageSize; }
bool page_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kPageSize == 0; }

enum class Plan { kDirectRead, kDegradedRead, kFullStripe, kReconstructWrite, kReadModifyWrite, kDegradedWrite };

}  // namespace

// One row and a page-aligned window [lo, hi) of in-chunk bytes. Buffers are
// indexed by role: data index k in 0..d-1, then P (d), then Q (d+1).
struct RaidArray::Job {
  uint64_t row = 0;
  geometry::RowMap map;
  uint32_t lo = 0, hi = 0;
  // Bytes of data index k that the request covers, inside the window
  // (begin == end: none), and where byte `begin` sits in the request buffer.
  uint32_t begin[geometry::kMaxMembers] = {};
  uint32_t end[geometry::kMaxMembers] = {};
  size_t req_pos[geometry::kMaxMembers] = {};
  bool direct[geometry::kMaxMembers] = {};  // read straight into the request buffer
  std::byte* block[geometry::kMaxMembers] = {};
  Plan plan = Plan::kDirectRead;

  uint32_t len() const { return hi - lo; }
  bool touched(uint32_t k) const { return begin[k] < end[k]; }
  uint32_t member(uint32_t role, uint32_t d) const { return role < d ? map.data[role] : role == d ? map.p : map.q; }
};

namespace {

using Job = RaidArray::Job;

// Cuts [offset, offset + len) into row jobs. A row touched in two adjacent
// chunks whose page ranges do not overlap (a write across a chunk boundary)
// becomes two narrow jobs instead of one covering the whole chunk.
void cut_jobs(const geometry::Geometry& g, uint64_t offset, size_t len, std::vector<Job>& jobs) {
  const uint64_t row_bytes = g.row_data_bytes();
  const uint32_t chunk = g.chunk_size;
  const uint64_t end = offset + len;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t row = pos / row_bytes;
    const uint64_t row_start = row * row_bytes;
    const uint64_t a = pos - row_start;
    const uint64_t b = std::min(end, row_start + row_bytes) - row_start;
    const uint32_t ka = uint32_t(a / chunk), kb = uint32_t((b - 1) / chunk);
    const uint32_t cs = uint32_t(a % chunk), ce = uint32_t((b - 1) % chunk + 1);
    auto add = [&](uint32_t lo, uint32_t hi) {
      Job& j = jobs.emplace_back();
      j.row = row;
      j.map = geometry::map_row(g, row);
      j.lo = lo;
      j.hi = hi;
      for (uint32_t k = ka; k <= kb; ++k) {
        uint32_t from = std::max(k == ka ? cs : 0u, lo), to = std::min(k == kb ? ce : chunk, hi);
        if (from >= to) continue;
        j.begin[k] = from;
        j.end[k] = to;
        j.req_pos[k] = size_t(row_start + uint64_t(k) * chunk + from - offset);
      }
    };
    if (ka == kb) {
      add(round_down(cs), round_up(ce));
    } else if (kb == ka + 1 && round_up(ce) <= round_down(cs)) {
      add(round_down(cs), chunk);
      add(0, round_up(ce));
    } else {
      add(0, chunk);
    }
    pos = row_start + b;
  }
}

// Fewest member page reads wins; a tie goes to reconstruct-write, like md.
Plan choose_write_plan(const Job& j, uint32_t d, uint32_t parity_count) {
  const uint32_t pages = j.len() / kPageSize;
  uint32_t rcw = 0, rmw = parity_count * pages;
  for (uint32_t k = 0; k < d; ++k) {
    if (!j.touched(k)) {
      rcw += pages;
      continue;
    }
    uint32_t full_from = round_up(j.begin[k]), full_to = round_down(j.end[k]);
    uint32_t full = full_to > full_from ? (full_to - full_from) / kPageSize : 0;
    rcw += pages - full;
    rmw += (round_up(j.end[k]) - round_down(j.begin[k])) / kPageSize;
  }
  if (rcw == 0) return Plan::kFullStripe;
  return rmw < rcw ? Plan::kReadModifyWrite : Plan::kReconstructWrite;
}

}  // namespace

RaidArray::RaidArray(std::unique_ptr<MemberSet> members) : members_(std::move(members)) {}
RaidArray::~RaidArray() = default;

Status RaidArray::read(uint64_t offset, std::span<std::byte> out) {
  counters_.reads.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(out.size(), std::memory_order_relaxed);
  return run(Op::kRead, offset, out.data(), out.size());
}

// Why a direct read needs no row lock: in a row whose data members are all
// active, the data chunks hold the data, and only a write changes that. A
// write that overlaps the read either completed before the read was planned
// (its data is on the members, or still in the pool, which the caller reads
// first) or runs concurrently, and then either content is a right answer.
// A member that fails meanwhile keeps its device until the daemon ends
// (MemberSet retires, never closes), so the read still has a descriptor;
// it returns what the member held, or an error that finish_direct_read
// turns into a locked, degraded retry.
bool RaidArray::plan_direct_read(uint64_t offset, std::span<std::byte> out, std::vector<io::IoOp>& ops) {
  if (out.empty()) return true;
  if (offset > capacity() || out.size() > capacity() - offset || !page_aligned(out.data())) return false;
  if (members_->failed_mask() != 0) return false;
  thread_local std::vector<Job> jobs;
  jobs.clear();
  const geometry::Geometry& g = members_->geometry();
  cut_jobs(g, offset, out.size(), jobs);
  const size_t first = ops.size();
  for (const Job& j : jobs) {
    for (uint32_t k = 0; k < g.data_count(); ++k) {
      if (!j.touched(k)) continue;
      io::Device* dev = members_->device(j.map.data[k]);
      if (dev == nullptr || j.begin[k] % kPageSize != 0 || j.end[k] % kPageSize != 0) {
        ops.resize(first);
        return false;
      }
      ops.push_back(io::IoOp::read(dev, members_->data_offset() + j.row * g.chunk_size + j.begin[k],
                                   out.data() + j.req_pos[k], j.end[k] - j.begin[k]));
    }
  }
  return true;
}

Status RaidArray::finish_direct_read(std::span<const io::IoOp> ops, uint64_t bytes) {
  // An error fails the member, as in read(): the caller's retry then reads
  // around it instead of waiting on it again.
  std::optional<Status> failed;
  for (const io::IoOp& op : ops) {
    if (op.status.ok()) continue;
    for (uint32_t slot = 0; slot < members_->count(); ++slot)
      if (members_->device(slot) == op.device) (void)members_->mark_failed(slot, op.status.error().message);
    if (!failed) failed = op.status;
  }
  if (failed) return *failed;
  counters_.reads.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_read.fetch_add(bytes, std::memory_order_relaxed);
  uint64_t member_bytes = 0;
  for (const io::IoOp& op : ops) member_bytes += op.len;
  counters_.member_bytes_read.fetch_add(member_bytes, std::memory_order_relaxed);
  return {};
}

Status RaidArray::write(uint64_t offset, std::span<const std::byte> in) {
  counters_.writes.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_written.fetch_add(in.size(), std::memory_order_relaxed);
  // The buffer is only read on the write path.
  return run(Op::kWrite, offset, const_cast<std::byte*>(in.data()), in.size());
}

Status RaidArray::sync() {
  counters_.syncs.fetch_add(1, std::memory_order_relaxed);
  std::vector<io::IoOp> ops;
  std::vector<uint32_t> slots;
  for (uint32_t i = 0; i < members_->count(); ++i) {
    if (io::Device* dev = members_->device(i)) {
      ops.push_back(io::IoOp::sync(dev));
      slots.push_back(i);
    }
  }
  // Rows already rebuilt are written to the new member too: an fsync covers them there.
  if (io::Device* dev = members_->rebuild_device()) {
    ops.push_back(io::IoOp::sync(dev));
    slots.push_back(kRebuildOp);
  }
  io::run_batch(ops);
  fail_members(ops, slots);
  // Data on a member whose sync failed survives through parity on the others.
  if (!members_->usable()) return io_error(EIO, "array has failed: too many members lost");
  return {};
}

bool RaidArray::fail_members(std::span<const io::IoOp> ops, std::span<const uint32_t> op_slots) {
  bool any = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].status.ok()) continue;
    if (op_slots[i] == kRebuildOp) {
      members_->abort_rebuild(ops[i].status.error().message);
      continue;  // the rest of the request is unaffected: the slot was failed already
    }
    any = true;
    (void)members_->mark_failed(op_slots[i], ops[i].status.error().message);
  }
  return any;
}

Status RaidArray::run(Op op, uint64_t offset, std::byte* buf, size_t len) {
  if (len == 0) return {};
  if (offset > capacity() || len > capacity() - offset)
    return invalid(fmt::format("I/O at {} (+{}) beyond the array capacity {}", offset, len, capacity()));
  thread_local std::vector<Job> jobs;
  jobs.clear();
  cut_jobs(members_->geometry(), offset, len, jobs);

  std::vector<size_t> locks;
  for (const Job& j : jobs) locks.push_back(j.row % kLockCount);
  std::sort(locks.begin(), locks.end());
  locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
  for (size_t i : locks) op == Op::kWrite ? row_locks_[i].lock() : row_locks_[i].lock_shared();

  Status result = io_error(EIO, "too many member failures during one request");
  for (uint32_t attempt = 0; attempt <= members_->count(); ++attempt) {
    bool retry = false;
    Status st = execute(op, jobs, buf, retry);
    if (!retry) {
      result = std::move(st);
      break;
    }
  }
  for (size_t i : locks) op == Op::kWrite ? row_locks_[i].unlock() : row_locks_[i].unlock_shared();
  return result;
}

Status RaidArray::execute(Op op, std::vector<Job>& jobs, std::byte* buf, bool& retry) {
  retry = false;
  if (!members_->usable())
    return io_error(EIO, fmt::format("array has failed: {} of {} members lost", members_->failed_count(), members_->count()));
  const geometry::Geometry& g = members_->geometry();
  const uint32_t d = g.data_count(), pc = g.parity_count(), roles = d + pc;
  const uint64_t failed = members_->failed_mask();
  auto alive = [&](uint32_t member) { return ((failed >> member) & 1) == 0; };

  // Plan every job and carve its buffers (and RMW deltas) out of one arena.
  size_t scratch_size = 0;
  for (Job& j : jobs) {
    if (op == Op::kRead) {
      j.plan = Plan::kDirectRead;
      for (uint32_t k = 0; k < d; ++k)
        if (j.touched(k) && !alive(j.map.data[k])) j.plan = Plan::kDegradedRead;
    } else {
      j.plan = failed ? Plan::kDegradedWrite : choose_write_plan(j, d, pc);
    }
    scratch_size += size_t(roles + (j.plan == Plan::kReadModifyWrite ? d : 0)) * j.len();
  }
  thread_local AlignedBuffer scratch;
  scratch.reserve(scratch_size);
  std::byte* next = scratch.data();
  for (Job& j : jobs) {
    for (uint32_t r = 0; r < roles; ++r, next += j.len()) j.block[r] = next;
    if (j.plan == Plan::kReadModifyWrite) next += size_t(d) * j.len();  // deltas, after the blocks
  }

  const uint64_t data_offset = members_->data_offset();
  thread_local std::vector<io::IoOp> ops;
  thread_local std::vector<uint32_t> op_slots;
  ops.clear();
  op_slots.clear();
  // Another request may fail a member after `failed` was sampled; then this
  // attempt's plan is stale and is redone.
  bool stale_plan = false;
  auto member_io = [&](io::IoOp::Kind kind, const Job& j, uint32_t role, uint32_t from, uint32_t to, std::byte* mem) {
    if (from >= to) return;
    uint32_t m = j.member(role, d);
    if (!alive(m)) return;
    io::Device* dev = members_->device(m);
    if (dev == nullptr) {
      stale_plan = true;
      return;
    }
    ops.push_back(io::IoOp{dev, kind, data_offset + j.row * g.chunk_size + from, mem, to - from, {}});
    op_slots.push_back(m);
  };
  auto read_block = [&](const Job& j, uint32_t role, uint32_t from, uint32_t to) {
    member_io(io::IoOp::Kind::kRead, j, role, from, to, j.block[role] + (from - j.lo));
  };
  auto write_block = [&](const Job& j, uint32_t role, uint32_t from, uint32_t to) {
    member_io(io::IoOp::Kind::kWrite, j, role, from, to, j.block[role] + (from - j.lo));
  };
  auto overlay = [&](Job& j) {
    for (uint32_t k = 0; k < d; ++k)
      if (j.touched(k)) std::memcpy(j.block[k] + (j.begin[k] - j.lo), buf + j.req_pos[k], j.end[k] - j.begin[k]);
  };
  auto reconstruct = [&](Job& j) -> Status {
    unsigned missing[2];
    unsigned n = 0;
    for (uint32_t r = 0; r < roles; ++r)
      if (!alive(j.member(r, d))) missing[n++] = r;
    if (n == 0) return {};
    return parity::reconstruct(pc, {j.block, roles}, {missing, n}, j.len());
  };
  auto parity_of = [&](Job& j) { parity::compute({j.block, d}, j.block[d], pc == 2 ? j.block[d + 1] : nullptr, j.len()); };

  // Phase 1: reads.
  for (Job& j : jobs) {
    switch (j.plan) {
      case Plan::kDirectRead:
        for (uint32_t k = 0; k < d; ++k) {
          if (!j.touched(k)) continue;
          uint32_t from = round_down(j.begin[k]), to = round_up(j.end[k]);
          std::byte* dst = buf + j.req_pos[k];
          j.direct[k] = from == j.begin[k] && to == j.end[k] && page_aligned(dst);
          if (j.direct[k])
            member_io(io::IoOp::Kind::kRead, j, k, from, to, dst);
          else
            read_block(j, k, from, to);
        }
        break;
      case Plan::kDegradedRead:
      case Plan::kDegradedWrite:
        for (uint32_t r = 0; r < roles; ++r) read_block(j, r, j.lo, j.hi);
        break;
      case Plan::kFullStripe:
        break;
      case Plan::kReconstructWrite:
        for (uint32_t k = 0; k < d; ++k) {
          uint32_t full_from = round_up(j.begin[k]), full_to = round_down(j.end[k]);
          if (!j.touched(k) || full_to <= full_from) {
            read_block(j, k, j.lo, j.hi);
          } else {
            read_block(j, k, j.lo, full_from);
            read_block(j, k, full_to, j.hi);
          }
        }
        break;
      case Plan::kReadModifyWrite:
        for (uint32_t k = 0; k < d; ++k)
          if (j.touched(k)) read_block(j, k, round_down(j.begin[k]), round_up(j.end[k]));
        for (uint32_t r = d; r < roles; ++r) read_block(j, r, j.lo, j.hi);
        break;
    }
  }
  if (stale_plan) {
    retry = true;
    return {};
  }
  io::run_batch(ops);
  for (const io::IoOp& o : ops) counters_.member_bytes_read.fetch_add(o.len, std::memory_order_relaxed);
  if (fail_members(ops, op_slots)) {
    retry = true;
    return {};
  }

  // Phase 2: compute, and queue the writes.
  ops.clear();
  op_slots.clear();
  for (Job& j : jobs) {
    switch (j.plan) {
      case Plan::kDirectRead:
        for (uint32_t k = 0; k < d; ++k)
          if (j.touched(k) && !j.direct[k])
            std::memcpy(buf + j.req_pos[k], j.block[k] + (j.begin[k] - j.lo), j.end[k] - j.begin[k]);
        continue;
      case Plan::kDegradedRead:
        counters_.degraded_reads.fetch_add(1, std::memory_order_relaxed);
        R5_TRY(reconstruct(j));
        for (uint32_t k = 0; k < d; ++k)
          if (j.touched(k)) std::memcpy(buf + j.req_pos[k], j.block[k] + (j.begin[k] - j.lo), j.end[k] - j.begin[k]);
        continue;
      case Plan::kFullStripe:
        counters_.full_stripe_writes.fetch_add(1, std::memory_order_relaxed);
        overlay(j);
        parity_of(j);
        break;
      case Plan::kReconstructWrite:
        counters_.reconstruct_writes.fetch_add(1, std::memory_order_relaxed);
        overlay(j);
        parity_of(j);
        break;
      case Plan::kDegradedWrite:
        counters_.degraded_writes.fetch_add(1, std::memory_order_relaxed);
        R5_TRY(reconstruct(j));
        overlay(j);
        parity_of(j);
        break;
      case Plan::kReadModifyWrite: {
        counters_.read_modify_writes.fetch_add(1, std::memory_order_relaxed);
        std::byte* delta_base = j.block[roles - 1] + j.len();
        for (uint32_t k = 0; k < d; ++k) {
          if (!j.touched(k)) continue;
          const uint32_t from = round_down(j.begin[k]), n = round_up(j.end[k]) - from;
          std::byte* old_data = j.block[k] + (from - j.lo);
          std::byte* delta = delta_base + size_t(k) * j.len();
          std::memcpy(delta, old_data, n);
          std::memcpy(j.block[k] + (j.begin[k] - j.lo), buf + j.req_pos[k], j.end[k] - j.begin[k]);
          parity::xor_into(delta, old_data, n);
          parity::Delta one{k, delta};
          parity::apply_deltas(d, {&one, 1}, j.block[d] + (from - j.lo), pc == 2 ? j.block[d + 1] + (from - j.lo) : nullptr, n);
        }
        break;
      }
    }
    for (uint32_t k = 0; k < d; ++k)
      if (j.touched(k)) write_block(j, k, round_down(j.begin[k]), round_up(j.end[k]));
    for (uint32_t r = d; r < roles; ++r) write_block(j, r, j.lo, j.hi);
    // A row already rebuilt onto a new member must stay right there: the
    // degraded write has the slot's whole window reconstructed.
    if (io::Device* target = members_->rebuild_device(j.row)) {
      for (uint32_t r = 0; r < roles; ++r) {
        if (j.member(r, d) != members_->rebuild_slot()) continue;
        ops.push_back(io::IoOp{target, io::IoOp::Kind::kWrite, data_offset + j.row * g.chunk_size + j.lo, j.block[r], j.len(), {}});
        op_slots.push_back(kRebuildOp);
      }
    }
  }
  if (stale_plan) {
    retry = true;  // nothing was written yet: redo the request degraded
    return {};
  }
  if (ops.empty()) return {};
  io::run_batch(ops);
  for (const io::IoOp& o : ops) counters_.member_bytes_written.fetch_add(o.len, std::memory_order_relaxed);
  // A failed member write is redone degraded: the retry reads back what
  // reached the survivors and makes data and parity agree again.
  if (fail_members(ops, op_slots)) retry = true;
  return {};
}

Status RaidArray::write_rows(std::span<const RowWrite> rows) {
  const geometry::Geometry& g = members_->geometry();
  const uint32_t d = g.data_count();
  std::vector<size_t> locks;
  for (const RowWrite& w : rows) locks.push_back(w.row % kLockCount);
  std::sort(locks.begin(), locks.end());
  locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
  for (size_t i : locks) row_locks_[i].lock();
  std::vector<io::IoOp> ops;
  std::vector<uint32_t> slots;
  for (const RowWrite& w : rows) {
    const geometry::RowMap map = geometry::map_row(g, w.row);
    for (const RowWrite::Extent& e : w.extents) {
      const uint32_t m = e.role < d ? map.data[e.role] : e.role == d ? map.p : map.q;
      io::Device* dev = members_->device(m);
      uint32_t slot = m;
      if (dev == nullptr && m == members_->rebuild_slot()) {
        dev = members_->rebuild_device(w.row);  // a row rebuilt already stays right on the new member
        slot = kRebuildOp;
      }
      if (dev == nullptr) continue;  // failed: its content follows from the others
      ops.push_back(io::IoOp::write(dev, members_->data_offset() + w.row * g.chunk_size + e.from,
                                    w.block[e.role] + (e.from - w.lo), e.to - e.from));
      slots.push_back(slot);
    }
  }
  io::run_batch(ops);
  for (const io::IoOp& o : ops) counters_.member_bytes_written.fetch_add(o.len, std::memory_order_relaxed);
  fail_members(ops, slots);
  for (size_t i : locks) row_locks_[i].unlock();
  if (!members_->usable())
    return io_error(EIO, fmt::format("array has failed: {} of {} members lost", members_->failed_count(), members_->count()));
  return {};
}

}  // namespace r5::array
