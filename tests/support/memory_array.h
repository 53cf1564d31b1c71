// Test fixture: a RaidArray over MemoryDevices, plus checks that read the
// members directly (parity consistency of every row).
#pragma once

#include <memory>
#include <vector>

#include "array/aligned_buffer.h"
#include "array/raid_array.h"
#include "io/memory_device.h"
#include "parity/parity.h"

namespace r5::test {

inline format::MemberSuperblock test_superblock(uint32_t level, geometry::Layout layout, uint32_t members,
                                                uint32_t chunk, uint64_t rows) {
  format::MemberSuperblock sb;
  sb.array_uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  sb.name = "test";
  sb.level = level;
  sb.layout = layout;
  sb.chunk_size = chunk;
  sb.member_count = members;
  sb.data_offset = 1 << 20;
  sb.data_size = rows * chunk;
  sb.events = 1;
  return sb;
}

struct MemoryArray {
  std::vector<io::MemoryDevice*> devices;  // owned by the array
  std::unique_ptr<array::RaidArray> array;
  format::MemberSuperblock sb;

  MemoryArray(uint32_t level, geometry::Layout layout, uint32_t members, uint32_t chunk, uint64_t rows)
      : sb(test_superblock(level, layout, members, chunk, rows)) {
    std::vector<array::MemberSlot> slots;
    for (uint32_t i = 0; i < members; ++i) {
      auto dev = std::make_unique<io::MemoryDevice>("m" + std::to_string(i), sb.data_offset + sb.data_size);
      devices.push_back(dev.get());
      slots.push_back({"m" + std::to_string(i), std::move(dev)});
    }
    array = std::make_unique<array::RaidArray>(std::make_unique<array::MemberSet>(sb, std::move(slots)));
  }

  // True when P (and Q) of every row match its data on the member devices.
  bool parity_consistent() const {
    const geometry::Geometry g = sb.geometry();
    const uint32_t d = g.data_count(), roles = g.members;
    std::vector<std::vector<std::byte>> snaps;
    for (auto* dev : devices) snaps.push_back(dev->snapshot());
    AlignedBuffer buf(size_t(roles) * g.chunk_size);
    for (uint64_t row = 0; row < g.rows; ++row) {
      geometry::RowMap map = geometry::map_row(g, row);
      std::vector<std::byte*> blocks;
      for (uint32_t r = 0; r < roles; ++r) {
        uint32_t member = r < d ? map.data[r] : r == d ? map.p : map.q;
        std::byte* dst = buf.data() + size_t(r) * g.chunk_size;
        std::memcpy(dst, snaps[member].data() + sb.data_offset + row * g.chunk_size, g.chunk_size);
        blocks.push_back(dst);
      }
      if (!parity::verify(g.parity_count(), blocks, g.chunk_size)) return false;
    }
    return true;
  }
};

}  // namespace r5::test
