// Journal writer and recovery scan on a memory device: records round-trip,
// the ring wraps, and every way a log can end or break is told apart: a torn
// tail (normal after a crash), blocks left from an earlier lap, a misplaced
// write, a log of another journal, and damage in the middle (corruption).
#include <doctest/doctest.h>

#include <deque>
#include <random>

#include "io/memory_device.h"
#include "journal/reader.h"
#include "journal/writer.h"

using namespace r5;
using format::kJournalBlock;

namespace {

format::JournalSuperblock make_superblock(uint64_t blocks, uint8_t journal_id = 1) {
  format::JournalSuperblock sb;
  sb.array_uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  sb.journal_uuid = {journal_id, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  sb.level = 5;
  sb.chunk_size = 65536;
  sb.member_count = 5;
  sb.data_size = 1024 * 65536;
  sb.block_count = blocks;
  return sb;
}

struct Logged {
  format::MetaBlock meta;
  std::vector<AlignedBuffer> pages;
};

// A record with data entries (and sometimes parity and stripe-done entries)
// whose payload is random.
Logged make_record(std::mt19937_64& rng, uint64_t seed, uint32_t max_pages) {
  Logged r;
  uint32_t entries = 1 + rng() % 3;
  for (uint32_t e = 0; e < entries; ++e) {
    uint32_t pages = 1 + rng() % max_pages;
    std::vector<uint64_t> sums;
    for (uint32_t i = 0; i < pages; ++i) {
      AlignedBuffer& page = r.pages.emplace_back(kJournalBlock);
      for (size_t b = 0; b < kJournalBlock; b += 8) page.data()[b] = std::byte(rng());
      sums.push_back(format::payload_checksum(std::span<const std::byte, kJournalBlock>(page.data(), kJournalBlock), seed));
    }
    if (e == 1 && rng() % 2) {
      r.meta.entries.push_back(format::ParityEntry{rng() % 1000, 0, 1, sums});
    } else {
      r.meta.entries.push_back(format::DataEntry{(rng() % 100000) * kJournalBlock, sums});
    }
  }
  if (rng() % 3 == 0) r.meta.entries.push_back(format::StripeDoneEntry{{rng() % 1000, rng() % 1000}});
  return r;
}

Status append(journal::Writer& w, Logged& r) {
  std::vector<const std::byte*> ptrs;
  for (auto& p : r.pages) ptrs.push_back(p.data());
  return w.append(r.meta, ptrs);
}

struct Journal {
  io::MemoryDevice device;
  format::JournalSuperblock sb;
  journal::Writer writer;

  explicit Journal(uint64_t blocks, uint8_t journal_id = 1)
      : device("journal", blocks * kJournalBlock), sb(make_superblock(blocks, journal_id)), writer(device, sb, 2, 1) {
    REQUIRE(writer.write_superblock(2, 1, 0).ok());
  }
  journal::ScanResult scan() {
    auto sb_now = journal::read_superblock(device);
    REQUIRE_MESSAGE(sb_now.ok(), sb_now.error().message);
    auto r = journal::scan(device, *sb_now, {.verify_payload = true, .window_bytes = 64 * 1024, .on_record = {}});
    REQUIRE_MESSAGE(r.ok(), r.error().message);
    return std::move(*r);
  }
  void flip(uint64_t block, size_t byte) {
    auto snap = device.snapshot();
    std::byte b = snap[block * kJournalBlock + byte] ^ std::byte{0x40};
    device.poke(block * kJournalBlock + byte, {&b, 1});
  }
};

void check_matches(const journal::ScanResult& scan, const std::deque<Logged>& expected, io::MemoryDevice& dev) {
  REQUIRE(scan.records.size() == expected.size());
  auto snap = dev.snapshot();
  journal::Ring ring(snap.size() / kJournalBlock);
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(scan.records[i].meta == expected[i].meta);
    uint64_t page = scan.records[i].payload_position;
    for (const auto& p : expected[i].pages) {
      CHECK(std::memcmp(snap.data() + page * kJournalBlock, p.data(), kJournalBlock) == 0);
      page = ring.advance(page, 1);
    }
  }
}

}  // namespace

TEST_CASE("records round-trip through the writer and the scan") {
  Journal j(1024);
  std::mt19937_64 rng(1);
  std::deque<Logged> logged;
  for (int i = 0; i < 12; ++i) {
    logged.push_back(make_record(rng, j.sb.seed(), 8));
    REQUIRE(append(j.writer, logged.back()).ok());
  }
  REQUIRE(j.writer.sync().ok());
  auto scan = j.scan();
  check_matches(scan, logged, j.device);
  CHECK(scan.head_position == j.writer.head_position());
  CHECK(scan.head_sequence == 13);
  CHECK(!scan.corrupt);
  CHECK(scan.end_reason.find("no metadata block magic") != std::string::npos);
}

