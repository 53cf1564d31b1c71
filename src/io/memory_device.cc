#include "io/memory_device.h"

#include <cstring>

namespace r5::io {

MemoryDevice::MemoryDevice(std::string name, uint64_t size) : name_(std::move(name)), data_(size) {}

Status MemoryDevice::check_range(uint64_t offset, size_t len, const char* what) const {
  if (offset > data_.size() || len > data_.size() - offset)
    return io_error(EIO, fmt::format("{}: {} at {} (+{}) beyond end {}", name_, what, offset, len, data_.size()));
  return {};
}

Status MemoryDevice::read(uint64_t offset, std::span<std::byte> buf) {
  ++reads;
  if (fail_reads) return io_error(EIO, fmt::format("{}: read at {}: injected EIO", name_, offset));
  R5_TRY(check_range(offset, buf.size(), "read"));
  std::lock_guard lock(mutex_);
  std::memcpy(buf.data(), data_.data() + offset, buf.size());
  return {};
}

Status MemoryDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  ++writes;
  if (fail_writes) return io_error(EIO, fmt::format("{}: write at {}: injected EIO", name_, offset));
  R5_TRY(check_range(offset, buf.size(), "write"));
  std::lock_guard lock(mutex_);
  std::memcpy(data_.data() + offset, buf.data(), buf.size());
  return {};
}

Status MemoryDevice::sync() {
  ++syncs;
  if (fail_syncs) return io_error(EIO, fmt::format("{}: fdatasync: injected EIO", name_));
  return {};
}

std::vector<std::byte> MemoryDevice::snapshot() const {
  std::lock_guard lock(mutex_);
  return data_;
}

void MemoryDevice::poke(uint64_t offset, std::span<const std::byte> bytes) {
  std::lock_guard lock(mutex_);
  std::memcpy(data_.data() + offset, bytes.data(), bytes.size());
}

}  // namespace r5::io
