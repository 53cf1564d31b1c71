// Crash-state enumeration (issue 4): run workloads on the real journaled
// cache and array over CrashDevices, then, for a crash before
// every device operation, rebuild what the devices may hold (their synced
// writes plus every subset of the unsynced ones, or 64 random subsets when
// more than 10 are pending, plus torn variants), recover in-process, and check
// DESIGN §4's invariants:
//   I1 every write completed before a completed fsync (or drain) reads back;
//   I2 every block reads its old or a newer written content, never garbage;
//   I3 after recovery and a drain, P (and Q) match the data of every row;
//   I4 I1-I2 hold when a member is lost before replay (and, by I3, after it);
//   I5 recovering the same crash image twice gives identical members;
// and every 16th state is crashed again at each I/O of its own recovery.
// Workloads: every sequence of up to 3 operations (full-stripe, partial,
// sub-page, two-row and overwriting writes, fsync, drain); the same with a log
// about to wrap around its ring; and long random runs that wrap it twice
// (crash states at random points), one with 16 KiB chunks, whose flushes log
// parity in several column runs (a repair that rewrites only the first run
// fails it: 355 violations); and runs that crash, recover, write on and
// crash again, every state of both runs checked (a recovery that leaves a
// discarded unsynced record on the journal fails it: 35 violations).
// The checker must be able to fail: mode none and a recovery without the
// write-hole repair are run too and must show violations.
// Every 512-byte sector written carries a tag (operation, sector) in all its
// words, so a 4 KiB block read back names the write each of its sectors came
// from: I2 is checked per block (its sectors must form a state the block had),
// which a torn or mixed block fails.
#include <doctest/doctest.h>

#include <malloc.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>

#include "engine/journaled_cache.h"
#include "journal/writer.h"
#include "parity/parity.h"
#include "support/crash_device.h"
#include "support/memory_array.h"

using namespace r5;
using engine::JournaledCache;
using test::CrashDevice;
using test::CrashLog;
using test::Image;
using test::ImageDevice;

namespace {

// Every recovery allocates a 4 MiB scan window; kept in the heap once freed,
// tens of thousands of recoveries do not each fault it in again (most of the
// suite's time went to those page faults).
const bool kHeapKept = mallopt(M_MMAP_THRESHOLD, 32 << 20) && mallopt(M_TRIM_THRESHOLD, 512 << 20);

constexpr uint64_t kRows = 8;
constexpr uint64_t kJournalBlocks = 2048;  // the least RAID6 with 4 KiB chunks accepts
constexpr size_t kBlock = 4096, kSector = 512, kSectorsPerBlock = kBlock / kSector;

// kFlush writes the dirty stripes to the members as the flusher does under
// pressure; their member sync waits for a checkpoint (kCheckpoint, or a
// drain's), which logs done records and moves the tail.
enum class Kind { kFull, kPartial, kSubPage, kSpan, kOverwrite, kFsync, kDrain, kFlush, kCheckpoint, kRandomWrite };
constexpr Kind kKinds[] = {Kind::kFull, Kind::kPartial, Kind::kSubPage, Kind::kSpan, Kind::kOverwrite, Kind::kFsync, Kind::kDrain};

struct Done {  // one workload operation as it happened
  Kind kind;
  size_t index;                  // names its sectors' tags
  uint64_t offset = 0, len = 0;  // bytes written (sector aligned)
  size_t start = 0, end = 0;     // log indices around it
};

uint64_t tag(size_t op, uint64_t sector) { return (uint64_t(op + 1) << 32) | sector; }
using Tuple = std::array<uint64_t, kSectorsPerBlock>;  // the tag of each sector of a block (0: never written)

struct Geo {
  uint32_t level, members;
  // 4 KiB: one page per chunk. Larger chunks give rows several columns, so a
  // flush logs parity as several column runs (the random workload).
  uint32_t chunk = 4096;
};

format::MemberSuperblock superblock(const Geo& geo) {
  return test::test_superblock(geo.level, geometry::Layout::kLeftSymmetric, geo.members, geo.chunk, kRows);
}

// The array the workload runs on.
struct Live {
  CrashLog log;
  format::MemberSuperblock sb;
  std::unique_ptr<array::RaidArray> array;
  std::unique_ptr<JournaledCache> cache;
  std::vector<Done> done;
  std::vector<Image> base;  // what each device held when the log was cleared (empty: nothing)
  std::vector<Tuple> base_tuples;  // what each block read then (empty: zeros)
  uint64_t aged_head = 0;   // the journal block the aged log's head was at
  size_t start = 0;

