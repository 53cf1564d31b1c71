// Recovery over a fuzzed log: the input (header in fuzz_common.h, then the
// ring's blocks from the tail on, zero after the input ends) becomes a
// journal device with a valid superblock, which is read back, scanned and fed
// into the replay index as recovery does. The scan must describe exactly the
// records that are on the device, hand out their true payload pages, and the
// index must account for every page it took from its store.
#include <algorithm>
#include <cstring>
#include <set>

#include "fuzz_common.h"
#include "io/memory_device.h"
#include "journal/reader.h"
#include "journal/replay_index.h"
#include "journal/ring.h"

using namespace r5;
using format::kJournalBlock;

namespace {

// Hands out pages up to a budget and checks that each comes back once.
class PageStore {
 public:
  ~PageStore() {
    for (std::byte* p : out_) delete[] p;
  }
  std::byte* get() {
    if (out_.size() >= kBudget) return nullptr;
    std::byte* p = new std::byte[kJournalBlock];
    out_.insert(p);
    return p;
  }
  void put(std::byte* p) {
    FUZZ_CHECK(out_.erase(p) == 1);
    delete[] p;
  }
  const std::set<std::byte*>& out() const { return out_; }

 private:
  static constexpr size_t kBudget = 512;
  std::set<std::byte*> out_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace in = fuzz::scan_input;
  if (size < in::kHeader) return 0;
  const uint8_t flags = data[in::kFlags];
  format::JournalSuperblock sb = fuzz::scan_superblock(flags & in::kRaid6);
  const journal::Ring ring(sb.block_count);
  sb.tail_position = ring.start() + get_le32(reinterpret_cast<const std::byte*>(data + in::kTailOffset)) % ring.size();
  sb.tail_sequence = get_le64(reinterpret_cast<const std::byte*>(data + in::kTailSequence));
  const uint64_t seed = sb.seed();

  // The device image: the superblock, then the input laid into the ring from
  // the tail on, wrapping. Kept across runs, like the device: under ASan every
  // large allocation is fresh pages, and faulting them in would dominate.
  static std::vector<std::byte> image(fuzz::kScanJournalBlocks * kJournalBlock);
  std::fill(image.begin(), image.end(), std::byte{0});
  format::encode(sb, std::span<std::byte, kJournalBlock>(image.data(), kJournalBlock));
  const size_t ring_bytes = ring.size() * kJournalBlock;
  const size_t body = std::min(size - in::kHeader, ring_bytes);
  for (size_t done = 0; done < body;) {
    const uint64_t block = ring.advance(sb.tail_position, done / kJournalBlock);
    const size_t n = std::min(body - done, kJournalBlock - done % kJournalBlock);
    std::memcpy(image.data() + block * kJournalBlock + done % kJournalBlock, data + in::kHeader + done, n);
    done += n;
  }
  auto block_at = [&](uint64_t pos) { return std::span<std::byte, kJournalBlock>(image.data() + pos * kJournalBlock, kJournalBlock); };
  if (flags & in::kFixChecksums)
    for (uint64_t pos = ring.start(); pos < ring.end(); ++pos)
      if (get_le32(block_at(pos).data()) == format::kMetaMagic) fuzz::fix_meta_checksum(block_at(pos).data(), seed);

  static io::MemoryDevice device("fuzz-journal", image.size());
  device.poke(0, image);
  auto read = journal::read_superblock(device);
  FUZZ_CHECK(read.ok() && *read == sb);

  geometry::Geometry g{sb.level, sb.layout, sb.member_count, sb.chunk_size, sb.data_size / sb.chunk_size};
  PageStore store;
  journal::ReplayIndexBuilder builder(g, {[&] { return store.get(); }, [&](std::byte* p) { store.put(p); }});
  bool index_failed = false;
  journal::ScanOptions options;
  options.verify_payload = !(flags & in::kSkipPayload);
  // 0: more than the ring, like the default window.
  options.window_bytes = (data[in::kWindow] ? data[in::kWindow] : ring.size() + 1) * kJournalBlock;
  options.on_record = [&](const journal::Record& rec, const std::function<const std::byte*(size_t)>& payload) {
    for (size_t i = 0; i < rec.meta.payload_blocks(); ++i) {
      const std::byte* page = payload(i);
      FUZZ_CHECK(page != nullptr);
      FUZZ_CHECK(std::memcmp(page, block_at(ring.advance(rec.payload_position, i)).data(), kJournalBlock) == 0);
    }
    Status st = builder.add(rec, payload);
    index_failed = !st.ok();
    return st;
  };
  auto scan = journal::scan(device, *read, options);
  if (!scan.ok()) {
    // The device never fails, so only the index may stop the scan.
    FUZZ_CHECK(index_failed);
    return 0;
  }

  uint64_t pos = sb.tail_position, sequence = sb.tail_sequence, used = 0;
  FUZZ_CHECK(scan->record_count == scan->records.size());
  for (const journal::Record& rec : scan->records) {
    FUZZ_CHECK(rec.meta.position == pos && rec.meta.sequence == sequence);
    FUZZ_CHECK(rec.payload_position == ring.advance(pos, 1));
    auto decoded = format::decode_meta_block(block_at(pos), seed);
    FUZZ_CHECK(decoded.ok() && *decoded == rec.meta);
    const uint64_t blocks = 1 + rec.meta.payload_blocks();
    if (options.verify_payload) {
      uint64_t page = rec.payload_position;
      for (const format::Entry& e : rec.meta.entries) {
        const std::vector<uint64_t>* sums = nullptr;
        if (const auto* d = std::get_if<format::DataEntry>(&e)) sums = &d->page_checksums;
        if (const auto* p = std::get_if<format::ParityEntry>(&e)) sums = &p->page_checksums;
        for (size_t i = 0; sums && i < sums->size(); ++i, page = ring.advance(page, 1))
          FUZZ_CHECK(format::payload_checksum(block_at(page), seed) == (*sums)[i]);
      }
    }
    pos = ring.advance(pos, blocks);
    used += blocks;
    ++sequence;
  }
  FUZZ_CHECK(used < ring.size());
  FUZZ_CHECK(scan->head_position == pos && scan->head_sequence == sequence);
  FUZZ_CHECK(!scan->end_reason.empty());
  FUZZ_CHECK(scan->corrupt == !scan->corruption.empty());

  // Every page the store handed out is in the index, once.
  std::set<std::byte*> held;
  const uint32_t chunk_pages = g.chunk_size / kJournalBlock;
  for (const auto& [row, r] : builder.finish().rows) {
    FUZZ_CHECK(row < g.rows);
    for (const auto& [slot, page] : r.pages) FUZZ_CHECK(held.insert(page).second);
    for (const journal::ParityRun& run : r.parity) {
      for (std::byte* page : run.parity) FUZZ_CHECK(held.insert(page).second);
      FUZZ_CHECK(run.parity.size() == size_t(g.parity_count()) * run.pages);
      FUZZ_CHECK(run.lo + run.pages <= chunk_pages);
      for (const journal::ParityRun& other : r.parity)  // disjoint
        FUZZ_CHECK(&other == &run || other.lo >= run.lo + run.pages || run.lo >= other.lo + other.pages);
    }
    // Parity left in the index covers every logged page.
    for (const auto& [slot, page] : r.pages)
      FUZZ_CHECK(!r.parity_logged() || std::any_of(r.parity.begin(), r.parity.end(), [&](const journal::ParityRun& run) {
        return slot % chunk_pages >= run.lo && slot % chunk_pages < run.lo + run.pages;
      }));
  }
  FUZZ_CHECK(held == store.out());
  return 0;
}
