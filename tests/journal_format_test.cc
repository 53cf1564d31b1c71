// Journal on-disk format: superblock and metadata blocks round-trip, and
// every damaged or out-of-spec block is refused with a reason, never crashes.
#include <doctest/doctest.h>

#include <random>

#include "base/checksum.h"
#include "base/endian.h"
#include "format/journal.h"

using namespace r5;
using namespace r5::format;

namespace {

using Block = std::array<std::byte, kJournalBlock>;

JournalSuperblock sample_sb() {
  JournalSuperblock s;
  s.array_uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  s.journal_uuid = {16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  s.level = 6;
  s.chunk_size = 65536;
  s.member_count = 6;
  s.data_size = 100 * 65536;
  s.block_count = 16384;
  s.tail_position = 777;
  s.tail_sequence = 123456789;
  s.flags = kJournalClean;
  s.update_time = 1700000000;
  return s;
}

void reseal_sb(Block& b) { put_le64(b.data() + jsb::kChecksum, checksum({b.data(), jsb::kChecksum}, kJournalChecksumSeed)); }

void reseal_meta(Block& b, uint64_t seed) {
  put_le64(b.data() + meta::kChecksum, 0);
  put_le64(b.data() + meta::kChecksum, checksum(b, seed));
}

std::string sb_error(const Block& b) {
  auto r = decode_journal_superblock(b);
  REQUIRE(!r.ok());
  CHECK(r.error().kind == ErrorKind::kCorruption);
  return r.error().message;
}

MetaBlock sample_meta() {
  MetaBlock m;
  m.sequence = 42;
  m.position = 9;
  m.synced_sequence = 40;
  m.entries.push_back(DataEntry{8192, {11, 12, 13}});
  m.entries.push_back(ParityEntry{5, 4096, 2, {21, 22, 23, 24}});
  m.entries.push_back(StripeDoneEntry{{1, 2, 3}});
  m.entries.push_back(DataEntry{1 << 20, {31}});
  return m;
}

Block encoded(const MetaBlock& m, uint64_t seed) {
  Block b;
  REQUIRE(encode(m, seed, b).ok());
  return b;
}

std::string meta_error(const Block& b, uint64_t seed) {
  auto r = decode_meta_block(b, seed);
  REQUIRE(!r.ok());
  CHECK(r.error().kind == ErrorKind::kCorruption);
  return r.error().message;
}

}  // namespace

TEST_CASE("journal superblock round-trips and reads as R5CFSJS1") {
  Block b;
  encode(sample_sb(), b);
  auto r = decode_journal_superblock(b);
  REQUIRE(r.ok());
  CHECK(*r == sample_sb());
  CHECK(std::string(reinterpret_cast<const char*>(b.data()), 8) == "R5CFSJS1");
  Block zero{};
  auto blank = decode_journal_superblock(zero);
  REQUIRE(!blank.ok());
  CHECK(blank.error().kind == ErrorKind::kNotFound);
}

TEST_CASE("journal superblock: flipped bytes and out-of-spec fields are refused") {
  Block good;
  encode(sample_sb(), good);
  for (size_t i = 8; i < kJournalBlock; i += 61) {
    Block b = good;
    b[i] ^= std::byte{1};
    CHECK(!decode_journal_superblock(b).ok());
  }
  auto with32 = [&](size_t off, uint32_t v) {
    Block b = good;
    put_le32(b.data() + off, v);
    reseal_sb(b);
    return sb_error(b);
  };
  auto with64 = [&](size_t off, uint64_t v) {
    Block b = good;
    put_le64(b.data() + off, v);
    reseal_sb(b);
    return sb_error(b);
  };
  CHECK(with32(jsb::kVersion, 2).find("version 2") != std::string::npos);
  CHECK(with32(jsb::kFeatures, 1).find("feature") != std::string::npos);
  CHECK(with32(jsb::kFlags, 2).find("flag") != std::string::npos);
  CHECK(with32(jsb::kReserved0, 1).find("reserved") != std::string::npos);
  CHECK(with32(jsb::kLayout, 7).find("layout") != std::string::npos);
  CHECK(with32(jsb::kLevel, 4).find("level") != std::string::npos);
  CHECK(with32(jsb::kChunkSize, 3000).find("chunk") != std::string::npos);
  CHECK(with32(jsb::kMemberCount, 2).find("members") != std::string::npos);
  CHECK(with64(jsb::kDataSize, 65536 + 4096).find("data size") != std::string::npos);
  CHECK(with64(jsb::kBlockCount, kMinJournalBlocks - 1).find("block count") != std::string::npos);
  CHECK(with64(jsb::kTailPosition, 0).find("tail position") != std::string::npos);
  CHECK(with64(jsb::kTailPosition, 16384).find("tail position") != std::string::npos);
  Block b = good;
  b[jsb::kReserved + 100] = std::byte{1};
  reseal_sb(b);
  CHECK(sb_error(b).find("reserved") != std::string::npos);
}

TEST_CASE("the checksum seed depends on both UUIDs") {
  JournalSuperblock a = sample_sb(), b = sample_sb(), c = sample_sb();
  b.array_uuid[3] ^= 1;
  c.journal_uuid[9] ^= 1;
  CHECK(a.seed() == sample_sb().seed());
  CHECK(a.seed() != b.seed());
  CHECK(a.seed() != c.seed());
}

TEST_CASE("metadata blocks round-trip every entry type") {
  const uint64_t seed = sample_sb().seed();
  MetaBlock m = sample_meta();
  CHECK(m.payload_blocks() == 3 + 4 + 1);
  Block b = encoded(m, seed);
  auto r = decode_meta_block(b, seed);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(*r == m);
  CHECK(std::string(reinterpret_cast<const char*>(b.data()), 4) == "R5JM");
  CHECK(get_le32(b.data() + meta::kPayloadBlocks) == 8);
  const uint32_t used = get_le32(b.data() + meta::kUsedBytes);
  CHECK(used == encoded_size(m));
  for (size_t i = used; i < kJournalBlock; ++i) REQUIRE(b[i] == std::byte{0});
  CHECK(encoded(m, seed) == b);  // deterministic

  MetaBlock empty;
  auto e = decode_meta_block(encoded(empty, seed), seed);
  REQUIRE(e.ok());
  CHECK(e->entries.empty());
}

TEST_CASE("fits() and encode() agree exactly at the capacity of a block") {
  const uint64_t seed = 7;
  MetaBlock m;
  DataEntry one{0, {1, 2, 3, 4, 5}};
  while (fits(m, one)) m.entries.push_back(one);
  CHECK(encoded_size(m) <= kJournalBlock);
  CHECK(encoded_size(m) + encoded_size(one) > kJournalBlock);
  Block b;
  CHECK(encode(m, seed, b).ok());
  m.entries.push_back(one);
  Status st = encode(m, seed, b);
  REQUIRE(!st.ok());
  CHECK(st.error().kind == ErrorKind::kInvalid);

  MetaBlock big;  // one data entry as large as a block allows
  big.entries.push_back(DataEntry{0, std::vector<uint64_t>((kMetaCapacity - 16) / 8, 9)});
  CHECK(encoded_size(big) == kJournalBlock);
  auto r = decode_meta_block(encoded(big, seed), seed);
  REQUIRE(r.ok());
  CHECK(r->payload_blocks() == (kMetaCapacity - 16) / 8);
}

TEST_CASE("malformed entries are refused by encode") {
  Block b;
  auto refused = [&](Entry e) {
    MetaBlock m;
    m.entries.push_back(std::move(e));
    return !encode(m, 1, b).ok();
  };
  CHECK(refused(DataEntry{0, {}}));
  CHECK(refused(DataEntry{100, {1}}));
  CHECK(refused(ParityEntry{1, 0, 3, {1, 2, 3}}));
  CHECK(refused(ParityEntry{1, 0, 2, {1, 2, 3}}));
  CHECK(refused(ParityEntry{1, 100, 1, {1}}));
}

TEST_CASE("metadata blocks: wrong seed, flipped bytes and out-of-spec fields are refused") {
  const uint64_t seed = sample_sb().seed();
  const Block good = encoded(sample_meta(), seed);
  CHECK(meta_error(good, seed + 1).find("checksum") != std::string::npos);
  for (size_t i = 4; i < kJournalBlock; i += 7) {
    Block b = good;
    b[i] ^= std::byte{0x80};
    CHECK(!decode_meta_block(b, seed).ok());
  }
  Block zero{};
  CHECK(decode_meta_block(zero, seed).error().kind == ErrorKind::kNotFound);

  auto edit = [&](auto change) {
    Block b = good;
    change(b.data());
    reseal_meta(b, seed);
    return meta_error(b, seed);
  };
  const size_t e0 = meta::kEntries;                 // data entry, 3 pages
  const size_t e1 = e0 + 16 + 3 * 8;                // parity entry
  const size_t e2 = e1 + 24 + 4 * 8;                // stripe-done entry
  CHECK(edit([](std::byte* p) { put_le16(p + meta::kVersion, 2); }).find("version") != std::string::npos);
  CHECK(edit([](std::byte* p) { put_le16(p + meta::kEntryCount, 5); }).find("past the used bytes") != std::string::npos);
  CHECK(edit([](std::byte* p) { put_le16(p + meta::kEntryCount, 3); }).find("entries end at") != std::string::npos);
  CHECK(edit([](std::byte* p) { put_le32(p + meta::kUsedBytes, 4097); }).find("used bytes") != std::string::npos);
  CHECK(edit([](std::byte* p) { put_le32(p + meta::kUsedBytes, 47); }).find("used bytes") != std::string::npos);
  CHECK(edit([](std::byte* p) { put_le64(p + meta::kSyncedSequence, 43); }).find("synced sequence 43 is after") !=
        std::string::npos);
  CHECK(edit([](std::byte* p) { p[4000] = std::byte{1}; }).find("after the entries") != std::string::npos);
  CHECK(edit([](std::byte* p) { put_le32(p + meta::kPayloadBlocks, 9); }).find("payload count") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le16(p + e0, 9); }).find("unknown type 9") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le32(p + e0 + 4, 0); }).find("malformed data entry") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le64(p + e0 + 8, 8193); }).find("malformed data entry") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le16(p + e1 + 2, 0); }).find("malformed parity entry") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le16(p + e1 + 2, 3); }).find("malformed parity entry") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le32(p + e1 + 16, 100); }).find("malformed parity entry") != std::string::npos);
  CHECK(edit([&](std::byte* p) { put_le32(p + e2 + 4, 1000); }).find("stripe-done") != std::string::npos);
}

TEST_CASE("random blocks never decode and never crash") {
  std::mt19937_64 rng(11);
  const uint64_t seed = 99;
  for (int i = 0; i < 3000; ++i) {
    Block b;
    for (auto& x : b) x = std::byte(rng());
    if (i % 2) put_le32(b.data(), kMetaMagic);
    if (i % 4 == 1) {
      put_le16(b.data() + meta::kVersion, kMetaVersion);
      put_le32(b.data() + meta::kUsedBytes, uint32_t(40 + rng() % 4057));
      reseal_meta(b, seed);
    }
    auto r = decode_meta_block(b, seed);
    CHECK(!r.ok());
    Block s = b;
    if (i % 3 == 0) {
      put_le64(s.data(), kJournalMagic);
      reseal_sb(s);
    }
    CHECK(!decode_journal_superblock(s).ok());
  }
}

TEST_CASE("payload checksums depend on the seed and every byte") {
  Block page{};
  const uint64_t a = payload_checksum(page, 1);
  CHECK(a != payload_checksum(page, 2));
  for (size_t i = 0; i < kJournalBlock; i += 511) {
    Block p = page;
    p[i] = std::byte{1};
    CHECK(payload_checksum(p, 1) != a);
  }
}
