// Journal superblock: the input is blocks 0 and 1 of a journal (the two
// copies), decoded one by one and through read_superblock() on a device of
// the smallest journal size. A second pass repairs both checksums so
// mutations reach the field checks. Whatever decodes must encode back to the
// same bytes; read_superblock() must pick the newest valid copy and never
// accept one larger than the device.
#include "fuzz_common.h"
#include "io/memory_device.h"
#include "journal/reader.h"

using namespace r5;
using format::kJournalBlock;

namespace {

constexpr uint64_t kDeviceBlocks = format::kMinJournalBlocks;

void check(const std::vector<std::byte>& blocks) {
  uint64_t best_generation = 0;
  bool any = false;
  for (size_t copy = 0; copy < 2; ++copy) {
    std::span<const std::byte, kJournalBlock> in(blocks.data() + copy * kJournalBlock, kJournalBlock);
    auto sb = format::decode_journal_superblock(in);
    if (!sb.ok()) {
      FUZZ_CHECK(sb.error().kind == ErrorKind::kNotFound || sb.error().kind == ErrorKind::kCorruption);
      continue;
    }
    std::vector<std::byte> out(kJournalBlock);
    format::encode(*sb, std::span<std::byte, kJournalBlock>(out.data(), out.size()));
    FUZZ_CHECK(std::memcmp(out.data(), in.data(), kJournalBlock) == 0);
    FUZZ_CHECK(sb->block_count >= format::kMinJournalBlocks);
    FUZZ_CHECK(sb->tail_position >= sb->ring_start() && sb->tail_position < sb->block_count);
    if (sb->block_count <= kDeviceBlocks && (!any || sb->generation > best_generation)) best_generation = sb->generation;
    any = any || sb->block_count <= kDeviceBlocks;
  }

  // Kept across runs (only blocks 0 and 1 ever change): a fresh 1 MiB device
  // per run would spend the run faulting in ASan's fresh pages.
  static io::MemoryDevice device("fuzz-journal", kDeviceBlocks * kJournalBlock);
  device.poke(0, blocks);
  auto sb = journal::read_superblock(device);
  if (!sb.ok()) return;
  FUZZ_CHECK(sb->block_count <= kDeviceBlocks);
  FUZZ_CHECK(any && sb->generation == best_generation);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::byte> blocks = fuzz::block_of(data, size, 2 * kJournalBlock);
  check(blocks);
  for (size_t copy = 0; copy < 2; ++copy)
    fuzz::fix_checksum(blocks.data() + copy * kJournalBlock, format::jsb::kChecksum, format::kJournalChecksumSeed);
  check(blocks);
  return 0;
}
