#include "journal/reader.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "array/aligned_buffer.h"
#include "journal/ring.h"

namespace r5::journal {
namespace {

using format::kJournalBlock;

// Largest record: a metadata block full of one data entry's checksums.
constexpr uint64_t kMaxRecordBlocks = 1 + format::kMaxPayloadBlocks;

// Serves ring blocks from large sequential reads.
class BlockWindow {
 public:
  BlockWindow(io::Device& device, const Ring& ring, uint64_t window_bytes)
      : device_(device), ring_(ring), capacity_(std::max<uint64_t>(1, window_bytes / kJournalBlock)),
        buffer_(capacity_ * kJournalBlock) {}

  Result<std::span<const std::byte, kJournalBlock>> get(uint64_t pos) {
    if (pos < first_ || pos >= first_ + count_) R5_TRY(load(pos));
    return std::span<const std::byte, kJournalBlock>(buffer_.data() + (pos - first_) * kJournalBlock, kJournalBlock);
  }
  // Makes [pos, pos + blocks) one piece of the window unless it wraps, so a
  // whole record stays in memory while it is checked and handed on.
  Status hold(uint64_t pos, uint64_t blocks) {
    if (pos + blocks <= ring_.end() && blocks <= capacity_ && pos + blocks > first_ + count_) return load(pos);
    return {};
  }
  uint64_t blocks_read() const { return blocks_read_; }

 private:
  // Blocks already in the window from `pos` on are moved, not read again.
  Status load(uint64_t pos) {
    const uint64_t keep = pos >= first_ && pos < first_ + count_ ? first_ + count_ - pos : 0;
    if (keep) std::memmove(buffer_.data(), buffer_.data() + (pos - first_) * kJournalBlock, keep * kJournalBlock);
    first_ = pos;
    count_ = std::min(capacity_, ring_.end() - pos);  // a window never wraps
    if (count_ > keep)
      R5_TRY(device_.read((pos + keep) * kJournalBlock,
                          {buffer_.data() + keep * kJournalBlock, (count_ - keep) * kJournalBlock}));
    blocks_read_ += count_ - keep;
    return {};
  }

