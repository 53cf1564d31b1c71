// The journaled cache (write-back and write-through) against a reference
// model (a plain byte array), over in-memory members and journal: random I/O
// with the flusher under memory and journal pressure, recovery from the
// devices as a crash left them, the write-hole repair, failures.
#include <doctest/doctest.h>

#include <cstring>
#include <future>
#include <latch>
#include <random>
#include <thread>

#include "engine/journaled_cache.h"
#include "journal/writer.h"
#include "support/freeze_device.h"
#include "support/memory_array.h"

using namespace r5;
using engine::JournaledCache;
using geometry::Layout;

namespace {

// An array over FreezeDevices with a journal, optionally starting from the
// contents another rig's devices hold (a crash image), with some members lost.
struct Rig {
  format::MemberSuperblock sb;
  std::vector<test::FreezeDevice*> members;  // null: lost
  test::FreezeDevice* journal = nullptr;
  std::unique_ptr<array::RaidArray> array;
  std::unique_ptr<JournaledCache> cache;

  Rig(uint32_t level, uint32_t count, uint32_t chunk, uint64_t rows, uint64_t journal_blocks)
      : sb(test::test_superblock(level, Layout::kLeftSymmetric, count, chunk, rows)) {
    build(nullptr, 0, journal_blocks);
    REQUIRE(journal::format_journal(*journal_device_, sb, journal_blocks).ok());
  }
  // A copy of `from`'s devices as they are now, without the members in `lost`.
  Rig(const Rig& from, uint64_t lost) : sb(from.sb) { build(&from, lost, from.journal->size() / 4096); }

  Status open(JournaledCache::Options o = {}) {
    auto c = JournaledCache::open(*array, std::move(journal_device_), o);
    if (!c.ok()) return c.error();
    cache = std::move(*c);
    return {};
  }
  void freeze_all() {
    for (auto* m : members)
      if (m) m->frozen = true;
    journal->frozen = true;
  }

 private:
  void build(const Rig* from, uint64_t lost, uint64_t journal_blocks) {
    std::vector<array::MemberSlot> slots;
    for (uint32_t i = 0; i < sb.member_count; ++i) {
      if ((lost >> i) & 1) {
        members.push_back(nullptr);
        slots.push_back({"m" + std::to_string(i), nullptr});
        continue;
      }
      auto dev = std::make_unique<test::FreezeDevice>("m" + std::to_string(i), sb.data_offset + sb.data_size);
      if (from) dev->memory().poke(0, from->members[i]->memory().snapshot());
      members.push_back(dev.get());
      slots.push_back({"m" + std::to_string(i), std::move(dev)});
    }
    array = std::make_unique<array::RaidArray>(std::make_unique<array::MemberSet>(sb, std::move(slots)));
    journal_device_ = std::make_unique<test::FreezeDevice>("journal", journal_blocks * 4096);
    journal = journal_device_.get();
    if (from) journal->memory().poke(0, from->journal->memory().snapshot());
  }
  std::unique_ptr<test::FreezeDevice> journal_device_;
};

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(rng());
  return v;
}

void check_reads(JournaledCache& c, const std::vector<std::byte>& model) {
  std::vector<std::byte> got(model.size());
  Status st = c.read(0, got);
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  CHECK(got == model);
}

void check_members(Rig& r, const std::vector<std::byte>& model) {
  std::vector<std::byte> got(model.size());
  REQUIRE(r.array->read(0, got).ok());
  CHECK(got == model);
}

// P (and Q) of every row match its data, read straight from the members.
bool parity_consistent(Rig& r) {
  const geometry::Geometry g = r.sb.geometry();
  const uint32_t roles = g.members, d = g.data_count();
  AlignedBuffer buf(size_t(roles) * g.chunk_size);
  for (uint64_t row = 0; row < g.rows; ++row) {
    const geometry::RowMap map = geometry::map_row(g, row);
    std::vector<std::byte*> blocks;
    for (uint32_t role = 0; role < roles; ++role) {
      const uint32_t m = role < d ? map.data[role] : role == d ? map.p : map.q;
      std::byte* dst = buf.data() + size_t(role) * g.chunk_size;
      REQUIRE(r.members[m]->read(r.sb.data_offset + row * g.chunk_size, {dst, g.chunk_size}).ok());
      blocks.push_back(dst);
    }
    if (!parity::verify(g.parity_count(), blocks, g.chunk_size)) return false;
  }
  return true;
}

// Writes of any size and alignment (sub-page, row-crossing, up to 3 rows),
// reads checked against the model, fsyncs now and then.
void random_ops(JournaledCache& c, std::vector<std::byte>& model, std::mt19937_64& rng, int count, uint64_t row_bytes) {
  const uint64_t cap = model.size();
  for (int i = 0; i < count; ++i) {
    uint64_t off = rng() % cap;
    if (rng() % 3 == 0) off = off / 4096 * 4096;
    const uint64_t max_len = std::min<uint64_t>(cap - off, rng() % 2 ? 3 * row_bytes : 9000);
    const size_t len = size_t(1 + rng() % max_len);
    const int op = int(rng() % 10);
    if (op < 6) {
      auto data = random_bytes(rng, len);
      Status st = c.write(off, data);
      REQUIRE_MESSAGE(st.ok(), st.error().message);
      std::memcpy(model.data() + off, data.data(), len);
    } else if (op < 9) {
      std::vector<std::byte> got(len);
      Status st = c.read(off, got);
      REQUIRE_MESSAGE(st.ok(), st.error().message);
      REQUIRE_MESSAGE(std::memcmp(got.data(), model.data() + off, len) == 0, "read at ", off, " +", len);
    } else {
      REQUIRE(c.fsync().ok());
    }
  }
}

JournaledCache::Options small_cache(config::JournalMode mode = config::JournalMode::kWriteBack) {
  JournaledCache::Options o;
  o.mode = mode;
  o.memory = 1 << 20;  // the pool's floor (1024 pages + what replay needs) applies
  o.max_age = std::chrono::milliseconds(50);
  return o;
}

// Recovers a copy of `r`'s devices without member `lost`: one row repaired,
// and every read matches the model, before and after a drain.
void recover_without(const Rig& r, uint32_t lost, const std::vector<std::byte>& model) {
  Rig again(r, uint64_t(1) << lost);
  REQUIRE(again.open(small_cache()).ok());
  CHECK(again.cache->counters().replay_repaired_rows == 1);
  check_reads(*again.cache, model);
  again.cache->start();
  REQUIRE(again.cache->drain().ok());
  check_reads(*again.cache, model);
  REQUIRE(again.cache->close(false).ok());
}

}  // namespace

