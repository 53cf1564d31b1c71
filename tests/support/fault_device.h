// Test device with one programmable fault (issue 4, item 1): a MemoryDevice
// that fails the Nth read, write or fdatasync with EIO (once, or from then on),
// fails writes with ENOSPC, vanishes (ENXIO on everything), flips a bit on
// read or on write, or silently drops a write. Which bit flips comes from a
// seeded RNG, so a run repeats exactly from its seed.
//
// It also keeps what a power loss would leave: the contents as of its last
// successful sync (durable()), next to what it holds now (snapshot()).
#pragma once

#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "io/memory_device.h"

namespace r5::test {

enum class FaultKind { kReadEio, kWriteEio, kSyncEio, kWriteEnospc, kGone, kFlipOnRead, kFlipOnWrite, kDropWrite };

inline const char* fault_name(FaultKind k) {
  switch (k) {
    case FaultKind::kReadEio: return "read EIO";
    case FaultKind::kWriteEio: return "write EIO";
    case FaultKind::kSyncEio: return "fdatasync EIO";
    case FaultKind::kWriteEnospc: return "write ENOSPC";
    case FaultKind::kGone: return "gone (ENXIO)";
    case FaultKind::kFlipOnRead: return "bit flip on read";
    case FaultKind::kFlipOnWrite: return "bit flip on write";
    case FaultKind::kDropWrite: return "dropped write";
  }
  return "?";
}

struct Fault {
  FaultKind kind = FaultKind::kReadEio;
  uint64_t nth = 1;         // the Nth matching operation after arm() is the first to fail
  bool persistent = false;  // and every matching one after it
  // Reads and writes match only when they overlap [from, to); a flip lands
  // inside it. Syncs always match; kGone matches every operation.
  uint64_t from = 0, to = std::numeric_limits<uint64_t>::max();
};

class FaultDevice final : public io::Device {
 public:
  FaultDevice(std::string name, uint64_t size, uint64_t seed) : mem_(std::move(name), size), durable_(size), rng_(seed) {}

  const std::string& name() const override { return mem_.name(); }
  uint64_t size() const override { return mem_.size(); }

  Status read(uint64_t offset, std::span<std::byte> buf) override {
    std::lock_guard lock(mu_);
    if (auto e = fail_with(Op::kRead, offset, buf.size())) return *e;
    R5_TRY(mem_.read(offset, buf));
    if (hits(FaultKind::kFlipOnRead, offset, buf.size())) flip(buf.data(), offset, buf.size());
    return {};
  }

  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    std::lock_guard lock(mu_);
    if (auto e = fail_with(Op::kWrite, offset, buf.size())) return *e;
    if (hits(FaultKind::kDropWrite, offset, buf.size())) return {};
    if (hits(FaultKind::kFlipOnWrite, offset, buf.size())) {
      std::vector<std::byte> copy(buf.begin(), buf.end());
      flip(copy.data(), offset, copy.size());
      return stored(offset, copy);
    }
    return stored(offset, buf);
  }

  Status sync() override {
    std::lock_guard lock(mu_);
    if (auto e = fail_with(Op::kSync, 0, 0)) return *e;
    R5_TRY(mem_.sync());
    for (uint64_t page : unsynced_) R5_TRY(mem_.read(page * 4096, {durable_.data() + page * 4096, 4096}));
    unsynced_.clear();
    return {};
  }

  // Starts counting matching operations from zero.
  void arm(const Fault& f) {
    std::lock_guard lock(mu_);
    fault_ = f;
    armed_ = true;
    seen_ = fired_ = 0;
  }
  void disarm() {
    std::lock_guard lock(mu_);
    armed_ = false;
  }
  uint64_t fired() const {
    std::lock_guard lock(mu_);
    return fired_;
  }

  // Contents now, and as a power loss now would leave them.
  std::vector<std::byte> snapshot() const { return mem_.snapshot(); }
  std::vector<std::byte> durable() const {
    std::lock_guard lock(mu_);
    return durable_;
  }
  // Sets current and durable contents (a device taken over from another rig).
  void load(const std::vector<std::byte>& image) {
    std::lock_guard lock(mu_);
    mem_.poke(0, image);
    durable_ = image;
  }

  // Every write that reached the device, in order (offset, length).
  std::vector<std::pair<uint64_t, uint64_t>> writes() const {
    std::lock_guard lock(mu_);
    return writes_;
  }

 private:
  enum class Op { kRead, kWrite, kSync };

  static bool overlaps(const Fault& f, uint64_t offset, uint64_t len) { return offset < f.to && offset + len > f.from; }

  // Counts an operation the armed fault matches; true when it fires on it.
  bool count() {
    ++seen_;
    const bool fire = seen_ == fault_.nth || (fault_.persistent && seen_ > fault_.nth);
    fired_ += fire;
    return fire;
  }
  bool hits(FaultKind kind, uint64_t offset, uint64_t len) {
    return armed_ && fault_.kind == kind && overlaps(fault_, offset, len) && count();
  }

  std::optional<Error> fail_with(Op op, uint64_t offset, uint64_t len) {
    if (!armed_) return {};
    const char* what = op == Op::kRead ? "read" : op == Op::kWrite ? "write" : "fdatasync";
    if (fault_.kind == FaultKind::kGone) {
      if (!count()) return {};
      return io_error(ENXIO, fmt::format("{}: {} at {}: injected ENXIO (device gone)", name(), what, offset));
    }
    const bool eio = (op == Op::kRead && fault_.kind == FaultKind::kReadEio) ||
                     (op == Op::kWrite && fault_.kind == FaultKind::kWriteEio) ||
                     (op == Op::kSync && fault_.kind == FaultKind::kSyncEio);
    const bool enospc = op == Op::kWrite && fault_.kind == FaultKind::kWriteEnospc;
    if (!eio && !enospc) return {};
    if (op != Op::kSync && !overlaps(fault_, offset, len)) return {};
    if (!count()) return {};
    return io_error(eio ? EIO : ENOSPC, fmt::format("{}: {} at {}: injected {}", name(), what, offset, eio ? "EIO" : "ENOSPC"));
  }

  // Flips one seeded bit of buf (device bytes [offset, offset + len)) inside the fault's range.
  void flip(std::byte* buf, uint64_t offset, uint64_t len) {
    const uint64_t lo = std::max(offset, fault_.from), hi = std::min(offset + len, fault_.to);
    const uint64_t at = lo + rng_() % (hi - lo);
    buf[at - offset] ^= std::byte(1u << (rng_() % 8));
  }

  Status stored(uint64_t offset, std::span<const std::byte> buf) {
    R5_TRY(mem_.write(offset, buf));
    for (uint64_t page = offset / 4096; page * 4096 < offset + buf.size(); ++page) unsynced_.insert(page);
    writes_.emplace_back(offset, buf.size());
    return {};
  }

  io::MemoryDevice mem_;
  mutable std::mutex mu_;  // guards everything below
  std::vector<std::byte> durable_;
  std::set<uint64_t> unsynced_;  // pages written since the last sync
  std::vector<std::pair<uint64_t, uint64_t>> writes_;
  std::mt19937_64 rng_;
  Fault fault_;
  bool armed_ = false;
  uint64_t seen_ = 0, fired_ = 0;
};

}  // namespace r5::test
