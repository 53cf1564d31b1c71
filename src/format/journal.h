// The journal's on-disk format (doc/FORMAT.md, "Journal"). A journal device is
// an array of 4 KiB blocks: blocks 0 and 1 hold two copies of the journal
// superblock (written alternately), blocks [2, block_count) a ring. The ring holds metadata blocks, each followed by
// the payload blocks its entries describe (in entry order, wrapping at the
// end of the ring). Everything is little-endian, checksummed with XXH3-64,
// versioned, with reserved bytes zero. Pure: no I/O.
//
// Checksums of metadata and payload blocks are seeded from the array UUID
// *and* a journal UUID chosen when the journal is formatted, so neither a log
// of another array nor an older log of this array (a journal removed and
// added again) can validate. Sequence numbers rise by exactly one per
// metadata block and each block records its own position, so a block left
// from an earlier lap of the ring or written to the wrong place is rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "base/result.h"
#include "format/ondisk.h"

namespace r5::format {

inline constexpr size_t kJournalBlock = 4096;
inline constexpr uint64_t kJournalMagic = 0x3153'4a53'4643'3552ull;  // "R5CFSJS1" as LE bytes
inline constexpr uint32_t kJournalVersion = 1;
inline constexpr uint32_t kJournalKnownFeatures = 0;
inline constexpr uint64_t kJournalChecksumSeed = 0x6a5f'7362'7235'6366ull;  // superblock only
inline constexpr uint64_t kMinJournalBlocks = 256;                          // 1 MiB

namespace jsb {  // byte offsets inside the journal superblock (block 0)
inline constexpr size_t kMagic = 0;           // u64
inline constexpr size_t kVersion = 8;         // u32
inline constexpr size_t kFeatures = 12;       // u32
inline constexpr size_t kArrayUuid = 16;      // 16 bytes
inline constexpr size_t kJournalUuid = 32;    // 16 bytes, new at every format
inline constexpr size_t kLevel = 48;          // u32  } a copy of the array geometry:
inline constexpr size_t kLayout = 52;         // u32  } replay refuses a journal
inline constexpr size_t kChunkSize = 56;      // u32  } whose geometry differs
inline constexpr size_t kMemberCount = 60;    // u32  }
inline constexpr size_t kDataSize = 64;       // u64  } member data size
inline constexpr size_t kBlockCount = 72;     // u64, blocks in the device incl. block 0
inline constexpr size_t kTailPosition = 80;   // u64, block of the oldest live metadata block
inline constexpr size_t kTailSequence = 88;   // u64, its sequence number
inline constexpr size_t kFlags = 96;          // u32, JournalFlags
inline constexpr size_t kReserved0 = 100;     // u32 zero
inline constexpr size_t kUpdateTime = 104;    // u64, unix seconds
inline constexpr size_t kGeneration = 112;    // u64, +1 per superblock write; copy generation % 2 holds it
inline constexpr size_t kReserved = 120;      // zero up to kChecksum
inline constexpr size_t kChecksum = 4088;     // u64, XXH3 over [0, kChecksum), kJournalChecksumSeed
}  // namespace jsb
static_assert(jsb::kChecksum + 8 == kJournalBlock);

// kClean: every logged stripe is durable on the members; nothing to replay.
enum JournalFlags : uint32_t { kJournalClean = 1u << 0 };
inline constexpr uint32_t kJournalKnownFlags = kJournalClean;

struct JournalSuperblock {
  Uuid array_uuid{};
  Uuid journal_uuid{};
  uint32_t level = 5;
  geometry::Layout layout = geometry::Layout::kLeftSymmetric;
  uint32_t chunk_size = 0;
  uint32_t member_count = 0;
  uint64_t data_size = 0;
  uint64_t block_count = 0;
  uint64_t tail_position = 1;
  uint64_t tail_sequence = 1;
  uint32_t flags = 0;
  uint64_t update_time = 0;
  uint64_t generation = 0;

