// Array geometry: where each byte of the array lives on the members, and
// where P and Q of each row are. Pure: no I/O, no threads.
//
// The mapping equals Linux md's raid5_compute_sector() for the same chunk size
// and member order, so the members' data areas can be assembled by the kernel
// (`mdadm --create --assume-clean`, see r5cfs(8)). Vocabulary:
//   row         md's "stripe": one chunk on every member at the same offset
//   data index  k = 0..data_count()-1, the logical order of a row's data
//               chunks in the array, which is also md's syndrome order (Q)
//   member      slot 0..members-1 in the order the array was created with
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/result.h"

namespace r5::geometry {

inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kMaxMembers = 32;
inline constexpr uint32_t kNoMember = UINT32_MAX;

// Values equal md's ALGORITHM_* constants (mdadm --layout=...).
enum class Layout : uint32_t {
  kLeftAsymmetric = 0,
  kRightAsymmetric = 1,
  kLeftSymmetric = 2,
  kRightSymmetric = 3,
};

// md's names: "left-asymmetric", "right-asymmetric", "left-symmetric", "right-symmetric".
std::optional<Layout> parse_layout(std::string_view name);
std::string_view layout_name(Layout layout);

struct Geometry {
  uint32_t level = 5;  // 5 or 6
  Layout layout = Layout::kLeftSymmetric;
  uint32_t members = 0;     // md's raid_disks
  uint32_t chunk_size = 0;  // bytes, power of two, >= kPageSize
  uint64_t rows = 0;        // rows in each member's data area

  uint32_t parity_count() const { return level == 6 ? 2 : 1; }
  uint32_t data_count() const { return members - parity_count(); }
  uint64_t row_data_bytes() const { return uint64_t(chunk_size) * data_count(); }
  uint64_t capacity() const { return rows * row_data_bytes(); }
  uint64_t member_data_bytes() const { return rows * chunk_size; }

  // Checks level, layout (RAID6: left-symmetric only), member count
  // (RAID5 3..kMaxMembers, RAID6 4..kMaxMembers) and chunk size.
  Status validate() const;
  bool operator==(const Geometry&) const = default;
};

// Placement of one row.
struct RowMap {
  uint32_t p = kNoMember;
  uint32_t q = kNoMember;                // kNoMember for RAID5
  uint32_t data[kMaxMembers] = {};       // data[k] = member holding data index k
  uint32_t role[kMaxMembers] = {};       // role[member] = k, or kRoleP / kRoleQ
};
inline constexpr uint32_t kRoleP = 1000;
inline constexpr uint32_t kRoleQ = 1001;

RowMap map_row(const Geometry& g, uint64_t row);

// Where an array byte offset lives.
struct Location {
  uint64_t row = 0;
  uint32_t data_index = 0;
  uint32_t member = 0;
  uint32_t offset_in_chunk = 0;
  // Byte offset inside the member's data area: row * chunk_size + offset_in_chunk.
  uint64_t member_offset() const;
  uint32_t chunk_size = 0;
};

// Precondition: array_offset < g.capacity().
Location locate(const Geometry& g, uint64_t array_offset);

// Inverse: array byte offset of the first byte of data index k in `row`.
uint64_t array_offset(const Geometry& g, uint64_t row, uint32_t data_index);

}  // namespace r5::geometry
