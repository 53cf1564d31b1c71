// Every byte r5cfs reads or writes on a member or the journal goes through
// io::Device, so tests can swap in memory and fault-injecting devices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"

namespace r5::io {

class Device {
 public:
  virtual ~Device() = default;
  // The path, for messages.
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  // Whole-buffer transfers: a short read or write is an error. Offsets and
  // lengths are multiples of 4 KiB and buffers 4 KiB aligned (O_DIRECT).
  virtual Status read(uint64_t offset, std::span<std::byte> buf) = 0;
  virtual Status write(uint64_t offset, std::span<const std::byte> buf) = 0;
  // The same through the page cache where the device has one (opened with
  // cached_writes): a small write then costs a copy instead of a device round
  // trip. Like write(), durable only after sync(), which also reports any
  // error of the kernel's later write-back.
  virtual Status write_cached(uint64_t offset, std::span<const std::byte> buf) { return write(offset, buf); }
  // Makes every completed write durable (fdatasync).
  virtual Status sync() = 0;
  // A file descriptor that io_uring may use for the same transfers, or -1.
  virtual int fd() const { return -1; }
};

struct OpenOptions {
  bool create = false;       // create a regular file if missing
  uint64_t create_size = 0;  // size of a created file (sparse)
  bool read_only = false;
  bool direct = true;        // O_DIRECT where the file system supports it
  bool cached_writes = false;  // also a page-cache descriptor for write_cached() (the journal)
};

// Opens a regular file or block device.
Result<std::unique_ptr<Device>> open_file(const std::filesystem::path& path, const OpenOptions& options);

}  // namespace r5::io

namespace r5::io {

// Makes every byte of the device read as zero: a hole punched in a file,
// BLKZEROOUT on a block device, written zeros where neither works.
// `progress(done, total)` is called during the slow path.
Status zero_out(Device& device, void (*progress)(uint64_t done, uint64_t total) = nullptr);
// Writes zeros over the whole device and syncs. For a journal file: every
// block is then allocated and written, so the log's O_DIRECT writes and
// fdatasyncs never wait on file-system allocation or unwritten-extent updates.
Status write_zeros(Device& device, void (*progress)(uint64_t done, uint64_t total) = nullptr);

}  // namespace r5::io
