// The member rebuild of `r5cfs replace`, over in-memory members: a failed
// slot is reconstructed onto a new device row by row while the array keeps
// taking writes (MemberSet's rebuild watermark, RaidArray::rebuild_rows and
// the writes to rows already rebuilt, engine::Rebuilder's thread), the
// rebuild is abandoned when the new device fails, it resumes from the
// position recorded in the superblocks (by hand and through assembly).
// Three cases pin down bugs this suite found and that are fixed (each named
// in a "Was a bug" comment above it): a failed sync at finish_rebuild not
// recorded in the superblocks, and two power-loss windows that lost data the
// new member was trusted with (sync() skipped it; the position was recorded
// before it was synced).
//
// The yardstick everywhere is a model byte array of what the array must read
// back. After a rebuild the new member is checked three ways: chunk by chunk
// against what the model implies for its slot, through parity consistency of
// every row, and by reading the array with *other* members lost, so that the
// data can only come out right if the new member holds it.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "array/assembly.h"
#include "engine/rebuilder.h"
#include "support/fault_device.h"
#include "support/memory_array.h"

using namespace r5;
using array::MemberSet;
using test::Fault;
using test::FaultKind;

namespace {

constexpr uint32_t kChunk = 16384;
// Not a multiple of the Rebuilder's batch (1 MiB / chunk = 64 rows): its last
// batch is a short one.
constexpr uint64_t kRows = 300;

struct Case {
  const char* name;
  uint32_t level;
  uint32_t members;
  uint32_t slot;  // the slot that fails and is rebuilt
};
constexpr Case kCases[] = {
    {"RAID5 4+1", 5, 5, 1},
    {"RAID6 4+2", 6, 6, 4},
};

// ---- Devices ---------------------------------------------------------------

// A member or new device: a MemoryDevice with FaultDevice's programmable
// faults and its record of what a power loss would leave (durable()), plus a
// hook that runs before every write. The hook is how a test stops the rebuild
// at a chosen row (a gate) or captures a crash image at a chosen write; it is
// set while no I/O runs and only read afterwards.
class Disk final : public io::Device {
 public:
  Disk(std::string name, uint64_t size) : dev_(std::move(name), size, /*seed=*/7) {}

  const std::string& name() const override { return dev_.name(); }
  uint64_t size() const override { return dev_.size(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return dev_.read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    if (before_write) before_write(offset, buf.size());
    return dev_.write(offset, buf);
  }
  Status sync() override { return dev_.sync(); }

  test::FaultDevice& fault() { return dev_; }
  // A dead disk: every later read, write and sync fails.
  void kill() { dev_.arm(Fault{.kind = FaultKind::kGone, .nth = 1, .persistent = true}); }

  std::function<void(uint64_t offset, size_t len)> before_write;

 private:
  test::FaultDevice dev_;
};

format::MemberSuperblock superblock_of(const std::vector<std::byte>& image) {
  auto sb = format::decode_member_superblock(std::span<const std::byte, format::kSuperblockSize>(image.data(), format::kSuperblockSize));
  REQUIRE_MESSAGE(sb.ok(), sb.error().message);
  return *sb;
}
// What sector 0 of the device holds now (straight from memory: a dead disk too).
format::MemberSuperblock on_disk(Disk& d) { return superblock_of(d.fault().snapshot()); }

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(rng());
  return v;
}

// ---- The rig: an array over Disks, a model, and the rebuild's new device ----

struct Rig {
  const Case c;
  format::MemberSuperblock sb;  // as created
  geometry::Geometry g;
  std::vector<Disk*> disks;  // current device of each slot (owned by the array; null when missing)
  Disk* target = nullptr;    // the rebuild's new device (owned by the array)
  std::unique_ptr<array::RaidArray> array;
  std::vector<std::byte> model;
  std::mt19937_64 rng;

  explicit Rig(const Case& c_, uint64_t seed = 1)
      : c(c_), sb(test::test_superblock(c.level, geometry::Layout::kLeftSymmetric, c.members, kChunk, kRows)),
        g(sb.geometry()), rng(seed) {
    std::vector<array::MemberSlot> slots;
    for (uint32_t i = 0; i < c.members; ++i) {
      auto d = std::make_unique<Disk>("m" + std::to_string(i), device_size());
      disks.push_back(d.get());
      slots.push_back({"m" + std::to_string(i), std::move(d)});
    }
    array = std::make_unique<array::RaidArray>(std::make_unique<MemberSet>(sb, std::move(slots)));
    // As after r5cfs create, every member carries a superblock: the failed
    // member's then stays behind at events below the rebuild's start.
    REQUIRE(members().write_superblocks(format::ArrayState::kClean).ok());
    model = random_bytes(rng, array->capacity());
    REQUIRE(array->write(0, model).ok());
    REQUIRE(array->sync().ok());
  }

  MemberSet& members() { return array->members(); }
  uint64_t device_size() const { return sb.data_offset + sb.data_size; }
  uint64_t row_bytes() const { return g.row_data_bytes(); }
  uint32_t half() const { return uint32_t(kRows / 2); }

  // Kills the member and records its failure, as the array does on an I/O error.
  void fail(uint32_t slot) {
    disks[slot]->kill();
    Status st = members().mark_failed(slot, "failed by the test");
    REQUIRE_MESSAGE(st.ok(), st.error().message);
    CHECK(members().device(slot) == nullptr);
  }

  // Fails `slot` and starts rebuilding it onto a fresh, zeroed device ("new").
  void begin(uint32_t slot) {
    fail(slot);
    auto d = std::make_unique<Disk>("new", device_size());
    target = d.get();
    Status st = members().begin_rebuild(slot, std::move(d), "new");
    REQUIRE_MESSAGE(st.ok(), st.error().message);
  }

