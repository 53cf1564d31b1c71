// Member superblock decoder: the input is block 0 of a member. A second pass
// repairs the checksum so mutations reach the field checks. Whatever decodes
// must encode back to the same bytes and validate as a geometry.
#include "fuzz_common.h"
#include "format/ondisk.h"

using namespace r5;

namespace {

void check(std::span<const std::byte, format::kSuperblockSize> in) {
  auto sb = format::decode_member_superblock(in);
  if (!sb.ok()) {
    FUZZ_CHECK(sb.error().kind == ErrorKind::kNotFound || sb.error().kind == ErrorKind::kCorruption);
    FUZZ_CHECK(!sb.error().message.empty());
    return;
  }
  std::vector<std::byte> out(format::kSuperblockSize);
  format::encode(*sb, std::span<std::byte, format::kSuperblockSize>(out.data(), out.size()));
  FUZZ_CHECK(std::memcmp(out.data(), in.data(), out.size()) == 0);
  FUZZ_CHECK(sb->geometry().validate().ok());
  FUZZ_CHECK(sb->slot < sb->member_count);
  FUZZ_CHECK(sb->data_size > 0 && sb->data_size % sb->chunk_size == 0);
  FUZZ_CHECK(sb->data_offset + sb->data_size > sb->data_offset);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::byte> block = fuzz::block_of(data, size, format::kSuperblockSize);
  check(std::span<const std::byte, format::kSuperblockSize>(block.data(), block.size()));
  fuzz::fix_checksum(block.data(), format::sb::kChecksum, format::kMemberChecksumSeed);
  check(std::span<const std::byte, format::kSuperblockSize>(block.data(), block.size()));
  return 0;
}
