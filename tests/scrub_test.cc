// RaidArray::check_row against corruption planted on the members behind the
// array's back: detection changes nothing, repair fixes what md would fix
// (RAID6 puts back the one located block; RAID5 and two bad blocks rewrite
// parity from the data), and resync_row always trusts the data.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <thread>

#include "support/memory_array.h"

using namespace r5;
using geometry::Layout;

namespace {

struct Case {
  uint32_t level;
  Layout layout;
  uint32_t members;
};
constexpr Case kCases[] = {
    {5, Layout::kLeftSymmetric, 5},   // 4+1
    {6, Layout::kLeftSymmetric, 6},   // 4+2
    {5, Layout::kRightAsymmetric, 3},  // 2+1
    {6, Layout::kLeftSymmetric, 4},   // 2+2
};
constexpr uint32_t kChunk = 16384;
constexpr uint64_t kRows = 5;

struct Fixture {
  test::MemoryArray a;
  geometry::Geometry g;
  std::vector<std::byte> model;  // what the array reads back
  std::mt19937_64 rng;

  explicit Fixture(const Case& c)
      : a(c.level, c.layout, c.members, kChunk, kRows), g(a.sb.geometry()), model(a.array->capacity()),
        rng(c.members * 10 + c.level) {
    for (auto& b : model) b = std::byte(rng());
    REQUIRE(a.array->write(0, model).ok());
  }

  uint32_t member(uint64_t row, uint32_t role) const {
    const geometry::RowMap map = geometry::map_row(g, row);
    return role < g.data_count() ? map.data[role] : role == g.data_count() ? map.p : map.q;
  }
  // Flips scattered bytes of one chunk on its member; a data chunk's flips go
  // into `model` too when the array is expected to keep them.
  void corrupt(uint64_t row, uint32_t role, bool keep_in_model) {
    io::MemoryDevice* dev = a.devices[member(row, role)];
    const uint64_t base = a.sb.data_offset + row * kChunk;
    auto snap = dev->snapshot();
    std::vector<std::byte> chunk(snap.begin() + long(base), snap.begin() + long(base + kChunk));
    for (int i = 0; i < 50; ++i) {
      const size_t pos = rng() % kChunk;
      const std::byte flip = std::byte(1 + rng() % 255);
      chunk[pos] ^= flip;
      if (keep_in_model) model[geometry::array_offset(g, row, role) + pos] ^= flip;
    }
    dev->poke(base, chunk);
  }
  std::vector<std::vector<std::byte>> snapshots() const {
    std::vector<std::vector<std::byte>> s;
    for (auto* dev : a.devices) s.push_back(dev->snapshot());
    return s;
  }
  void check_reads_model() {
    std::vector<std::byte> got(model.size());
    REQUIRE(a.array->read(0, got).ok());
    CHECK(got == model);
  }
  array::RaidArray::RowCheck check(uint64_t row, bool repair) {
    auto r = a.array->check_row(row, repair);
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    return *r;
  }
};

// Corrupts the blocks `roles` of one row, then checks detection, repair and
// the result. `located`: the role check_row must single out (RAID6).
void scrub_one(const Case& c, uint64_t row, std::vector<uint32_t> roles, std::optional<uint32_t> located) {
  Fixture f(c);
  const uint32_t d = f.g.data_count();
  // Bad data survives a parity rewrite; a located data block is rebuilt.
  for (uint32_t role : roles) f.corrupt(row, role, role < d && !located);

  const auto before = f.snapshots();
  auto r = f.check(row, false);
  CHECK(r.checked);
  CHECK(r.mismatch);
  CHECK(!r.repaired);
  if (located)
    CHECK(r.bad_member == f.member(row, *located));
  else
    CHECK(r.bad_member == std::nullopt);
  CHECK(f.snapshots() == before);  // reporting writes nothing
  CHECK(!f.a.parity_consistent());

  r = f.check(row, true);
  CHECK(r.mismatch);
  CHECK(r.repaired);
  if (located) CHECK(r.bad_member == f.member(row, *located));
  r = f.check(row, false);
  CHECK(r.checked);
  CHECK(!r.mismatch);
  CHECK(f.a.parity_consistent());
  f.check_reads_model();

  const auto& n = f.a.array->counters();
  CHECK(n.scrub_rows_checked == 3);
  CHECK(n.scrub_mismatches == 2);
  CHECK(n.scrub_repaired == 1);
}

}  // namespace

TEST_CASE("check_row reports and repairs a corrupt P or Q") {
  for (const Case& c : kCases) {
    const uint32_t d = c.members - (c.level == 6 ? 2 : 1);
    for (uint64_t row = 0; row < kRows; ++row) {
      CAPTURE(c.level);
      CAPTURE(c.members);
      CAPTURE(row);
      // RAID5 cannot locate anything: P is rewritten, which is the fix here.
      scrub_one(c, row, {d}, c.level == 6 ? std::optional(d) : std::nullopt);
      if (c.level == 6) scrub_one(c, row, {d + 1}, d + 1);
    }
  }
}

