// Geometry must place every chunk exactly where Linux md does, so an admin
// can assemble the members with mdadm. Checked three ways: literal tables
// from md's layout diagrams, a transcription of raid5_compute_sector(), and
// structural properties (bijection, round trips).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "geometry/layout.h"

using namespace r5::geometry;

namespace {

constexpr Layout kAllLayouts[] = {Layout::kLeftAsymmetric, Layout::kRightAsymmetric, Layout::kLeftSymmetric,
                                  Layout::kRightSymmetric};

Geometry make(uint32_t level, Layout layout, uint32_t members, uint32_t chunk = 64 * 1024, uint64_t rows = 1000) {
  Geometry g;
  g.level = level;
  g.layout = layout;
  g.members = members;
  g.chunk_size = chunk;
  g.rows = rows;
  return g;
}

// One character per member: data index within the row, 'P' or 'Q'.
std::string row_string(const Geometry& g, uint64_t row) {
  RowMap m = map_row(g, row);
  std::string s;
  for (uint32_t i = 0; i < g.members; i++) {
    uint32_t r = m.role[i];
    s += r == kRoleP ? 'P' : r == kRoleQ ? 'Q' : char('0' + r);
  }
  return s;
}

void check_table(const Geometry& g, const std::vector<std::string>& expected) {
  REQUIRE(g.validate().ok());
  // Two full rotations: the pattern must repeat every `members` rows.
  for (uint64_t row = 0; row < 2 * expected.size(); row++) {
    CAPTURE(row);
    CHECK(row_string(g, row) == expected[row % expected.size()]);
  }
}

// Straight transcription of raid5_compute_sector() (drivers/md/raid5.c) for
// the supported cases, in md's own terms: chunk number in, dd_idx, pd_idx,
// qd_idx and stripe out. Signed ints as in the kernel.
struct MdMap {
  int dd_idx, pd_idx, qd_idx;
  uint64_t stripe;
};
MdMap md_compute(int level, int algorithm, int raid_disks, uint64_t chunk_number) {
  int max_degraded = level == 6 ? 2 : 1;
  int data_disks = raid_disks - max_degraded;
  uint64_t stripe = chunk_number;
  int dd_idx = int(stripe % data_disks);
  stripe /= data_disks;
  int s2 = int(stripe % raid_disks);  // sector_div(stripe2, raid_disks)
  int pd_idx = -1, qd_idx = -1;
  if (level == 5) {
    switch (algorithm) {
      case 0:  // ALGORITHM_LEFT_ASYMMETRIC
        pd_idx = data_disks - s2;
        if (dd_idx >= pd_idx) dd_idx++;
        break;
      case 1:  // ALGORITHM_RIGHT_ASYMMETRIC
        pd_idx = s2;
        if (dd_idx >= pd_idx) dd_idx++;
        break;
      case 2:  // ALGORITHM_LEFT_SYMMETRIC
        pd_idx = data_disks - s2;
        dd_idx = (pd_idx + 1 + dd_idx) % raid_disks;
        break;
      case 3:  // ALGORITHM_RIGHT_SYMMETRIC
        pd_idx = s2;
        dd_idx = (pd_idx + 1 + dd_idx) % raid_disks;
        break;
    }
  } else {  // level 6, ALGORITHM_LEFT_SYMMETRIC
    pd_idx = raid_disks - 1 - s2;
    qd_idx = (pd_idx + 1) % raid_disks;
    dd_idx = (pd_idx + 2 + dd_idx) % raid_disks;
  }
  return {dd_idx, pd_idx, qd_idx, stripe};
}

// md's syndrome order (set_syndrome_sources with raid6_d0/raid6_idx_to_slot,
// non-DDF): walk the disks from qd_idx + 1, wrapping, skipping P and Q.
std::vector<int> md_syndrome_order(int raid_disks, int pd_idx, int qd_idx) {
  int d0 = qd_idx == raid_disks - 1 ? 0 : qd_idx + 1;
  std::vector<int> order;
  int i = d0;
  do {
    if (i != pd_idx && i != qd_idx) order.push_back(i);
    i = i + 1 < raid_disks ? i + 1 : 0;
  } while (i != d0);
  return order;
}

struct Case {
  uint32_t level;
  Layout layout;
  uint32_t members;
};
std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (Layout l : kAllLayouts)
    for (uint32_t n = 3; n <= 8; n++) cases.push_back({5, l, n});
  for (uint32_t n = 4; n <= 8; n++) cases.push_back({6, Layout::kLeftSymmetric, n});
  // The extremes of the supported range.
  cases.push_back({5, Layout::kLeftSymmetric, kMaxMembers});
  cases.push_back({6, Layout::kLeftSymmetric, kMaxMembers});
  return cases;
}

