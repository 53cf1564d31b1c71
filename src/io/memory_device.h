// A device in memory, for unit tests of the layers above io. It can be told
// to fail (EIO) reads, writes or syncs, which is how tests fail a member.
// The full fault-injecting device with crash states comes with the crash suite.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "io/device.h"

namespace r5::io {

class MemoryDevice final : public Device {
 public:
  MemoryDevice(std::string name, uint64_t size);

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return data_.size(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status sync() override;

  // Failure switches: every later operation of that kind fails with EIO.
  std::atomic<bool> fail_reads{false};
  std::atomic<bool> fail_writes{false};
  std::atomic<bool> fail_syncs{false};
  std::atomic<uint64_t> reads{0}, writes{0}, syncs{0};

  // Direct access for tests (not through the I/O path).
  std::vector<std::byte> snapshot() const;
  void poke(uint64_t offset, std::span<const std::byte> bytes);

 private:
  Status check_range(uint64_t offset, size_t len, const char* what) const;

  std::string name_;
  mutable std::mutex mutex_;  // guards data_
  std::vector<std::byte> data_;
};

}  // namespace r5::io
