// Crash-state enumeration (issue 4, first part): run small workloads on the
// real journaled cache and array over CrashDevices, then, for a crash before
// every device operation, rebuild what the devices may hold (their synced
// writes plus every subset of the unsynced ones, or 64 random subsets when
// more than 8 are pending, plus torn variants), recover in-process, and check
// DESIGN §4's invariants:
//   I1 every write completed before a completed fsync (or drain) reads back;
//   I2 every block reads its old or a newer written content, never garbage;
//   I3 after recovery and a drain, P (and Q) match the data of every row;
//   I4 I1-I2 hold when a member is lost before replay (and, by I3, after it);
//   I5 recovering the same crash image twice gives identical members;
// and every 16th state is crashed again at each I/O of its own recovery.
// The checker must be able to fail: mode none and a recovery without the
// write-hole repair are run too and must show violations.
// Block-granular workloads (whole 4 KiB pages, each write a unique tag);
// sub-page writes are covered by the model tests of journaled_cache_test.
#include <doctest/doctest.h>

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

constexpr uint32_t kChunk = 4096;
constexpr uint64_t kRows = 8;
constexpr uint64_t kJournalBlocks = 2048;  // the least RAID6 with 4 KiB chunks accepts
constexpr size_t kBlock = 4096;

enum class Kind { kFull, kPartial, kSpan, kOverwrite, kFsync, kDrain };
constexpr Kind kKinds[] = {Kind::kFull, Kind::kPartial, Kind::kSpan, Kind::kOverwrite, Kind::kFsync, Kind::kDrain};

struct Done {  // one workload operation as it happened
  Kind kind;
  uint64_t first_block = 0, blocks = 0;
  size_t start = 0, end = 0;  // log indices around it
};

uint64_t tag(size_t op, uint64_t block) { return (uint64_t(op + 1) << 32) | block; }

struct Geo {
  uint32_t level, members;
};

format::MemberSuperblock superblock(const Geo& geo) {
  return test::test_superblock(geo.level, geometry::Layout::kLeftSymmetric, geo.members, kChunk, kRows);
}

// The array the workload runs on.
struct Live {
  CrashLog log;
  format::MemberSuperblock sb;
  std::unique_ptr<array::RaidArray> array;
  std::unique_ptr<JournaledCache> cache;
  std::vector<Done> done;
  size_t start = 0;

  Live(const Geo& geo, bool journal) : sb(superblock(geo)) {
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
    start = log.ops.size();
  }

  void run(Kind kind, size_t index) {
    const uint64_t d = sb.geometry().data_count();
    Done op{kind};
    op.start = log.ops.size();
    switch (kind) {
      case Kind::kFull: op.first_block = d, op.blocks = d; break;             // all of row 1
      case Kind::kPartial: op.first_block = 2 * d, op.blocks = 1; break;      // first block of row 2
      case Kind::kSpan: op.first_block = 3 * d - 1, op.blocks = 2; break;     // rows 2 and 3
      case Kind::kOverwrite: op.first_block = 2 * d, op.blocks = 1; break;    // row 2 again
      default: break;
    }
    if (op.blocks) {
      std::vector<std::byte> data(op.blocks * kBlock);
      for (uint64_t b = 0; b < op.blocks; ++b)
        for (size_t w = 0; w < kBlock; w += 8) {
          const uint64_t v = tag(index, op.first_block + b);
          std::memcpy(data.data() + b * kBlock + w, &v, 8);
        }
      Status st = cache ? cache->write(op.first_block * kBlock, data) : array->write(op.first_block * kBlock, data);
      REQUIRE(st.ok());
    } else if (kind == Kind::kFsync) {
      REQUIRE((cache ? cache->fsync() : array->sync()).ok());
    } else if (cache) {
      REQUIRE(cache->drain().ok());
    } else {
      REQUIRE(array->sync().ok());
    }
    op.end = log.ops.size();
    done.push_back(op);
  }
};