// Rows at the start, around a rotation, and far out (64-bit arithmetic).
const uint64_t kRows[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 31, 32, 33, 1000003, (uint64_t(1) << 40) + 5};

}  // namespace

TEST_CASE("layout enum values are md's ALGORITHM_* constants") {
  CHECK(uint32_t(Layout::kLeftAsymmetric) == 0);
  CHECK(uint32_t(Layout::kRightAsymmetric) == 1);
  CHECK(uint32_t(Layout::kLeftSymmetric) == 2);
  CHECK(uint32_t(Layout::kRightSymmetric) == 3);
}

TEST_CASE("parse_layout and layout_name use md's names") {
  CHECK(parse_layout("left-asymmetric") == Layout::kLeftAsymmetric);
  CHECK(parse_layout("right-asymmetric") == Layout::kRightAsymmetric);
  CHECK(parse_layout("left-symmetric") == Layout::kLeftSymmetric);
  CHECK(parse_layout("right-symmetric") == Layout::kRightSymmetric);
  for (Layout l : kAllLayouts) CHECK(parse_layout(layout_name(l)) == l);
  CHECK_FALSE(parse_layout("").has_value());
  CHECK_FALSE(parse_layout("Left-Symmetric").has_value());
  CHECK_FALSE(parse_layout("left-symmetric ").has_value());
  CHECK_FALSE(parse_layout("parity-first").has_value());
  CHECK(layout_name(Layout(7)) == "unknown");
}

TEST_CASE("known answers from md's layout diagrams") {
  // Rows top to bottom, members left to right; digits are the data index in
  // the row (md's chunk number modulo data disks).
  SUBCASE("RAID5 left-asymmetric, 4 members") {
    check_table(make(5, Layout::kLeftAsymmetric, 4), {"012P", "01P2", "0P12", "P012"});
  }
  SUBCASE("RAID5 right-asymmetric, 4 members") {
    check_table(make(5, Layout::kRightAsymmetric, 4), {"P012", "0P12", "01P2", "012P"});
  }
  SUBCASE("RAID5 left-symmetric, 4 members") {
    // md: 0 1 2 P / 4 5 P 3 / 8 P 6 7 / P 9 10 11
    check_table(make(5, Layout::kLeftSymmetric, 4), {"012P", "12P0", "2P01", "P012"});
  }
  SUBCASE("RAID5 right-symmetric, 4 members") {
    check_table(make(5, Layout::kRightSymmetric, 4), {"P012", "2P01", "12P0", "012P"});
  }
  SUBCASE("RAID5 left-symmetric, 5 members") {
    check_table(make(5, Layout::kLeftSymmetric, 5), {"0123P", "123P0", "23P01", "3P012", "P0123"});
  }
  SUBCASE("RAID5 left-asymmetric, 5 members") {
    check_table(make(5, Layout::kLeftAsymmetric, 5), {"0123P", "012P3", "01P23", "0P123", "P0123"});
  }
  SUBCASE("RAID5 right-asymmetric, 5 members") {
    check_table(make(5, Layout::kRightAsymmetric, 5), {"P0123", "0P123", "01P23", "012P3", "0123P"});
  }
  SUBCASE("RAID5 right-symmetric, 5 members") {
    check_table(make(5, Layout::kRightSymmetric, 5), {"P0123", "3P012", "23P01", "123P0", "0123P"});
  }
  SUBCASE("RAID5 left-symmetric, 3 members") {
    check_table(make(5, Layout::kLeftSymmetric, 3), {"01P", "1P0", "P01"});
  }
  SUBCASE("RAID6 left-symmetric, 4 members") {
    check_table(make(6, Layout::kLeftSymmetric, 4), {"Q01P", "01PQ", "1PQ0", "PQ01"});
  }
  SUBCASE("RAID6 left-symmetric, 5 members") {
    // md: Q 0 1 2 P / 3 4 5 P Q / 7 8 P Q 6 / 11 P Q 9 10 / P Q 12 13 14
    check_table(make(6, Layout::kLeftSymmetric, 5), {"Q012P", "012PQ", "12PQ0", "2PQ01", "PQ012"});
  }
  SUBCASE("RAID6 left-symmetric, 6 members") {
    check_table(make(6, Layout::kLeftSymmetric, 6), {"Q0123P", "0123PQ", "123PQ0", "23PQ01", "3PQ012", "PQ0123"});
  }
}