TEST_CASE("write-back and write-through: random I/O matches the model; members and parity match after a drain") {
  for (auto mode : {config::JournalMode::kWriteBack, config::JournalMode::kWriteThrough}) {
    // 4+1 and 6+2 flush partial columns by read-modify-write, 4+2 by
    // reconstruct-write.
    for (auto [level, count] : {std::pair{5u, 5u}, {6u, 6u}, {6u, 8u}}) {
      CAPTURE(config::mode_name(mode));
      CAPTURE(level);
      CAPTURE(count);
      // 4 MiB journal, 64 KiB rows: the log wraps many times and fills up.
      Rig r(level, count, 16384, 64, 1024);
      REQUIRE(r.open(small_cache(mode)).ok());
      r.cache->start();
      std::vector<std::byte> model(r.array->capacity());
      std::mt19937_64 rng(level * 7 + count + int(mode));
      random_ops(*r.cache, model, rng, 400, r.sb.geometry().row_data_bytes());
      check_reads(*r.cache, model);
      REQUIRE(r.cache->drain().ok());
      CHECK(r.cache->usage().stripes == 0);
      check_members(r, model);
      CHECK(r.cache->counters().stripes_flushed > 0);
      CHECK(parity_consistent(r));
      REQUIRE(r.cache->close(false).ok());
    }
  }
}

TEST_CASE("concurrent writers share journal commits and the result matches the model") {
  Rig r(5, 5, 16384, 64, 2048);
  REQUIRE(r.open(small_cache()).ok());
  r.cache->start();
  std::vector<std::byte> model(r.array->capacity());
  // Each thread owns a region, so the model is exact.
  const uint64_t region = model.size() / 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 300; ++i) {
        const uint64_t off = t * region + (rng() % (region / 4096 - 4)) * 4096;
        const size_t len = 4096 * (1 + rng() % 4);
        auto data = random_bytes(rng, len);
        REQUIRE(r.cache->write(off, data).ok());
        std::memcpy(model.data() + off, data.data(), len);
        if (i % 16 == 0) REQUIRE(r.cache->fsync().ok());
      }
    });
  for (auto& th : threads) th.join();
  check_reads(*r.cache, model);
  const auto& c = r.cache->counters();
  CHECK(c.writes_batched >= 1200);
  CHECK(c.write_batches <= c.writes_batched);
  REQUIRE(r.cache->drain().ok());
  check_members(r, model);
}