  // rebuild_rows over [from, to) in batches of `step` (odd on purpose: batch
  // edges fall anywhere relative to the writes).
  void rebuild(uint64_t from, uint64_t to, uint32_t step = 37) {
    REQUIRE(members().rebuild_row() == from);
    for (uint64_t row = from; row < to;) {
      const uint32_t n = uint32_t(std::min<uint64_t>(step, to - row));
      Status st = array->rebuild_rows(row, n);
      REQUIRE_MESSAGE(st.ok(), st.error().message);
      row += n;
      REQUIRE(members().rebuild_row() == row);
    }
  }

  // One write of random bytes through RaidArray::write, mirrored in the model.
  void write(uint64_t offset, size_t len) {
    auto data = random_bytes(rng, len);
    Status st = array->write(offset, data);
    REQUIRE_MESSAGE(st.ok(), st.error().message);
    std::memcpy(model.data() + offset, data.data(), len);
  }

  // Writes around the rebuild position `pos` (a row) and all over the array:
  // the rows below `pos` are the ones whose new member must be kept right by
  // the write path itself (rebuild_rows is past them).
  void scatter_writes(uint64_t pos, int random_count) {
    const uint64_t rb = row_bytes(), cap = array->capacity();
    REQUIRE(pos >= 2);
    REQUIRE(pos + 2 <= kRows);
    write((pos - 1) * rb + 5000, rb - 5000 + 7000);  // across the position, unaligned
    write((pos - 2) * rb + 123, 3 * rb);             // rows pos-2 .. pos+1
    write((pos - 1) * rb + 3 * kChunk + 100, 900);   // sub-page, just below
    write(pos * rb + 17, 4000);                      // sub-page, just above
    write(0, rb);                                    // a whole row, far below
    write((pos - 1) * rb, rb);                       // the last rebuilt row, whole
    write(cap - rb - 1000, rb + 1000);               // the end
    for (int i = 0; i < random_count; ++i) {
      uint64_t off = rng() % cap;
      if (rng() % 3 == 0) off = off / 4096 * 4096;
      const uint64_t max_len = std::min<uint64_t>(cap - off, rng() % 2 ? 3 * rb : 9000);
      write(off, size_t(1 + rng() % max_len));
    }
  }

  // The flusher's path: RaidArray::write_rows with data and parity computed
  // here, for the page window [lo, hi) of each row, every role an extent.
  void write_rows(const std::vector<uint64_t>& rows, uint32_t lo, uint32_t hi) {
    const uint32_t d = g.data_count(), pc = g.parity_count(), len = hi - lo;
    AlignedBuffer buf(rows.size() * g.members * len);
    std::vector<array::RowWrite> writes(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      array::RowWrite& w = writes[i];
      w.row = rows[i];
      w.lo = lo;
      for (uint32_t r = 0; r < g.members; ++r) {
        w.block[r] = buf.data() + (i * g.members + r) * len;
        w.extents.push_back({r, lo, hi});
      }
      for (uint32_t k = 0; k < d; ++k) {
        auto data = random_bytes(rng, len);
        std::memcpy(w.block[k], data.data(), len);
        std::memcpy(model.data() + geometry::array_offset(g, w.row, k) + lo, data.data(), len);
      }
      parity::compute({w.block, d}, w.block[d], pc == 2 ? w.block[d + 1] : nullptr, len);
    }
    Status st = array->write_rows(writes);
    REQUIRE_MESSAGE(st.ok(), st.error().message);
  }

  // Reads the whole array and compares with the model.
  void check_model(const char* when) {
    std::vector<std::byte> got(model.size());
    Status st = array->read(0, got);
    REQUIRE_MESSAGE(st.ok(), std::string(when), ": ", st.error().message);
    auto [a, b] = std::mismatch(got.begin(), got.end(), model.begin());
    const uint64_t at = uint64_t(a - got.begin());
    CHECK_MESSAGE(a == got.end(), std::string(when), ": the array differs from the model first at byte ", at, " (row ",
                  at / row_bytes(), ")");
  }

  // What the chunk of `slot` in `row` must hold: its data from the model, or
  // P or Q of the model's data.
  std::vector<std::byte> expected_chunk(uint32_t slot, uint64_t row) const {
    const uint32_t d = g.data_count();
    const geometry::RowMap map = geometry::map_row(g, row);
    AlignedBuffer buf(size_t(d + 2) * kChunk);
    std::byte* blocks[geometry::kMaxMembers];
    for (uint32_t r = 0; r < d + 2; ++r) blocks[r] = buf.data() + size_t(r) * kChunk;
    for (uint32_t k = 0; k < d; ++k) std::memcpy(blocks[k], model.data() + geometry::array_offset(g, row, k), kChunk);
    parity::compute({blocks, d}, blocks[d], g.parity_count() == 2 ? blocks[d + 1] : nullptr, kChunk);
    uint32_t role = 0;
    if (slot == map.p) {
      role = d;
    } else if (slot == map.q) {
      role = d + 1;
    } else {
      while (map.data[role] != slot) ++role;
    }
    return {blocks[role], blocks[role] + kChunk};
  }

  // Rows in [0, upto) whose chunk on `dev` is not what slot `slot` must hold.
  std::vector<uint64_t> wrong_rows(Disk& dev, uint32_t slot, uint64_t upto) const {
    const auto snap = dev.fault().snapshot();
    std::vector<uint64_t> bad;
    for (uint64_t row = 0; row < upto; ++row) {
      const auto want = expected_chunk(slot, row);
      if (std::memcmp(snap.data() + sb.data_offset + row * kChunk, want.data(), kChunk) != 0) bad.push_back(row);
    }
    return bad;
  }