  // `aged`: the journal's head is first moved to just before the end of its
  // ring, so the workload's records wrap around over records of the last lap.
  Live(const Geo& geo, bool journal, bool aged = false) : sb(superblock(geo)) {
    std::vector<array::MemberSlot> slots;
    for (uint32_t i = 0; i < geo.members; ++i)
      slots.push_back({"m" + std::to_string(i),
                       std::make_unique<CrashDevice>("m" + std::to_string(i), sb.data_offset + sb.data_size, i, &log)});
    array = std::make_unique<array::RaidArray>(std::make_unique<array::MemberSet>(sb, std::move(slots)));
    if (journal) {
      auto dev = std::make_unique<CrashDevice>("journal", kJournalBlocks * kBlock, geo.members, &log);
      REQUIRE(journal::format_journal(*dev, sb, kJournalBlocks).ok());
      auto c = JournaledCache::open(*array, std::move(dev), {});
      REQUIRE_MESSAGE(c.ok(), c.error().message);
      cache = std::move(*c);
    }
    if (aged) age_journal();
    start = log.ops.size();
  }

  // Continues after a crash: recovers `images` on fresh CrashDevices (the
  // recovery's own writes are the first logged operations), and takes what
  // each block then reads, `recovered`, as its durable starting state.
  Live(const Geo& geo, std::vector<Image> images, std::vector<Tuple> recovered)
      : sb(superblock(geo)), base(std::move(images)), base_tuples(std::move(recovered)) {
    std::vector<array::MemberSlot> slots;
    for (uint32_t i = 0; i < geo.members; ++i)
      slots.push_back({"m" + std::to_string(i),
                       std::make_unique<CrashDevice>("m" + std::to_string(i), sb.data_offset + sb.data_size, i, &log, base[i])});
    array = std::make_unique<array::RaidArray>(std::make_unique<array::MemberSet>(sb, std::move(slots)));
    auto journal = std::make_unique<CrashDevice>("journal", kJournalBlocks * kBlock, geo.members, &log, base[geo.members]);
    auto c = JournaledCache::open(*array, std::move(journal), {});
    REQUIRE_MESSAGE(c.ok(), c.error().message);
    cache = std::move(*c);
  }

  // Writes of zeros (the model's initial content) to the last rows, drained,
  // then single pages, until at most two blocks are left before the end of
  // the ring; then the log of operations restarts from images of the devices.
  void age_journal() {
    const uint64_t row = sb.geometry().row_data_bytes();
    const std::vector<std::byte> zeros(row * 4);
    const uint32_t journal_id = sb.member_count;
    auto head = [&] {
      for (size_t i = log.ops.size(); i-- > 0;)
        if (log.ops[i].device == journal_id && !log.ops[i].sync && log.ops[i].offset >= 2 * kBlock)
          return (log.ops[i].offset + log.ops[i].data.size()) / kBlock;
      return uint64_t(2);
    };
    while (head() + 16 < kJournalBlocks) {
      REQUIRE(cache->write((kRows - 4) * row, zeros).ok());
      REQUIRE(cache->drain().ok());
    }
    while (head() + 2 < kJournalBlocks) REQUIRE(cache->write((kRows - 1) * row, std::span(zeros).first(kBlock)).ok());
    aged_head = head();
    for (uint32_t dev = 0; dev <= journal_id; ++dev) base.push_back(test::crash_image(log, dev, log.ops.size(), [](size_t) { return true; }));
    log.ops.clear();
  }
  // Whether the workload wrote a journal block below the aged head: its log
  // wrapped around.
  bool wrapped() const {
    for (const CrashLog::Op& op : log.ops)
      if (op.device == sb.member_count && !op.sync && op.offset >= 2 * kBlock && op.offset / kBlock < aged_head) return true;
    return false;
  }
  const Image& initial(uint32_t dev) const {
    static const Image empty;
    return base.empty() ? empty : base[dev];
  }

  void write(Kind kind, size_t index, uint64_t offset, uint64_t len) {
    Done op{kind, index, offset, len, log.ops.size()};
    std::vector<std::byte> data(len);
    for (uint64_t s = 0; s < len / kSector; ++s) {
      const uint64_t v = tag(index, offset / kSector + s);
      for (size_t w = 0; w < kSector; w += 8) std::memcpy(data.data() + s * kSector + w, &v, 8);
    }
    Status st = cache ? cache->write(offset, data) : array->write(offset, data);
    REQUIRE(st.ok());
    op.end = log.ops.size();
    done.push_back(op);
  }

