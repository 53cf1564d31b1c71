// Every on-disk structure of r5cfs and its constants. Encoded explicitly
// little-endian by codec functions (never by casting a struct), checksummed
// with XXH3-64, versioned; reserved bytes are written as zero. The byte
// layout is specified in doc/FORMAT.md; the offsets here are that spec.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"
#include "geometry/layout.h"

namespace r5::format {

using Uuid = std::array<uint8_t, 16>;
std::string uuid_to_string(const Uuid& uuid);

// ---- Member superblock: the first 4 KiB of every member -------------------
inline constexpr size_t kSuperblockSize = 4096;
inline constexpr uint64_t kMemberMagic = 0x3142'4d53'4643'3552ull;  // "R5CFSMB1" read as LE bytes
inline constexpr uint32_t kMemberVersion = 1;
// Feature bits: a set bit announces fields an older r5cfs must not ignore.
// Any bit this version does not know makes a member unreadable.
inline constexpr uint32_t kFeatureCheck = 1;    // a parity check (r5cfs check) is under way: check_* fields valid
inline constexpr uint32_t kFeatureRebuild = 2;  // a member is being rebuilt (r5cfs replace): rebuild_* fields valid
inline constexpr uint32_t kKnownFeatures = kFeatureCheck | kFeatureRebuild;
// Seed of the member superblock checksum (the array UUID is inside the block).
inline constexpr uint64_t kMemberChecksumSeed = 0x7235'6366'735f'7362ull;
// The data area starts at max(kMinDataOffset, chunk) and leaves kTailReserve
// free at the end, where mdadm --metadata=1.0 puts its superblock when an
// admin assembles the data areas in the kernel (r5cfs(8), RECOVERY WITHOUT R5CFS).
inline constexpr uint64_t kMinDataOffset = 1 << 20;
inline constexpr uint64_t kTailReserve = 1 << 20;
inline constexpr size_t kNameMax = 32;

namespace sb {  // byte offsets inside the member superblock
inline constexpr size_t kMagic = 0;          // u64
inline constexpr size_t kVersion = 8;        // u32
inline constexpr size_t kFeatures = 12;      // u32
inline constexpr size_t kArrayUuid = 16;     // 16 bytes
inline constexpr size_t kLevel = 32;         // u32
inline constexpr size_t kLayout = 36;        // u32, md's ALGORITHM_* value
inline constexpr size_t kChunkSize = 40;     // u32, bytes
inline constexpr size_t kMemberCount = 44;   // u32
inline constexpr size_t kSlot = 48;          // u32
inline constexpr size_t kState = 52;         // u32, MemberState
inline constexpr size_t kDataOffset = 56;    // u64, bytes
inline constexpr size_t kDataSize = 64;      // u64, bytes, multiple of chunk
inline constexpr size_t kEvents = 72;        // u64
inline constexpr size_t kFailedMask = 80;    // u64, bit i = slot i failed
inline constexpr size_t kCreateTime = 88;    // u64, unix seconds
inline constexpr size_t kUpdateTime = 96;    // u64, unix seconds
inline constexpr size_t kName = 104;         // kNameMax bytes, NUL padded
inline constexpr size_t kCheckNextRow = 136; // u64, with kFeatureCheck: the row the check resumes at
inline constexpr size_t kCheckFlags = 144;   // u32, with kFeatureCheck: bit 0 = repair
inline constexpr size_t kCheckPad = 148;     // u32, zero
inline constexpr size_t kRebuildNextRow = 152;     // u64, with kFeatureRebuild: rows below it are rebuilt
inline constexpr size_t kRebuildStartEvents = 160; // u64, with kFeatureRebuild: events when the rebuild began
inline constexpr size_t kRebuildSlot = 168;        // u32, with kFeatureRebuild: the slot being rebuilt
inline constexpr size_t kRebuildPad = 172;         // u32, zero
inline constexpr size_t kReserved = 176;     // zero up to kChecksum
inline constexpr size_t kChecksum = 4088;    // u64, XXH3 over [0, kChecksum)
}  // namespace sb
static_assert(sb::kName + kNameMax == sb::kCheckNextRow);
static_assert(sb::kCheckPad + 4 == sb::kRebuildNextRow);
static_assert(sb::kRebuildPad + 4 == sb::kReserved);
static_assert(sb::kChecksum + 8 == kSuperblockSize);

enum class ArrayState : uint32_t { kClean = 0, kDirty = 1 };

// Where an interrupted parity check resumes (feature kFeatureCheck).
struct CheckPosition {
  uint64_t next_row = 0;
  bool repair = false;
  bool operator==(const CheckPosition&) const = default;
};

// A member being rebuilt onto a new device (feature kFeatureRebuild). The
// slot stays in failed_mask until the rebuild completes. The new device's own
// superblock carries events >= start_events, which tells it apart from the
// failed device it replaces (whose events stopped before).
struct RebuildPosition {
  uint32_t slot = 0;
  uint64_t next_row = 0;
  uint64_t start_events = 0;
  bool operator==(const RebuildPosition&) const = default;
};

struct MemberSuperblock {
  Uuid array_uuid{};
  std::string name;
  uint32_t level = 5;
  geometry::Layout layout = geometry::Layout::kLeftSymmetric;
  uint32_t chunk_size = 0;
  uint32_t member_count = 0;
  uint32_t slot = 0;
  ArrayState state = ArrayState::kClean;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  uint64_t events = 0;
  uint64_t failed_mask = 0;
  uint64_t create_time = 0;
  uint64_t update_time = 0;
  std::optional<CheckPosition> check;
  std::optional<RebuildPosition> rebuild;

  geometry::Geometry geometry() const;
  bool operator==(const MemberSuperblock&) const = default;
};

void encode(const MemberSuperblock& sb, std::span<std::byte, kSuperblockSize> out);
// kNotFound when there is no r5cfs magic (a blank or foreign device);
// kCorruption for a damaged or unsupported block; the message says which field.
Result<MemberSuperblock> decode_member_superblock(std::span<const std::byte, kSuperblockSize> in);

}  // namespace r5::format