// What each block may read after a crash before log index t.
std::vector<std::set<uint64_t>> allowed_values(const Live& live, size_t t) {
  const uint64_t blocks = live.sb.geometry().capacity() / kBlock;
  size_t durable_before = 0;  // writes that ended by the start of the last completed sync point are durable
  for (const Done& op : live.done)
    if ((op.kind == Kind::kFsync || op.kind == Kind::kDrain) && op.end <= t) durable_before = op.start;
  std::vector<std::set<uint64_t>> allowed(blocks, std::set<uint64_t>{0});
  for (size_t i = 0; i < live.done.size(); ++i) {
    const Done& op = live.done[i];
    if (op.start >= t) break;
    for (uint64_t b = op.first_block; b < op.first_block + op.blocks; ++b) {
      if (op.end <= durable_before) allowed[b].clear();  // older values are no longer allowed
      allowed[b].insert(tag(i, b));
    }
  }
  return allowed;
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

// Violations found in one recovered state, as text (empty: none).
std::string check_reads(Recovered& r, const std::vector<std::set<uint64_t>>& allowed) {
  std::vector<std::byte> all(allowed.size() * kBlock);
  Status st = r.cache ? r.cache->read(0, all) : r.array->read(0, all);
  if (!st.ok()) return "read failed: " + st.error().message;
  for (size_t b = 0; b < allowed.size(); ++b) {
    uint64_t v;
    std::memcpy(&v, all.data() + b * kBlock, 8);
    for (size_t w = 8; w < kBlock; w += 8)
      if (std::memcmp(all.data() + b * kBlock + w, &v, 8) != 0) return fmt::format("I2: block {} is garbage", b);
    if (!allowed[b].count(v))
      return fmt::format("I{}: block {} reads tag {:x}, allowed {}", v == 0 || v < *allowed[b].rbegin() ? 1 : 2, b, v,
                         allowed[b].size());
  }
  return "";
}

bool parity_consistent(const Live& live, const Recovered& r) {
  const geometry::Geometry g = live.sb.geometry();
  const uint32_t d = g.data_count();
  std::vector<std::vector<std::byte>> chunks(g.members, std::vector<std::byte>(kChunk));
  for (uint64_t row = 0; row < g.rows; ++row) {
    const geometry::RowMap map = geometry::map_row(g, row);
    std::vector<std::byte*> blocks;
    for (uint32_t role = 0; role < g.members; ++role) {
      const uint32_t m = role < d ? map.data[role] : role == d ? map.p : map.q;
      if (!r.members[m]) return true;  // degraded: nothing to compare
      (void)r.members[m]->read(live.sb.data_offset + row * kChunk, chunks[role]);
      blocks.push_back(chunks[role].data());
    }
    if (!parity::verify(g.parity_count(), blocks, kChunk)) return false;
  }
  return true;
}

// Recovers `images` on CrashDevices, then crashes that recovery before each
// of its own device operations (keeping all or none of its unsynced writes)
// and recovers again: the result must still satisfy `allowed`.
std::string check_crash_during_recovery(const Live& live, const std::vector<Image>& images,
                                        const std::vector<std::set<uint64_t>>& allowed, uint64_t& states) {
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
  uint64_t states = 0, violations = 0, recovery_crashes = 0;
  std::string first;
  void add(const std::string& v, const std::string& where) {
    if (v.empty()) return;
    if (violations++ == 0) first = where + ": " + v;
  }
};

// Every crash state of one workload, recovered and checked.
void check_workload(const Geo& geo, bool journal, bool skip_repair, const std::vector<Kind>& kinds, std::mt19937_64& rng,
                    Tally& tally) {
  Live live(geo, journal);
  for (size_t i = 0; i < kinds.size(); ++i) live.run(kinds[i], i);
  const uint32_t devices = geo.members + (journal ? 1 : 0);
  std::string name;
  for (Kind k : kinds) name += std::to_string(int(k));

  for (size_t t = live.start; t <= live.log.ops.size(); ++t) {
    std::vector<size_t> pending;
    for (uint32_t dev = 0; dev < devices; ++dev)
      for (size_t i : test::pending_writes(live.log, dev, t)) pending.push_back(i);
    // Subsets of the pending writes (bit i: keep pending[i]), then torn variants.
    std::vector<std::vector<bool>> subsets;
    if (pending.size() <= 8) {
      for (uint32_t m = 0; m < (1u << pending.size()); ++m) {
        std::vector<bool> keep(pending.size());
        for (size_t i = 0; i < pending.size(); ++i) keep[i] = (m >> i) & 1;
        subsets.push_back(keep);
      }
    } else {
      for (int s = 0; s < 64; ++s) {
        std::vector<bool> keep(pending.size());
        for (size_t i = 0; i < pending.size(); ++i) keep[i] = rng() & 1;
        subsets.push_back(keep);
      }
    }
    const auto allowed = allowed_values(live, t);
    auto one_state = [&](const std::vector<bool>& keep, std::optional<test::Torn> torn) {
      std::vector<Image> images;
      auto kept = [&](size_t op) {
        auto it = std::find(pending.begin(), pending.end(), op);
        return it != pending.end() && keep[size_t(it - pending.begin())];
      };
      for (uint32_t dev = 0; dev < devices; ++dev) images.push_back(test::crash_image(live.log, dev, t, kept, torn));
      const uint64_t state = tally.states++;
      const std::string where = fmt::format("RAID{} workload {} crash before op {} state {}", geo.level, name, t, state);

      Recovered r = recover(live, images, -1, skip_repair);
      if (!r.status.ok()) return tally.add("recovery refused: " + r.status.error().message, where);
      tally.add(check_reads(r, allowed), where);
      if (r.cache) {
        std::map<uint32_t, Image> first;
        if (state % 8 == 0)
          for (uint32_t m = 0; m < geo.members; ++m) first[m] = r.members[m]->image();
        if (Status st = r.cache->drain(); !st.ok()) return tally.add("drain failed: " + st.error().message, where);
      }
      if (!parity_consistent(live, r)) tally.add("I3: parity does not match the data", where);
      if (state % 8 == 0 && journal) {  // I5: the same crash recovered again
        Recovered again = recover(live, images, -1, skip_repair);
        Recovered once = recover(live, images, -1, skip_repair);
        for (uint32_t m = 0; m < geo.members && again.status.ok() && once.status.ok(); ++m)
          if (again.members[m]->image() != once.members[m]->image()) tally.add("I5: two recoveries differ", where);
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
    };
    for (const auto& keep : subsets) one_state(keep, std::nullopt);
    // A torn write: the last pending write of each device keeps half its sectors.
    for (size_t i = 0; i < pending.size(); ++i) {
      const bool last_of_device = i + 1 == pending.size() || live.log.ops[pending[i + 1]].device != live.log.ops[pending[i]].device;
      if (!last_of_device) continue;
      std::vector<bool> keep(pending.size(), true);
      one_state(keep, test::Torn{pending[i], live.log.ops[pending[i]].data.size() / 512 / 2 + 1});
    }
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
                                         : std::vector<Geo>{{5, 4}, {6, 4}};
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
