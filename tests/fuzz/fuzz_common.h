// Shared by the fuzz targets and make_seeds.cc: invariant checks, checksum
// repair (so mutated blocks also get past the checksum and reach the field
// parsing), and the fixed journal the scan target and its seeds use.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/checksum.h"
#include "base/endian.h"
#include "format/journal.h"

// An invariant violated by a decoded input: a finding, so crash loudly.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace r5::fuzz {

// Exactly `size` bytes on the heap, the input zero-padded or cut, so ASan
// catches a decoder reading past the block.
inline std::vector<std::byte> block_of(const uint8_t* data, size_t len, size_t size) {
  std::vector<std::byte> block(size);
  std::memcpy(block.data(), data, std::min(len, size));
  return block;
}

// Superblocks: XXH3 of [0, at) stored at `at`.
inline void fix_checksum(std::byte* block, size_t at, uint64_t seed) {
  put_le64(block + at, checksum({block, at}, seed));
}

// Metadata blocks: XXH3 of the whole block with the checksum field as zero.
inline void fix_meta_checksum(std::byte* block, uint64_t seed) {
  std::memset(block + format::meta::kChecksum, 0, 8);
  put_le64(block + format::meta::kChecksum, checksum({block, format::kJournalBlock}, seed));
}

// The journal fuzz_journal_scan formats: the smallest ring (254 blocks) over
// a small array, so logged offsets and rows often fall inside it.
inline constexpr uint64_t kScanJournalBlocks = format::kMinJournalBlocks;

inline format::JournalSuperblock scan_superblock(bool raid6) {
  format::JournalSuperblock sb;
  sb.array_uuid = {0x52, 0x35, 0x43, 0x46, 0x53, 0x2d, 0x46, 0x55, 0x5a, 0x5a, 0x2d, 0x41, 0x52, 0x52, 0x41, 0x59};
  sb.journal_uuid = {0x52, 0x35, 0x43, 0x46, 0x53, 0x2d, 0x46, 0x55, 0x5a, 0x5a, 0x2d, 0x4a, 0x4f, 0x55, 0x52, 0x4e};
  sb.level = raid6 ? 6 : 5;
  sb.member_count = raid6 ? 6 : 5;
  sb.chunk_size = 64 * 1024;
  sb.data_size = 16 * sb.chunk_size;
  sb.block_count = kScanJournalBlocks;
  sb.generation = 1;
  return sb;
}

// fuzz_journal_scan's input: this header, then the ring from the tail on.
namespace scan_input {
inline constexpr size_t kFlags = 0;       // u8, the bits below
inline constexpr size_t kWindow = 1;      // u8, read window in blocks; 0: the whole ring, as the default
inline constexpr size_t kTailOffset = 4;  // u32, tail = ring start + this % ring blocks
inline constexpr size_t kTailSequence = 8;  // u64
inline constexpr size_t kHeader = 16;
inline constexpr uint8_t kFixChecksums = 1;   // repair every metadata block's checksum
inline constexpr uint8_t kSkipPayload = 2;    // scan without payload verification
inline constexpr uint8_t kRaid6 = 4;          // the superblock's geometry is RAID6
}  // namespace scan_input

}  // namespace r5::fuzz