TEST_CASE("locate, map_row and array_offset equal md's raid5_compute_sector") {
  const uint32_t chunk = 16 * 1024;
  for (const Case& c : all_cases()) {
    Geometry g = make(c.level, c.layout, c.members, chunk, uint64_t(1) << 42);
    REQUIRE(g.validate().ok());
    CAPTURE(c.level);
    CAPTURE(layout_name(c.layout));
    CAPTURE(c.members);
    const uint32_t dc = g.data_count();
    for (uint64_t row : kRows) {
      CAPTURE(row);
      RowMap m = map_row(g, row);
      for (uint32_t k = 0; k < dc; k++) {
        uint64_t chunk_number = row * dc + k;
        MdMap md = md_compute(int(c.level), int(c.layout), int(c.members), chunk_number);
        CHECK(md.stripe == row);
        CHECK(m.p == uint32_t(md.pd_idx));
        CHECK(m.q == (c.level == 6 ? uint32_t(md.qd_idx) : kNoMember));
        CHECK(m.data[k] == uint32_t(md.dd_idx));
        CHECK(array_offset(g, row, k) == chunk_number * chunk);
        // First, a middle and the last byte of the chunk.
        for (uint32_t in_chunk : {0u, 4096u + 17u, chunk - 1}) {
          uint64_t off = chunk_number * chunk + in_chunk;
          Location loc = locate(g, off);
          CHECK(loc.row == row);
          CHECK(loc.data_index == k);
          CHECK(loc.member == uint32_t(md.dd_idx));
          CHECK(loc.offset_in_chunk == in_chunk);
          CHECK(loc.chunk_size == chunk);
          // md's new_sector = stripe * sectors_per_chunk + chunk_offset.
          CHECK(loc.member_offset() == md.stripe * chunk + in_chunk);
        }
      }
      if (c.level == 6) {
        // Q's data order: md's syndrome slots are our data indices.
        std::vector<int> order = md_syndrome_order(int(c.members), int(m.p), int(m.q));
        REQUIRE(order.size() == dc);
        for (uint32_t k = 0; k < dc; k++) CHECK(m.data[k] == uint32_t(order[k]));
      }
    }
  }
}

TEST_CASE("every row is a bijection and locate inverts array_offset") {
  for (const Case& c : all_cases()) {
    for (uint32_t chunk : {4096u, 65536u, 1u << 20}) {
      Geometry g = make(c.level, c.layout, c.members, chunk, 100000);
      REQUIRE(g.validate().ok());
      CAPTURE(c.level);
      CAPTURE(layout_name(c.layout));
      CAPTURE(c.members);
      CAPTURE(chunk);
      const uint32_t dc = g.data_count();
      for (uint64_t row = 0; row < 3 * uint64_t(c.members) + 1; row++) {
        CAPTURE(row);
        RowMap m = map_row(g, row);
        std::vector<int> seen(c.members, 0);
        for (uint32_t k = 0; k < dc; k++) {
          REQUIRE(m.data[k] < c.members);
          seen[m.data[k]]++;
          CHECK(m.role[m.data[k]] == k);
        }
        REQUIRE(m.p < c.members);
        seen[m.p]++;
        CHECK(m.role[m.p] == kRoleP);
        if (c.level == 6) {
          REQUIRE(m.q < c.members);
          seen[m.q]++;
          CHECK(m.role[m.q] == kRoleQ);
        } else {
          CHECK(m.q == kNoMember);
        }
        for (uint32_t i = 0; i < c.members; i++) CHECK(seen[i] == 1);

        for (uint32_t k = 0; k < dc; k++) {
          uint64_t off = array_offset(g, row, k);
          Location loc = locate(g, off);
          CHECK(loc.row == row);
          CHECK(loc.data_index == k);
          CHECK(loc.member == m.data[k]);
          CHECK(loc.offset_in_chunk == 0);
          CHECK(loc.member_offset() == row * chunk);
          Location last = locate(g, off + chunk - 1);
          CHECK(last.member == m.data[k]);
          CHECK(last.member_offset() == row * chunk + chunk - 1);
        }
      }
      // Each member holds P exactly once per `members` consecutive rows.
      std::vector<int> p_count(c.members, 0);
      for (uint64_t row = 7; row < 7 + c.members; row++) p_count[map_row(g, row).p]++;
      for (uint32_t i = 0; i < c.members; i++) CHECK(p_count[i] == 1);
      // Last byte of the array.
      Location end = locate(g, g.capacity() - 1);
      CHECK(end.row == g.rows - 1);
      CHECK(end.data_index == dc - 1);
      CHECK(end.member_offset() == g.member_data_bytes() - 1);
    }
  }
}

