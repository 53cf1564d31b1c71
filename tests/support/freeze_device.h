// Test device: a MemoryDevice that can be frozen. From the moment it is
// frozen every write and sync "succeeds" but changes nothing, which models a
// crash at that instant as far as this device is concerned: what it holds is
// what survives. (The full fault-injecting device with unsynced-write
// tracking belongs to the crash suite.)
#pragma once

#include <atomic>
#include <functional>

#include "io/memory_device.h"

namespace r5::test {

class FreezeDevice final : public io::Device {
 public:
  FreezeDevice(std::string name, uint64_t size) : mem_(std::move(name), size) {}

  const std::string& name() const override { return mem_.name(); }
  uint64_t size() const override { return mem_.size(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return mem_.read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    if (before_write) before_write(offset, buf.size());
    if (fail_write && fail_write(offset, buf.size())) return io_error(EIO, "write failed (test)");
    if (frozen) return {};
    return mem_.write(offset, buf);
  }
  Status sync() override {
    if (frozen) return {};
    Status st = mem_.sync();
    const uint64_t n = ++syncs;
    if (after_sync) after_sync(n);
    return st;
  }

  io::MemoryDevice& memory() { return mem_; }
  std::atomic<bool> frozen{false};
  std::atomic<uint64_t> syncs{0};
  std::function<void(uint64_t)> after_sync;  // called with the sync count
  std::function<void(uint64_t, size_t)> before_write;  // called with offset and length (may block)
  std::function<bool(uint64_t, size_t)> fail_write;    // true: this write fails with EIO

 private:
  io::MemoryDevice mem_;
};

}  // namespace r5::test
