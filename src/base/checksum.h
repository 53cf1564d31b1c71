// XXH3-64 compiled inline: the shared library is 2-3x slower (DESIGN §5).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace r5 {

inline uint64_t checksum(std::span<const std::byte> data, uint64_t seed) {
  return XXH3_64bits_withSeed(data.data(), data.size(), seed);
}

}  // namespace r5
