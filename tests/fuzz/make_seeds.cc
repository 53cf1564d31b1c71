// Writes the binary seed corpora of the fuzz targets with the real encoders
// and the real journal writer, so the committed seeds can be regenerated:
//   build/tests/fuzz/make_seeds tests/fuzz/corpus
// Everything is deterministic (fixed UUIDs, times and payloads). The config
// seeds are plain text files, kept by hand.
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_common.h"
#include "io/memory_device.h"
#include "journal/writer.h"

using namespace r5;
using format::kJournalBlock;
namespace fs = std::filesystem;

namespace {

fs::path g_out;

void save(const std::string& target, const std::string& name, std::span<const std::byte> bytes) {
  fs::create_directories(g_out / target);
  std::ofstream(g_out / target / name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void member_superblocks() {
  format::MemberSuperblock s;
  s.array_uuid = {0xcd, 0x91, 0xf9, 0xec, 0x9b, 0x95, 0x4e, 0x33, 0x84, 0x75, 0x7a, 0xa9, 0x32, 0xff, 0x5d, 0x8b};
  s.name = "demo";
  s.chunk_size = 64 * 1024;
  s.member_count = 5;
  s.slot = 1;
  s.data_offset = format::kMinDataOffset;
  s.data_size = 0x0fe00000;
  s.events = 1;
  s.create_time = s.update_time = 0x6b057afa;
  std::vector<std::byte> block(format::kSuperblockSize);
  auto out = std::span<std::byte, format::kSuperblockSize>(block.data(), block.size());
  format::encode(s, out);
  save("member_superblock", "raid5-clean", block);

  s.name = "demo6-with-a-name-of-31-bytes..";
  s.level = 6;
  s.member_count = 32;
  s.slot = 31;
  s.chunk_size = 4096;
  s.data_size = 4096ull << 20;
  s.state = format::ArrayState::kDirty;
  s.failed_mask = 0x80000001;
  s.events = 1234567;
  format::encode(s, out);
  save("member_superblock", "raid6-dirty-degraded", block);

  s = {};
  s.level = 5;
  s.layout = geometry::Layout::kLeftAsymmetric;
  s.name = "x";
  s.chunk_size = 1u << 31;
  s.member_count = 3;
  s.data_offset = 4096;
  s.data_size = 1ull << 31;
  format::encode(s, out);
  save("member_superblock", "raid5-huge-chunk", block);
}

void journal_superblocks() {
  std::vector<std::byte> blocks(2 * kJournalBlock);
  auto copy = [&](size_t i) { return std::span<std::byte, kJournalBlock>(blocks.data() + i * kJournalBlock, kJournalBlock); };
  // As format_journal leaves it: both copies, the second one newer.
  format::JournalSuperblock sb = fuzz::scan_superblock(false);
  sb.tail_position = sb.ring_start();
  sb.flags = format::kJournalClean;
  sb.update_time = 0x6b057afa;
  sb.generation = 2;
  format::encode(sb, copy(0));
  sb.generation = 1;
  format::encode(sb, copy(1));
  save("journal_superblock", "formatted", blocks);

  // In use: the tail has moved on, one copy behind the other.
  sb = fuzz::scan_superblock(true);
  sb.tail_position = 200;
  sb.tail_sequence = 4711;
  sb.generation = 9;
  format::encode(sb, copy(1));
  sb.tail_position = 150;
  sb.tail_sequence = 4700;
  sb.generation = 8;
  format::encode(sb, copy(0));
  save("journal_superblock", "in-use", blocks);

  // One copy torn (zero): the other is read.
  std::memset(copy(0).data(), 0, kJournalBlock);
  save("journal_superblock", "one-copy", blocks);
}

// A record of the scan geometry: data pages (some rows), optionally a parity
// entry over them and a stripe-done entry, with small payloads.
struct Record {
  format::MetaBlock meta;
  std::vector<std::vector<std::byte>> pages;
};

std::vector<std::byte> page(uint64_t tag) {
  std::vector<std::byte> p(kJournalBlock);
  put_le64(p.data(), tag);
  return p;
}

Record record(const format::JournalSuperblock& sb, uint64_t row, uint32_t pages, bool parity, bool done) {
  Record r;
  const uint64_t seed = sb.seed();
  const uint64_t row_bytes = uint64_t(sb.chunk_size) * (sb.member_count - (sb.level == 6 ? 2 : 1));
  format::DataEntry d{row * row_bytes + kJournalBlock, {}};
  for (uint32_t i = 0; i < pages; ++i) {
    r.pages.push_back(page(row * 100 + i));
    d.page_checksums.push_back(format::payload_checksum(std::span<const std::byte, kJournalBlock>(r.pages.back().data(), kJournalBlock), seed));
  }
  r.meta.entries.push_back(d);
  if (parity) {
    const uint32_t pc = sb.level == 6 ? 2 : 1;
    format::ParityEntry q{row, uint32_t(kJournalBlock), pc, {}};
    for (uint32_t i = 0; i < pc * pages; ++i) {
      r.pages.push_back(page(0x7000 + row * 100 + i));
      q.page_checksums.push_back(format::payload_checksum(std::span<const std::byte, kJournalBlock>(r.pages.back().data(), kJournalBlock), seed));
    }
    r.meta.entries.push_back(q);
  }
  if (done) r.meta.entries.push_back(format::StripeDoneEntry{{row, row + 1}});
  return r;
}

// Writes `records` with the real writer from (head, sequence) and saves the
// ring from `head` on, through the block after the last record, behind the
// scan target's header.
void journal(const std::string& name, uint8_t flags, uint64_t head, uint64_t sequence, std::vector<Record> records,
             const std::vector<uint64_t>& zero_records = {}) {
  namespace in = fuzz::scan_input;
  const format::JournalSuperblock sb = fuzz::scan_superblock(flags & in::kRaid6);
  io::MemoryDevice device("seed-journal", sb.block_count * kJournalBlock);
  journal::Writer writer(device, sb, head, sequence);
  if (!writer.write_superblock(head, sequence, 0).ok()) std::abort();
  std::vector<uint64_t> positions;
  for (Record& r : records) {
    r.meta.synced_sequence = r.meta.synced_sequence ? r.meta.synced_sequence : writer.head_sequence() - 1;
    std::vector<const std::byte*> ptrs;
    for (const auto& p : r.pages) ptrs.push_back(p.data());
    positions.push_back(writer.head_position());
    if (!writer.append(r.meta, ptrs).ok()) std::abort();
  }
  // A lost write: the record's metadata block never reached the disk.
  for (uint64_t i : zero_records) {
    std::vector<std::byte> zero(kJournalBlock);
    device.poke(positions[i] * kJournalBlock, zero);
  }
  const journal::Ring ring(sb.block_count);
  const uint64_t blocks = ring.distance(head, writer.head_position()) + 1;
  std::vector<std::byte> image = device.snapshot();
  std::vector<std::byte> input(in::kHeader + blocks * kJournalBlock);
  input[in::kFlags] = std::byte{flags};
  put_le32(input.data() + in::kTailOffset, uint32_t(head - ring.start()));
  put_le64(input.data() + in::kTailSequence, sequence);
  for (uint64_t i = 0; i < blocks; ++i)
    std::memcpy(input.data() + in::kHeader + i * kJournalBlock, image.data() + ring.advance(head, i) * kJournalBlock,
                kJournalBlock);
  save("journal_scan", name, input);
}

void journals() {
  namespace in = fuzz::scan_input;
  const format::JournalSuperblock r5 = fuzz::scan_superblock(false), r6 = fuzz::scan_superblock(true);
  journal("raid5-log", 0, 2, 1,
          {record(r5, 0, 2, false, false), record(r5, 1, 1, false, false), record(r5, 0, 2, true, false),
           record(r5, 3, 1, false, true)});
  journal("raid5-log-fixed-checksums", in::kFixChecksums, 2, 1,
          {record(r5, 2, 1, true, false), record(r5, 5, 2, false, true)});
  // Starts near the end of the ring, so records wrap; a small read window.
  std::vector<Record> wrap = {record(r5, 7, 2, false, false), record(r5, 8, 3, true, false), record(r5, 9, 1, false, true)};
  journal("raid5-wrap", in::kSkipPayload, format::kMinJournalBlocks - 4, 1000, wrap);
  // A hole: record 2 is lost, record 3 was written after it was durable.
  std::vector<Record> hole = {record(r5, 1, 1, false, false), record(r5, 2, 1, false, false), record(r5, 3, 1, false, false)};
  hole[2].meta.synced_sequence = 3;
  journal("raid5-hole", 0, 2, 1, hole, {1});
  journal("raid6-log", in::kRaid6, 2, 1, {record(r6, 4, 2, false, false), record(r6, 4, 2, true, false)});
}

void meta_blocks() {
  // The metadata blocks of the scan seeds, alone.
  const format::JournalSuperblock sb = fuzz::scan_superblock(false);
  std::vector<std::byte> block(kJournalBlock);
  auto out = std::span<std::byte, kJournalBlock>(block.data(), kJournalBlock);
  Record r = record(sb, 3, 4, true, true);
  r.meta.sequence = 17;
  r.meta.position = 42;
  r.meta.synced_sequence = 16;
  if (!format::encode(r.meta, sb.seed(), out).ok()) std::abort();
  save("meta_block", "data-parity-done", block);

  format::MetaBlock full;
  full.sequence = full.position = full.synced_sequence = 9;
  format::DataEntry d{0, {}};
  while (format::fits(full, format::DataEntry{0, std::vector<uint64_t>(d.page_checksums.size() + 1)}))
    d.page_checksums.push_back(d.page_checksums.size());
  full.entries.push_back(d);
  if (!format::encode(full, sb.seed(), out).ok()) std::abort();
  save("meta_block", "full-data", block);

  format::MetaBlock done;
  done.sequence = 3;
  done.entries.push_back(format::StripeDoneEntry{{1, 2, 3}});
  done.entries.push_back(format::StripeDoneEntry{{}});
  if (!format::encode(done, sb.seed(), out).ok()) std::abort();
  save("meta_block", "done-only", block);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  g_out = argv[1];
  member_superblocks();
  journal_superblocks();
  journals();
  meta_blocks();
  return 0;
}