  // P (and Q) of every row match the data on the slots' current devices.
  bool parity_consistent() const {
    const uint32_t roles = g.members, d = g.data_count();
    std::vector<std::vector<std::byte>> snaps;
    for (Disk* dev : disks) snaps.push_back(dev->fault().snapshot());
    AlignedBuffer buf(size_t(roles) * kChunk);
    for (uint64_t row = 0; row < kRows; ++row) {
      const geometry::RowMap map = geometry::map_row(g, row);
      std::vector<std::byte*> blocks;
      for (uint32_t r = 0; r < roles; ++r) {
        const uint32_t m = r < d ? map.data[r] : r == d ? map.p : map.q;
        std::byte* dst = buf.data() + size_t(r) * kChunk;
        std::memcpy(dst, snaps[m].data() + sb.data_offset + row * kChunk, kChunk);
        blocks.push_back(dst);
      }
      if (!parity::verify(g.parity_count(), blocks, kChunk)) return false;
    }
    return true;
  }

  // Takes over an assembled array (after a restart), as Engine::open does.
  void adopt(array::Assembled a) {
    target = static_cast<Disk*>(a.rebuilding.device.get());
    for (uint32_t s = 0; s < c.members; ++s) disks[s] = static_cast<Disk*>(a.slots[s].device.get());
    array.reset();
    array = std::make_unique<array::RaidArray>(
        std::make_unique<MemberSet>(a.sb, std::move(a.slots), false, std::move(a.rebuilding)));
  }
};

// The checks after a completed rebuild of `slot` onto r.target: the slot is
// active on the new device, which holds exactly what the model implies, and
// the array reads the model with every member, then again after losing as
// many other members as parity covers, one at a time (the reads must then
// reconstruct from the new member, data and P/Q alike).
void verify_rebuilt(Rig& r, uint32_t slot) {
  MemberSet& m = r.members();
  CHECK(m.rebuild_slot() == MemberSet::kNoRebuild);
  CHECK(m.rebuild_device() == nullptr);
  CHECK(((m.failed_mask() >> slot) & 1) == 0);
  REQUIRE(m.device(slot) == r.target);
  CHECK(m.path(slot) == "new");
  CHECK(!m.superblock().rebuild);
  const format::MemberSuperblock sb = on_disk(*r.target);
  CHECK(sb.slot == slot);
  CHECK(!sb.rebuild);
  CHECK(sb.failed_mask == m.failed_mask());
  CHECK(sb.events == m.superblock().events);

  r.disks[slot] = r.target;
  const auto bad = r.wrong_rows(*r.target, slot, kRows);
  CHECK_MESSAGE(bad.empty(), bad.size(), " rows wrong on the new member, the first ", (bad.empty() ? 0 : bad[0]));
  if (m.failed_count() == 0) CHECK(r.parity_consistent());
  r.check_model("after the rebuild");

  for (uint32_t i = 1; m.failed_count() < r.g.parity_count(); ++i) {
    const uint32_t other = (slot + i) % r.c.members;
    if (m.device(other) == nullptr) continue;
    CAPTURE(other);
    r.fail(other);
    r.check_model("with another member lost");
  }
}

// Superblocks of the active members as on their devices: the same rebuild
// position (or none) everywhere.
void check_active_superblocks(Rig& r, std::optional<format::RebuildPosition> want) {
  MemberSet& m = r.members();
  for (uint32_t i = 0; i < r.c.members; ++i) {
    if (m.device(i) == nullptr) continue;
    CAPTURE(i);
    const format::MemberSuperblock sb = on_disk(*r.disks[i]);
    CHECK(sb.slot == i);
    CHECK(sb.events == m.superblock().events);
    CHECK(sb.failed_mask == m.failed_mask());
    CHECK(sb.rebuild.has_value() == want.has_value());
    if (sb.rebuild && want) {
      CHECK(sb.rebuild->slot == want->slot);
      CHECK(sb.rebuild->next_row == want->next_row);
      CHECK(sb.rebuild->start_events == want->start_events);
    }
  }
}

// Polls until the rebuilder's thread has ended (no timing is asserted).
engine::Rebuilder::Progress wait_ended(engine::Rebuilder& rb) {
  for (;;) {
    auto p = rb.progress();
    if (p.state != engine::JobState::kRunning) return p;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// ---- Assembly after a restart ----------------------------------------------

config::Config assembly_config(const Case& c) {
  config::Config cfg;
  cfg.file = "/nonexistent/rebuild-test.toml";  // only named in messages
  cfg.array.name = "test";
  cfg.array.level = c.level;
  cfg.array.layout = geometry::Layout::kLeftSymmetric;
  cfg.array.chunk_size = kChunk;
  for (uint32_t i = 0; i < c.members; ++i) cfg.array.members.push_back("/dev/test-m" + std::to_string(i));
  cfg.journal.mode = config::JournalMode::kNone;
  return cfg;
}

// examine() as it would find devices holding `images` at the configured
// positions; assemble() over them.
Result<array::Assembled> assemble_images(const Case& c, const std::vector<std::vector<std::byte>>& images) {
  const config::Config cfg = assembly_config(c);
  std::vector<array::ExaminedMember> examined;
  for (size_t i = 0; i < images.size(); ++i) {
    array::ExaminedMember m;
    m.path = cfg.array.members[i].string();
    auto d = std::make_unique<Disk>(m.path, images[i].size());
    d->fault().load(images[i]);
    m.found = array::ExaminedMember::Found::kSuperblock;
    m.sb = superblock_of(images[i]);
    m.device_size = d->size();
    m.device = std::move(d);
    examined.push_back(std::move(m));
  }
  return array::assemble(cfg, std::move(examined));
}

bool has_notice(const array::Assembled& a, const std::string& text) {
  for (const auto& n : a.notices)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

// ---- 1. Rebuild with writes on both sides of the position ------------------

TEST_CASE("rebuild_rows with writes on both sides of the rebuild position") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    MemberSet& m = r.members();

    // Only a failed slot is rebuilt, and only one at a time.
    auto spare = std::make_unique<Disk>("spare", r.device_size());
    CHECK(!m.begin_rebuild(s, std::move(spare), "spare").ok());
    r.begin(s);
    CHECK(m.rebuild_slot() == s);
    CHECK(m.rebuild_row() == 0);
    CHECK(m.rebuild_device() == r.target);
    CHECK(m.rebuild_device(0) == nullptr);  // nothing is on it yet
    CHECK(m.rebuild_path() == "new");
    CHECK(!m.begin_rebuild(s, std::make_unique<Disk>("again", r.device_size()), "again").ok());
    CHECK(m.rebuild_device() == r.target);

    const uint32_t half = r.half();
    r.rebuild(0, half);
    CHECK(m.rebuild_device(half - 1) == r.target);
    CHECK(m.rebuild_device(half) == nullptr);
    CHECK(((m.failed_mask() >> s) & 1) == 1);  // failed until the end
    CHECK(r.wrong_rows(*r.target, s, half).empty());

    // Rows below `half` are on the new member: from here only the write path
    // keeps them right there. Without its write to the new device these
    // writes leave stale chunks below the position, which the checks below
    // and verify_rebuilt catch (the rows are never rebuilt again).
    r.scatter_writes(half, 150);
    r.write_rows({0, half - 1, half, kRows - 1}, 4096, 3 * 4096);
    r.write_rows({half - 2, half + 1}, 0, kChunk);
    const auto bad = r.wrong_rows(*r.target, s, half);
    CHECK_MESSAGE(bad.empty(), bad.size(), " rebuilt rows went stale on the new member, the first ",
                  (bad.empty() ? 0 : bad[0]));
    r.check_model("degraded, mid-rebuild");

    r.rebuild(half, kRows);
    CHECK(m.rebuild_slot() == s);  // still failed, until finish_rebuild
    Status st = r.array->finish_rebuild();
    REQUIRE_MESSAGE(st.ok(), st.error().message);
    CHECK(r.array->counters().rebuilt_rows == kRows);
    verify_rebuilt(r, s);
  }
}

TEST_CASE("RAID6 rebuild of one slot while a second member is failed too") {
  Rig r(kCases[1]);
  const uint32_t s = 1, other = 3;
  r.fail(other);
  r.begin(s);
  r.rebuild(0, r.half());
  r.scatter_writes(r.half(), 80);
  r.rebuild(r.half(), kRows);
  Status st = r.array->finish_rebuild();
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  CHECK(r.members().failed_mask() == uint64_t(1) << other);
  verify_rebuilt(r, s);  // then loses one more member (RAID6 survives two)
}

// ---- 2. The Rebuilder thread with concurrent writers -----------------------

TEST_CASE("Rebuilder thread with concurrent writers") {
  constexpr int kWriters = 3;
  constexpr int kMinWrites = 40;  // per writer, so that every one of them runs
  constexpr uint64_t kMainRows = 32;  // rows [0, kMainRows) belong to the main thread
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    const uint64_t rb = r.row_bytes();
    r.begin(s);

    // The gate holds the rebuilder at its write of row kRows / 2, inside
    // rebuild_rows (its batch's rows locked), so that writes provably run
    // while rows below and above the position coexist. Only the rebuilder
    // writes the new device at or above that row first: the write path
    // writes it only below the position.
    struct Gate {
      std::mutex mu;
      std::condition_variable cv;
      bool reached = false, open = false;
      uint64_t position = 0;
    } gate;
    std::atomic<bool> gate_fired{false};
    const uint64_t gate_offset = r.sb.data_offset + (kRows / 2) * kChunk;
    r.target->before_write = [&](uint64_t offset, size_t) {
      if (offset < gate_offset || gate_fired.exchange(true)) return;
      std::unique_lock lock(gate.mu);
      gate.reached = true;
      gate.position = r.members().rebuild_row();
      gate.cv.notify_all();
      gate.cv.wait(lock, [&] { return gate.open; });
    };
    auto open_gate = [&] {
      std::lock_guard lock(gate.mu);
      gate.open = true;
      gate.cv.notify_all();
    };

    // Writers own disjoint row ranges above kMainRows (so the model needs
    // no lock); their writes span rows, and so the position as it passes.
    std::atomic<bool> rebuild_ended{false};
    std::mutex errors_mu;
    std::vector<std::string> errors;
    std::atomic<int> total_writes{0};
    std::vector<std::thread> writers;
    // Destroyed last (after the gate opens and the rebuilder stops), even
    // when a REQUIRE throws: the writers end and are joined.
    struct JoinOnExit {
      std::atomic<bool>& ended;
      std::vector<std::thread>& threads;
      ~JoinOnExit() {
        ended = true;
        for (auto& t : threads)
          if (t.joinable()) t.join();
      }
    } join_on_exit{rebuild_ended, writers};
    for (int t = 0; t < kWriters; ++t) {
      const uint64_t lo = (kMainRows + (kRows - kMainRows) * t / kWriters) * rb;
      const uint64_t hi = (kMainRows + (kRows - kMainRows) * (t + 1) / kWriters) * rb;
      writers.emplace_back([&, lo, hi, t] {
        std::mt19937_64 rng(100 + t);
        for (int n = 0; !rebuild_ended || n < kMinWrites; ++n) {
          const uint64_t off = lo + rng() % (hi - lo);
          const size_t len = size_t(1 + rng() % std::min<uint64_t>(hi - off, rng() % 2 ? 3 * rb : 9000));
          auto data = random_bytes(rng, len);
          if (Status st = r.array->write(off, data); !st.ok()) {
            std::lock_guard lock(errors_mu);
            errors.push_back(st.error().message);
            return;
          }
          std::memcpy(r.model.data() + off, data.data(), len);
          ++total_writes;
        }
      });
    }

    engine::Rebuilder rebuilder(*r.array, /*speed_max=*/0, "test");
    // Declared after the rebuilder, so destroyed before it: a failed
    // REQUIRE never leaves its thread parked at the gate while stop() joins.
    struct OpenOnExit {
      std::function<void()> f;
      ~OpenOnExit() { f(); }
    } open_on_exit{open_gate};
    Status st = rebuilder.start();
    REQUIRE_MESSAGE(st.ok(), st.error().message);
    CHECK(!rebuilder.start().ok());  // one run at a time

    {
      std::unique_lock lock(gate.mu);
      while (!gate.reached && rebuilder.progress().state == engine::JobState::kRunning)
        gate.cv.wait_for(lock, std::chrono::milliseconds(10));
    }
    REQUIRE(gate.reached);
    // The rebuilder is parked mid-rebuild: rows below the position go to the
    // new member by the write path (these, deterministically) and those at
    // or above it do not.
    CHECK(r.members().rebuild_row() == gate.position);
    CHECK(gate.position <= kRows / 2);
    const uint64_t main_rows = std::min(kMainRows, gate.position);
    if (main_rows == 0) MESSAGE("the rebuilder's batch starts at row 0: no main-thread writes below the position");
    for (int i = 0; main_rows > 0 && i < 60; ++i) {
      const uint64_t off = r.rng() % (main_rows * rb);
      r.write(off, size_t(1 + r.rng() % std::min<uint64_t>(main_rows * rb - off, 2 * rb)));
    }
    CHECK(r.wrong_rows(*r.target, s, main_rows).empty());
    open_gate();

    const auto p = wait_ended(rebuilder);
    rebuild_ended = true;
    for (auto& w : writers) w.join();
    r.target->before_write = nullptr;
    CHECK_MESSAGE(errors.empty(), (errors.empty() ? std::string() : errors[0]));
    CHECK(total_writes >= kWriters * kMinWrites);
    CHECK(p.state == engine::JobState::kDone);
    CHECK(p.error == "");
    CHECK(p.slot == s);
    CHECK(p.path == "new");
    CHECK(p.start_row == 0);
    CHECK(p.next_row == kRows);
    CHECK(p.rows == kRows);
    verify_rebuilt(r, s);
  }
}

// ---- 3. The new device fails: the rebuild is abandoned ---------------------

// After an abandoned rebuild: the slot is failed, nothing refers to the new
// device any more (in memory and in the active superblocks), and the array
// still reads the model, degraded. Later writes never reach the new device.
void check_abandoned(Rig& r, uint32_t s) {
  MemberSet& m = r.members();
  CHECK(m.rebuild_slot() == MemberSet::kNoRebuild);
  CHECK(m.rebuild_device() == nullptr);
  CHECK(m.rebuild_device(0) == nullptr);
  CHECK(((m.failed_mask() >> s) & 1) == 1);
  CHECK(m.device(s) == nullptr);
  CHECK(!m.superblock().rebuild);
  check_active_superblocks(r, std::nullopt);
  r.check_model("after the rebuild was abandoned");
  // Disarmed, so that a write still sent to the abandoned device would land
  // (and be counted) instead of failing unseen.
  r.target->fault().disarm();
  const size_t before = r.target->fault().writes().size();
  r.scatter_writes(r.half(), 30);
  CHECK(r.target->fault().writes().size() == before);
  r.check_model("writes after the rebuild was abandoned");
}

TEST_CASE("a write error on the new device abandons the rebuild") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    const uint32_t half = r.half();
    const uint64_t rebuilt_end = r.sb.data_offset + uint64_t(half) * kChunk;
    r.begin(s);
    r.rebuild(0, half);

