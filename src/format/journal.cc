#include "format/journal.h"

#include <algorithm>
#include <cstring>

#include "base/checksum.h"
#include "base/endian.h"

namespace r5::format {
namespace {

constexpr size_t kDataHeader = 16, kParityHeader = 24, kDoneHeader = 8;

bool all_zero(const std::byte* from, const std::byte* to) {
  return std::all_of(from, to, [](std::byte b) { return b == std::byte{0}; });
}

uint64_t meta_checksum(std::span<const std::byte, kJournalBlock> block, uint64_t seed) {
  // The checksum field counts as zero.
  std::byte copy[kJournalBlock];
  std::memcpy(copy, block.data(), kJournalBlock);
  std::memset(copy + meta::kChecksum, 0, 8);
  return checksum(copy, seed);
}

}  // namespace

uint64_t JournalSuperblock::seed() const {
  std::byte ids[32];
  std::memcpy(ids, array_uuid.data(), 16);
  std::memcpy(ids + 16, journal_uuid.data(), 16);
  return checksum(ids, kJournalChecksumSeed);
}

void encode(const JournalSuperblock& s, std::span<std::byte, kJournalBlock> out) {
  std::byte* p = out.data();
  std::memset(p, 0, kJournalBlock);
  put_le64(p + jsb::kMagic, kJournalMagic);
  put_le32(p + jsb::kVersion, kJournalVersion);
  std::memcpy(p + jsb::kArrayUuid, s.array_uuid.data(), 16);
  std::memcpy(p + jsb::kJournalUuid, s.journal_uuid.data(), 16);
  put_le32(p + jsb::kLevel, s.level);
  put_le32(p + jsb::kLayout, uint32_t(s.layout));
  put_le32(p + jsb::kChunkSize, s.chunk_size);
  put_le32(p + jsb::kMemberCount, s.member_count);
  put_le64(p + jsb::kDataSize, s.data_size);
  put_le64(p + jsb::kBlockCount, s.block_count);
  put_le64(p + jsb::kTailPosition, s.tail_position);
  put_le64(p + jsb::kTailSequence, s.tail_sequence);
  put_le32(p + jsb::kFlags, s.flags);
  put_le64(p + jsb::kUpdateTime, s.update_time);
  put_le64(p + jsb::kGeneration, s.generation);
  put_le64(p + jsb::kChecksum, checksum({p, jsb::kChecksum}, kJournalChecksumSeed));
}

Result<JournalSuperblock> decode_journal_superblock(std::span<const std::byte, kJournalBlock> in) {
  const std::byte* p = in.data();
  if (get_le64(p + jsb::kMagic) != kJournalMagic) return not_found("no r5cfs journal superblock");
  if (get_le64(p + jsb::kChecksum) != checksum({p, jsb::kChecksum}, kJournalChecksumSeed))
    return corruption("journal superblock checksum mismatch");
  const uint32_t version = get_le32(p + jsb::kVersion);
  if (version != kJournalVersion)
    return corruption(fmt::format("journal superblock version {} (this r5cfs reads version {})", version, kJournalVersion));
  const uint32_t features = get_le32(p + jsb::kFeatures);
  if (features & ~kJournalKnownFeatures)
    return corruption(fmt::format("journal superblock has unknown feature bits {:#x}", features & ~kJournalKnownFeatures));
  if (get_le32(p + jsb::kReserved0) != 0 || !all_zero(p + jsb::kReserved, p + jsb::kChecksum))
    return corruption("journal superblock has non-zero reserved bytes");

  JournalSuperblock s;
  std::memcpy(s.array_uuid.data(), p + jsb::kArrayUuid, 16);
  std::memcpy(s.journal_uuid.data(), p + jsb::kJournalUuid, 16);
  s.level = get_le32(p + jsb::kLevel);
  const uint32_t layout = get_le32(p + jsb::kLayout);
  if (layout > uint32_t(geometry::Layout::kRightSymmetric))
    return corruption(fmt::format("journal superblock: unknown layout {}", layout));
  s.layout = geometry::Layout(layout);
  s.chunk_size = get_le32(p + jsb::kChunkSize);
  s.member_count = get_le32(p + jsb::kMemberCount);
  s.data_size = get_le64(p + jsb::kDataSize);
  s.block_count = get_le64(p + jsb::kBlockCount);
  s.tail_position = get_le64(p + jsb::kTailPosition);
  s.tail_sequence = get_le64(p + jsb::kTailSequence);
  s.generation = get_le64(p + jsb::kGeneration);
  s.flags = get_le32(p + jsb::kFlags);
  s.update_time = get_le64(p + jsb::kUpdateTime);

  geometry::Geometry g{s.level, s.layout, s.member_count, s.chunk_size, s.chunk_size ? s.data_size / s.chunk_size : 0};
  if (Status st = g.validate(); !st.ok()) return corruption("journal superblock: " + st.error().message);
  if (s.data_size == 0 || s.data_size % s.chunk_size != 0)
    return corruption(fmt::format("journal superblock: bad member data size {}", s.data_size));
  if (s.flags & ~kJournalKnownFlags)
    return corruption(fmt::format("journal superblock has unknown flag bits {:#x}", s.flags & ~kJournalKnownFlags));
  if (s.block_count < kMinJournalBlocks)
    return corruption(fmt::format("journal superblock: block count {} below the minimum {}", s.block_count, kMinJournalBlocks));
  if (s.tail_position < s.ring_start() || s.tail_position >= s.block_count)
    return corruption(fmt::format("journal superblock: tail position {} outside the ring [1, {})", s.tail_position, s.block_count));
  return s;
}

uint32_t MetaBlock::payload_blocks() const {
  uint64_t n = 0;
  for (const Entry& e : entries) {
    if (const auto* d = std::get_if<DataEntry>(&e)) n += d->page_checksums.size();
    if (const auto* p = std::get_if<ParityEntry>(&e)) n += p->page_checksums.size();
  }
  return uint32_t(n);
}

size_t encoded_size(const Entry& entry) {
  if (const auto* d = std::get_if<DataEntry>(&entry)) return kDataHeader + 8 * d->page_checksums.size();
  if (const auto* p = std::get_if<ParityEntry>(&entry)) return kParityHeader + 8 * p->page_checksums.size();
  return kDoneHeader + 8 * std::get<StripeDoneEntry>(entry).rows.size();
}

size_t encoded_size(const MetaBlock& block) {
  size_t n = meta::kEntries;
  for (const Entry& e : block.entries) n += encoded_size(e);
  return n;
}

bool fits(const MetaBlock& block, const Entry& entry) {
  return block.entries.size() < UINT16_MAX && encoded_size(block) + encoded_size(entry) <= kJournalBlock;
}

Status encode(const MetaBlock& block, uint64_t seed, std::span<std::byte, kJournalBlock> out) {
  const size_t used = encoded_size(block);
  if (used > kJournalBlock || block.entries.size() > UINT16_MAX)
    return invalid(fmt::format("metadata block of {} entries needs {} bytes, more than {}", block.entries.size(), used, kJournalBlock));
  std::byte* p = out.data();
  std::memset(p, 0, kJournalBlock);
  put_le32(p + meta::kMagic, kMetaMagic);
  put_le16(p + meta::kVersion, kMetaVersion);
  put_le16(p + meta::kEntryCount, uint16_t(block.entries.size()));
  put_le64(p + meta::kSequence, block.sequence);
  put_le64(p + meta::kPosition, block.position);
  put_le64(p + meta::kSyncedSequence, block.synced_sequence);
  put_le32(p + meta::kPayloadBlocks, block.payload_blocks());
  put_le32(p + meta::kUsedBytes, uint32_t(used));
  std::byte* e = p + meta::kEntries;
  for (const Entry& entry : block.entries) {
    if (const auto* d = std::get_if<DataEntry>(&entry)) {
      if (d->page_checksums.empty() || d->array_offset % kJournalBlock != 0)
        return invalid(fmt::format("data entry at {} with {} pages", d->array_offset, d->page_checksums.size()));
      put_le16(e, uint16_t(EntryType::kData));
      put_le32(e + 4, uint32_t(d->page_checksums.size()));
      put_le64(e + 8, d->array_offset);
      e += kDataHeader;
      for (uint64_t c : d->page_checksums) put_le64(e, c), e += 8;
    } else if (const auto* q = std::get_if<ParityEntry>(&entry)) {
      if ((q->parity_count != 1 && q->parity_count != 2) || q->page_checksums.empty() ||
          q->page_checksums.size() % q->parity_count != 0 || q->column_offset % kJournalBlock != 0)
        return invalid(fmt::format("parity entry of row {} is malformed", q->row));
      put_le16(e, uint16_t(EntryType::kParity));
      put_le16(e + 2, uint16_t(q->parity_count));
      put_le32(e + 4, q->pages());
      put_le64(e + 8, q->row);
      put_le32(e + 16, q->column_offset);
      e += kParityHeader;
      for (uint64_t c : q->page_checksums) put_le64(e, c), e += 8;
    } else {
      const auto& done = std::get<StripeDoneEntry>(entry);
      put_le16(e, uint16_t(EntryType::kStripeDone));
      put_le32(e + 4, uint32_t(done.rows.size()));
      e += kDoneHeader;
      for (uint64_t r : done.rows) put_le64(e, r), e += 8;
    }
  }
  put_le64(p + meta::kChecksum, meta_checksum(out, seed));
  return {};
}

Result<MetaBlock> decode_meta_block(std::span<const std::byte, kJournalBlock> in, uint64_t seed) {
  const std::byte* p = in.data();
  if (get_le32(p + meta::kMagic) != kMetaMagic) return not_found("no metadata block magic");
  if (get_le64(p + meta::kChecksum) != meta_checksum(in, seed)) return corruption("metadata block checksum mismatch");
  const uint16_t version = get_le16(p + meta::kVersion);
  if (version != kMetaVersion) return corruption(fmt::format("metadata block version {}", version));
  const uint32_t used = get_le32(p + meta::kUsedBytes);
  if (used < meta::kEntries || used > kJournalBlock) return corruption(fmt::format("metadata block: used bytes {}", used));
  if (!all_zero(p + used, p + kJournalBlock)) return corruption("metadata block: non-zero bytes after the entries");

  MetaBlock block;
  block.sequence = get_le64(p + meta::kSequence);
  block.position = get_le64(p + meta::kPosition);
  block.synced_sequence = get_le64(p + meta::kSyncedSequence);
  if (block.synced_sequence > block.sequence)
    return corruption(fmt::format("metadata block: synced sequence {} is after its own sequence {}", block.synced_sequence,
                                  block.sequence));
  const uint16_t count = get_le16(p + meta::kEntryCount);
  const std::byte* e = p + meta::kEntries;
  const std::byte* end = p + used;
  auto need = [&](size_t bytes) { return size_t(end - e) >= bytes; };
  for (uint16_t i = 0; i < count; ++i) {
    if (!need(kDoneHeader)) return corruption(fmt::format("metadata block: entry {} of {} past the used bytes", i, count));
    const uint16_t type = get_le16(e);
    const uint16_t small = get_le16(e + 2);
    const uint32_t n = get_le32(e + 4);
    // Data and parity headers are longer than those 8 bytes; the rest of the
    // header may lie past the used bytes, even past the block.
    const size_t header = type == uint16_t(EntryType::kData)     ? kDataHeader
                          : type == uint16_t(EntryType::kParity) ? kParityHeader
                                                                 : kDoneHeader;
    if (!need(header)) return corruption(fmt::format("metadata block: entry {} of {} past the used bytes", i, count));
    if (type == uint16_t(EntryType::kData)) {
      DataEntry d;
      d.array_offset = get_le64(e + 8);
      if (small != 0 || n == 0 || d.array_offset % kJournalBlock != 0 || !need(kDataHeader + 8ull * n))
        return corruption(fmt::format("metadata block: malformed data entry {} ({} pages at {})", i, n, d.array_offset));
      for (uint32_t k = 0; k < n; ++k) d.page_checksums.push_back(get_le64(e + kDataHeader + 8 * k));
      e += kDataHeader + 8ull * n;
      block.entries.emplace_back(std::move(d));
    } else if (type == uint16_t(EntryType::kParity)) {
      ParityEntry q;
      q.parity_count = small;
      q.row = get_le64(e + 8);
      q.column_offset = get_le32(e + 16);
      const uint64_t sums = uint64_t(small) * n;
      if ((small != 1 && small != 2) || n == 0 || q.column_offset % kJournalBlock != 0 || get_le32(e + 20) != 0 ||
          !need(kParityHeader + 8 * sums))
        return corruption(fmt::format("metadata block: malformed parity entry {} (row {})", i, q.row));
      for (uint64_t k = 0; k < sums; ++k) q.page_checksums.push_back(get_le64(e + kParityHeader + 8 * k));
      e += kParityHeader + 8 * sums;
      block.entries.emplace_back(std::move(q));
    } else if (type == uint16_t(EntryType::kStripeDone)) {
      StripeDoneEntry done;
      if (small != 0 || !need(kDoneHeader + 8ull * n))
        return corruption(fmt::format("metadata block: malformed stripe-done entry {} ({} rows)", i, n));
      for (uint32_t k = 0; k < n; ++k) done.rows.push_back(get_le64(e + kDoneHeader + 8 * k));
      e += kDoneHeader + 8ull * n;
      block.entries.emplace_back(std::move(done));
    } else {
      return corruption(fmt::format("metadata block: entry {} has unknown type {}", i, type));
    }
  }
  if (e != end) return corruption(fmt::format("metadata block: {} used bytes, entries end at {}", used, e - p));
  if (get_le32(p + meta::kPayloadBlocks) != block.payload_blocks())
    return corruption(fmt::format("metadata block: payload count {} but entries describe {}",
                                  get_le32(p + meta::kPayloadBlocks), block.payload_blocks()));
  return block;
}

uint64_t payload_checksum(std::span<const std::byte, kJournalBlock> page, uint64_t seed) { return checksum(page, seed); }

}  // namespace r5::format
