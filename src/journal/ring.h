// Block arithmetic of the journal ring: positions are block numbers in
// [2, block_count), wrapping from the last block to the first (blocks 0 and 1
// are the superblock copies).
#pragma once

#include <cstdint>

namespace r5::journal {

class Ring {
 public:
  explicit Ring(uint64_t block_count) : end_(block_count) {}

  uint64_t start() const { return kStart; }
  uint64_t end() const { return end_; }
  uint64_t size() const { return end_ - kStart; }
  uint64_t advance(uint64_t pos, uint64_t blocks) const { return kStart + (pos - kStart + blocks) % size(); }
  // Blocks from `from` forward to `to` (0 when equal).
  uint64_t distance(uint64_t from, uint64_t to) const { return (to + size() - from) % size(); }

 private:
  static constexpr uint64_t kStart = 2;
  uint64_t end_;
};

}  // namespace r5::journal