    SUBCASE("in rebuild_rows") {
      r.target->fault().arm(Fault{.kind = FaultKind::kWriteEio, .nth = 1, .persistent = true, .from = rebuilt_end});
      CHECK(!r.array->rebuild_rows(half, 10).ok());
      CHECK(r.members().rebuild_row() == half);  // the position did not move past the failure
      check_abandoned(r, s);
      // The slot can be rebuilt again, onto another device.
      auto d = std::make_unique<Disk>("new", r.device_size());
      r.target = d.get();
      REQUIRE(r.members().begin_rebuild(s, std::move(d), "new").ok());
      r.rebuild(0, kRows);
      REQUIRE(r.array->finish_rebuild().ok());
      verify_rebuilt(r, s);
    }
    SUBCASE("in RaidArray::write to a rebuilt row") {
      r.target->fault().arm(Fault{.kind = FaultKind::kWriteEio, .nth = 1, .persistent = true, .from = r.sb.data_offset});
      // A row above the position is not on the new device: no write to it.
      r.write(uint64_t(half + 3) * r.row_bytes() + 100, 5000);
      CHECK(r.members().rebuild_slot() == s);
      CHECK(r.target->fault().fired() == 0);
      r.write(uint64_t(half - 3) * r.row_bytes() + 100, 2 * r.row_bytes());  // succeeds: the slot was failed already
      CHECK(r.target->fault().fired() >= 1);
      check_abandoned(r, s);
    }
    SUBCASE("in RaidArray::write_rows to a rebuilt row") {
      r.target->fault().arm(Fault{.kind = FaultKind::kWriteEio, .nth = 1, .persistent = true, .from = r.sb.data_offset});
      r.write_rows({half + 5}, 0, kChunk);
      CHECK(r.members().rebuild_slot() == s);
      r.write_rows({half - 5, half + 6}, 4096, 8192);
      CHECK(r.target->fault().fired() >= 1);
      check_abandoned(r, s);
    }
    SUBCASE("in the Rebuilder thread") {
      r.target->fault().arm(
          Fault{.kind = FaultKind::kWriteEio, .nth = 1, .persistent = true, .from = rebuilt_end + 40 * kChunk});
      engine::Rebuilder rebuilder(*r.array, 0, "test");
      REQUIRE(rebuilder.start().ok());
      const auto p = wait_ended(rebuilder);
      CHECK(p.state == engine::JobState::kFailed);
      CHECK(p.error != "");
      CHECK(p.start_row == half);
      CHECK(p.next_row < kRows);
      check_abandoned(r, s);
      CHECK(!rebuilder.start().ok());  // nothing left to resume
    }
  }
}