TEST_CASE("check_row with one corrupt data chunk: RAID6 rebuilds it, RAID5 rewrites parity") {
  for (const Case& c : kCases) {
    const uint32_t d = c.members - (c.level == 6 ? 2 : 1);
    for (uint32_t k = 0; k < d; ++k) {
      CAPTURE(c.level);
      CAPTURE(c.members);
      CAPTURE(k);
      // RAID5: the bad data stays (md's repair), so `model` takes the flips.
      scrub_one(c, k % kRows, {k}, c.level == 6 ? std::optional(k) : std::nullopt);
    }
  }
}

TEST_CASE("check_row with two corrupt data chunks in a RAID6 row cannot locate: parity is rewritten") {
  for (const Case& c : kCases) {
    if (c.level != 6) continue;
    CAPTURE(c.members);
    scrub_one(c, 1, {0, 1}, std::nullopt);
    scrub_one(c, 2, {0, c.members - 3}, std::nullopt);  // first and last data chunk
  }
}

TEST_CASE("clean rows report no mismatch and write nothing") {
  for (const Case& c : kCases) {
    CAPTURE(c.members);
    Fixture f(c);
    const uint64_t written = f.a.array->counters().member_bytes_written;
    for (uint64_t row = 0; row < kRows; ++row) {
      auto r = f.check(row, true);
      CHECK(r.checked);
      CHECK(!r.mismatch);
      CHECK(!r.repaired);
      CHECK(r.bad_member == std::nullopt);
    }
    CHECK(f.a.array->counters().member_bytes_written == written);
    CHECK(f.a.array->counters().scrub_rows_checked == kRows);
    CHECK(f.a.array->counters().scrub_mismatches == 0);
  }
}

TEST_CASE("a degraded array has nothing to compare; a failed one is an error") {
  for (const Case& c : kCases) {
    CAPTURE(c.members);
    Fixture f(c);
    f.corrupt(0, 0, false);
    f.a.devices[1]->fail_reads = true;
    auto r = f.check(0, true);  // the read fails the member
    CHECK(!r.checked);
    CHECK(!r.mismatch);
    CHECK(f.a.array->members().failed_mask() == 2u);
    CHECK(!f.check(1, true).checked);
    CHECK(f.a.array->counters().scrub_rows_checked == 0);

    const uint32_t more = c.level == 6 ? 2 : 1;  // failures beyond what parity covers
    for (uint32_t i = 0; i < more; ++i) f.a.devices[2 + i]->fail_reads = true;
    // A degraded read of every row reads every member: it fails them, then the array.
    std::vector<std::byte> buf(f.model.size());
    CHECK(!f.a.array->read(0, buf).ok());
    REQUIRE(!f.a.array->members().usable());
    auto failed = f.a.array->check_row(0, false);
    REQUIRE(!failed.ok());
    CHECK(failed.error().err == EIO);
  }
}

TEST_CASE("resync_row rewrites parity from the data, even where RAID6 could locate") {
  const Case c{6, Layout::kLeftSymmetric, 6};
  Fixture f(c);
  f.corrupt(2, 1, true);  // as a torn write would: new data, old parity
  REQUIRE(f.a.array->resync_row(2).ok());
  CHECK(f.a.parity_consistent());
  f.check_reads_model();
  CHECK(f.a.array->counters().resync_rows_checked == 1);
  CHECK(f.a.array->counters().resync_rows_repaired == 1);
  CHECK(f.a.array->counters().scrub_rows_checked == 0);
}

TEST_CASE("a repair pass and a flush reusing old parity exclude each other") {
  Fixture f(kCases[0]);
  array::RaidArray& array = *f.a.array;
  {
    // A pass runs: a flush may not reuse old parity.
    array::RaidArray::RepairPass pass(array);
    array::RaidArray::ParityReuse reuse(array);
    CHECK_FALSE(reuse.allowed());
  }
  std::optional<array::RaidArray::ParityReuse> first(std::in_place, array);
  CHECK(first->allowed());
  {
    array::RaidArray::ParityReuse second(array);  // flushes do not exclude each other
    CHECK(second.allowed());
  }
  // A pass that starts waits for the flush reusing old parity to end.
  std::atomic<bool> started{false};
  std::thread repair([&] {
    array::RaidArray::RepairPass pass(array);
    started = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(started.load());
  first.reset();
  repair.join();
  CHECK(started.load());
  CHECK(array::RaidArray::ParityReuse(array).allowed());  // the pass is over
}
