// RaidArray against a reference model (a plain byte array): random reads and
// writes of any size and alignment, every layout, healthy, degraded and with
// members failing mid-request; parity of every row checked on the members.
#include <doctest/doctest.h>

#include <cstring>
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

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (Layout l : {Layout::kLeftAsymmetric, Layout::kRightAsymmetric, Layout::kLeftSymmetric, Layout::kRightSymmetric})
    for (uint32_t n : {3u, 4u, 5u}) cases.push_back({5, l, n});
  for (uint32_t n : {4u, 5u, 6u}) cases.push_back({6, Layout::kLeftSymmetric, n});
  return cases;
}

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = std::byte(rng());
  return v;
}

// Random write or read; offsets and sizes skewed to hit sub-page, chunk- and
// row-crossing cases.
void random_ops(test::MemoryArray& a, std::vector<std::byte>& model, std::mt19937_64& rng, int count) {
  const uint64_t cap = a.array->capacity();
  const uint64_t row = a.sb.geometry().row_data_bytes();
  for (int i = 0; i < count; ++i) {
    uint64_t off = rng() % cap;
    if (rng() % 3 == 0) off = off / 4096 * 4096;
    uint64_t max_len = std::min<uint64_t>(cap - off, rng() % 2 ? 3 * row : 9000);
    size_t len = size_t(1 + rng() % max_len);
    if (rng() % 2) {
      auto data = random_bytes(rng, len);
      Status st = a.array->write(off, data);
      REQUIRE_MESSAGE(st.ok(), st.error().message);
      std::memcpy(model.data() + off, data.data(), len);
    } else {
      std::vector<std::byte> got(len);
      Status st = a.array->read(off, got);
      REQUIRE_MESSAGE(st.ok(), st.error().message);
      REQUIRE_MESSAGE(std::memcmp(got.data(), model.data() + off, len) == 0, "read at ", off, " +", len);
    }
  }
}

void check_all(test::MemoryArray& a, const std::vector<std::byte>& model) {
  std::vector<std::byte> got(model.size());
  Status st = a.array->read(0, got);
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  CHECK(got == model);
}

}  // namespace

TEST_CASE("random I/O matches the model and keeps parity consistent, every layout") {
  for (const Case& c : all_cases()) {
    CAPTURE(c.level);
    CAPTURE(uint32_t(c.layout));
    CAPTURE(c.members);
    test::MemoryArray a(c.level, c.layout, c.members, 16384, 12);
    std::vector<std::byte> model(a.array->capacity());
    std::mt19937_64 rng(c.members * 100 + uint32_t(c.layout) + c.level);
    random_ops(a, model, rng, 150);
    check_all(a, model);
    CHECK(a.parity_consistent());
  }
}

TEST_CASE("write plans: full stripe reads nothing, small writes read-modify-write, wide ones reconstruct") {
  test::MemoryArray a(5, Layout::kLeftSymmetric, 5, 65536, 8);
  const auto& c = a.array->counters();
  const uint64_t row = a.sb.geometry().row_data_bytes();

  std::vector<std::byte> full(row, std::byte{7});
  REQUIRE(a.array->write(row, full).ok());
  CHECK(c.full_stripe_writes == 1);
  CHECK(c.member_bytes_read == 0);
  CHECK(c.member_bytes_written == 5 * 65536);

  std::vector<std::byte> page(4096, std::byte{9});
  REQUIRE(a.array->write(0, page).ok());
  CHECK(c.read_modify_writes == 1);
  CHECK(c.member_bytes_read == 2 * 4096);  // old data + old P

  std::vector<std::byte> three_chunks(3 * 65536, std::byte{5});
  REQUIRE(a.array->write(2 * row, three_chunks).ok());
  CHECK(c.reconstruct_writes == 1);  // reads 1 chunk instead of 3 + P
  CHECK(a.parity_consistent());
}

TEST_CASE("a write across a chunk boundary touches only the pages it needs") {
  test::MemoryArray a(5, Layout::kLeftSymmetric, 5, 65536, 4);
  const auto& c = a.array->counters();
  std::vector<std::byte> data(8192, std::byte{1});
  REQUIRE(a.array->write(65536 - 4096, data).ok());
  // Two narrow jobs of one page each, read-modify-write: 2 x (1 data + 1 P).
  CHECK(c.read_modify_writes == 2);
  CHECK(c.member_bytes_read == 4 * 4096);
  CHECK(a.parity_consistent());
}

TEST_CASE("degraded: reads reconstruct and writes continue with any failed member (pair for RAID6)") {
  for (const Case& c : all_cases()) {
    const uint32_t parity = c.level == 6 ? 2 : 1;
    for (uint32_t first = 0; first < c.members; ++first) {
      for (uint32_t second = parity == 2 ? first + 1 : c.members; second <= c.members; ++second) {
        CAPTURE(c.level);
        CAPTURE(uint32_t(c.layout));
        CAPTURE(c.members);
        CAPTURE(first);
        CAPTURE(second);
        test::MemoryArray a(c.level, c.layout, c.members, 8192, 6);
        std::vector<std::byte> model(a.array->capacity());
        std::mt19937_64 rng(first * 31 + second + c.members);
        random_ops(a, model, rng, 20);
        a.devices[first]->fail_reads = a.devices[first]->fail_writes = true;
        if (second < c.members) a.devices[second]->fail_reads = a.devices[second]->fail_writes = true;
        check_all(a, model);  // the first read fails the members and reconstructs
        CHECK(a.array->members().failed_count() == (second < c.members ? 2u : 1u));
        random_ops(a, model, rng, 40);
        check_all(a, model);
      }
    }
  }
}