TEST_CASE("sizes") {
  Geometry g = make(6, Layout::kLeftSymmetric, 6, 65536, 10);
  CHECK(g.parity_count() == 2);
  CHECK(g.data_count() == 4);
  CHECK(g.row_data_bytes() == 4 * 65536);
  CHECK(g.capacity() == 10 * 4 * 65536);
  CHECK(g.member_data_bytes() == 10 * 65536);
  Geometry g5 = make(5, Layout::kLeftSymmetric, 3, 4096, 10);
  CHECK(g5.parity_count() == 1);
  CHECK(g5.data_count() == 2);
}

TEST_CASE("validate accepts the supported range") {
  for (const Case& c : all_cases())
    for (uint32_t chunk : {4096u, 8192u, 1u << 20, 1u << 31})
      CHECK(make(c.level, c.layout, c.members, chunk).validate().ok());
  CHECK(make(5, Layout::kLeftSymmetric, 3, 4096, 0).validate().ok());
}

TEST_CASE("validate rejects bad geometry with a clear message") {
  auto message = [](const Geometry& g) {
    r5::Status s = g.validate();
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().kind == r5::ErrorKind::kInvalid);
    CHECK(s.error().err == EINVAL);
    return s.error().message;
  };
  CHECK(message(make(6, Layout::kLeftSymmetric, 3)) == "RAID6 needs at least 4 members, found 3");
  CHECK(message(make(5, Layout::kLeftSymmetric, 2)) == "RAID5 needs at least 3 members, found 2");
  CHECK(message(make(5, Layout::kLeftSymmetric, 0)) == "RAID5 needs at least 3 members, found 0");
  CHECK(message(make(5, Layout::kLeftSymmetric, kMaxMembers + 1)) == "RAID5 supports at most 32 members, found 33");
  CHECK(message(make(6, Layout::kLeftSymmetric, 100)) == "RAID6 supports at most 32 members, found 100");
  CHECK(message(make(4, Layout::kLeftSymmetric, 4)) == "RAID level must be 5 or 6, found 4");
  CHECK(message(make(0, Layout::kLeftSymmetric, 4)) == "RAID level must be 5 or 6, found 0");
  CHECK(message(make(6, Layout::kLeftAsymmetric, 5)) ==
        "RAID6 supports only the left-symmetric layout, found left-asymmetric");
  CHECK(message(make(6, Layout::kRightAsymmetric, 5)) ==
        "RAID6 supports only the left-symmetric layout, found right-asymmetric");
  CHECK(message(make(6, Layout::kRightSymmetric, 5)) ==
        "RAID6 supports only the left-symmetric layout, found right-symmetric");
  CHECK(message(make(5, Layout(4), 5)) == "unknown layout 4");
  for (uint32_t chunk : {0u, 512u, 2048u, 4095u, 6000u, 12288u, 65537u, (1u << 31) + 4096u}) {
    CAPTURE(chunk);
    CHECK(message(make(5, Layout::kLeftSymmetric, 4, chunk)) ==
          "chunk size must be a power of two of at least 4096 bytes, found " + std::to_string(chunk));
  }
  CHECK(message(make(5, Layout::kLeftSymmetric, 3, 1u << 20, uint64_t(1) << 44)).find("overflow") !=
        std::string::npos);
}
