// Recovery's scan of the journal: from the tail in the superblock, follow
// records while magic, checksum, position, sequence and payload checksums
// hold. The first record that fails ends the log (a torn tail is the normal
// end after a crash). Then a bounded look-ahead checks what follows: a valid
// record of a later sequence written after the end was durable means the log
// was damaged in the middle, which recovery refuses without --force; one
// written before (unsynced, it reached the disk before a record ahead of it)
// is discarded, and recovery overwrites it before the log continues, or a
// later scan could take it for part of the new log. The log is read
// sequentially in large windows.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "format/journal.h"
#include "io/device.h"

namespace r5::journal {

struct Record {
  format::MetaBlock meta;
  uint64_t payload_position = 0;  // ring block of the first payload page
};

struct ScanResult {
  std::vector<Record> records;  // in log order, from the tail (with keep_records)
  uint64_t record_count = 0;    // records in the log
  uint64_t head_position = 0;   // where the next record goes
  uint64_t head_sequence = 0;
  uint64_t blocks_read = 0;
  std::string end_reason;       // why the scan stopped (for logs and inspect)
  // A valid record found after the end: the log is damaged in the middle.
  bool corrupt = false;
  std::string corruption;
  // Metadata blocks of the valid records found after the end (unsynced, or
  // past the damage).
  std::vector<uint64_t> discarded;
};

struct ScanOptions {
  bool verify_payload = true;          // check every payload page's checksum
  uint64_t window_bytes = 4ull << 20;  // sequential read size
  // How far past the end unsynced records may lie, beyond the length of the
  // records at the end (the writer's bound on its unsynced log).
  uint64_t lookahead_blocks = 0;
  // Called for each record that continues the log, with its payload pages
  // (payload(i), nullptr on a read error), so a replay reads the log once.
  // An error stops the scan and is returned.
  std::function<Status(const Record&, const std::function<const std::byte*(size_t)>& payload)> on_record;
  // Keep every decoded record in the result (inspect). Replay keeps what it
  // needs in on_record instead: decoded records of 4 KiB writes cost memory
  // of about 1.6 % of the log they come from (8.5 MiB for 555 MiB).
  bool keep_records = true;
};

// Device errors are returned; damage in the log is described in the result.
Result<ScanResult> scan(io::Device& device, const format::JournalSuperblock& sb, const ScanOptions& options = {});

// Reads and decodes block 0.
Result<format::JournalSuperblock> read_superblock(io::Device& device);

}  // namespace r5::journal
