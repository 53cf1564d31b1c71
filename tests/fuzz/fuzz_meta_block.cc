// Journal metadata block decoder, seeded like the scan target's journal. A
// second pass repairs the checksum so mutations reach the header and entry
// parsing. Whatever decodes must encode back to exactly the same block.
#include "fuzz_common.h"

using namespace r5;
using format::kJournalBlock;

namespace {

void check(const std::vector<std::byte>& block, uint64_t seed) {
  auto meta = format::decode_meta_block(std::span<const std::byte, kJournalBlock>(block.data(), kJournalBlock), seed);
  if (!meta.ok()) {
    FUZZ_CHECK(meta.error().kind == ErrorKind::kNotFound || meta.error().kind == ErrorKind::kCorruption);
    return;
  }
  FUZZ_CHECK(meta->synced_sequence <= meta->sequence);
  FUZZ_CHECK(format::encoded_size(*meta) <= kJournalBlock);
  std::vector<std::byte> out(kJournalBlock);
  Status st = format::encode(*meta, seed, std::span<std::byte, kJournalBlock>(out.data(), kJournalBlock));
  FUZZ_CHECK(st.ok());
  FUZZ_CHECK(std::memcmp(out.data(), block.data(), kJournalBlock) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint64_t seed = fuzz::scan_superblock(false).seed();
  std::vector<std::byte> block = fuzz::block_of(data, size, kJournalBlock);
  check(block, seed);
  fuzz::fix_meta_checksum(block.data(), seed);
  check(block, seed);
  return 0;
}