TEST_CASE("a write to a stripe being flushed waits; writes to other rows pass it") {
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open(small_cache()).ok());
  r.cache->start();
  const uint64_t row = r.sb.geometry().row_data_bytes();
  const std::vector<std::byte> a(4096, std::byte{1}), b(4096, std::byte{2}), c(4096, std::byte{3});
  REQUIRE(r.cache->write(0, a).ok());
  // The flusher stops inside the flush of row 0, after its parity sync.
  std::latch in_flush(1), release(1);
  std::atomic<bool> armed{true};
  r.journal->after_sync = [&](uint64_t) {
    if (armed.exchange(false)) {
      in_flush.count_down();
      release.wait();
    }
  };
  std::thread drainer([&] { CHECK(r.cache->drain().ok()); });
  in_flush.wait();
  std::atomic<bool> blocked_done{false};
  std::thread blocked([&] {
    CHECK(r.cache->write(4096, b).ok());  // row 0: waits for the flush
    blocked_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // lets it queue (no assertion on time)
  REQUIRE(r.cache->write(5 * row, c).ok());                      // row 5 passes it
  CHECK(!blocked_done);
  release.count_down();
  blocked.join();
  drainer.join();
  std::vector<std::byte> model(r.array->capacity());
  std::memcpy(model.data(), a.data(), 4096);
  std::memcpy(model.data() + 4096, b.data(), 4096);
  std::memcpy(model.data() + 5 * row, c.data(), 4096);
  check_reads(*r.cache, model);
  REQUIRE(r.cache->drain().ok());
  check_members(r, model);
}

TEST_CASE("large records of concurrent writes are written at once; replies and syncs wait for earlier records") {
  Rig r(5, 5, 65536, 32, 4096);
  REQUIRE(r.open().ok());
  const std::vector<std::byte> a(1 << 20, std::byte{1}), b(1 << 20, std::byte{2});
  // The first large journal write (a's record) stops in the device.
  std::latch in_write(1), release(1);
  std::atomic<int> large_writes{0};
  r.journal->before_write = [&](uint64_t, size_t len) {
    if (len > journal::Writer::kCachedRecordBlocks * 4096 && large_writes.fetch_add(1) == 0) {
      in_write.count_down();
      release.wait();
    }
  };
  std::thread writer_a([&] { CHECK(r.cache->write(0, a).ok()); });
  in_write.wait();
  // b's record, placed after a's, goes to the device while a's is still
  // there. (The deadline bounds a hang; it measures nothing.)
  auto b_done = std::async(std::launch::async, [&] { return r.cache->write(2 << 20, b); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (large_writes < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK_MESSAGE(large_writes == 2, "a write waited for the journal write of an unrelated earlier one");
  // b does not reply before a's record is written, and an fsync does not
  // sync b's record with a's not yet written: replay would stop at the hole.
  std::atomic<bool> synced{false};
  std::thread syncer([&] {
    CHECK(r.cache->fsync().ok());
    synced = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // lets them reach their waits (no assertion on time)
  CHECK(b_done.wait_for(std::chrono::seconds(0)) != std::future_status::ready);
  CHECK(!synced);
  release.count_down();
  writer_a.join();
  syncer.join();
  CHECK(b_done.get().ok());
  // Both survive a crash now.
  r.freeze_all();
  Rig after(r, 0);
  REQUIRE(after.open().ok());
  std::vector<std::byte> model(after.array->capacity());
  std::memcpy(model.data(), a.data(), a.size());
  std::memcpy(model.data() + (2 << 20), b.data(), b.size());
  check_reads(*after.cache, model);
}

TEST_CASE("a status query waiting for the journal holds up no read") {
  Rig r(5, 5, 65536, 32, 4096);
  REQUIRE(r.open().ok());
  const std::vector<std::byte> data(65536, std::byte{3});
  REQUIRE(r.cache->write(0, data).ok());
  REQUIRE(r.cache->fsync().ok());
  // The flusher's parity record stops in the journal device, with the
  // journal's lock held (as a slow or sick journal device holds it).
  std::latch in_write(1), release(1);
  std::atomic<bool> stopped{false};
  r.journal->before_write = [&](uint64_t, size_t) {
    if (!stopped.exchange(true)) {
      in_write.count_down();
      release.wait();
    }
  };
  std::thread flusher([&] { CHECK(r.cache->flush_for_test().ok()); });
  in_write.wait();
  std::thread status([&] { CHECK(r.cache->usage().stripes <= 1); });  // waits for the journal
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // lets it reach its wait (no assertion on time)
  // A read elsewhere needs only the cache's lock. (The deadline bounds a
  // hang; it measures nothing.)
  auto read = std::async(std::launch::async, [&] {
    std::vector<std::byte> got(65536);
    return r.cache->read(4 << 20, got);
  });
  const bool read_done = read.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  CHECK_MESSAGE(read_done, "a read waited for a status query, which waited for the journal");
  release.count_down();
  flusher.join();
  status.join();
  CHECK(read.get().ok());
}

TEST_CASE("a writer short of pages waits before it pins its rows, so the flusher can write them out") {
  // The pool holds 256 pages. Row 0 gets 200 dirty pages while the flusher is
  // held inside a flush of row 3; a second write of 200 pages to row 0 must
  // wait for pages that only writing row 0 out can free. Had it pinned row 0
  // first, the flusher would skip the row for good and both would wait.
  Rig r(5, 5, 1 << 20, 4, 4096);  // rows of 4 MiB
  JournaledCache::Options o = small_cache();
  o.max_age = std::chrono::hours(1);
  REQUIRE(r.open(o).ok());
  REQUIRE(r.cache->usage().pool_capacity == 256);
  r.cache->start();
  const uint64_t row = r.sb.geometry().row_data_bytes();
  std::vector<std::byte> model(r.array->capacity());
  std::mt19937_64 rng(23);
  auto write = [&](uint64_t at, size_t len) {
    auto data = random_bytes(rng, len);
    std::memcpy(model.data() + at, data.data(), len);
    return r.cache->write(at, data);
  };
  REQUIRE(write(3 * row, 4096).ok());
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> entered{false}, armed{true};
  for (auto* m : r.members)
    m->before_write = [&](uint64_t, size_t) {
      if (!armed.exchange(false)) return;
      entered = true;
      released.wait();
    };
  auto drained = std::async(std::launch::async, [&] { return r.cache->drain(); });
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(write(0, 200 * 4096).ok());
  auto second = std::async(std::launch::async, [&] { return write(200 * 4096, 200 * 4096); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // it waits for pages now
  release.set_value();
  REQUIRE_MESSAGE(second.wait_for(std::chrono::seconds(30)) == std::future_status::ready, "the writer waits for pages forever");
  REQUIRE(second.get().ok());
  REQUIRE(drained.get().ok());
  REQUIRE(r.cache->drain().ok());
  check_reads(*r.cache, model);
  check_members(r, model);
  REQUIRE(r.cache->close(false).ok());
}

TEST_CASE("reads of dirty data are served from the pool without touching a member") {
  Rig r(5, 5, 65536, 16, 4096);
  REQUIRE(r.open().ok());
  std::mt19937_64 rng(1);
  auto data = random_bytes(rng, 300000);
  REQUIRE(r.cache->write(12345, data).ok());
  const uint64_t member_reads = r.array->counters().member_bytes_read;  // edge pages read once by the write
  std::vector<std::byte> got(data.size());
  REQUIRE(r.cache->read(12345, got).ok());
  CHECK(got == data);
  CHECK(r.array->counters().member_bytes_read == member_reads);
  CHECK(r.cache->counters().pool_read_bytes == data.size());
  // A read mixing pool pages and member pages gets both right.
  std::vector<std::byte> wide(500000);
  REQUIRE(r.cache->read(0, wide).ok());
  CHECK(std::memcmp(wide.data() + 12345, data.data(), data.size()) == 0);
  CHECK(std::all_of(wide.begin(), wide.begin() + 12345, [](std::byte b) { return b == std::byte{0}; }));
  CHECK(r.array->counters().member_bytes_read > member_reads);
  // The flush reads the pages the partial rows lack (straight from the
  // members, not through the array): those count as member reads too.
  const uint64_t before_flush = r.array->counters().member_bytes_read;
  REQUIRE(r.cache->drain().ok());
  CHECK(r.array->counters().member_bytes_read > before_flush);
}

TEST_CASE("recovery: everything written before a crash reads back, twice, and drains to consistent members") {
  for (uint32_t level : {5u, 6u}) {
    CAPTURE(level);
    Rig r(level, level == 5 ? 4 : 6, 16384, 64, 1024);
    REQUIRE(r.open(small_cache()).ok());
    r.cache->start();
    std::vector<std::byte> model(r.array->capacity());
    std::mt19937_64 rng(level);
    random_ops(*r.cache, model, rng, 200, r.sb.geometry().row_data_bytes());
    REQUIRE(r.cache->fsync().ok());
    // Crash: the devices keep what they hold at this instant; the old
    // process's threads write nothing more.
    r.freeze_all();

    Rig again(r, 0);
    REQUIRE(again.open(small_cache()).ok());
    check_reads(*again.cache, model);
    Rig twice(again, 0);  // crash during the second life, before anything else happened
    again.freeze_all();
    REQUIRE(twice.open(small_cache()).ok());
    check_reads(*twice.cache, model);
    twice.cache->start();
    REQUIRE(twice.cache->drain().ok());
    check_members(twice, model);
    CHECK(parity_consistent(twice));
    REQUIRE(twice.cache->close(false).ok());
    r.cache.reset();  // its flusher writes into frozen devices: harmless
  }
}

TEST_CASE("a batch of more stripes than one stripe-done record holds, and recovery after it") {
  // 1100 stripes with one dirty page each: a drain takes them in batches of
  // up to 1024 (the flush buffer holds 20 KiB per stripe here), which need
  // three stripe-done records of at most 500 rows.
  Rig r(5, 4, 16384, 1200, 16384);
  JournaledCache::Options o = small_cache();
  o.memory = 16 << 20;
  REQUIRE(r.open(o).ok());
  std::vector<std::byte> model(r.array->capacity());
  std::mt19937_64 rng(11);
  const uint64_t row_bytes = r.sb.geometry().row_data_bytes();
  for (uint64_t row = 0; row < 1100; ++row) {
    const uint64_t at = row * row_bytes + rng() % (row_bytes / 4096) * 4096;
    auto data = random_bytes(rng, 4096);
    REQUIRE(r.cache->write(at, data).ok());
    std::memcpy(model.data() + at, data.data(), data.size());
  }
  r.cache->start();
  REQUIRE(r.cache->drain().ok());
  CHECK(r.cache->counters().stripes_flushed.load() == 1100);
  CHECK(r.cache->counters().flush_batches.load() <= 2);
  check_members(r, model);
  CHECK(parity_consistent(r));
  r.freeze_all();
  Rig again(r, 0);
  REQUIRE(again.open(o).ok());
  check_reads(*again.cache, model);
  again.cache->start();
  REQUIRE(again.cache->drain().ok());
  check_members(again, model);
  REQUIRE(again.cache->close(false).ok());
  r.cache.reset();
}

TEST_CASE("flushed stripes are synced on the members at the checkpoint; the log keeps them until then") {
  // Row 0 of a 4+1 RAID5: A goes to data 0 in write-through (it replies once
  // on the members), a crash in the middle of that flush's member writes
  // leaves P old. The member sync waits in a checkpoint that is held while C,
  // newer data of the same row, is logged.
  Rig r(5, 5, 16384, 8, 1024);
  const geometry::Geometry g = r.sb.geometry();
  const geometry::RowMap map = geometry::map_row(g, 0);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> syncing{false};
  r.members[map.data[0]]->after_sync = [&](uint64_t) {
    syncing = true;
    released.wait();
  };
  JournaledCache::Options o = small_cache();
  o.max_age = std::chrono::hours(1);  // only write-through flushes row 0
  REQUIRE(r.open(o).ok());
  r.cache->start();
  std::vector<std::byte> model(r.array->capacity());
  const std::vector<std::byte> a(4096, std::byte{0xa}), c(4096, std::byte{0xc});
  const uint64_t c_at = 2 * g.chunk_size + 4096;  // data 2, column 1

  SUBCASE("a crash before the checkpoint, then a member lost: the flush is repaired from the log") {
    r.members[map.p]->frozen = true;  // P never gets A's parity
    r.cache->set_write_through(true);
    REQUIRE(r.cache->write(0, a).ok());
    r.cache->set_write_through(false);
    CHECK(r.cache->usage().unsynced_stripes == 1);
    REQUIRE(r.cache->write(c_at, c).ok());
    REQUIRE(r.cache->fsync().ok());
    r.freeze_all();
    release.set_value();
    std::memcpy(model.data(), a.data(), a.size());
    std::memcpy(model.data() + c_at, c.data(), c.size());
    // Data 1 was never written: it reads as zeros only from a P that holds A.
    recover_without(r, map.data[1], model);
  }
  SUBCASE("the checkpoint logs no done record for a row written since its flush") {
    r.cache->set_write_through(true);
    REQUIRE(r.cache->write(0, a).ok());
    r.cache->set_write_through(false);
    while (!syncing) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(r.cache->write(c_at, c).ok());  // logged before the done record would be
    release.set_value();
    while (r.cache->counters().checkpoints.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(r.cache->usage().unsynced_stripes == 0);
    CHECK(r.cache->usage().stripes == 1);  // C, dirty
    REQUIRE(r.cache->fsync().ok());
    r.freeze_all();
    std::memcpy(model.data(), a.data(), a.size());
    std::memcpy(model.data() + c_at, c.data(), c.size());
    Rig again(r, 0);
    REQUIRE(again.open(small_cache()).ok());
    check_reads(*again.cache, model);  // a done record for row 0 would have dropped C
    CHECK(again.cache->counters().replay_dirty_pages == 1);
    REQUIRE(again.cache->close(false).ok());
  }
  r.members[map.data[0]]->after_sync = nullptr;
  r.cache.reset();
}

TEST_CASE("parity a crash left incomplete is never followed by newer data in the log") {
  // A flush batch logs its parity in several records; a crash keeps only the
  // first. Row 31's four runs straddle the two records, so replay drops its
  // parity and keeps the row dirty, with the partial parity still in the log
  // after its data. Data logged after that parity would read, at the next
  // replay, as a newer generation after a flush that began behind the tail,
  // and the row's older data would be dropped: the open flushes such rows
  // before any write is accepted.
  Rig r(5, 5, 32768, 64, 4096);  // 8 columns: pages in 0, 2, 4, 6 are 4 runs
  JournaledCache::Options o = small_cache();
  o.memory = 16 << 20;
  REQUIRE(r.open(o).ok());
  const uint64_t row_bytes = r.sb.geometry().row_data_bytes();
  std::vector<std::byte> model(r.array->capacity());
  std::mt19937_64 rng(31);
  auto write = [&](JournaledCache& c, uint64_t at) {
    auto data = random_bytes(rng, 4096);
    REQUIRE(c.write(at, data).ok());
    std::memcpy(model.data() + at, data.data(), data.size());
  };
  for (uint64_t row = 0; row < 40; ++row)
    for (uint64_t col : {0, 2, 4, 6}) write(*r.cache, row * row_bytes + col * 4096);
  REQUIRE(r.cache->fsync().ok());
  int journal_writes = 0;
  r.journal->before_write = [&](uint64_t, size_t) {
    if (++journal_writes == 2) r.freeze_all();  // the second parity record never lands
  };
  REQUIRE(r.cache->flush_for_test().ok());
  r.journal->before_write = nullptr;

  Rig again(r, 0);
  REQUIRE(again.open(o).ok());
  check_reads(*again.cache, model);
  for (uint64_t row = 0; row < 40; ++row) write(*again.cache, row * row_bytes + 32768 + 4096);  // data 1, column 1
  REQUIRE(again.cache->fsync().ok());
  again.freeze_all();
  Rig third(again, 0);
  REQUIRE(third.open(o).ok());
  check_reads(*third.cache, model);
}

TEST_CASE("a repair larger than one part: 200 flushed rows, each a whole row wide, after a crash and a member lost") {
  // Pages in the first and last column of each row: every repair spans the
  // whole chunk on 5 roles (320 KiB), 62.5 MiB in all, written in parts of at
  // most 32 MiB.
  Rig r(5, 5, 65536, 256, 4096);
  JournaledCache::Options o = small_cache();
  o.memory = 16 << 20;
  REQUIRE(r.open(o).ok());
  const geometry::Geometry g = r.sb.geometry();
  std::vector<std::byte> model(r.array->capacity());
  std::mt19937_64 rng(29);
  for (uint64_t row = 0; row < 200; ++row)
    for (uint64_t at : {row * g.row_data_bytes(), row * g.row_data_bytes() + g.chunk_size - 4096}) {
      auto data = random_bytes(rng, 4096);
      REQUIRE(r.cache->write(at, data).ok());
      std::memcpy(model.data() + at, data.data(), data.size());
    }
  for (auto* m : r.members) m->frozen = true;  // a crash as the flush's member writes begin
  REQUIRE(r.cache->flush_for_test().ok());
  r.freeze_all();
  Rig again(r, uint64_t(1) << geometry::map_row(g, 0).data[1]);
  REQUIRE(again.open(o).ok());
  CHECK(again.cache->counters().replay_repaired_rows == 200);
  check_reads(*again.cache, model);
}

TEST_CASE("a checkpoint that moves the tail into a full stripe's flushed generation: its mark keeps it apart") {
  // Row 1 is written full in two records with row 3's first record between
  // them, flushed (its parity mark logged), written again (one page), and a
  // checkpoint syncs the members but logs no done record for it: the tail
  // moves to row 3's record, inside row 1's first generation. Row 1's second
  // flush then writes the data page but never P (a crash). Replay must repair
  // that flush from its own logged parity: merging the generation's second
  // half with the new page would leave P stale, and the page that only the
  // lost member held would read back wrong.
  Rig r(5, 5, 16384, 8, 1024);
  const geometry::Geometry g = r.sb.geometry();
  const uint64_t row = g.row_data_bytes();
  const geometry::RowMap map = geometry::map_row(g, 1);
  REQUIRE(r.open(small_cache()).ok());
  std::vector<std::byte> model(r.array->capacity());
  std::mt19937_64 rng(17);
  auto write = [&](uint64_t at, size_t len) {
    auto data = random_bytes(rng, len);
    REQUIRE(r.cache->write(at, data).ok());
    std::memcpy(model.data() + at, data.data(), len);
  };
  write(row, row / 2);
  write(3 * row, 4096);
  write(row + row / 2, row / 2);
  REQUIRE(r.cache->flush_for_test({1}).ok());
  write(row + 2 * g.chunk_size + 4096, 4096);  // data 2, column 1
  REQUIRE(r.cache->checkpoint_for_test().ok());
  CHECK(r.cache->counters().checkpoints.load() == 1);
  r.members[map.p]->frozen = true;
  REQUIRE(r.cache->flush_for_test({1}).ok());
  REQUIRE(r.cache->fsync().ok());
  r.freeze_all();
  recover_without(r, map.data[0], model);
}

TEST_CASE("recovery: records a crash left behind a hole never come back after the log is continued") {
  // A crash keeps z1's record but loses y's before it: the log ends at y's
  // place and z1 is discarded. The continued log then writes z2 there,
  // durably, with the sequence z1 had in its record right behind: a second
  // crash must not replay z1 after z2 (md's raid5-cache meets the same
  // case with a sequence jump).
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open().ok());
  const uint64_t row = r.sb.geometry().row_data_bytes();
  const std::vector<std::byte> y(4096, std::byte{1}), z1(4096, std::byte{2}), z2(4096, std::byte{3});
  const uint64_t hole = r.cache->usage().head_position;
  REQUIRE(r.cache->write(3 * row, y).ok());
  REQUIRE(r.cache->write(5 * row, z1).ok());
  r.freeze_all();
  Rig first(r, 0);
  first.journal->memory().poke(hole * 4096, std::vector<std::byte>(4096));  // y's metadata block never reached the disk
  REQUIRE(first.open().ok());
  std::vector<std::byte> model(first.array->capacity());
  check_reads(*first.cache, model);  // both lost: y was not synced, z1 lies behind the hole
  REQUIRE(first.cache->usage().head_position == hole);
  REQUIRE(first.cache->write(5 * row, z2).ok());
  REQUIRE(first.cache->fsync().ok());
  first.freeze_all();
  Rig second(first, 0);
  REQUIRE(second.open().ok());
  std::memcpy(model.data() + 5 * row, z2.data(), z2.size());
  check_reads(*second.cache, model);
  r.cache.reset();
}

TEST_CASE("the log never holds more unsynced blocks than the window, beyond one batch") {
  Rig r(5, 5, 65536, 32, 4096);
  JournaledCache::Options o;
  o.unsynced_window_blocks = 300;  // a 1 MiB write's record is about 258 blocks
  REQUIRE(r.open(o).ok());
  const std::vector<std::byte> data(1 << 20, std::byte{7});
  const uint64_t before = r.cache->counters().journal_syncs;
  for (int i = 0; i < 4; ++i) REQUIRE(r.cache->write(uint64_t(i) << 20, data).ok());
  // No flusher and no fsync: only the window syncs, before the 2nd, 3rd and 4th record.
  CHECK(r.cache->counters().journal_syncs - before == 3);
}

TEST_CASE("write hole: a crash after members were partly written, then a member lost") {
  // Row 0 of a 4+1 RAID5 with 16 KiB chunks: data 0..3 on members 1..4? The
  // layout decides; find the members from the map.
  const uint32_t chunk = 16384;
  const geometry::Geometry g = test::test_superblock(5, Layout::kLeftSymmetric, 5, chunk, 8).geometry();
  const geometry::RowMap map = geometry::map_row(g, 0);
  std::vector<std::byte> old_data(g.row_data_bytes(), std::byte{0x11});
  std::vector<std::byte> page(4096, std::byte{0x77});  // the new write: first page of data index 0

  SUBCASE("mode none: the hole is real") {
    Rig r(5, 5, chunk, 8, 1024);
    REQUIRE(r.array->write(0, old_data).ok());
    REQUIRE(r.array->sync().ok());
    // Read-modify-write of one page: data reaches its member, parity does not.
    r.members[map.p]->frozen = true;
    REQUIRE(r.array->write(0, page).ok());
    r.freeze_all();
    // Crash, then lose the member of data index 1: a block nobody wrote.
    Rig after(r, 1ull << map.data[1]);
    std::vector<std::byte> got(4096);
    REQUIRE(after.array->read(chunk, got).ok());
    CHECK(got != std::vector<std::byte>(4096, std::byte{0x11}));  // reconstructed from stale parity: wrong
  }

  for (auto mode : {config::JournalMode::kWriteBack, config::JournalMode::kWriteThrough}) {
    SUBCASE(std::string(config::mode_name(mode)).c_str()) {
      Rig r(5, 5, chunk, 8, 1024);
      REQUIRE(r.array->write(0, old_data).ok());
      REQUIRE(r.array->sync().ok());
      REQUIRE(r.open(small_cache(mode)).ok());
      // The flush logs parity and syncs the journal, then writes the
      // members: the crash comes after the data member got its page but
      // before the parity member did.
      r.members[map.p]->frozen = true;
      const uint64_t syncs_before = r.journal->syncs;
      r.journal->after_sync = [&](uint64_t n) {
        if (n == syncs_before + 1) r.journal->frozen = true;  // nothing after the parity record survives
      };
      // Two pages in columns 0 and 3 of data indexes 0 and 2: the flush logs
      // two runs of parity, both of which the repair must write.
      const uint64_t second = 2 * chunk + 3 * 4096;
      if (mode == config::JournalMode::kWriteBack) {
        REQUIRE(r.cache->write(0, page).ok());
        REQUIRE(r.cache->write(second, page).ok());
      } else {
        r.cache->start();  // a write waits for its flush: both pages in one write
        std::vector<std::byte> both(old_data.begin(), old_data.begin() + second + 4096);
        std::memcpy(both.data(), page.data(), page.size());
        std::memcpy(both.data() + second, page.data(), page.size());
        REQUIRE(r.cache->write(0, both).ok());
      }
      REQUIRE(r.cache->drain().ok());
      r.freeze_all();
      for (bool lose_before_replay : {true, false}) {
        CAPTURE(lose_before_replay);
        Rig after(r, lose_before_replay ? 1ull << map.data[1] : 0);
        REQUIRE(after.open(small_cache(mode)).ok());
        CHECK(after.cache->counters().replay_repaired_rows == 1);
        std::vector<std::byte> expect = old_data;
        std::memcpy(expect.data(), page.data(), page.size());
        std::memcpy(expect.data() + second, page.data(), page.size());
        std::vector<std::byte> got(expect.size());
        REQUIRE(after.cache->read(0, got).ok());
        CHECK(got == expect);
        if (!lose_before_replay) {
          // Replay done: now lose the member; every block still reads right.
          Rig lost(after, 1ull << map.data[1]);
          after.freeze_all();
          REQUIRE(lost.array->read(0, got).ok());
          CHECK(got == expect);
        }
      }
    }
  }
}

TEST_CASE("journal failure: writes fail with EIO from then on, reads keep working, nothing replied is lost") {
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open().ok());
  std::vector<std::byte> a(8192, std::byte{1});
  REQUIRE(r.cache->write(0, a).ok());
  REQUIRE(r.cache->fsync().ok());
  r.journal->memory().fail_syncs = true;
  std::vector<std::byte> b(8192, std::byte{2});
  REQUIRE(r.cache->write(65536, b).ok());  // written, not yet synced
  Status st = r.cache->fsync();
  REQUIRE(!st.ok());
  CHECK(st.error().err == EIO);
  r.journal->memory().fail_syncs = false;  // no silent retry: the failure stays
  CHECK(!r.cache->write(0, a).ok());
  CHECK(!r.cache->fsync().ok());
  REQUIRE(r.cache->failure().has_value());
  std::vector<std::byte> got(8192);
  REQUIRE(r.cache->read(0, got).ok());
  CHECK(got == a);
}

TEST_CASE("a failed journal write of the flusher leaves a hole that no later sync passes") {
  // The flusher's parity record fails after its place in the log was taken.
  // A writer already past the failure check (it waits for the log while the
  // record is written) places its record after the hole: its sync must fail,
  // for a crash would end the log at the hole and lose it.
  Rig r(5, 5, 16384, 16, 1024);
  JournaledCache::Options o;
  o.sync_always = true;
  REQUIRE(r.open(o).ok());
  REQUIRE(r.cache->write(0, std::vector<std::byte>(4096, std::byte{1})).ok());
  std::future<Status> late;
  std::atomic<bool> armed{true};
  r.journal->fail_write = [&](uint64_t, size_t) {
    if (!armed.exchange(false)) return false;
    late = std::async(std::launch::async, [&] { return r.cache->write(5 * 65536, std::vector<std::byte>(4096, std::byte{2})); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // it then waits for the log
    return true;
  };
  CHECK(!r.cache->flush_for_test().ok());
  REQUIRE(late.valid());
  const Status st = late.get();
  CHECK(!st.ok());
  CHECK(!r.cache->fsync().ok());
  r.journal->fail_write = nullptr;
}

TEST_CASE("after a journal failure the flusher syncs the stripes it already wrote to the members") {
  // The journal holding these stripes may be gone for good (journal remove
  // --force), so what the flush put on the members must be durable there
  // without waiting for a checkpoint that can no longer run.
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open(small_cache()).ok());
  const std::vector<std::byte> a(8192, std::byte{1});
  REQUIRE(r.cache->write(0, a).ok());
  REQUIRE(r.cache->fsync().ok());
  REQUIRE(r.cache->flush_for_test().ok());  // on the members; their sync waits for a checkpoint
  REQUIRE(r.cache->usage().unsynced_stripes == 1);
  const uint64_t syncs_before = r.members[0]->syncs;
  r.journal->memory().fail_syncs = true;
  REQUIRE(r.cache->write(65536, a).ok());
  REQUIRE(!r.cache->fsync().ok());
  r.cache->start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (r.members[0]->syncs == syncs_before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(r.members[0]->syncs > syncs_before);
  CHECK(r.cache->usage().unsynced_stripes == 0);
  r.journal->memory().fail_syncs = false;
}

TEST_CASE("flushing a full log on the caller's thread (open, a drain before start) moves the tail between batches") {
  // Each write is one page of its own row and waits once the log is full
  // beside the stripes' reservations. Writing them all out takes about 40
  // batches, each of which may log a metadata block more than its stripes
  // reserved: the tail has to move between them, as the flusher moves it.
  Rig r(5, 3, 4096, 8192, 16384);
  JournaledCache::Options o = small_cache();
  o.memory = 64 << 20;
  REQUIRE(r.open(o).ok());
  const uint64_t row_bytes = r.sb.geometry().row_data_bytes();
  std::vector<std::byte> model(r.array->capacity());
  std::atomic<uint64_t> written{0};
  std::atomic<bool> stop{false};
  Status write_status;
  std::thread writer([&] {
    for (uint64_t row = 0; row < r.sb.geometry().rows && !stop && write_status.ok(); ++row) {
      std::vector<std::byte> page(4096, std::byte(1 + row % 251));
      write_status = r.cache->write(row * row_bytes, page);
      std::memcpy(model.data() + row * row_bytes, page.data(), page.size());
      written = row + 1;
    }
  });
  while (r.cache->counters().space_waits.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;  // its waiting write is the last
  CHECK(written.load() > 3000);
  const Status flushed = r.cache->flush_for_test();
  CHECK_MESSAGE(flushed.ok(), (flushed.ok() ? "" : flushed.error().message));
  const Status checkpointed = r.cache->checkpoint_for_test();
  CHECK_MESSAGE(checkpointed.ok(), (checkpointed.ok() ? "" : checkpointed.error().message));
  writer.join();
  REQUIRE_MESSAGE(write_status.ok(), write_status.error().message);
  CHECK(!r.cache->failure().has_value());
  REQUIRE(r.cache->drain().ok());
  check_reads(*r.cache, model);
  check_members(r, model);
}

TEST_CASE("the flusher frees a full log whose oldest record holds more wide stripes than one batch takes") {
  // One commit of 128 writes, each 8 KiB across the boundary of its row's
  // two data chunks: every stripe spans all 128 columns (1.5 MiB of flush
  // buffer), so a batch takes 21 of them, and moving the tail past that
  // commit takes 7 batches, each of which may log a metadata block more
  // than its stripes reserved. A writer fills the log to its last
  // unreserved block before the flusher starts.
  Rig r(5, 3, 512 << 10, 160, 4096);
  JournaledCache::Options o = small_cache();
  o.memory = 64 << 20;
  o.max_age = std::chrono::hours(1);
  REQUIRE(r.open(o).ok());
  const uint64_t row_bytes = r.sb.geometry().row_data_bytes(), filler_row = 150;
  std::vector<std::byte> model(r.array->capacity());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> filled{0};
  std::thread filler;
  auto fill = [&] {  // until the filler waits for journal space
    stop = false;
    filler = std::thread([&] {
      const std::vector<std::byte> page(4096, std::byte{7});
      while (!stop && r.cache->write(filler_row * row_bytes, page).ok()) ++filled;
    });
    for (uint64_t seen = ~0ull; seen != filled.load();) {
      seen = filled.load();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE(r.cache->counters().space_waits.load() > 0);
    stop = true;  // it stops once its waiting write is in
  };
  std::memset(model.data() + filler_row * row_bytes, 7, 4096);
  // The filler leads a commit that waits for space; the 128 queue behind it
  // and go as one batch once its row is written out.
  fill();
  std::vector<std::thread> writers;
  std::atomic<int> failed_writes{0};
  for (uint64_t row = 0; row < 128; ++row) {
    const uint64_t at = row * row_bytes + (512 << 10) - 4096;
    std::memset(model.data() + at, 1 + int(row % 251), 8192);
    writers.emplace_back([&, at, row] {
      const std::vector<std::byte> pages(8192, std::byte(1 + row % 251));
      if (!r.cache->write(at, pages).ok()) ++failed_writes;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(r.cache->flush_for_test({filler_row}).ok());
  REQUIRE(r.cache->checkpoint_for_test().ok());
  for (auto& t : writers) t.join();
  filler.join();
  REQUIRE(failed_writes == 0);
  CHECK(r.cache->counters().write_batches.load() < r.cache->counters().writes_batched.load() - 100);
  fill();  // full again
  r.cache->start();
  // Its write goes in once the tail has passed the 128 (or fails with the log).
  filler.join();
  const std::optional<Error> failed = r.cache->failure();
  CHECK_MESSAGE(!failed.has_value(), (failed ? failed->message : ""));
  REQUIRE(r.cache->drain().ok());
  check_reads(*r.cache, model);
}

TEST_CASE("the journal's slack per geometry is the figures DESIGN.md gives") {
  using geometry::Layout;
  auto slack = [](uint32_t level, uint32_t members, uint32_t chunk) {
    return JournaledCache::slack_blocks(test::test_superblock(level, Layout::kLeftSymmetric, members, chunk, 8).geometry());
  };
  CHECK(slack(5, 3, 4096) == 4);         // one batch passes a commit's 256 rows
  CHECK(slack(5, 5, 64 << 10) == 8);     // 56 stripes a batch: 5 batches
  CHECK(slack(6, 8, 512 << 10) == 67);   // 4 stripes a batch: 64 batches
}

TEST_CASE("a journal taken out after a failure replays nothing if it is mounted again") {
  // r5cfs journal remove --force: salvage writes the dirty data to the
  // members, the array goes on without the journal; a mount that still
  // names it must not replay its old records over the newer writes.
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open().ok());
  const std::vector<std::byte> old_data(8192, std::byte{1}), newer(8192, std::byte{2});
  REQUIRE(r.cache->write(0, old_data).ok());
  REQUIRE(r.cache->fsync().ok());
  r.journal->memory().fail_syncs = true;
  REQUIRE(r.cache->write(65536, old_data).ok());
  REQUIRE(!r.cache->fsync().ok());
  r.journal->memory().fail_syncs = false;  // the device works again later
  REQUIRE(r.cache->salvage(*r.array).ok());
  REQUIRE(r.cache->retire().ok());  // the cache (which owns the journal device) stays, failed
  REQUIRE(r.array->write(0, newer).ok());  // mode none from here on
  REQUIRE(r.array->sync().ok());
  Rig again(r, 0);
  Status opened = again.open();
  REQUIRE_MESSAGE(opened.ok(), opened.error().message);
  CHECK(again.cache->counters().replay_records == 0);
  std::vector<std::byte> got(8192);
  REQUIRE(again.cache->read(0, got).ok());
  CHECK(got == newer);
}

TEST_CASE("member failure during a flush: the stripe completes degraded") {
  Rig r(6, 6, 16384, 16, 1024);
  REQUIRE(r.open(small_cache()).ok());
  std::mt19937_64 rng(3);
  std::vector<std::byte> model(r.array->capacity());
  random_ops(*r.cache, model, rng, 60, r.sb.geometry().row_data_bytes());
  r.members[2]->memory().fail_writes = true;
  REQUIRE(r.cache->drain().ok());
  CHECK(r.array->members().failed_mask() == (1u << 2));
  check_members(r, model);
  check_reads(*r.cache, model);
}

// DESIGN: a full stripe's flush logs no parity (the log holds all its data),
// a partial stripe's logs parity for the columns holding dirty pages.
TEST_CASE("flushing a full stripe logs one column of parity as a mark; a partial one logs parity for its dirty columns") {
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open(small_cache()).ok());
  const uint64_t row = r.sb.geometry().row_data_bytes();
  auto logged_by_drain = [&](uint64_t offset, size_t len) {
    REQUIRE(r.cache->write(offset, std::vector<std::byte>(len, std::byte{7})).ok());
    const uint64_t before = r.cache->counters().journal_bytes.load();
    REQUIRE(r.cache->drain().ok());
    return (r.cache->counters().journal_bytes.load() - before) / 4096;
  };
  CHECK(logged_by_drain(0, row) == 2 + 1);        // metadata + P of column 0 (of 4), and the done record
  CHECK(logged_by_drain(2 * row, 4096) == 1 + 2);  // a parity record (metadata + P) and the done record
  // Pages in columns 0 and 3 (of 4) of two chunks: P for two columns, not four.
  REQUIRE(r.cache->write(4 * row, std::vector<std::byte>(4096, std::byte{8})).ok());
  CHECK(logged_by_drain(4 * row + 2 * 16384 + 3 * 4096, 4096) == 1 + 2 + 1);
  std::vector<std::byte> model(r.array->capacity());
  std::memset(model.data(), 7, row);
  std::memset(model.data() + 2 * row, 7, 4096);
  std::memset(model.data() + 4 * row, 8, 4096);
  std::memset(model.data() + 4 * row + 2 * 16384 + 3 * 4096, 7, 4096);
  check_members(r, model);
  CHECK(parity_consistent(r));
}

TEST_CASE("a full stripe flushed before a crash is repaired from its logged data, not written out again at open") {
  // Its flush logged only a mark; P never reached its member. Replay writes
  // the whole row (parity computed), so a lost data member reads back, and
  // the open logs nothing: flushing such rows again would need journal
  // space their reservations gave back when the mark was logged.
  Rig r(5, 5, 16384, 16, 1024);
  REQUIRE(r.open(small_cache()).ok());
  const geometry::Geometry g = r.sb.geometry();
  std::vector<std::byte> model(r.array->capacity());
  std::memset(model.data(), 5, g.row_data_bytes());
  REQUIRE(r.cache->write(0, {model.data(), g.row_data_bytes()}).ok());
  r.members[geometry::map_row(g, 0).p]->frozen = true;
  REQUIRE(r.cache->flush_for_test().ok());
  r.freeze_all();
  {
    Rig again(r, 0);
    REQUIRE(again.open(small_cache()).ok());
    CHECK(again.cache->counters().replay_repaired_rows == 1);
    CHECK(again.cache->counters().replay_dirty_pages == 0);
    CHECK(again.cache->counters().journal_records.load() == 0);
  }
  recover_without(r, geometry::map_row(g, 0).data[1], model);
}

TEST_CASE("a flush reads the fewest member pages: read-modify-write of a lone page on a wide array") {
  for (auto [level, count] : {std::pair{5u, 6u}, {6u, 8u}}) {
    CAPTURE(level);
    Rig r(level, count, 16384, 16, 1024);
    REQUIRE(r.open(small_cache()).ok());
    r.cache->start();
    const geometry::Geometry g = r.sb.geometry();
    std::vector<std::byte> model(r.array->capacity());
    std::mt19937_64 rng(count);
    model = random_bytes(rng, model.size());
    REQUIRE(r.cache->write(0, model).ok());
    REQUIRE(r.cache->drain().ok());
    // One page in each of two rows, flushed: returns the member bytes read.
    auto flush_lone_pages = [&] {
      const uint64_t before = r.array->counters().member_bytes_read;
      for (uint64_t off : {uint64_t(4096), 3 * g.row_data_bytes() + 2 * g.chunk_size + 8192}) {
        auto page = random_bytes(rng, 4096);
        REQUIRE(r.cache->write(off, page).ok());
        std::memcpy(model.data() + off, page.data(), page.size());
      }
      REQUIRE(r.cache->drain().ok());
      const uint64_t read = r.array->counters().member_bytes_read - before;
      check_members(r, model);
      CHECK(parity_consistent(r));
      return read;
    };
    // The old page and the parity are read (1 + parity pages per row), not
    // the row's other data pages (d - 1).
    CHECK(flush_lone_pages() == 2 * (1 + g.parity_count()) * 4096);
    // While a repair pass (resync, check with repair) may be rewriting old
    // parity, the same flush computes parity from the data instead.
    {
      const array::RaidArray::RepairPass pass(*r.array);
      CHECK(flush_lone_pages() == 2 * (g.data_count() - 1) * 4096);
    }
    // Degraded (no read-modify-write then), a lone page still reaches the
    // members right, the lost member's blocks included.
    REQUIRE(r.cache->close(false).ok());
    Rig degraded(r, 1u << 2);
    REQUIRE(degraded.open(small_cache()).ok());
    degraded.cache->start();
    auto page = random_bytes(rng, 4096);
    REQUIRE(degraded.cache->write(4096, page).ok());
    std::memcpy(model.data() + 4096, page.data(), page.size());
    REQUIRE(degraded.cache->drain().ok());
    check_members(degraded, model);
  }
}

TEST_CASE("open refuses a journal of another array, one too small, and mid-log damage without force") {
  SUBCASE("another array") {
    Rig r(5, 5, 16384, 16, 1024);
    format::MemberSuperblock other = r.sb;
    other.array_uuid[0] ^= 1;
    REQUIRE(journal::format_journal(*r.journal, other, 1024).ok());
    Status st = r.open();
    REQUIRE(!st.ok());
    CHECK(st.error().message.find("belongs to another array") != std::string::npos);
  }
  SUBCASE("chunk too large for a parity entry") {
    Rig r(6, 6, 1 << 20, 2, 4096);
    Status st = r.open();
    REQUIRE(!st.ok());
    CHECK(st.error().message.find("chunks of up to 512 KiB with RAID6") != std::string::npos);
  }
  SUBCASE("too small for the geometry") {
    Rig r(6, 6, 524288, 4, 1024);
    Status st = r.open();
    REQUIRE(!st.ok());
    CHECK(st.error().message.find("too small") != std::string::npos);
  }
  SUBCASE("a hole in the unsynced end of the log is a torn end, not damage") {
    Rig r(5, 5, 16384, 16, 1024);
    REQUIRE(r.open().ok());
    std::vector<std::byte> data(4096, std::byte{5});
    for (int i = 0; i < 6; ++i) REQUIRE(r.cache->write(uint64_t(i) * 65536, data).ok());
    r.freeze_all();  // nothing synced: the disk may have kept any of them
    std::vector<std::byte> junk(4096, std::byte{0xee});
    r.journal->memory().poke(5 * 4096, junk);
    Rig after(r, 0);
    REQUIRE(after.open().ok());
    std::vector<std::byte> got(4096);
    REQUIRE(after.cache->read(0, got).ok());
    CHECK(got == data);
    REQUIRE(after.cache->read(4 * 65536, got).ok());
    CHECK(got == std::vector<std::byte>(4096));  // after the hole: never promised, discarded
  }
  SUBCASE("damage in the middle of the log") {
    Rig r(5, 5, 16384, 16, 1024);
    REQUIRE(r.open().ok());
    std::vector<std::byte> data(4096, std::byte{5});
    for (int i = 0; i < 6; ++i) {
      REQUIRE(r.cache->write(uint64_t(i) * 65536, data).ok());
      REQUIRE(r.cache->fsync().ok());  // each record durable before the next is written
    }
    r.freeze_all();
    // Each record is a metadata block and one page: damage the third record.
    std::vector<std::byte> junk(4096, std::byte{0xee});
    r.journal->memory().poke(5 * 4096, junk);
    Rig after(r, 0);
    Status st = after.open();
    REQUIRE(!st.ok());
    CHECK(st.error().kind == ErrorKind::kCorruption);
    CHECK(st.error().message.find("-o force") != std::string::npos);
    Rig forced(r, 0);
    JournaledCache::Options o;
    o.force = true;
    REQUIRE(forced.open(o).ok());
    std::vector<std::byte> got(4096);
    REQUIRE(forced.cache->read(0, got).ok());
    CHECK(got == data);  // before the damage: kept
    REQUIRE(forced.cache->read(4 * 65536, got).ok());
    CHECK(got == std::vector<std::byte>(4096));  // after it: discarded
  }
}
