// Runs a set of independent device operations concurrently and waits for all
// of them: the chunk reads or writes of a stripe go out together (io_uring),
// not one after another. Devices without a file descriptor (tests) run
// synchronously in submission order.
#pragma once

#include <cstdint>
#include <span>

#include "io/device.h"

namespace r5::io {

struct IoOp {
  enum class Kind { kRead, kWrite, kSync };
  Device* device = nullptr;
  Kind kind = Kind::kRead;
  uint64_t offset = 0;
  std::byte* buf = nullptr;
  size_t len = 0;
  Status status;  // filled in by run_batch

  static IoOp read(Device* d, uint64_t offset, std::byte* buf, size_t len) { return {d, Kind::kRead, offset, buf, len, {}}; }
  static IoOp write(Device* d, uint64_t offset, std::byte* buf, size_t len) { return {d, Kind::kWrite, offset, buf, len, {}}; }
  static IoOp sync(Device* d) { return {d, Kind::kSync, 0, nullptr, 0, {}}; }
};

// Never fails as a whole: each op carries its own status.
void run_batch(std::span<IoOp> ops);

}  // namespace r5::io
