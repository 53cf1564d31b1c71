// Member superblock codec: round trip, and every way a block can be wrong is
// refused with a message saying which field.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "base/checksum.h"
#include "base/endian.h"
#include "format/ondisk.h"

using namespace r5;
using namespace r5::format;

namespace {

MemberSuperblock sample() {
  MemberSuperblock s;
  s.array_uuid = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
  s.name = "tank";
  s.level = 6;
  s.layout = geometry::Layout::kLeftSymmetric;
  s.chunk_size = 65536;
  s.member_count = 6;
  s.slot = 4;
  s.state = ArrayState::kDirty;
  s.data_offset = 1 << 20;
  s.data_size = 4096ull * 65536;
  s.events = 77;
  s.failed_mask = 0b100001;
  s.create_time = 1700000000;
  s.update_time = 1700000500;
  return s;
}

using Block = std::array<std::byte, kSuperblockSize>;

Block encoded(const MemberSuperblock& s) {
  Block b;
  encode(s, b);
  return b;
}

void reseal(Block& b) { put_le64(b.data() + sb::kChecksum, checksum({b.data(), sb::kChecksum}, kMemberChecksumSeed)); }

std::string decode_error(const Block& b) {
  auto r = decode_member_superblock(b);
  REQUIRE(!r.ok());
  return r.error().message;
}

}  // namespace

TEST_CASE("member superblock round-trips every field") {
  MemberSuperblock s = sample();
  Block b = encoded(s);
  auto r = decode_member_superblock(b);
  REQUIRE(r.ok());
  CHECK(*r == s);
  CHECK(get_le64(b.data()) == kMemberMagic);
  CHECK(std::string(reinterpret_cast<const char*>(b.data()), 8) == "R5CFSMB1");
}

TEST_CASE("an interrupted check's position round-trips under its feature bit") {
  MemberSuperblock s = sample();
  s.check = CheckPosition{s.geometry().rows - 1, true};
  Block b = encoded(s);
  CHECK(get_le32(b.data() + sb::kFeatures) == kFeatureCheck);
  auto r = decode_member_superblock(b);
  REQUIRE(r.ok());
  CHECK(*r == s);
  // Without a check the fields stay zero and the bit clear.
  Block plain = encoded(sample());
  CHECK(get_le32(plain.data() + sb::kFeatures) == 0);
  CHECK(std::all_of(plain.begin() + sb::kCheckNextRow, plain.begin() + sb::kReserved, [](std::byte x) { return x == std::byte{0}; }));

  auto error_with = [&](size_t offset, uint64_t value, bool bit) {
    Block c = encoded(s);
    put_le64(c.data() + offset, value);
    if (!bit) put_le32(c.data() + sb::kFeatures, 0);
    reseal(c);
    return decode_error(c);
  };
  CHECK(error_with(sb::kCheckNextRow, s.geometry().rows, true).find("beyond") != std::string::npos);
  CHECK(error_with(sb::kCheckFlags, 2, true).find("check flags") != std::string::npos);
  CHECK(error_with(sb::kCheckPad - 4, uint64_t(1) << 32, true).find("check flags") != std::string::npos);  // pad
  // A check field set without the feature bit is a reserved byte.
  CHECK(error_with(sb::kCheckNextRow, 5, false).find("reserved") != std::string::npos);
}

TEST_CASE("a rebuild's position round-trips under its feature bit") {
  MemberSuperblock s = sample();
  s.events = 40;
  s.rebuild = RebuildPosition{2, s.geometry().rows, 33};
  s.check = CheckPosition{7, false};
  Block b = encoded(s);
  CHECK(get_le32(b.data() + sb::kFeatures) == (kFeatureCheck | kFeatureRebuild));
  auto r = decode_member_superblock(b);
  REQUIRE(r.ok());
  CHECK(*r == s);

  auto error_with = [&](size_t offset, uint64_t value, bool wide) {
    Block c = encoded(s);
    if (wide)
      put_le64(c.data() + offset, value);
    else
      put_le32(c.data() + offset, uint32_t(value));
    reseal(c);
    return decode_error(c);
  };
  CHECK(error_with(sb::kRebuildSlot, s.member_count, false).find("rebuild of slot") != std::string::npos);
  CHECK(error_with(sb::kRebuildNextRow, s.geometry().rows + 1, true).find("beyond") != std::string::npos);
  CHECK(error_with(sb::kRebuildStartEvents, 41, true).find("after this update") != std::string::npos);
  CHECK(error_with(sb::kRebuildPad, 1, false).find("padding") != std::string::npos);
  // Without the feature bit the rebuild fields are reserved.
  s.rebuild.reset();
  Block c = encoded(s);
  put_le32(c.data() + sb::kRebuildSlot, 1);
  reseal(c);
  CHECK(decode_error(c).find("reserved") != std::string::npos);
}

TEST_CASE("a blank block is 'not found', a damaged one is corruption") {
  Block zero{};
  auto r = decode_member_superblock(zero);
  REQUIRE(!r.ok());
  CHECK(r.error().kind == ErrorKind::kNotFound);

  Block b = encoded(sample());
  for (size_t i = 8; i < kSuperblockSize; i += 97) {  // any flipped bit after the magic
    Block c = b;
    c[i] ^= std::byte{0x10};
    auto d = decode_member_superblock(c);
    REQUIRE(!d.ok());
    CHECK(d.error().kind == ErrorKind::kCorruption);
  }
}

TEST_CASE("fields are validated even under a valid checksum") {
  auto with = [](size_t offset, uint32_t value) {
    Block b = encoded(sample());
    put_le32(b.data() + offset, value);
    reseal(b);
    return decode_error(b);
  };
  CHECK(with(sb::kVersion, 2).find("version 2") != std::string::npos);
  CHECK(with(sb::kFeatures, 8).find("feature") != std::string::npos);
  CHECK(with(sb::kFeatures, 4).find("feature") != std::string::npos);
  CHECK(with(sb::kLayout, 9).find("layout") != std::string::npos);
  CHECK(with(sb::kLevel, 4).find("level") != std::string::npos);
  CHECK(with(sb::kChunkSize, 3000).find("chunk") != std::string::npos);
  CHECK(with(sb::kSlot, 6).find("slot 6") != std::string::npos);
  CHECK(with(sb::kState, 5).find("state") != std::string::npos);
  CHECK(with(sb::kMemberCount, 2).find("members") != std::string::npos);

  Block b = encoded(sample());
  put_le64(b.data() + sb::kDataSize, 65536 + 4096);
  reseal(b);
  CHECK(decode_error(b).find("data size") != std::string::npos);

  b = encoded(sample());
  put_le64(b.data() + sb::kDataOffset, 100);
  reseal(b);
  CHECK(decode_error(b).find("data offset") != std::string::npos);

  b = encoded(sample());
  put_le64(b.data() + sb::kFailedMask, 1u << 7);
  reseal(b);
  CHECK(decode_error(b).find("failed mask") != std::string::npos);

  b = encoded(sample());
  b[sb::kReserved + 10] = std::byte{1};
  reseal(b);
  CHECK(decode_error(b).find("reserved") != std::string::npos);

  b = encoded(sample());
  std::memset(b.data() + sb::kName, 'x', kNameMax);
  reseal(b);
  CHECK(decode_error(b).find("name") != std::string::npos);
}

TEST_CASE("random blocks never decode and never crash") {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    Block b;
    for (auto& x : b) x = std::byte(rng());
    if (i % 2) put_le64(b.data(), kMemberMagic);
    if (i % 4 == 1) reseal(b);
    CHECK(!decode_member_superblock(b).ok());
  }
}