// Was a bug (src/array/member_set.cc, MemberSet::finish_rebuild): when the new
// device's fdatasync fails, finish_rebuild calls abort_rebuild_locked() and
// returns without write_superblocks_locked(), unlike every other abort path.
// The rebuild is forgotten in memory only: the active members' superblocks
// still carry `rebuild` (slot, next_row, start_events), so after a restart
// assembly finds the new device again (events >= start_events) and resumes
// the rebuild onto a device whose sync failed, trusting every row below the
// saved position. engine::Rebuilder::run takes the same path (finish fails
// -> kFailed, without a further abort_rebuild).
TEST_CASE("a failed sync of the new device at finish_rebuild abandons the rebuild") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    r.begin(s);
    r.rebuild(0, kRows);
    r.target->fault().arm(Fault{.kind = FaultKind::kSyncEio, .nth = 1});
    CHECK(!r.array->finish_rebuild().ok());
    check_abandoned(r, s);
    // The consequence: after a restart, assembly must not resume the rebuild
    // onto the device whose sync failed.
    std::vector<std::vector<std::byte>> images;
    for (uint32_t i = 0; i < c.members; ++i) images.push_back((i == s ? r.target : r.disks[i])->fault().snapshot());
    auto a = assemble_images(c, images);
    REQUIRE_MESSAGE(a.ok(), a.error().message);
    CHECK(a->roles[s] == array::MemberRole::kFailed);
    CHECK(a->rebuilding.device == nullptr);
  }
}