TEST_CASE("the ring wraps several times as the tail advances; old laps end the scan quietly") {
  Journal j(format::kMinJournalBlocks + 1);  // a 255-block ring
  std::mt19937_64 rng(2);
  std::deque<Logged> live;
  uint64_t appended_blocks = 0;
  for (int i = 0; appended_blocks < 4 * j.sb.ring_blocks(); ++i) {
    Logged r = make_record(rng, j.sb.seed(), 12);
    // Reclaim from the tail until the record fits, as the flusher will.
    while (j.writer.free_blocks() < 1 + r.pages.size()) {
      live.pop_front();
      const auto& next = live.front().meta;
      REQUIRE(j.writer.write_superblock(next.position, next.sequence, 0).ok());
    }
    REQUIRE(append(j.writer, r).ok());
    appended_blocks += 1 + r.pages.size();
    live.push_back(std::move(r));
    if (i % 7 == 0) {
      auto scan = j.scan();
      check_matches(scan, live, j.device);
      CHECK_MESSAGE(!scan.corrupt, scan.corruption);
    }
  }
  auto scan = j.scan();
  check_matches(scan, live, j.device);
  CHECK(!scan.corrupt);
  CHECK(scan.head_position == j.writer.head_position());
}

TEST_CASE("a torn last record ends the log; it is not corruption") {
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    Journal j(1024);
    std::mt19937_64 rng(3);
    std::deque<Logged> logged;
    for (int i = 0; i < 6; ++i) {
      logged.push_back(make_record(rng, j.sb.seed(), 6));
      REQUIRE(append(j.writer, logged.back()).ok());
    }
    const auto& last = logged.back().meta;
    if (variant == 0) j.flip(last.position, 100);                     // torn metadata block
    if (variant == 1) j.flip(last.position + last.payload_blocks(), 7);  // torn last payload page
    if (variant == 2) j.flip(last.position + 1, 4000);                   // torn first payload page
    auto scan = j.scan();
    logged.pop_back();
    check_matches(scan, logged, j.device);
    CHECK_MESSAGE(!scan.corrupt, scan.corruption);
    CHECK(scan.head_position == last.position);
    CHECK(scan.head_sequence == last.sequence);
  }
}

TEST_CASE("damage to a record that had been durable is corruption; a hole in the unsynced end is not") {
  for (bool synced : {true, false}) {
    CAPTURE(synced);
    Journal j(2048);
    std::mt19937_64 rng(4);
    std::deque<Logged> logged;
    for (int i = 0; i < 8; ++i) {
      logged.push_back(make_record(rng, j.sb.seed(), 6));
      // As the journaled cache does: each record says which were durable
      // when it was written (here: all before it, or none).
      logged.back().meta.synced_sequence = synced ? j.writer.head_sequence() : 0;
      REQUIRE(append(j.writer, logged.back()).ok());
    }
    SUBCASE("metadata block") { j.flip(logged[3].meta.position, 50); }
    SUBCASE("payload page") { j.flip(logged[3].meta.position + 1, 50); }
    auto scan = j.scan();
    CHECK(scan.records.size() == 3);
    CHECK(scan.corrupt == synced);
    if (synced)
      CHECK(scan.corruption.find("holds a valid record of sequence 5 written after sequence 4 was durable") !=
            std::string::npos);
    else
      CHECK(scan.end_reason.find("unsynced record of sequence 5") != std::string::npos);
  }
}

TEST_CASE("the look-ahead lists every valid record past the end, as far as the writer's unsynced window") {
  Journal j(8192);
  std::mt19937_64 rng(5);
  std::vector<uint64_t> positions;
  // Unsynced records of about 60 blocks each, 2000 blocks in all; the first
  // one's metadata block never reached the disk.
  while (j.writer.head_position() < 2000) {
    Logged r = make_record(rng, j.sb.seed(), 20);
    REQUIRE(append(j.writer, r).ok());
    positions.push_back(r.meta.position);
  }
  j.device.poke(positions[0] * kJournalBlock, std::vector<std::byte>(kJournalBlock));
  auto sb = journal::read_superblock(j.device);
  REQUIRE(sb.ok());
  for (uint64_t lookahead : {0, 4000}) {
    CAPTURE(lookahead);
    journal::ScanOptions options;
    options.window_bytes = 64 * 1024;
    options.lookahead_blocks = lookahead;
    auto scan = journal::scan(j.device, *sb, options);
    REQUIRE(scan.ok());
    CHECK(scan->records.empty());
    CHECK(!scan->corrupt);
    const std::vector<uint64_t> after(positions.begin() + 1, positions.end());
    if (lookahead == 0) {
      // Two records' length: not as far as the last ones.
      CHECK(!scan->discarded.empty());
      CHECK(scan->discarded.size() < after.size());
    } else {
      CHECK(scan->discarded == after);
    }
  }
}

