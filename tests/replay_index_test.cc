// The replay index: how recovery reads a row's history from the log, in
// particular flushes that log parity as several runs of columns.
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "journal/replay_index.h"
#include "support/memory_array.h"

using namespace r5;

namespace {

constexpr size_t kPage = 4096;

// 4+1 RAID5, 16 KiB chunks (4 columns), 8 rows; pages from the heap.
struct Fixture {
  geometry::Geometry g = test::test_superblock(5, geometry::Layout::kLeftSymmetric, 5, 16384, 8).geometry();
  std::set<std::byte*> out;
  journal::ReplayIndexBuilder builder{g,
                                      {[this] {
                                         auto* p = new std::byte[kPage];
                                         out.insert(p);
                                         return p;
                                       },
                                       [this](std::byte* p) {
                                         out.erase(p);
                                         delete[] p;
                                       }}};
  uint64_t sequence = 1;
  ~Fixture() {
    for (std::byte* p : out) delete[] p;
  }

  // A record of `entries`, whose payload pages are filled with `fill`.
  Status add(std::vector<format::Entry> entries, std::byte fill) {
    journal::Record rec;
    rec.meta.sequence = sequence++;
    rec.meta.entries = std::move(entries);
    std::vector<std::byte> page(kPage, fill);
    return builder.add(rec, [&](size_t) { return page.data(); });
  }
  format::Entry data(uint32_t index, uint32_t column) {
    format::DataEntry e;
    e.array_offset = uint64_t(index) * g.chunk_size + column * kPage;  // row 0
    e.page_checksums = {0};
    return e;
  }
  format::Entry parity(uint32_t column, uint32_t pages) {
    format::ParityEntry e;
    e.row = 0;
    e.column_offset = column * uint32_t(kPage);
    e.parity_count = 1;
    e.page_checksums.assign(pages, 0);
    return e;
  }
};

}  // namespace

TEST_CASE("a flush's parity runs together cover the row: repaired from the log") {
  Fixture f;
  REQUIRE(f.add({f.data(0, 0), f.data(2, 3)}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(0, 1), f.parity(3, 1)}, std::byte{2}).ok());
  journal::ReplayIndex& index = f.builder.finish();
  const journal::RowReplay& r = index.rows.at(0);
  CHECK(r.parity_logged());
  REQUIRE(r.parity.size() == 2);
  CHECK(r.parity[0].lo == 0);
  CHECK(r.parity[1].lo == 3);
  CHECK(std::to_integer<int>(r.parity[1].parity[0][0]) == 2);
  CHECK(index.dirty_pages() == 0);
}

TEST_CASE("a log that ends between a flush's parity records leaves the row dirty, not repaired") {
  Fixture f;
  REQUIRE(f.add({f.data(0, 0), f.data(2, 3)}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(0, 1)}, std::byte{2}).ok());  // the record with column 3 never became durable
  journal::ReplayIndex& index = f.builder.finish();
  const journal::RowReplay& r = index.rows.at(0);
  CHECK(!r.parity_logged());
  CHECK(r.pages.size() == 2);
  CHECK(index.dirty_pages() == 2);
  CHECK(f.out.size() == 2);  // the parity page went back to the store
}

TEST_CASE("new data after parity starts a new generation; the flushed one is repaired first; done forgets both") {
  // The flush that logged the parity wrote the members before the new write
  // was accepted, but the members are synced only at the next checkpoint:
  // its data and parity are kept for the repair.
  Fixture f;
  REQUIRE(f.add({f.data(0, 0)}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(0, 1)}, std::byte{2}).ok());
  REQUIRE(f.add({f.data(1, 2)}, std::byte{3}).ok());
  {
    journal::ReplayIndex& index = f.builder.finish();
    const journal::RowReplay& r = index.rows.at(0);
    CHECK(!r.parity_logged());
    CHECK(r.pages.size() == 1);
    CHECK(r.pages.count(1 * 4 + 2) == 1);
    CHECK(r.first_sequence == 3);
    REQUIRE(r.repair_count() == 1);
    const journal::RowFlush& old = r.repair(0);
    REQUIRE(old.pages.count(0) == 1);
    CHECK(std::to_integer<int>(old.pages.at(0)[0]) == 1);
    REQUIRE(old.parity.size() == 1);
    CHECK(std::to_integer<int>(old.parity[0].parity[0][0]) == 2);
    CHECK(index.dirty_pages() == 1);
  }
  REQUIRE(f.add({f.parity(2, 1)}, std::byte{4}).ok());
  {
    const journal::RowReplay& r = f.builder.finish().rows.at(0);
    CHECK(r.parity_logged());
    REQUIRE(r.repair_count() == 2);
    CHECK(&r.repair(1) == &r);  // the newest generation goes last
    CHECK(std::to_integer<int>(r.repair(1).parity[0].parity[0][0]) == 4);
  }
  CHECK(f.out.size() == 4);
  format::StripeDoneEntry done;
  done.rows = {0};
  REQUIRE(f.add({done}, std::byte{0}).ok());
  CHECK(f.builder.finish().rows.empty());
  CHECK(f.out.empty());
}