// ---- 4. Resuming from the recorded position --------------------------------

TEST_CASE("a rebuild resumes from the position saved in the superblocks") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    const uint64_t third = kRows / 3;
    Disk* old = r.disks[s];
    const uint64_t old_events = on_disk(*old).events;
    r.begin(s);
    const format::MemberSuperblock begun = r.members().superblock();
    REQUIRE(begun.rebuild);
    const uint64_t start_events = begun.rebuild->start_events;
    CHECK(start_events == begun.events);  // the update that began the rebuild
    CHECK(begun.rebuild->slot == s);
    CHECK(begun.rebuild->next_row == 0);
    CHECK(old_events < start_events);

    r.rebuild(0, third);
    REQUIRE(r.members().save_rebuild_position().ok());
    CHECK(r.members().superblock().rebuild->next_row == third);

    // What a restart finds on the devices.
    check_active_superblocks(r, format::RebuildPosition{s, third, start_events});
    const format::MemberSuperblock on_target = on_disk(*r.target);
    CHECK(on_target.slot == s);
    CHECK(on_target.events >= start_events);
    CHECK(on_target.events == r.members().superblock().events);
    REQUIRE(on_target.rebuild);
    CHECK(on_target.rebuild->next_row == third);
    const format::MemberSuperblock on_old = on_disk(*old);
    CHECK(on_old.events == old_events);  // a failed member's superblock is left alone
    CHECK(!on_old.rebuild);

    // Beyond the saved position the rebuild goes on, and writes land on both
    // sides, but a restart only knows the saved position: rows from there on
    // are redone, rows below it must be right on the new device already.
    r.rebuild(third, 2 * third);
    r.scatter_writes(third, 60);
    r.scatter_writes(2 * third, 20);

    // Stop and restart: new devices holding the same bytes, the superblock
    // MemberSet had, the failed slot left out and the new device passed as
    // the `rebuilding` member (what assembly finds).
    const format::MemberSuperblock sb = r.members().superblock();
    CHECK(sb.rebuild->next_row == third);
    auto copy = [&](Disk* d) {
      auto n = std::make_unique<Disk>(d->name(), d->size());
      n->fault().load(d->fault().snapshot());
      return n;
    };
    // Copies of the surviving members (the failed slot empty); r.disks is
    // pointed at the copies.
    auto copy_survivors = [&] {
      std::vector<array::MemberSlot> slots;
      std::vector<Disk*> disks(c.members, nullptr);
      for (uint32_t i = 0; i < c.members; ++i) {
        if (i == s) {
          slots.push_back({"old", nullptr});
          continue;
        }
        auto d = copy(r.disks[i]);
        disks[i] = d.get();
        slots.push_back({r.disks[i]->name(), std::move(d)});
      }
      return std::pair{std::move(slots), disks};
    };

    SUBCASE("with the new device") {
      auto [slots, disks] = copy_survivors();
      auto t = copy(r.target);
      Disk* target = t.get();
      r.array.reset();
      r.disks = disks;
      r.target = target;
      r.array = std::make_unique<array::RaidArray>(
          std::make_unique<MemberSet>(sb, std::move(slots), false, array::MemberSlot{"new", std::move(t)}));
      MemberSet& m = r.members();
      CHECK(m.rebuild_slot() == s);
      CHECK(m.rebuild_row() == third);
      CHECK(m.rebuild_path() == "new");
      CHECK(m.rebuild_device(third - 1) == target);
      CHECK(m.rebuild_device(third) == nullptr);
      CHECK(((m.failed_mask() >> s) & 1) == 1);
      CHECK(r.wrong_rows(*target, s, third).empty());

      r.scatter_writes(third, 30);
      r.rebuild(third, kRows);
      REQUIRE(r.array->finish_rebuild().ok());
      CHECK(r.array->counters().rebuilt_rows == kRows - third);
      verify_rebuilt(r, s);
    }
    SUBCASE("without it: the rebuild is abandoned") {
      auto [slots, disks] = copy_survivors();
      r.array.reset();
      r.disks = disks;
      r.target = nullptr;
      r.array = std::make_unique<array::RaidArray>(std::make_unique<MemberSet>(sb, std::move(slots)));
      MemberSet& m = r.members();
      CHECK(m.rebuild_slot() == MemberSet::kNoRebuild);
      CHECK(m.rebuild_device() == nullptr);
      CHECK(!m.superblock().rebuild);
      CHECK(((m.failed_mask() >> s) & 1) == 1);
      r.check_model("degraded, rebuild abandoned");
      // Recorded at the next superblock update.
      REQUIRE(m.write_superblocks(format::ArrayState::kDirty).ok());
      check_active_superblocks(r, std::nullopt);
    }
  }
}