  // Blocks 0 and 1 hold two copies of the superblock, written alternately,
  // so a torn superblock write leaves the previous one readable.
  static constexpr uint64_t kCopies = 2;
  uint64_t ring_start() const { return kCopies; }
  uint64_t ring_blocks() const { return block_count - kCopies; }
  // Seed of every metadata and payload checksum of this journal.
  uint64_t seed() const;
  bool operator==(const JournalSuperblock&) const = default;
};

void encode(const JournalSuperblock& sb, std::span<std::byte, kJournalBlock> out);
// kNotFound without the magic; kCorruption for anything else wrong.
Result<JournalSuperblock> decode_journal_superblock(std::span<const std::byte, kJournalBlock> in);

// ---- Metadata blocks --------------------------------------------------------
inline constexpr uint32_t kMetaMagic = 0x4d4a'3552u;  // "R5JM" as LE bytes
inline constexpr uint16_t kMetaVersion = 1;

namespace meta {  // byte offsets inside a metadata block
inline constexpr size_t kMagic = 0;          // u32
inline constexpr size_t kVersion = 4;        // u16
inline constexpr size_t kEntryCount = 6;     // u16
inline constexpr size_t kChecksum = 8;       // u64, XXH3 over the block with this field zero, seed()
inline constexpr size_t kSequence = 16;      // u64
inline constexpr size_t kPosition = 24;      // u64, this block's own block number
inline constexpr size_t kPayloadBlocks = 32; // u32, payload blocks following this block
inline constexpr size_t kUsedBytes = 36;     // u32, header + entries; the rest is zero
inline constexpr size_t kSyncedSequence = 40; // u64, every record of a lower sequence was durable when this was written
inline constexpr size_t kEntries = 48;       // entries, each 8-byte aligned
}  // namespace meta

// Entry layouts (offsets from the entry start):
//   data    0 u16 type=1, 2 u16 zero, 4 u32 pages n, 8 u64 array byte offset
//           (4 KiB aligned), 16 n x u64 page checksums.            payload: n pages
//   parity  0 u16 type=2, 2 u16 parity count p (1|2), 4 u32 pages n per parity,
//           8 u64 row, 16 u32 in-chunk byte offset (4 KiB aligned), 20 u32 zero,
//           24 p*n x u64 checksums (P pages, then Q).              payload: P then Q pages
//   done    0 u16 type=3, 2 u16 zero, 4 u32 count c, 8 c x u64 rows.  payload: none
enum class EntryType : uint16_t { kData = 1, kParity = 2, kStripeDone = 3 };

struct DataEntry {
  uint64_t array_offset = 0;
  std::vector<uint64_t> page_checksums;  // one per payload page
  bool operator==(const DataEntry&) const = default;
};
struct ParityEntry {
  uint64_t row = 0;
  uint32_t column_offset = 0;
  uint32_t parity_count = 1;
  std::vector<uint64_t> page_checksums;  // parity_count * pages: P pages, then Q pages
  uint32_t pages() const { return parity_count ? uint32_t(page_checksums.size() / parity_count) : 0; }
  bool operator==(const ParityEntry&) const = default;
};
struct StripeDoneEntry {
  std::vector<uint64_t> rows;
  bool operator==(const StripeDoneEntry&) const = default;
};
using Entry = std::variant<DataEntry, ParityEntry, StripeDoneEntry>;

struct MetaBlock {
  uint64_t sequence = 0;
  uint64_t position = 0;
  // Records below this sequence had been made durable (fdatasync) before
  // this block was written. Recovery uses it to tell a torn, never-synced
  // end of the log (unsynced records may reach the disk in any order) from
  // damage to records that had been durable.
  uint64_t synced_sequence = 0;
  std::vector<Entry> entries;

  uint32_t payload_blocks() const;
  bool operator==(const MetaBlock&) const = default;
};

// Bytes an entry takes in a metadata block; whether `entry` still fits.
size_t encoded_size(const Entry& entry);
inline constexpr size_t kMetaCapacity = kJournalBlock - meta::kEntries;
// A record carries at most this many payload blocks: each has a checksum (8
// bytes) in its metadata block.
inline constexpr size_t kMaxPayloadBlocks = kMetaCapacity / 8;
size_t encoded_size(const MetaBlock& block);  // header + entries
bool fits(const MetaBlock& block, const Entry& entry);

// Invalid when the entries do not fit in one block or an entry is malformed.
Status encode(const MetaBlock& block, uint64_t seed, std::span<std::byte, kJournalBlock> out);
// Validates magic, version, checksum and the structure of every entry
// (kCorruption with the reason; kNotFound when the magic is absent). The
// caller checks position and sequence against what it expects.
Result<MetaBlock> decode_meta_block(std::span<const std::byte, kJournalBlock> in, uint64_t seed);

// Checksum of one 4 KiB payload page.
uint64_t payload_checksum(std::span<const std::byte, kJournalBlock> page, uint64_t seed);

}  // namespace r5::format