  void run(Kind kind, size_t index) {
    const uint64_t d = sb.geometry().data_count();
    switch (kind) {
      case Kind::kFull: return write(kind, index, d * kBlock, d * kBlock);                   // all of row 1
      case Kind::kPartial: return write(kind, index, 2 * d * kBlock, kBlock);                // first block of row 2
      case Kind::kSubPage: return write(kind, index, 2 * d * kBlock + 2 * kSector, 2 * kSector);  // inside it
      case Kind::kSpan: return write(kind, index, (3 * d - 1) * kBlock, 2 * kBlock);         // rows 2 and 3
      case Kind::kOverwrite: return write(kind, index, 2 * d * kBlock, kBlock);              // row 2 again
      default: break;
    }
    Done op{kind, index, 0, 0, log.ops.size()};
    if (kind == Kind::kFsync)
      REQUIRE((cache ? cache->fsync() : array->sync()).ok());
    else if (kind == Kind::kFlush)
      REQUIRE((cache ? cache->flush_for_test() : Status{}).ok());
    else if (kind == Kind::kCheckpoint)
      REQUIRE((cache ? cache->checkpoint_for_test() : Status{}).ok());
    else
      REQUIRE((cache ? cache->drain() : array->sync()).ok());
    op.end = log.ops.size();
    done.push_back(op);
  }
};

// What each block may read after a crash before log index t: the states it
// went through since its last write that was durable by then (`allowed`), and
// the states before that (`lost`: reading one means a durable write was lost).
struct Expected {
  std::vector<std::set<Tuple>> allowed, lost;
};

Expected allowed_values(const Live& live, size_t t) {
  const uint64_t blocks = live.sb.geometry().capacity() / kBlock;
  size_t durable_before = 0;  // writes that ended by the start of the last completed sync point are durable
  for (const Done& op : live.done)
    if ((op.kind == Kind::kFsync || op.kind == Kind::kDrain) && op.end <= t) durable_before = op.start;
  std::vector<Tuple> now = live.base_tuples.empty() ? std::vector<Tuple>(blocks, Tuple{}) : live.base_tuples;
  std::vector<std::set<Tuple>> allowed(blocks), lost(blocks);
  for (size_t b = 0; b < blocks; ++b) allowed[b].insert(now[b]);
  for (const Done& op : live.done) {
    if (op.start >= t) break;
    for (uint64_t s = op.offset / kSector; s < (op.offset + op.len) / kSector; ++s)
      now[s / kSectorsPerBlock][s % kSectorsPerBlock] = tag(op.index, s);
    for (uint64_t b = op.offset / kBlock; b * kBlock < op.offset + op.len; ++b) {
      if (op.end <= durable_before) {  // older states are no longer allowed
        lost[b].insert(allowed[b].begin(), allowed[b].end());
        allowed[b].clear();
      }
      allowed[b].insert(now[b]);
    }
  }
  return {std::move(allowed), std::move(lost)};
}

struct Recovered {
  std::vector<ImageDevice*> members;  // null: lost
  std::unique_ptr<array::RaidArray> array;
  std::unique_ptr<JournaledCache> cache;
  Status status;
};

Recovered recover(const Live& live, const std::vector<Image>& images, int lost, bool skip_repair) {
  Recovered r;
  const uint32_t n = live.sb.member_count;
  std::vector<array::MemberSlot> slots;
  for (uint32_t i = 0; i < n; ++i) {
    if (int(i) == lost) {
      r.members.push_back(nullptr);
      slots.push_back({"m" + std::to_string(i), nullptr});
      continue;
    }
    auto dev = std::make_unique<ImageDevice>("m" + std::to_string(i), live.sb.data_offset + live.sb.data_size, images[i]);
    r.members.push_back(dev.get());
    slots.push_back({"m" + std::to_string(i), std::move(dev)});
  }
  r.array = std::make_unique<array::RaidArray>(std::make_unique<array::MemberSet>(live.sb, std::move(slots)));
  if (live.cache) {
    JournaledCache::Options o;
    o.test_skip_repair = skip_repair;
    auto c = JournaledCache::open(*r.array, std::make_unique<ImageDevice>("journal", kJournalBlocks * kBlock, images[n]), o);
    if (!c.ok()) {
      r.status = c.error();
      return r;
    }
    r.cache = std::move(*c);
  }
  return r;
}

// What every block reads, as the tags of its sectors; a sector whose words
// differ is garbage (I2). Returns the violation (empty: none).
std::string read_tuples(Recovered& r, size_t blocks, std::vector<Tuple>& tuples) {
  std::vector<std::byte> all(blocks * kBlock);
  Status st = r.cache ? r.cache->read(0, all) : r.array->read(0, all);
  if (!st.ok()) return "read failed: " + st.error().message;
  tuples.assign(blocks, Tuple{});
  for (size_t b = 0; b < blocks; ++b)
    for (size_t s = 0; s < kSectorsPerBlock; ++s) {
      const std::byte* sector = all.data() + b * kBlock + s * kSector;
      std::memcpy(&tuples[b][s], sector, 8);
      for (size_t w = 8; w < kSector; w += 8)
        if (std::memcmp(sector + w, &tuples[b][s], 8) != 0) return fmt::format("I2: block {} sector {} is garbage", b, s);
    }
  return "";
}

// Violations found in one recovered state, as text (empty: none).
std::string check_reads(Recovered& r, const Expected& expected, std::vector<Tuple>* read_back = nullptr) {
  const auto& allowed = expected.allowed;
  std::vector<Tuple> got;
  if (std::string v = read_tuples(r, allowed.size(), got); !v.empty()) return v;
  for (size_t b = 0; b < allowed.size(); ++b) {
    if (allowed[b].count(got[b])) continue;
    return fmt::format("I{}: block {} reads sectors {:x}, not one of its {} allowed states",
                       expected.lost[b].count(got[b]) ? 1 : 2, b, fmt::join(got[b], ","), allowed[b].size());
  }
  if (read_back) *read_back = std::move(got);
  return "";
}

bool parity_consistent(const Live& live, const Recovered& r) {
  const geometry::Geometry g = live.sb.geometry();
  const uint32_t d = g.data_count();
  std::vector<std::vector<std::byte>> chunks(g.members, std::vector<std::byte>(g.chunk_size));
  for (uint64_t row = 0; row < g.rows; ++row) {
    const geometry::RowMap map = geometry::map_row(g, row);
    std::vector<std::byte*> blocks;
    for (uint32_t role = 0; role < g.members; ++role) {
      const uint32_t m = role < d ? map.data[role] : role == d ? map.p : map.q;
      if (!r.members[m]) return true;  // degraded: nothing to compare
      (void)r.members[m]->read(live.sb.data_offset + row * g.chunk_size, chunks[role]);
      blocks.push_back(chunks[role].data());
    }
    if (!parity::verify(g.parity_count(), blocks, g.chunk_size)) return false;
  }
  return true;
}

// Recovers `images` on CrashDevices, then crashes that recovery before each
// of its own device operations (keeping all or none of its unsynced writes)
// and recovers again: the result must still satisfy `allowed`.
std::string check_crash_during_recovery(const Live& live, const std::vector<Image>& images,
                                        const Expected& allowed, uint64_t& states) {
  const uint32_t n = live.sb.member_count;
  CrashLog log;
  std::vector<array::MemberSlot> slots;
  for (uint32_t i = 0; i < n; ++i)
    slots.push_back({"m" + std::to_string(i), std::make_unique<CrashDevice>("m" + std::to_string(i),
                                                                            live.sb.data_offset + live.sb.data_size, i,
                                                                            &log, images[i])});
  array::RaidArray array(std::make_unique<array::MemberSet>(live.sb, std::move(slots)));
  auto first = JournaledCache::open(array, std::make_unique<CrashDevice>("journal", kJournalBlocks * kBlock, n, &log, images[n]), {});
  if (!first.ok()) return "first recovery refused: " + first.error().message;
  for (size_t t = 0; t <= log.ops.size(); ++t)
    for (bool keep_pending : {false, true}) {
      std::vector<Image> again;
      for (uint32_t dev = 0; dev <= n; ++dev)
        again.push_back(test::crash_image(log, dev, t, [&](size_t) { return keep_pending; }, std::nullopt, images[dev]));
      Recovered r = recover(live, again, -1, false);
      ++states;
      if (!r.status.ok()) return fmt::format("recovery after a crash at its op {}: {}", t, r.status.error().message);
      if (std::string v = check_reads(r, allowed); !v.empty()) return fmt::format("after a crash at recovery op {}: {}", t, v);
    }
  return "";
}

struct Tally {
  uint64_t states = 0, violations = 0, recovery_crashes = 0, wrapped = 0;
  std::string first;
  void add(const std::string& v, const std::string& where) {
    if (v.empty()) return;
    if (violations++ == 0) first = where + ": " + v;
  }
};

// Calls fn(images) for the crash states before log index t: the synced
// writes of every device plus every subset of the pending ones when at most
// `all_up_to` are pending, else `random` random subsets; then, with all kept,
// each device's last pending write torn (half its sectors reached the disk).
void for_each_crash_state(const Live& live, size_t t, size_t all_up_to, int random, std::mt19937_64& rng,
                          const std::function<void(const std::vector<Image>&)>& fn) {
  const uint32_t devices = live.sb.member_count + (live.cache ? 1 : 0);
  std::vector<size_t> pending;
  for (uint32_t dev = 0; dev < devices; ++dev)
    for (size_t i : test::pending_writes(live.log, dev, t)) pending.push_back(i);
  auto state = [&](const std::vector<bool>& keep, std::optional<test::Torn> torn) {
    auto kept = [&](size_t op) {
      auto it = std::find(pending.begin(), pending.end(), op);
      return it != pending.end() && keep[size_t(it - pending.begin())];
    };
    std::vector<Image> images;
    for (uint32_t dev = 0; dev < devices; ++dev) images.push_back(test::crash_image(live.log, dev, t, kept, torn, live.initial(dev)));
    fn(images);
  };
  std::vector<bool> keep(pending.size());
  if (pending.size() <= all_up_to) {
    for (uint32_t m = 0; m < (1u << pending.size()); ++m) {
      for (size_t i = 0; i < pending.size(); ++i) keep[i] = (m >> i) & 1;
      state(keep, std::nullopt);
    }
  } else {
    for (int s = 0; s < random; ++s) {
      for (size_t i = 0; i < pending.size(); ++i) keep[i] = rng() & 1;
      state(keep, std::nullopt);
    }
  }
  keep.assign(pending.size(), true);
  for (size_t i = 0; i < pending.size(); ++i) {
    const bool last_of_device = i + 1 == pending.size() || live.log.ops[pending[i + 1]].device != live.log.ops[pending[i]].device;
    if (last_of_device) state(keep, test::Torn{pending[i], live.log.ops[pending[i]].data.size() / 512 / 2 + 1});
  }
}

// The crash states before every device operation of `live`'s workload (or,
// with `points`, before that many random ones, with fewer subsets each),
// recovered and checked.
void check_crash_states(const Geo& geo, const Live& live, bool skip_repair, const std::string& name, std::mt19937_64& rng,
                        Tally& tally, size_t points = 0) {
  const bool journal = live.cache != nullptr;
  std::vector<size_t> crash_points;
  for (size_t t = live.start; t <= live.log.ops.size(); ++t) crash_points.push_back(t);
  if (points && points < crash_points.size()) {
    std::shuffle(crash_points.begin(), crash_points.end(), rng);
    crash_points.resize(points);
  }
  for (size_t t : crash_points) {
    const auto allowed = allowed_values(live, t);
    for_each_crash_state(live, t, points ? 0 : 10, points ? 4 : 64, rng, [&](const std::vector<Image>& images) {
      const uint64_t state = tally.states++;
      const std::string where = fmt::format("RAID{} workload {} crash before op {} state {}", geo.level, name, t, state);

      Recovered r = recover(live, images, -1, skip_repair);
      if (!r.status.ok()) return tally.add("recovery refused: " + r.status.error().message, where);
      tally.add(check_reads(r, allowed), where);
      if (r.cache) {
        if (Status st = r.cache->drain(); !st.ok()) return tally.add("drain failed: " + st.error().message, where);
      }
      if (!parity_consistent(live, r)) tally.add("I3: parity does not match the data", where);
      if (state % 8 == 0 && journal) {  // I5: the same crash recovered again
        Recovered again = recover(live, images, -1, skip_repair);
        Recovered once = recover(live, images, -1, skip_repair);
        for (uint32_t m = 0; m < geo.members && again.status.ok() && once.status.ok(); ++m)
          if (!test::same_content(again.members[m]->image(), once.members[m]->image())) tally.add("I5: two recoveries differ", where);
      }
      if (state % 16 == 0 && journal) {  // a second crash at every I/O of the recovery itself
        tally.add(check_crash_during_recovery(live, images, allowed, tally.recovery_crashes),
                  where + " (crash during recovery)");
      }
      if (state % 4 == 0) {  // I4: a member lost before replay
        Recovered degraded = recover(live, images, int(state / 4 % geo.members), skip_repair);
        if (!degraded.status.ok()) return tally.add("degraded recovery refused: " + degraded.status.error().message, where);
        tally.add(check_reads(degraded, allowed), where + " (member lost)");
      }
    });
  }
}

// Every crash state of a workload of the enumerated kinds.
void check_workload(const Geo& geo, bool journal, bool skip_repair, const std::vector<Kind>& kinds, std::mt19937_64& rng,
                    Tally& tally, bool aged = false) {
  Live live(geo, journal, aged);
  for (size_t i = 0; i < kinds.size(); ++i) live.run(kinds[i], i);
  if (aged) tally.wrapped += live.wrapped();
  std::string name;
  for (Kind k : kinds) name += std::to_string(int(k));
  check_crash_states(geo, live, skip_repair, name, rng, tally);
}

// Crash, recover, write on, crash again. Every crash state of `first` (all
// subsets of up to 4 pending writes, else 8 random ones, and torn variants)
// is recovered and checked; then one of `seconds`, in turn, runs on the
// recovered devices, and every crash state of that run, its recovery
// included, is checked with what the first recovery read as the durable
// starting point. A record the first crash left behind a hole would come back
// here, over newer data, if recovery did not erase it (b6ffbd7).
void check_crash_and_continue(const Geo& geo, const std::vector<Kind>& first, const std::vector<std::vector<Kind>>& seconds,
                              std::mt19937_64& rng, Tally& tally, size_t& turn) {
  Live live(geo, true);
  for (size_t i = 0; i < first.size(); ++i) live.run(first[i], i);
  std::string name;
  for (Kind k : first) name += std::to_string(int(k));
  for (size_t t = live.start; t <= live.log.ops.size(); ++t) {
    const Expected allowed = allowed_values(live, t);
    for_each_crash_state(live, t, 4, 8, rng, [&](const std::vector<Image>& images) {
      const std::string where = fmt::format("RAID{} workload {} crash before op {}", geo.level, name, t);
      std::vector<Tuple> recovered;
      {
        Recovered r = recover(live, images, -1, false);
        ++tally.states;
        if (!r.status.ok()) return tally.add("recovery refused: " + r.status.error().message, where);
        if (std::string v = check_reads(r, allowed, &recovered); !v.empty()) return tally.add(v, where);
      }
      const std::vector<Kind>& second = seconds[turn++ % seconds.size()];
      Live next(geo, images, std::move(recovered));
      std::string then = name + " (crashed before op " + std::to_string(t) + ", recovered) then ";
      for (size_t i = 0; i < second.size(); ++i) {
        next.run(second[i], first.size() + i);
        then += std::to_string(int(second[i]));
      }
      check_crash_states(geo, next, false, then, rng, tally);
    });
  }
}

std::vector<std::vector<Kind>> all_workloads(size_t max_len) {
  std::vector<std::vector<Kind>> out{{}};
  std::vector<std::vector<Kind>> frontier{{}};
  for (size_t len = 1; len <= max_len; ++len) {
    std::vector<std::vector<Kind>> next;
    for (const auto& w : frontier)
      for (Kind k : kKinds) {
        auto v = w;
        v.push_back(k);
        next.push_back(v);
      }
    out.insert(out.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  out.erase(out.begin());
  return out;
}

}  // namespace

// R5CFS_CRASH_LONG=1: workloads of up to 4 operations on five geometries
// (RAID5 with 3, 4 and 5 members, RAID6 with 4 and 6), a run of hours.
TEST_CASE("write-back: every crash state of every workload of up to 3 operations keeps I1-I5") {
  const bool long_run = std::getenv("R5CFS_CRASH_LONG") != nullptr;
  const std::vector<Geo> geos = long_run ? std::vector<Geo>{{5, 3}, {5, 4}, {5, 5}, {6, 4}, {6, 6}}
                                         : std::vector<Geo>{{5, 3}, {5, 5}, {6, 6}};
  std::mt19937_64 rng(20261125);
  uint64_t total = 0;
  const auto started = std::chrono::steady_clock::now();
  for (Geo geo : geos) {
    Tally tally;
    for (const auto& w : all_workloads(long_run ? 4 : 3)) check_workload(geo, true, false, w, rng, tally);
    MESSAGE("RAID", geo.level, " with ", geo.members, " members: ", tally.states, " crash states checked (and ",
            tally.recovery_crashes, " crashes during their recovery), ", tally.violations, " violations");
    CHECK_MESSAGE(tally.violations == 0, tally.first);
    CHECK(tally.states > 1000);
    total += tally.states;
  }
  MESSAGE(total, " crash states in ",
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count(), " s");
}

TEST_CASE("write-back: crash states of workloads whose records wrap around the ring over the previous lap") {
  std::mt19937_64 rng(20261126);
  const bool long_run = std::getenv("R5CFS_CRASH_LONG") != nullptr;
  for (Geo geo : long_run ? std::vector<Geo>{{5, 4}, {6, 4}, {6, 6}} : std::vector<Geo>{{5, 4}}) {
    Tally tally;
    const auto workloads = all_workloads(2);
    for (const auto& w : workloads) check_workload(geo, true, false, w, rng, tally, /*aged=*/true);
    MESSAGE("RAID", geo.level, " with ", geo.members, " members, ", tally.wrapped, " of ", workloads.size(),
            " workloads wrapped the log: ", tally.states, " crash states, ", tally.violations, " violations");
    CHECK_MESSAGE(tally.violations == 0, tally.first);
    CHECK(tally.states > 500);
    CHECK(tally.wrapped > workloads.size() / 2);
  }
}

// Flushes without a checkpoint: stripes on the members but not synced there,
// then written again (a new generation of the row in the log) and flushed
// again, before a checkpoint, a drain or a crash. Recovery must repair every
// flushed generation in order: merging data after parity into the earlier
// flush's pages, as if that flush had been synced, fails this (4, 103 and 93
// violations on the three geometries), and so does a checkpoint that logs a
// done record for a row with newer data (32, 65 and 276).
TEST_CASE("write-back: crash states of rows flushed, written again and flushed again before a checkpoint") {
  std::mt19937_64 rng(20261129);
  using K = Kind;
  const std::vector<std::vector<Kind>> workloads = {
      {K::kPartial, K::kFlush, K::kOverwrite, K::kFsync},
      {K::kPartial, K::kFlush, K::kSubPage, K::kFlush, K::kFsync},
      {K::kFull, K::kFlush, K::kFull, K::kFlush, K::kPartial},
      {K::kSpan, K::kFlush, K::kPartial, K::kFlush, K::kOverwrite, K::kDrain},
      {K::kPartial, K::kFlush, K::kOverwrite, K::kFlush, K::kDrain},
      {K::kFull, K::kPartial, K::kFlush, K::kSpan, K::kFsync},
      {K::kSubPage, K::kFlush, K::kPartial, K::kFsync, K::kFlush, K::kDrain},
      {K::kPartial, K::kFlush, K::kOverwrite, K::kCheckpoint, K::kFsync},
      {K::kFull, K::kFlush, K::kFull, K::kCheckpoint, K::kFlush, K::kFsync},
      {K::kSpan, K::kFlush, K::kSubPage, K::kCheckpoint, K::kFlush, K::kCheckpoint}};
  for (Geo geo : {Geo{5, 3}, Geo{5, 4, 16384}, Geo{6, 6}}) {
    Tally tally;
    for (const auto& w : workloads) check_workload(geo, true, false, w, rng, tally);
    MESSAGE("RAID", geo.level, " with ", geo.members, " members, chunk ", geo.chunk / 1024, " KiB: ", tally.states,
            " crash states, ", tally.violations, " violations");
    CHECK_MESSAGE(tally.violations == 0, tally.first);
    CHECK(tally.states > 300);
  }
}

// A long random run: writes of any sector-aligned offset and length (up to
// two rows), fsyncs and drains, long enough for the log to wrap at least
// twice; crash states at random points. With 16 KiB chunks a row has four
// columns, and a write's dirty columns often form several runs, each logged
// as its own parity entry.
TEST_CASE("write-back: a long random workload wraps the log twice and every sampled crash state keeps I1-I5") {
  const bool long_run = std::getenv("R5CFS_CRASH_LONG") != nullptr;
  std::mt19937_64 rng(20261127);
  for (Geo geo : {Geo{5, 4}, Geo{6, 4}, Geo{5, 5, 16384}, Geo{6, 7}}) {
    Live live(geo, true);
    const uint64_t capacity = live.sb.geometry().capacity(), row = live.sb.geometry().row_data_bytes();
    const uint32_t journal_id = geo.members;
    uint64_t logged = 0;
    for (size_t i = 0; logged < 2 * kJournalBlocks * kBlock || i < 200; ++i) {
      const uint64_t dice = rng() % 100;
      if (dice < 8) {
        live.run(Kind::kFsync, i);
      } else if (dice < 11) {
        live.run(Kind::kDrain, i);
      } else if (dice < 16) {
        live.run(Kind::kFlush, i);
      } else {
        // Short writes on the wide-chunk geometry, so dirty columns are sparse.
        const uint64_t max_len = geo.chunk > kBlock ? 2 * kBlock : 2 * row;
        const uint64_t len = (1 + rng() % (max_len / kSector)) * kSector;
        live.write(Kind::kRandomWrite, i, rng() % ((capacity - len) / kSector + 1) * kSector, len);
      }
      logged = 0;
      for (const CrashLog::Op& op : live.log.ops)
        if (op.device == journal_id) logged += op.data.size();
    }
    Tally tally;
    check_crash_states(geo, live, false, "random", rng, tally, long_run ? 5000 : 150);
    MESSAGE("RAID", geo.level, " with ", geo.members, " members, chunk ", geo.chunk / 1024, " KiB: ", live.done.size(), " random operations, ",
            logged / kBlock, " journal blocks written (", logged / kBlock / (kJournalBlocks - 2), " laps), ", tally.states,
            " crash states, ", tally.violations, " violations");
    CHECK_MESSAGE(tally.violations == 0, tally.first);
    CHECK(logged >= 2 * (kJournalBlocks - 2) * kBlock);
  }
}

// R5CFS_CRASH_LONG=1: RAID6 too, and first runs of up to 3 operations.
TEST_CASE("write-back: crash, recover, write on and crash again keeps I1-I5 over both runs") {
  const bool long_run = std::getenv("R5CFS_CRASH_LONG") != nullptr;
  std::mt19937_64 rng(20261128);
  const std::vector<std::vector<Kind>> seconds = {
      {Kind::kPartial, Kind::kFsync}, {Kind::kSubPage, Kind::kFsync}, {Kind::kOverwrite, Kind::kFull, Kind::kFsync}, {Kind::kSpan, Kind::kDrain}};
  const auto started = std::chrono::steady_clock::now();
  for (Geo geo : long_run ? std::vector<Geo>{{5, 4}, {6, 4}, {5, 3}} : std::vector<Geo>{{5, 4}}) {
    Tally tally;
    size_t turn = 0;
    for (const auto& w : all_workloads(long_run ? 3 : 2)) check_crash_and_continue(geo, w, seconds, rng, tally, turn);
    MESSAGE("RAID", geo.level, " with ", geo.members, " members: ", turn, " recovered states written on, ", tally.states,
            " crash states, ", tally.violations, " violations");
    CHECK_MESSAGE(tally.violations == 0, tally.first);
    CHECK(tally.states > 10000);
  }
  MESSAGE(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count(), " s");
}

TEST_CASE("the checker finds the write hole of mode none and a recovery that skips the repair") {
  std::mt19937_64 rng(7);
  SUBCASE("mode none") {
    Tally tally;
    for (const auto& w : std::vector<std::vector<Kind>>{{Kind::kFull, Kind::kFsync, Kind::kPartial, Kind::kFsync},
                                                        {Kind::kPartial, Kind::kSpan, Kind::kFsync}})
      check_workload(Geo{5, 4}, false, false, w, rng, tally);
    MESSAGE("mode none: ", tally.states, " states, ", tally.violations, " violations; first: ", tally.first);
    CHECK(tally.violations > 0);
  }
  SUBCASE("write-back without the write-hole repair") {
    Tally tally;
    for (const auto& w : std::vector<std::vector<Kind>>{{Kind::kPartial, Kind::kDrain}, {Kind::kFull, Kind::kPartial, Kind::kDrain}})
      check_workload(Geo{5, 4}, true, true, w, rng, tally);
    MESSAGE("skipped repair: ", tally.states, " states, ", tally.violations, " violations; first: ", tally.first);
    CHECK(tally.violations > 0);
  }
}