TEST_CASE("the Rebuilder stops at a batch boundary, records its position and resumes there") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    r.begin(s);
    r.rebuild(0, 100);
    REQUIRE(r.members().save_rebuild_position().ok());
    const uint64_t start_events = r.members().superblock().rebuild->start_events;

    uint64_t stopped_at = 0;
    {
      // Paced to 1 byte/s: after its first batch the thread waits in its
      // pacing, practically for ever, until stop() wakes it.
      engine::Rebuilder slow(*r.array, /*speed_max=*/1, "test");
      REQUIRE(slow.start().ok());
      while (r.members().rebuild_row() == 100 && slow.progress().state == engine::JobState::kRunning)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      slow.stop();
      const auto p = slow.progress();
      CHECK(p.state == engine::JobState::kStopped);
      CHECK(p.start_row == 100);
      CHECK(p.next_row > 100);
      CHECK(p.next_row < kRows);
      CHECK(p.next_row == r.members().rebuild_row());
      stopped_at = p.next_row;
    }
    // stop() recorded the position everywhere a restart looks.
    CHECK(r.members().rebuild_slot() == s);
    CHECK(r.members().superblock().rebuild->next_row == stopped_at);
    check_active_superblocks(r, format::RebuildPosition{s, stopped_at, start_events});
    REQUIRE(on_disk(*r.target).rebuild);
    CHECK(on_disk(*r.target).rebuild->next_row == stopped_at);

    r.scatter_writes(stopped_at, 40);
    engine::Rebuilder rebuilder(*r.array, 0, "test");
    REQUIRE(rebuilder.start().ok());
    const auto p = wait_ended(rebuilder);
    CHECK(p.state == engine::JobState::kDone);
    CHECK(p.start_row == stopped_at);
    CHECK(p.next_row == kRows);
    verify_rebuilt(r, s);
  }
}

// ---- 5. Assembly recognises the new device ---------------------------------

TEST_CASE("assembly: the new device resumes the rebuild, the old failed one is left out") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    const uint64_t saved = 120;
    std::vector<std::byte> old_image = r.disks[s]->fault().snapshot();
    r.begin(s);
    const uint64_t start_events = r.members().superblock().rebuild->start_events;
    r.rebuild(0, saved);
    REQUIRE(r.members().save_rebuild_position().ok());
    r.scatter_writes(saved, 40);

    // The devices as they stand (a clean stop), slot s's position taken by
    // either the new or the old device.
    std::vector<std::vector<std::byte>> images;
    for (uint32_t i = 0; i < c.members; ++i) images.push_back(i == s ? std::vector<std::byte>{} : r.disks[i]->fault().snapshot());
    const std::vector<std::byte> new_image = r.target->fault().snapshot();
    CHECK(superblock_of(old_image).events < start_events);
    CHECK(superblock_of(new_image).events >= start_events);

    SUBCASE("the new device at the slot's position") {
      images[s] = new_image;
      auto a = assemble_images(c, images);
      REQUIRE_MESSAGE(a.ok(), a.error().message);
      CHECK(a->roles[s] == array::MemberRole::kRebuilding);
      for (uint32_t i = 0; i < c.members; ++i)
        if (i != s) CHECK(a->roles[i] == array::MemberRole::kActive);
      REQUIRE(a->rebuilding.device != nullptr);
      CHECK(a->rebuilding.path == "/dev/test-m" + std::to_string(s));
      CHECK(a->slots[s].device == nullptr);
      CHECK(((a->sb.failed_mask >> s) & 1) == 1);
      REQUIRE(a->sb.rebuild);
      CHECK(a->sb.rebuild->slot == s);
      CHECK(a->sb.rebuild->next_row == saved);
      CHECK(a->sb.rebuild->start_events == start_events);
      CHECK(has_notice(*a, "being rebuilt onto it"));

      r.adopt(std::move(*a));
      CHECK(r.members().rebuild_slot() == s);
      CHECK(r.members().rebuild_row() == saved);
      CHECK(r.members().rebuild_path() == "/dev/test-m" + std::to_string(s));
      r.rebuild(saved, kRows);
      REQUIRE(r.array->finish_rebuild().ok());
      CHECK(r.members().path(s) == "/dev/test-m" + std::to_string(s));
      // verify_rebuilt expects the path "new"; the rest of its checks:
      r.disks[s] = r.target;
      CHECK(r.members().device(s) == r.target);
      CHECK(r.members().failed_mask() == 0);
      CHECK(r.wrong_rows(*r.target, s, kRows).empty());
      CHECK(r.parity_consistent());
      r.check_model("after the resumed rebuild");
      r.fail((s + 1) % c.members);
      r.check_model("after the resumed rebuild, another member lost");
    }
    SUBCASE("the old failed device at the slot's position") {
      images[s] = old_image;
      auto a = assemble_images(c, images);
      REQUIRE_MESSAGE(a.ok(), a.error().message);
      CHECK(a->roles[s] == array::MemberRole::kFailed);
      CHECK(a->rebuilding.device == nullptr);
      CHECK(a->slots[s].device == nullptr);
      CHECK(has_notice(*a, "marked failed"));
      REQUIRE(a->sb.rebuild);  // the rebuild is still recorded; its device is not there
      r.adopt(std::move(*a));
      CHECK(r.members().rebuild_slot() == MemberSet::kNoRebuild);
      CHECK(((r.members().failed_mask() >> s) & 1) == 1);
      r.check_model("degraded, the old device left out");
    }
    SUBCASE("an abandoned rebuild's device is left out as failed") {
      r.target->fault().arm(Fault{.kind = FaultKind::kWriteEio, .nth = 1, .persistent = true, .from = r.sb.data_offset});
      CHECK(!r.array->rebuild_rows(saved, 5).ok());
      REQUIRE(r.members().rebuild_slot() == MemberSet::kNoRebuild);
      for (uint32_t i = 0; i < c.members; ++i)
        if (i != s) images[i] = r.disks[i]->fault().snapshot();
      images[s] = r.target->fault().snapshot();
      CHECK(superblock_of(images[s]).events >= start_events);  // it still says so itself
      auto a = assemble_images(c, images);
      REQUIRE_MESSAGE(a.ok(), a.error().message);
      CHECK(!a->sb.rebuild);
      CHECK(a->roles[s] == array::MemberRole::kFailed);
      CHECK(a->rebuilding.device == nullptr);
    }
  }
}

