// Mirrors raid5_compute_sector() in Linux drivers/md/raid5.c for RAID5
// ALGORITHM_{LEFT,RIGHT}_{A,}SYMMETRIC and RAID6 ALGORITHM_LEFT_SYMMETRIC.
#include "geometry/layout.h"

#include <bit>
#include <iterator>

#include <fmt/format.h>

namespace r5::geometry {
namespace {

constexpr std::string_view kLayoutNames[] = {
    "left-asymmetric",
    "right-asymmetric",
    "left-symmetric",
    "right-symmetric",
};

bool known_layout(Layout layout) { return uint32_t(layout) < std::size(kLayoutNames); }

// Parity member of a row; also the pivot the data members rotate around.
// For RAID6 left-symmetric md uses raid_disks - 1 - row % raid_disks, which is
// the same expression as RAID5's data_disks - row % raid_disks.
uint32_t parity_member(const Geometry& g, uint32_t row_mod) {
  switch (g.layout) {
    case Layout::kLeftAsymmetric:
    case Layout::kLeftSymmetric:
      return g.members - 1 - row_mod;
    case Layout::kRightAsymmetric:
    case Layout::kRightSymmetric:
      return row_mod;
  }
  return 0;
}

// Member holding data index k, given the row's P member (md's dd_idx).
uint32_t data_member(const Geometry& g, uint32_t pd, uint32_t k) {
  if (g.level == 6) {
    // RAID6 left-symmetric: (pd + 2 + k) % n, Q sits at (pd + 1) % n.
    uint32_t m = pd + 2 + k;
    return m >= g.members ? m - g.members : m;  // k < n - 2, so one wrap at most
  }
  switch (g.layout) {
    case Layout::kLeftAsymmetric:
    case Layout::kRightAsymmetric:
      return k >= pd ? k + 1 : k;
    case Layout::kLeftSymmetric:
    case Layout::kRightSymmetric: {
      uint32_t m = pd + 1 + k;
      return m >= g.members ? m - g.members : m;
    }
  }
  return 0;
}

}  // namespace

std::optional<Layout> parse_layout(std::string_view name) {
  for (uint32_t i = 0; i < std::size(kLayoutNames); i++)
    if (name == kLayoutNames[i]) return Layout(i);
  return std::nullopt;
}

std::string_view layout_name(Layout layout) {
  return known_layout(layout) ? kLayoutNames[uint32_t(layout)] : std::string_view("unknown");
}

Status Geometry::validate() const {
  if (level != 5 && level != 6) return invalid(fmt::format("RAID level must be 5 or 6, found {}", level));
  if (!known_layout(layout)) return invalid(fmt::format("unknown layout {}", uint32_t(layout)));
  // md's other RAID6 layouts put the syndrome in another disk order, or Q
  // on a fixed disk; only left-symmetric is implemented (and tested).
  if (level == 6 && layout != Layout::kLeftSymmetric)
    return invalid(fmt::format("RAID6 supports only the left-symmetric layout, found {}", layout_name(layout)));
  uint32_t min_members = level == 6 ? 4 : 3;
  if (members < min_members)
    return invalid(fmt::format("RAID{} needs at least {} members, found {}", level, min_members, members));
  if (members > kMaxMembers)
    return invalid(fmt::format("RAID{} supports at most {} members, found {}", level, kMaxMembers, members));
  if (chunk_size < kPageSize || !std::has_single_bit(chunk_size))
    return invalid(fmt::format("chunk size must be a power of two of at least {} bytes, found {}", kPageSize,
                               chunk_size));
  if (rows > UINT64_MAX / row_data_bytes())
    return invalid(fmt::format("{} rows of {} bytes overflow a 64-bit array size", rows, row_data_bytes()));
  return {};
}

RowMap map_row(const Geometry& g, uint64_t row) {
  RowMap map;
  const uint32_t pd = parity_member(g, uint32_t(row % g.members));
  map.p = pd;
  map.role[pd] = kRoleP;
  if (g.level == 6) {
    map.q = pd + 1 == g.members ? 0 : pd + 1;
    map.role[map.q] = kRoleQ;
  }
  const uint32_t data_count = g.data_count();
  for (uint32_t k = 0; k < data_count; k++) {
    uint32_t m = data_member(g, pd, k);
    map.data[k] = m;
    map.role[m] = k;
  }
  return map;
}

uint64_t Location::member_offset() const { return row * chunk_size + offset_in_chunk; }

Location locate(const Geometry& g, uint64_t array_offset) {
  // chunk_size is a power of two (validate()), so shifts replace divisions.
  const int shift = std::countr_zero(g.chunk_size);
  const uint64_t chunk_number = array_offset >> shift;
  const uint32_t data_count = g.data_count();
  Location loc;
  loc.row = chunk_number / data_count;
  loc.data_index = uint32_t(chunk_number - loc.row * data_count);
  loc.member = data_member(g, parity_member(g, uint32_t(loc.row % g.members)), loc.data_index);
  loc.offset_in_chunk = uint32_t(array_offset & (g.chunk_size - 1));
  loc.chunk_size = g.chunk_size;
  return loc;
}

uint64_t array_offset(const Geometry& g, uint64_t row, uint32_t data_index) {
  return (row * g.data_count() + data_index) * g.chunk_size;
}

}  // namespace r5::geometry