TEST_CASE("a member failing during writes is recorded in the other superblocks and nothing is lost") {
  test::MemoryArray a(6, Layout::kLeftSymmetric, 6, 16384, 8);
  std::vector<std::byte> model(a.array->capacity());
  std::mt19937_64 rng(42);
  random_ops(a, model, rng, 30);
  a.devices[2]->fail_writes = true;
  random_ops(a, model, rng, 30);
  CHECK(a.array->members().failed_mask() == (1u << 2));
  for (uint32_t i = 0; i < 6; ++i) {
    if (i == 2) continue;
    auto snap = a.devices[i]->snapshot();
    auto sb = format::decode_member_superblock(std::span<const std::byte, format::kSuperblockSize>(snap.data(), format::kSuperblockSize));
    REQUIRE(sb.ok());
    CHECK(sb->failed_mask == (1u << 2));
    CHECK(sb->slot == i);
  }
  a.devices[4]->fail_reads = true;  // second failure: RAID6 still serves every byte
  check_all(a, model);
  a.devices[0]->fail_reads = true;  // third: the array has failed
  std::vector<std::byte> buf(a.array->capacity());
  Status st = a.array->read(0, buf);
  REQUIRE(!st.ok());
  CHECK(st.error().err == EIO);
}

TEST_CASE("RAID5 with two failed members refuses I/O with EIO") {
  test::MemoryArray a(5, Layout::kLeftSymmetric, 4, 8192, 4);
  a.devices[1]->fail_reads = a.devices[3]->fail_reads = true;
  std::vector<std::byte> buf(a.array->capacity());
  Status st = a.array->read(0, buf);
  REQUIRE(!st.ok());
  CHECK(st.error().err == EIO);
  CHECK(!a.array->members().usable());
}

TEST_CASE("a failed fdatasync fails the member but the array stays correct") {
  test::MemoryArray a(5, Layout::kLeftSymmetric, 4, 8192, 4);
  std::vector<std::byte> model(a.array->capacity());
  std::mt19937_64 rng(7);
  random_ops(a, model, rng, 20);
  a.devices[1]->fail_syncs = true;
  CHECK(a.array->sync().ok());
  CHECK(a.array->members().failed_mask() == 2u);
  check_all(a, model);
}

TEST_CASE("concurrent writers to different chunks of the same rows keep parity consistent") {
  test::MemoryArray a(6, Layout::kLeftSymmetric, 6, 8192, 16);
  const auto g = a.sb.geometry();
  std::vector<std::byte> model(a.array->capacity());
  std::vector<std::thread> threads;
  // Thread k writes sub-page pieces only inside data chunk k of every row, so
  // every write is a read-modify-write racing the others on the same parity.
  for (uint32_t k = 0; k < g.data_count(); ++k) {
    threads.emplace_back([&, k] {
      std::mt19937_64 rng(k);
      for (int i = 0; i < 300; ++i) {
        uint64_t row = rng() % g.rows;
        uint64_t off = row * g.row_data_bytes() + uint64_t(k) * g.chunk_size + rng() % (g.chunk_size - 100);
        size_t len = 1 + rng() % 99;
        auto data = random_bytes(rng, len);
        REQUIRE(a.array->write(off, data).ok());
        std::memcpy(model.data() + off, data.data(), len);  // disjoint per thread
      }
    });
  }
  for (auto& t : threads) t.join();
  check_all(a, model);
  CHECK(a.parity_consistent());
}

TEST_CASE("out-of-range I/O is refused") {
  test::MemoryArray a(5, Layout::kLeftSymmetric, 3, 4096, 2);
  std::vector<std::byte> buf(8192);
  CHECK(!a.array->read(a.array->capacity() - 4096, buf).ok());
  CHECK(!a.array->write(a.array->capacity(), std::span<const std::byte>(buf.data(), 1)).ok());
  CHECK(a.array->read(a.array->capacity() - 8192, buf).ok());
}

TEST_CASE("a member failing while several threads write loses nothing") {
  test::MemoryArray a(6, Layout::kLeftSymmetric, 6, 8192, 32);
  const uint64_t slice = a.array->capacity() / 4;
  std::vector<std::byte> model(a.array->capacity());
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      for (int i = 0; i < 200; ++i) {
        if (t == 0 && i == 50) a.devices[3]->fail_writes = a.devices[3]->fail_reads = true;
        if (t == 1 && i == 120) a.devices[5]->fail_writes = true;
        uint64_t off = t * slice + rng() % (slice - 20000);
        auto data = random_bytes(rng, 1 + rng() % 20000);
        REQUIRE(a.array->write(off, data).ok());
        std::memcpy(model.data() + off, data.data(), data.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(a.array->members().failed_mask() == ((1u << 3) | (1u << 5)));
  check_all(a, model);
}

TEST_CASE("resync repairs stale parity and leaves consistent rows alone") {
  for (uint32_t level : {5u, 6u}) {
    test::MemoryArray a(level, Layout::kLeftSymmetric, 5, 8192, 6);
    std::vector<std::byte> model(a.array->capacity());
    std::mt19937_64 rng(level);
    random_ops(a, model, rng, 40);
    // A torn stripe write: new data reached a member, parity did not.
    const geometry::RowMap map = geometry::map_row(a.sb.geometry(), 3);
    std::vector<std::byte> junk(100, std::byte{0xab});
    a.devices[map.data[1]]->poke(a.sb.data_offset + 3 * 8192 + 50, junk);
    CHECK(!a.parity_consistent());
    for (uint64_t row = 0; row < a.sb.geometry().rows; ++row) REQUIRE(a.array->resync_row(row).ok());
    CHECK(a.parity_consistent());
    CHECK(a.array->counters().resync_rows_checked == 6);
    CHECK(a.array->counters().resync_rows_repaired == 1);
  }
}