// ---- Power loss during a rebuild -------------------------------------------
// Restarts from what each device had made durable (FaultDevice::durable()),
// through assembly, as after a crash.

std::vector<std::vector<std::byte>> durable_images(Rig& r, uint32_t s) {
  std::vector<std::vector<std::byte>> images;
  for (uint32_t i = 0; i < r.c.members; ++i)
    images.push_back(i == s ? r.target->fault().durable() : r.disks[i]->fault().durable());
  return images;
}

// Was a bug (src/array/raid_array.cc, RaidArray::sync): sync() fdatasyncs the active
// members only, never MemberSet::rebuild_device(). A write to a row below the
// rebuild position goes to the new device too (execute(), write_rows), but an
// fsync (Engine::fsync -> RaidArray::sync; the flusher's array_.sync() before
// its done record) does not make that copy durable. After a power loss the
// rebuild resumes at the saved position, past the row, and finish_rebuild
// activates a new member holding the row's old chunk: the acknowledged write
// is lost (or parity is silently wrong) although sync() returned success.
TEST_CASE("sync() makes a write to a rebuilt row durable on the new device") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    const uint32_t half = r.half();
    r.begin(s);
    r.rebuild(0, half);
    REQUIRE(r.members().save_rebuild_position().ok());  // syncs the new device: rows [0, half) are durable
    // A whole row below the position in which the slot holds data.
    uint64_t row = 0;
    while (geometry::map_row(r.g, row).p == s || geometry::map_row(r.g, row).q == s) ++row;
    REQUIRE(row < half);
    r.write(row * r.row_bytes(), r.row_bytes());
    REQUIRE(r.array->sync().ok());  // acknowledged durable

    auto a = assemble_images(c, durable_images(r, s));  // power loss now
    REQUIRE_MESSAGE(a.ok(), a.error().message);
    REQUIRE(a->roles[s] == array::MemberRole::kRebuilding);
    r.adopt(std::move(*a));
    CHECK(r.members().rebuild_row() == half);
    r.rebuild(half, kRows);
    REQUIRE(r.array->finish_rebuild().ok());
    r.disks[s] = r.target;
    const auto bad = r.wrong_rows(*r.target, s, kRows);
    CHECK_MESSAGE(bad.empty(), bad.size(), " rows wrong on the new member, the first ", (bad.empty() ? 0 : bad[0]));
    r.check_model("after a power loss and the resumed rebuild");
  }
}

// Was a bug (src/array/member_set.cc, MemberSet::save_rebuild_position and
// write_superblocks_locked): the new position is written and synced to the
// active members first, and the new device is fdatasynced only afterwards,
// with its own superblock. Rows rebuild_rows wrote since the new device's
// last sync are not durable when the members already vouch for them. A
// power loss in between (reproduced here: just before the new device's
// superblock write) resumes the rebuild at the new position over rows the
// new device never kept, and finish_rebuild activates it with them missing.
// The new device must be synced before the position is recorded anywhere.
TEST_CASE("a power loss while the position is saved never skips rows the new device lost") {
  for (const Case& c : kCases) SUBCASE(c.name) {
    Rig r(c);
    const uint32_t s = c.slot;
    const uint32_t half = r.half();
    r.begin(s);
    r.rebuild(0, half);

    std::vector<std::vector<std::byte>> crash;
    r.target->before_write = [&](uint64_t offset, size_t) {
      if (offset == 0 && crash.empty()) crash = durable_images(r, s);
    };
    REQUIRE(r.members().save_rebuild_position().ok());
    r.target->before_write = nullptr;
    REQUIRE(!crash.empty());

    auto a = assemble_images(c, crash);
    REQUIRE_MESSAGE(a.ok(), a.error().message);
    REQUIRE(a->roles[s] == array::MemberRole::kRebuilding);
    r.adopt(std::move(*a));
    const uint64_t resume = r.members().rebuild_row();
    const auto lost = r.wrong_rows(*r.target, s, resume);
    CHECK_MESSAGE(lost.empty(), "resuming at row ", resume, " but ", lost.size(),
                  " rows below it are not on the new device, the first ", (lost.empty() ? 0 : lost[0]));
    r.rebuild(resume, kRows);
    REQUIRE(r.array->finish_rebuild().ok());
    r.disks[s] = r.target;
    r.check_model("after a power loss while saving the position");
  }
}