TEST_CASE("after damage, every later record up to the tail is listed, beyond the look-ahead") {
  // A forced replay overwrites the listed records; one left on the disk could
  // later read as the continuation of the new log (same place, same sequence).
  Journal j(8192);
  std::mt19937_64 rng(6);
  std::vector<uint64_t> positions;
  while (j.writer.head_position() < 6000) {
    Logged r = make_record(rng, j.sb.seed(), 20);
    r.meta.synced_sequence = j.writer.head_sequence();  // all before it durable
    REQUIRE(append(j.writer, r).ok());
    positions.push_back(r.meta.position);
  }
  j.flip(positions[1], 50);
  auto sb = journal::read_superblock(j.device);
  REQUIRE(sb.ok());
  journal::ScanOptions options;
  options.window_bytes = 64 * 1024;
  options.lookahead_blocks = 100;
  auto scan = journal::scan(j.device, *sb, options);
  REQUIRE(scan.ok());
  CHECK(scan->records.size() == 1);
  CHECK(scan->corrupt);
  CHECK(scan->discarded == std::vector<uint64_t>(positions.begin() + 2, positions.end()));
}

TEST_CASE("a misplaced copy of a valid block and a log of another journal do not validate") {
  Journal j(1024);
  std::mt19937_64 rng(5);
  Logged r = make_record(rng, j.sb.seed(), 3);
  REQUIRE(append(j.writer, r).ok());
  // A block meant for another position lands at the head, with the very
  // sequence the scan expects there: only the position check can catch it.
  const uint64_t head = j.writer.head_position();
  format::MetaBlock stray;
  stray.sequence = j.writer.head_sequence();
  stray.position = head + 7;
  stray.entries.push_back(format::StripeDoneEntry{{1}});
  AlignedBuffer block(kJournalBlock);
  REQUIRE(format::encode(stray, j.sb.seed(), std::span<std::byte, kJournalBlock>(block.data(), kJournalBlock)).ok());
  j.device.poke(head * kJournalBlock, {block.data(), kJournalBlock});
  auto scan = j.scan();
  CHECK(scan.records.size() == 1);
  CHECK(scan.end_reason.find("misplaced write") != std::string::npos);

  // Reformatted with a new journal UUID: the old records are noise.
  format::JournalSuperblock fresh = make_superblock(1024, /*journal_id=*/2);
  journal::Writer w2(j.device, fresh, 2, 1);
  REQUIRE(w2.write_superblock(2, 1, 0).ok());
  scan = j.scan();
  CHECK(scan.records.empty());
  CHECK(!scan.corrupt);
  CHECK(scan.end_reason.find("checksum mismatch") != std::string::npos);
}

TEST_CASE("a full journal refuses the append with kBusy and writes nothing") {
  Journal j(format::kMinJournalBlocks + 1);  // a 255-block ring
  std::mt19937_64 rng(6);
  Status st;
  int appended = 0;
  for (; appended < 1000; ++appended) {
    Logged r = make_record(rng, j.sb.seed(), 20);
    const uint64_t head = j.writer.head_position();
    st = append(j.writer, r);
    if (!st.ok()) {
      CHECK(j.writer.head_position() == head);
      break;
    }
  }
  REQUIRE(!st.ok());
  CHECK(st.error().kind == ErrorKind::kBusy);
  CHECK(j.writer.free_blocks() < 1 + 3 * 20);
  CHECK(j.scan().records.size() == size_t(appended));
}

TEST_CASE("the journal superblock must fit the device") {
  io::MemoryDevice small("small", 300 * kJournalBlock);
  journal::Writer w(small, make_superblock(400), 2, 1);
  REQUIRE(w.write_superblock(2, 1, 0).ok());
  auto sb = journal::read_superblock(small);
  REQUIRE(!sb.ok());
  CHECK(sb.error().message.find("says 400 blocks, the device holds 300") != std::string::npos);
}

TEST_CASE("a record left from an earlier lap at the head ends the log quietly") {
  // 5-block records in a 255-block ring: every lap puts a record boundary at
  // the same blocks, so the block after the head is an old, valid record
  // with the right position and an older sequence.
  Journal j(format::kMinJournalBlocks + 1);  // a 255-block ring
  std::mt19937_64 rng(7);
  std::deque<Logged> live;
  auto fixed_record = [&] {
    Logged r;
    std::vector<uint64_t> sums;
    for (int i = 0; i < 4; ++i) {
      AlignedBuffer& page = r.pages.emplace_back(kJournalBlock);
      page.data()[0] = std::byte(rng());
      sums.push_back(format::payload_checksum(std::span<const std::byte, kJournalBlock>(page.data(), kJournalBlock), j.sb.seed()));
    }
    r.meta.entries.push_back(format::DataEntry{0, sums});
    return r;
  };
  for (int i = 0; i < 51 + 20; ++i) {
    Logged r = fixed_record();
    while (j.writer.free_blocks() < 5) {
      live.pop_front();
      REQUIRE(j.writer.write_superblock(live.front().meta.position, live.front().meta.sequence, 0).ok());
    }
    REQUIRE(append(j.writer, r).ok());
    live.push_back(std::move(r));
  }
  auto scan = j.scan();
  check_matches(scan, live, j.device);
  CHECK(!scan.corrupt);
  CHECK(scan.end_reason.find("left from an earlier lap") != std::string::npos);
}
