#include <uuid/uuid.h>

#include <algorithm>
#include <cstring>

#include "base/checksum.h"
#include "base/endian.h"
#include "format/ondisk.h"

namespace r5::format {

std::string uuid_to_string(const Uuid& uuid) {
  char text[37];
  uuid_unparse_lower(uuid.data(), text);
  return text;
}

geometry::Geometry MemberSuperblock::geometry() const {
  geometry::Geometry g;
  g.level = level;
  g.layout = layout;
  g.members = member_count;
  g.chunk_size = chunk_size;
  g.rows = chunk_size ? data_size / chunk_size : 0;
  return g;
}

void encode(const MemberSuperblock& s, std::span<std::byte, kSuperblockSize> out) {
  std::byte* p = out.data();
  std::memset(p, 0, kSuperblockSize);
  put_le64(p + sb::kMagic, kMemberMagic);
  put_le32(p + sb::kVersion, kMemberVersion);
  put_le32(p + sb::kFeatures, (s.check ? kFeatureCheck : 0) | (s.rebuild ? kFeatureRebuild : 0));
  std::memcpy(p + sb::kArrayUuid, s.array_uuid.data(), 16);
  put_le32(p + sb::kLevel, s.level);
  put_le32(p + sb::kLayout, uint32_t(s.layout));
  put_le32(p + sb::kChunkSize, s.chunk_size);
  put_le32(p + sb::kMemberCount, s.member_count);
  put_le32(p + sb::kSlot, s.slot);
  put_le32(p + sb::kState, uint32_t(s.state));
  put_le64(p + sb::kDataOffset, s.data_offset);
  put_le64(p + sb::kDataSize, s.data_size);
  put_le64(p + sb::kEvents, s.events);
  put_le64(p + sb::kFailedMask, s.failed_mask);
  put_le64(p + sb::kCreateTime, s.create_time);
  put_le64(p + sb::kUpdateTime, s.update_time);
  std::memcpy(p + sb::kName, s.name.data(), std::min(s.name.size(), kNameMax - 1));
  if (s.check) {
    put_le64(p + sb::kCheckNextRow, s.check->next_row);
    put_le32(p + sb::kCheckFlags, s.check->repair ? 1 : 0);
  }
  if (s.rebuild) {
    put_le64(p + sb::kRebuildNextRow, s.rebuild->next_row);
    put_le64(p + sb::kRebuildStartEvents, s.rebuild->start_events);
    put_le32(p + sb::kRebuildSlot, s.rebuild->slot);
  }
  put_le64(p + sb::kChecksum, checksum({p, sb::kChecksum}, kMemberChecksumSeed));
}

Result<MemberSuperblock> decode_member_superblock(std::span<const std::byte, kSuperblockSize> in) {
  const std::byte* p = in.data();
  if (get_le64(p + sb::kMagic) != kMemberMagic) return not_found("no r5cfs member superblock");
  if (get_le64(p + sb::kChecksum) != checksum({p, sb::kChecksum}, kMemberChecksumSeed))
    return corruption("member superblock checksum mismatch");
  uint32_t version = get_le32(p + sb::kVersion);
  if (version != kMemberVersion)
    return corruption(fmt::format("member superblock version {} (this r5cfs reads version {})", version, kMemberVersion));
  uint32_t features = get_le32(p + sb::kFeatures);
  if (features & ~kKnownFeatures)
    return corruption(fmt::format("member superblock has unknown feature bits {:#x}", features & ~kKnownFeatures));
  // Without its feature bit, a feature's fields are reserved bytes too.
  auto zero = [&](size_t from, size_t to) { return std::all_of(p + from, p + to, [](std::byte b) { return b == std::byte{0}; }); };
  if (!zero(sb::kReserved, sb::kChecksum) || (!(features & kFeatureCheck) && !zero(sb::kCheckNextRow, sb::kRebuildNextRow)) ||
      (!(features & kFeatureRebuild) && !zero(sb::kRebuildNextRow, sb::kReserved)))
    return corruption("member superblock has non-zero reserved bytes");

  MemberSuperblock s;
  std::memcpy(s.array_uuid.data(), p + sb::kArrayUuid, 16);
  s.level = get_le32(p + sb::kLevel);
  uint32_t layout = get_le32(p + sb::kLayout);
  if (layout > uint32_t(geometry::Layout::kRightSymmetric))
    return corruption(fmt::format("member superblock: unknown layout {}", layout));
  s.layout = geometry::Layout(layout);
  s.chunk_size = get_le32(p + sb::kChunkSize);
  s.member_count = get_le32(p + sb::kMemberCount);
  s.slot = get_le32(p + sb::kSlot);
  uint32_t state = get_le32(p + sb::kState);
  if (state > uint32_t(ArrayState::kDirty)) return corruption(fmt::format("member superblock: unknown state {}", state));
  s.state = ArrayState(state);
  s.data_offset = get_le64(p + sb::kDataOffset);
  s.data_size = get_le64(p + sb::kDataSize);
  s.events = get_le64(p + sb::kEvents);
  s.failed_mask = get_le64(p + sb::kFailedMask);
  s.create_time = get_le64(p + sb::kCreateTime);
  s.update_time = get_le64(p + sb::kUpdateTime);
  const char* name = reinterpret_cast<const char*>(p + sb::kName);
  s.name.assign(name, strnlen(name, kNameMax));
  if (s.name.size() == kNameMax) return corruption("member superblock: array name is not terminated");
  // NUL-padded: bytes hidden behind the NUL would not survive a rewrite.
  if (!std::all_of(p + sb::kName + s.name.size(), p + sb::kName + kNameMax, [](std::byte b) { return b == std::byte{0}; }))
    return corruption("member superblock: array name has non-zero bytes after its end");

  geometry::Geometry g = s.geometry();
  if (Status st = g.validate(); !st.ok()) return corruption("member superblock: " + st.error().message);
  if (s.slot >= s.member_count)
    return corruption(fmt::format("member superblock: slot {} out of range for {} members", s.slot, s.member_count));
  if (s.data_offset < kSuperblockSize || s.data_offset % geometry::kPageSize != 0)
    return corruption(fmt::format("member superblock: bad data offset {}", s.data_offset));
  if (s.data_size == 0 || s.data_size % s.chunk_size != 0 || s.data_offset + s.data_size < s.data_offset)
    return corruption(fmt::format("member superblock: bad data size {}", s.data_size));
  if (s.member_count < 64 && (s.failed_mask >> s.member_count) != 0)
    return corruption(fmt::format("member superblock: failed mask {:#x} names slots beyond {}", s.failed_mask, s.member_count));
  if (features & kFeatureCheck) {
    CheckPosition c{get_le64(p + sb::kCheckNextRow), get_le32(p + sb::kCheckFlags) == 1};
    if (get_le32(p + sb::kCheckFlags) > 1 || get_le32(p + sb::kCheckPad) != 0)
      return corruption(fmt::format("member superblock: unknown check flags {:#x}", get_le32(p + sb::kCheckFlags)));
    if (c.next_row >= g.rows)
      return corruption(fmt::format("member superblock: check resumes at row {}, beyond the {} rows", c.next_row, g.rows));
    s.check = c;
  }
  if (features & kFeatureRebuild) {
    RebuildPosition r{get_le32(p + sb::kRebuildSlot), get_le64(p + sb::kRebuildNextRow), get_le64(p + sb::kRebuildStartEvents)};
    if (get_le32(p + sb::kRebuildPad) != 0) return corruption("member superblock: non-zero rebuild padding");
    if (r.slot >= s.member_count)
      return corruption(fmt::format("member superblock: rebuild of slot {}, beyond the {} members", r.slot, s.member_count));
    if (r.next_row > g.rows)
      return corruption(fmt::format("member superblock: rebuild at row {}, beyond the {} rows", r.next_row, g.rows));
    if (r.start_events > s.events)
      return corruption(fmt::format("member superblock: rebuild started at events {}, after this update ({})",
                                    r.start_events, s.events));
    s.rebuild = r;
  }
  return s;
}

}  // namespace r5::format