  io::Device& device_;
  const Ring& ring_;
  uint64_t capacity_;
  AlignedBuffer buffer_;
  uint64_t first_ = 0, count_ = 0, blocks_read_ = 0;
};

// Why the metadata block at `pos` does not continue the log, or "".
std::string check_meta(const Result<format::MetaBlock>& meta, uint64_t pos, uint64_t sequence) {
  if (!meta.ok()) return fmt::format("block {}: {}", pos, meta.error().message);
  if (meta->position != pos) return fmt::format("block {}: records position {} (misplaced write)", pos, meta->position);
  if (meta->sequence != sequence)
    return fmt::format("block {}: sequence {} where {} was expected ({})", pos, meta->sequence, sequence,
                       meta->sequence < sequence ? "left from an earlier lap" : "out of order");
  return "";
}

}  // namespace

Result<format::JournalSuperblock> read_superblock(io::Device& device) {
  constexpr uint64_t kCopies = format::JournalSuperblock::kCopies;
  AlignedBuffer blocks(kCopies * kJournalBlock);
  R5_TRY(device.read(0, {blocks.data(), kCopies * kJournalBlock}));
  // The valid copy of the highest generation; the other may be torn or older.
  std::optional<format::JournalSuperblock> best;
  std::optional<Error> first_error;
  for (uint64_t copy = 0; copy < kCopies; ++copy) {
    auto sb = format::decode_journal_superblock(
        std::span<const std::byte, kJournalBlock>(blocks.data() + copy * kJournalBlock, kJournalBlock));
    if (!sb.ok()) {
      if (!first_error || first_error->kind == ErrorKind::kNotFound) first_error = sb.error();
      continue;
    }
    if (!best || sb->generation > best->generation) best = *sb;
  }
  if (!best) return first_error->with_context(device.name());
  // Divided, not multiplied: a huge block count must not wrap into range.
  if (best->block_count > device.size() / kJournalBlock)
    return corruption(fmt::format("{}: journal superblock says {} blocks, the device holds {}", device.name(),
                                  best->block_count, device.size() / kJournalBlock));
  return *best;
}

Result<ScanResult> scan(io::Device& device, const format::JournalSuperblock& sb, const ScanOptions& options) {
  const Ring ring(sb.block_count);
  const uint64_t seed = sb.seed();
  BlockWindow window(device, ring, options.window_bytes);
  ScanResult result;
  uint64_t pos = sb.tail_position, sequence = sb.tail_sequence, used = 0;

  for (;;) {
    R5_ASSIGN_OR_RETURN(auto block, window.get(pos));
    auto meta = format::decode_meta_block(block, seed);
    result.end_reason = check_meta(meta, pos, sequence);
    if (!result.end_reason.empty()) break;
    const uint64_t blocks = 1 + meta->payload_blocks();
    if (used + blocks >= ring.size()) {
      result.end_reason = fmt::format("block {}: record of {} blocks overruns the ring", pos, blocks);
      break;
    }
    R5_TRY(window.hold(pos, blocks));
    if (options.verify_payload) {
      uint64_t page = ring.advance(pos, 1);
      for (const format::Entry& e : meta->entries) {
        const std::vector<uint64_t>* sums = nullptr;
        if (const auto* d = std::get_if<format::DataEntry>(&e)) sums = &d->page_checksums;
        if (const auto* p = std::get_if<format::ParityEntry>(&e)) sums = &p->page_checksums;
        for (size_t i = 0; sums && i < sums->size() && result.end_reason.empty(); ++i, page = ring.advance(page, 1)) {
          R5_ASSIGN_OR_RETURN(auto data, window.get(page));
          if (format::payload_checksum(data, seed) != (*sums)[i])
            result.end_reason = fmt::format("block {}: payload page of the record at block {} fails its checksum", page, pos);
        }
      }
      if (!result.end_reason.empty()) break;
    }
    Record record{std::move(*meta), ring.advance(pos, 1)};
    ++result.record_count;
    if (options.on_record) {
      auto payload = [&](size_t i) -> const std::byte* {
        auto page = window.get(ring.advance(record.payload_position, i));
        return page.ok() ? page->data() : nullptr;
      };
      R5_TRY(options.on_record(record, payload));
    }
    if (options.keep_records) result.records.push_back(std::move(record));
    pos = ring.advance(pos, blocks);
    used += blocks;
    ++sequence;
  }
  result.head_position = pos;
  result.head_sequence = sequence;

  // Nothing valid may follow the end. A record with a later sequence lies
  // within the writer's bound on unsynced records (plus a record's length).
  // After damage, the records written later lie anywhere up to the tail: all
  // of them are listed, so a forced replay overwrites every one, and none is
  // ever read as the continuation of the new log.
  const uint64_t free = ring.size() - used - 1;
  uint64_t reach = std::min(free, options.lookahead_blocks + 2 * kMaxRecordBlocks);
  for (uint64_t k = 0; k <= reach; ++k) {
    const uint64_t at = ring.advance(pos, k);
    R5_ASSIGN_OR_RETURN(auto block, window.get(at));
    auto meta = format::decode_meta_block(block, seed);
    if (!meta.ok() || meta->position != at || meta->sequence <= sequence) continue;
    // Records past a never-synced one may reach the disk before it: a crash
    // then leaves them behind a hole, and they are discarded like the torn
    // end. Only a record written after the missing one was durable proves
    // damage to the log.
    // Either way the record is not part of the log (under --force neither).
    result.discarded.push_back(at);
    if (result.corrupt) continue;
    if (meta->synced_sequence > sequence) {
      result.corrupt = true;
      result.corruption = fmt::format(
          "the log ends at block {} ({}), but block {} holds a valid record of sequence {} written after sequence {} "
          "was durable",
          pos, result.end_reason, at, meta->sequence, sequence);
      reach = free;
      continue;
    }
    result.end_reason += fmt::format("; the unsynced record of sequence {} at block {} after it is discarded",
                                     meta->sequence, at);
  }
  result.blocks_read = window.blocks_read();
  return result;
}

}  // namespace r5::journal
