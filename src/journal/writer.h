// Appends records (a metadata block and its payload pages) at the head of the
// journal ring, and moves the tail by rewriting the journal superblock.
// Placing records is serialized by the caller; writing them (write_at) is
// not, so several records may be in flight at once. Records not yet synced
// may reach the device in any order (a disk's volatile cache, the kernel's
// write-back of the small records written through the page cache); each
// record names the sequence
// below which the log was synced when it was written, so recovery tells a
// torn unsynced end from corruption of what was synced.
#pragma once

#include <span>

#include "array/aligned_buffer.h"
#include "format/journal.h"
#include "io/device.h"
#include "journal/ring.h"

namespace r5::journal {

// Writes a fresh journal superblock for the array (new journal UUID, empty
// log, clean) over `blocks` blocks of `device`, and syncs it.
Result<format::JournalSuperblock> format_journal(io::Device& device, const format::MemberSuperblock& array, uint64_t blocks);

class Writer {
 public:
  // Continues the log at (head_position, head_sequence), as recovery found it.
  Writer(io::Device& device, const format::JournalSuperblock& sb, uint64_t head_position, uint64_t head_sequence);

  uint64_t head_position() const { return head_; }
  uint64_t head_sequence() const { return sequence_; }
  const format::JournalSuperblock& superblock() const { return sb_; }
  // Blocks free for records: the ring minus what lies between tail and head,
  // minus one block so that a full ring never looks empty.
  uint64_t free_blocks() const;
  // Blocks from `position` forward to the head.
  uint64_t distance_to_head(uint64_t position) const { return ring_.distance(position, head_); }

  // Writes `meta` (its sequence and position are set here) followed by
  // `payload` (kJournalBlock bytes per page, in entry order). Not durable
  // until sync(). kBusy when the ring lacks room: the caller reclaims first.
  // Records of at most kCachedRecordBlocks (128 KiB), and any record with
  // `through_cache` (the caller syncs right away), are written through the
  // page cache.
  Status append(format::MetaBlock& meta, std::span<const std::byte* const> payload, bool through_cache = false);
  static constexpr uint64_t kCachedRecordBlocks = 32;
  // append() in two steps, so that the caller can write records without
  // holding the lock that serializes appends, several at once: place()
  // takes the space at the head for `meta` and `payload_blocks` pages (sets
  // its sequence and position) and encodes the metadata block into `block`;
  // write_at() writes the record's bytes (metadata block, then payload)
  // there. Until then the space holds what a recovery scan sees as the torn
  // end of the log. kBusy when the ring lacks room.
  Status place(format::MetaBlock& meta, uint64_t payload_blocks, std::span<std::byte, format::kJournalBlock> block);
  // Writes `bytes` (whole blocks) from ring block `position` on, in two
  // writes where they wrap; through the page cache as append() decides.
  // Reads no state that changes: needs no lock.
  Status write_at(uint64_t position, std::span<const std::byte> bytes, bool through_cache = false);
  Status sync() { return device_.sync(); }
  // Records the new tail (oldest record still needed) and flags in the
  // superblock, durably.
  Status write_superblock(uint64_t tail_position, uint64_t tail_sequence, uint32_t flags);
  // The same in two steps, so the caller can sync without holding its lock:
  // write block 0 (not durable, space not yet reusable), then, once the
  // caller has synced the device, make the space behind the tail reusable.
  Status write_superblock_block(uint64_t tail_position, uint64_t tail_sequence, uint32_t flags);
  void set_tail(uint64_t tail_position, uint64_t tail_sequence, uint32_t flags);

 private:
  io::Device& device_;
  format::JournalSuperblock sb_;
  Ring ring_;
  uint64_t head_;
  uint64_t sequence_;
  AlignedBuffer buffer_;
};

}  // namespace r5::journal
