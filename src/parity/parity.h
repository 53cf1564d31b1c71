// Parity math over one column of a row: P (XOR) and Q (md's RAID6 syndrome,
// GF(2^8) with polynomial 0x11d, generator {02}, data in logical order), and
// reconstruction of up to parity_count missing blocks. ISA-L does the math.
// Pure: no I/O, no threads. Buffers: `len` a multiple of 64 bytes, pointers
// aligned to 64 bytes (callers use page-aligned buffers).
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "base/result.h"

namespace r5::parity {

// Computes P from `data` (k >= 2 blocks) into p, and Q into q when q != nullptr.
void compute(std::span<std::byte* const> data, std::byte* p, std::byte* q, size_t len);

// Read-modify-write update: for each touched data index k with delta
// D_k = old_k XOR new_k, applies P ^= D_k and Q ^= g^k * D_k (q may be null).
// `data_count` is the number of data blocks in the row (bounds check on k).
struct Delta {
  unsigned data_index;
  const std::byte* delta;
};
void apply_deltas(unsigned data_count, std::span<const Delta> deltas, std::byte* p, std::byte* q, size_t len);
// dst ^= src: turns an old block into its delta against the new one.
void xor_into(std::byte* dst, const std::byte* src, size_t len);

// blocks = data_count data blocks in logical order, then P, then Q (RAID6).
// Rebuilds the blocks listed in `missing` (indices into `blocks`, ascending,
// at most parity_count of them) in place from the others. parity_count 1 or 2.
Status reconstruct(unsigned parity_count, std::span<std::byte* const> blocks, std::span<const unsigned> missing, size_t len);

// True when P (and Q) of `blocks` (laid out as for reconstruct) are consistent.
bool verify(unsigned parity_count, std::span<std::byte* const> blocks, size_t len);

// For a RAID6 row (blocks laid out as for reconstruct) whose parity does not
// verify: the index in `blocks` of the one block whose corruption explains
// every mismatching byte (md's raid6check): P alone differs -> P; Q alone ->
// Q; both, with Q_delta == g^z * P_delta for one data index z at every byte
// -> z. nullopt when no single block explains it (two or more are wrong) or
// when nothing mismatches. RAID5 (parity_count 1) always gives nullopt: P
// says that a byte is wrong, never in which block.
std::optional<unsigned> locate_corruption(unsigned parity_count, std::span<std::byte* const> blocks, size_t len);

}  // namespace r5::parity