TEST_CASE("a page written again after its flush keeps both copies, each with its generation") {
  Fixture f;
  REQUIRE(f.add({f.data(0, 0)}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(0, 1)}, std::byte{2}).ok());
  REQUIRE(f.add({f.data(0, 0)}, std::byte{3}).ok());
  REQUIRE(f.add({f.parity(0, 1)}, std::byte{4}).ok());
  REQUIRE(f.add({f.data(0, 0)}, std::byte{5}).ok());
  const journal::RowReplay& r = f.builder.finish().rows.at(0);
  REQUIRE(r.repair_count() == 2);
  CHECK(std::to_integer<int>(r.repair(0).pages.at(0)[0]) == 1);
  CHECK(std::to_integer<int>(r.repair(1).pages.at(0)[0]) == 3);
  CHECK(std::to_integer<int>(r.repair(1).parity[0].parity[0][0]) == 4);
  CHECK(std::to_integer<int>(r.pages.at(0)[0]) == 5);  // the newest, dirty
  CHECK(!r.parity_logged());
}

TEST_CASE("a full stripe's flush, marked by one column of parity, is a generation of its own") {
  Fixture f;
  format::DataEntry whole;  // all 16 pages of row 0
  whole.array_offset = 0;
  whole.page_checksums.assign(16, 0);
  REQUIRE(f.add({whole}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(0, 1)}, std::byte{2}).ok());
  REQUIRE(f.add({f.data(1, 2)}, std::byte{3}).ok());
  const journal::RowReplay& r = f.builder.finish().rows.at(0);
  REQUIRE(r.repair_count() == 1);
  CHECK(r.repair(0).pages.size() == 16);
  CHECK(!r.repair(0).parity_covers_pages(4));  // replay computes its parity
  CHECK(r.pages.size() == 1);
}

TEST_CASE("a flushed generation that began behind the tail is not repaired; the newer data is kept") {
  // Its parity covers neither its pages nor a full stripe: part of it lies
  // behind the tail, which passed it only once the members were synced.
  Fixture f;
  REQUIRE(f.add({f.data(0, 0), f.data(2, 3)}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(0, 1)}, std::byte{2}).ok());
  REQUIRE(f.add({f.data(1, 1)}, std::byte{3}).ok());
  journal::ReplayIndex& index = f.builder.finish();
  const journal::RowReplay& r = index.rows.at(0);
  CHECK(r.repair_count() == 0);
  CHECK(r.pages.size() == 1);
  CHECK(index.dirty_pages() == 1);
  CHECK(r.first_sequence == 3);
  CHECK(f.out.size() == 1);
}

TEST_CASE("an overlapping parity run replaces the older one; a run outside the chunk is corruption") {
  Fixture f;
  REQUIRE(f.add({f.data(0, 1), f.data(0, 2)}, std::byte{1}).ok());
  REQUIRE(f.add({f.parity(1, 1)}, std::byte{2}).ok());
  REQUIRE(f.add({f.parity(1, 2)}, std::byte{3}).ok());
  const journal::RowReplay& r = f.builder.finish().rows.at(0);
  REQUIRE(r.parity.size() == 1);
  CHECK(r.parity[0].pages == 2);
  CHECK(f.out.size() == 4);  // two data pages, two parity pages
  Status st = f.add({f.parity(3, 2)}, std::byte{4});
  CHECK(!st.ok());
  CHECK(st.error().message.find("does not fit the geometry") != std::string::npos);
}

TEST_CASE("a stripe-done entry for a row beyond the array is corruption") {
  Fixture f;
  REQUIRE(f.add({f.data(0, 1)}, std::byte{1}).ok());
  format::StripeDoneEntry done;
  done.rows = {0, f.g.rows};
  Status st = f.add({done}, std::byte{0});
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("beyond the array's 8 rows") != std::string::npos);
  done.rows = {f.g.rows - 1, 0};
  CHECK(f.add({done}, std::byte{0}).ok());
}
