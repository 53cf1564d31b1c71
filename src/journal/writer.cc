#include "journal/writer.h"

#include <uuid/uuid.h>

#include <cstring>
#include <ctime>

namespace r5::journal {

using format::kJournalBlock;

Result<format::JournalSuperblock> format_journal(io::Device& device, const format::MemberSuperblock& array, uint64_t blocks) {
  if (blocks < format::kMinJournalBlocks || blocks * kJournalBlock > device.size())
    return invalid(fmt::format("{}: a journal of {} blocks does not fit (device {} bytes, minimum {} blocks)", device.name(),
                               blocks, device.size(), format::kMinJournalBlocks));
  format::JournalSuperblock sb;
  sb.array_uuid = array.array_uuid;
  uuid_generate(sb.journal_uuid.data());
  sb.level = array.level;
  sb.layout = array.layout;
  sb.chunk_size = array.chunk_size;
  sb.member_count = array.member_count;
  sb.data_size = array.data_size;
  sb.block_count = blocks;
  sb.tail_position = sb.ring_start();
  sb.tail_sequence = 1;
  // Old records on the device cannot validate: the new journal UUID is in the seed.
  Writer writer(device, sb, sb.ring_start(), 1);
  for (uint64_t copy = 0; copy < format::JournalSuperblock::kCopies; ++copy)
    R5_TRY(writer.write_superblock(sb.ring_start(), 1, format::kJournalClean));
  return writer.superblock();
}

Writer::Writer(io::Device& device, const format::JournalSuperblock& sb, uint64_t head_position, uint64_t head_sequence)
    : device_(device), sb_(sb), ring_(sb.block_count), head_(head_position), sequence_(head_sequence) {}

uint64_t Writer::free_blocks() const { return ring_.size() - 1 - ring_.distance(sb_.tail_position, head_); }

Status Writer::append(format::MetaBlock& meta, std::span<const std::byte* const> payload, bool through_cache) {
  const uint64_t blocks = 1 + payload.size(), position = head_;
  buffer_.reserve(blocks * kJournalBlock);
  R5_TRY(place(meta, payload.size(), std::span<std::byte, kJournalBlock>(buffer_.data(), kJournalBlock)));
  for (size_t i = 0; i < payload.size(); ++i)
    std::memcpy(buffer_.data() + (1 + i) * kJournalBlock, payload[i], kJournalBlock);
  return write_at(position, {buffer_.data(), blocks * kJournalBlock}, through_cache);
}

Status Writer::place(format::MetaBlock& meta, uint64_t payload_blocks, std::span<std::byte, kJournalBlock> block) {
  if (payload_blocks != meta.payload_blocks())
    return invalid(fmt::format("record describes {} payload pages, {} given", meta.payload_blocks(), payload_blocks));
  const uint64_t blocks = 1 + payload_blocks;
  if (blocks > free_blocks())
    return Error{ErrorKind::kBusy, ENOSPC, fmt::format("journal full: record needs {} blocks, {} free", blocks, free_blocks())};
  meta.sequence = sequence_;
  meta.position = head_;
  R5_TRY(format::encode(meta, sb_.seed(), block));
  head_ = ring_.advance(head_, blocks);
  ++sequence_;
  return {};
}

Status Writer::write_at(uint64_t position, std::span<const std::byte> bytes, bool through_cache) {
  // Small records go through the page cache: a write's reply then waits for
  // a copy, not a device round trip (the next fdatasync writes them out
  // anyway); large ones skip the copy and the kernel's write-back.
  const bool cached = through_cache || bytes.size() <= kCachedRecordBlocks * kJournalBlock;
  auto write = [&](uint64_t at, std::span<const std::byte> part) {
    return cached ? device_.write_cached(at, part) : device_.write(at, part);
  };
  const size_t first = size_t(std::min<uint64_t>(bytes.size() / kJournalBlock, ring_.end() - position)) * kJournalBlock;
  R5_TRY(write(position * kJournalBlock, bytes.first(first)));
  if (first < bytes.size()) R5_TRY(write(ring_.start() * kJournalBlock, bytes.subspan(first)));
  return {};
}

Status Writer::write_superblock(uint64_t tail_position, uint64_t tail_sequence, uint32_t flags) {
  R5_TRY(write_superblock_block(tail_position, tail_sequence, flags));
  R5_TRY(device_.sync());
  set_tail(tail_position, tail_sequence, flags);
  return {};
}

Status Writer::write_superblock_block(uint64_t tail_position, uint64_t tail_sequence, uint32_t flags) {
  format::JournalSuperblock next = sb_;
  next.tail_position = tail_position;
  next.tail_sequence = tail_sequence;
  next.flags = flags;
  next.update_time = uint64_t(std::time(nullptr));
  next.generation = sb_.generation + 1;
  AlignedBuffer block(kJournalBlock);
  format::encode(next, std::span<std::byte, kJournalBlock>(block.data(), kJournalBlock));
  // The other copy keeps the previous superblock should this write tear.
  // Through the page cache: the caller's sync makes it durable, and the
  // appends that wait for the journal lock meanwhile do not wait for a
  // device round trip.
  return device_.write_cached(next.generation % format::JournalSuperblock::kCopies * kJournalBlock, {block.data(), kJournalBlock});
}

void Writer::set_tail(uint64_t tail_position, uint64_t tail_sequence, uint32_t flags) {
  sb_.tail_position = tail_position;
  sb_.tail_sequence = tail_sequence;
  sb_.flags = flags;
  ++sb_.generation;
}

}  // namespace r5::journal
