// Parity against a byte-at-a-time reference: P = XOR, Q = md's syndrome
// sum(g^k * D_k) over GF(2^8) with polynomial 0x11d. The bitwise multiply
// below is the test's independent oracle (the library uses ISA-L only).
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "parity/parity.h"

using namespace r5::parity;

namespace {

uint8_t oracle_mul(uint8_t a, uint8_t b) {
  uint8_t r = 0;
  while (b) {
    if (b & 1) r ^= a;
    a = uint8_t((a << 1) ^ ((a & 0x80) ? 0x1d : 0));
    b >>= 1;
  }
  return r;
}

uint8_t oracle_pow2(unsigned k) {
  uint8_t c = 1;
  for (unsigned i = 0; i < k; i++) c = oracle_mul(c, 2);
  return c;
}

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};

// One row: k data blocks, P, and Q when RAID6, each 64-byte aligned.
struct Row {
  unsigned k, parity;
  size_t len;
  std::vector<std::unique_ptr<std::byte, FreeDeleter>> storage;
  std::vector<std::byte*> blocks;

  Row(unsigned data_count, unsigned parity_count, size_t length) : k(data_count), parity(parity_count), len(length) {
    for (unsigned i = 0; i < k + parity; i++) {
      auto* p = static_cast<std::byte*>(std::aligned_alloc(64, len));
      REQUIRE(p != nullptr);
      storage.emplace_back(p);
      blocks.push_back(p);
    }
  }
  std::span<std::byte* const> data() const { return std::span(blocks).first(k); }
  std::byte* p() const { return blocks[k]; }
  std::byte* q() const { return parity == 2 ? blocks[k + 1] : nullptr; }
  std::span<std::byte* const> all() const { return blocks; }

  void fill_random(std::mt19937_64& rng, unsigned from, unsigned to) {
    for (unsigned b = from; b < to; b++)
      for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rng();
        std::memcpy(blocks[b] + i, &v, 8);
      }
  }
  std::vector<std::byte> copy(unsigned b) const { return {blocks[b], blocks[b] + len}; }
  bool equals(unsigned b, const std::vector<std::byte>& want) const {
    return std::memcmp(blocks[b], want.data(), len) == 0;
  }
};

// Reference P and Q of the row's data blocks.
void oracle_parity(const Row& r, std::vector<std::byte>& p, std::vector<std::byte>& q) {
  p.assign(r.len, std::byte{0});
  q.assign(r.len, std::byte{0});
  for (unsigned k = 0; k < r.k; k++) {
    uint8_t coef = oracle_pow2(k);
    const auto* d = reinterpret_cast<const uint8_t*>(r.blocks[k]);
    for (size_t i = 0; i < r.len; i++) {
      p[i] ^= std::byte{d[i]};
      q[i] ^= std::byte{oracle_mul(coef, d[i])};
    }
  }
}

struct Config {
  unsigned members, parity;
};
std::vector<Config> configs() {
  std::vector<Config> c;
  for (unsigned n = 3; n <= 8; n++) c.push_back({n, 1});
  for (unsigned n = 4; n <= 8; n++) c.push_back({n, 2});
  return c;
}

constexpr size_t kLengths[] = {4096, 65536};

// Every set of up to `parity` missing block indices, ascending.
std::vector<std::vector<unsigned>> missing_sets(unsigned blocks, unsigned parity) {
  std::vector<std::vector<unsigned>> sets;
  for (unsigned a = 0; a < blocks; a++) {
    sets.push_back({a});
    if (parity == 2)
      for (unsigned b = a + 1; b < blocks; b++) sets.push_back({a, b});
  }
  return sets;
}

}  // namespace

TEST_CASE("oracle sanity: GF(2^8) with polynomial 0x11d") {
  CHECK(oracle_mul(2, 0x80) == 0x1d);
  CHECK(oracle_pow2(8) == 0x1d);
  CHECK(oracle_pow2(255) == 1);  // {02} generates the multiplicative group
  for (unsigned k = 1; k < 255; k++) CHECK(oracle_pow2(k) != 1);
}

TEST_CASE("compute matches the reference P and Q") {
  std::mt19937_64 rng(0x5eed0001);
  for (size_t len : kLengths)
    for (Config c : configs()) {
      CAPTURE(len);
      CAPTURE(c.members);
      CAPTURE(c.parity);
      Row r(c.members - c.parity, c.parity, len);
      r.fill_random(rng, 0, r.k + c.parity);  // parity starts as garbage
      compute(r.data(), r.p(), r.q(), len);
      std::vector<std::byte> p, q;
      oracle_parity(r, p, q);
      CHECK(r.equals(r.k, p));
      if (c.parity == 2) CHECK(r.equals(r.k + 1, q));
      CHECK(verify(c.parity, r.all(), len));
    }
}

TEST_CASE("compute handles all-zero and all-ones data") {
  for (Config c : configs()) {
    Row r(c.members - c.parity, c.parity, 4096);
    for (std::byte* b : r.blocks) std::memset(b, 0xff, 4096);
    for (unsigned k = 0; k < r.k; k++) std::memset(r.blocks[k], 0, 4096);
    compute(r.data(), r.p(), r.q(), 4096);
    std::vector<std::byte> zero(4096, std::byte{0});
    CHECK(r.equals(r.k, zero));
    if (c.parity == 2) CHECK(r.equals(r.k + 1, zero));
    for (unsigned k = 0; k < r.k; k++) std::memset(r.blocks[k], 0xff, 4096);
    compute(r.data(), r.p(), r.q(), 4096);
    std::vector<std::byte> p, q;
    oracle_parity(r, p, q);
    CHECK(r.equals(r.k, p));
    if (c.parity == 2) CHECK(r.equals(r.k + 1, q));
  }
}

TEST_CASE("reconstruct rebuilds every missing block and pair") {
  std::mt19937_64 rng(0x5eed0002);
  int rebuilt = 0;
  for (size_t len : kLengths)
    for (Config c : configs()) {
      Row r(c.members - c.parity, c.parity, len);
      r.fill_random(rng, 0, r.k);
      compute(r.data(), r.p(), r.q(), len);
      std::vector<std::vector<std::byte>> original;
      for (unsigned b = 0; b < r.blocks.size(); b++) original.push_back(r.copy(b));
      for (const auto& missing : missing_sets(unsigned(r.blocks.size()), c.parity)) {
        CAPTURE(len);
        CAPTURE(c.members);
        CAPTURE(c.parity);
        CAPTURE(missing[0]);
        CAPTURE(missing.back());
        r.fill_random(rng, missing[0], missing[0] + 1);  // the lost blocks hold garbage
        if (missing.size() == 2) r.fill_random(rng, missing[1], missing[1] + 1);
        r5::Status s = reconstruct(c.parity, r.all(), missing, len);
        REQUIRE(s.ok());
        for (unsigned b = 0; b < r.blocks.size(); b++) {
          CAPTURE(b);
          CHECK(r.equals(b, original[b]));
        }
        rebuilt++;
      }
    }
  // Per length: RAID5 3+4+..+8 singles; RAID6 4+..+8 singles and 6+10+15+21+28 pairs.
  CHECK(rebuilt == 2 * (33 + 30 + 80));
}

TEST_CASE("wide rows and lengths that are not a multiple of 4096") {
  // Up to 32 members (r5cfs's maximum), and lengths that exercise ISA-L's
  // tail loops (multiples of 64 but not of 128 or 4096).
  std::mt19937_64 rng(0x5eed0008);
  struct Wide {
    unsigned members, parity;
    size_t len;
  };
  for (Wide w : {Wide{16, 1, 4096}, Wide{32, 1, 192}, Wide{16, 2, 4160}, Wide{32, 2, 4096}, Wide{5, 2, 64},
                 Wide{3, 1, 64}, Wide{6, 2, 192}}) {
    CAPTURE(w.members);
    CAPTURE(w.parity);
    CAPTURE(w.len);
    Row r(w.members - w.parity, w.parity, w.len);
    r.fill_random(rng, 0, w.members);
    compute(r.data(), r.p(), r.q(), w.len);
    std::vector<std::byte> p, q;
    oracle_parity(r, p, q);
    CHECK(r.equals(r.k, p));
    if (w.parity == 2) CHECK(r.equals(r.k + 1, q));
    CHECK(verify(w.parity, r.all(), w.len));
    std::vector<std::vector<std::byte>> original;
    for (unsigned b = 0; b < r.blocks.size(); b++) original.push_back(r.copy(b));
    int bad = 0;
    for (const auto& missing : missing_sets(w.members, w.parity)) {
      for (unsigned m : missing) r.fill_random(rng, m, m + 1);
      if (!reconstruct(w.parity, r.all(), missing, w.len).ok()) bad++;
      for (unsigned m : missing)
        if (!r.equals(m, original[m])) bad++;
    }
    CHECK(bad == 0);
    r.blocks[r.k - 1][w.len - 1] ^= std::byte{0x40};
    CHECK_FALSE(verify(w.parity, r.all(), w.len));
  }
}

TEST_CASE("reconstruct with nothing missing changes nothing") {
  std::mt19937_64 rng(0x5eed0003);
  Row r(4, 2, 4096);
  r.fill_random(rng, 0, 6);
  auto before = r.copy(5);
  CHECK(reconstruct(2, r.all(), {}, 4096).ok());
  CHECK(r.equals(5, before));
}

TEST_CASE("reconstruct rejects bad requests") {
  Row r5(3, 1, 4096);
  Row r6(3, 2, 4096);
  auto fails = [](r5::Status s) {
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().kind == r5::ErrorKind::kInvalid);
    return s.error().message;
  };
  unsigned two[] = {0, 1};
  unsigned three[] = {0, 1, 2};
  unsigned unordered[] = {2, 1};
  unsigned dup[] = {1, 1};
  unsigned out_of_range[] = {5};
  unsigned one[] = {0};
  CHECK(fails(reconstruct(1, r5.all(), two, 4096)) == "2 blocks missing, single parity can rebuild at most 1");
  CHECK(fails(reconstruct(2, r6.all(), three, 4096)) == "3 blocks missing, double parity can rebuild at most 2");
  CHECK(fails(reconstruct(2, r6.all(), unordered, 4096)) == "missing block list must be strictly ascending");
  CHECK(fails(reconstruct(2, r6.all(), dup, 4096)) == "missing block list must be strictly ascending");
  CHECK(fails(reconstruct(2, r6.all(), out_of_range, 4096)) == "missing block 5 out of range (row has 5 blocks)");
  CHECK(fails(reconstruct(3, r6.all(), one, 4096)) == "parity count must be 1 or 2, found 3");
  CHECK(fails(reconstruct(0, r6.all(), one, 4096)) == "parity count must be 1 or 2, found 0");
  CHECK(fails(reconstruct(1, r5.all(), one, 4000)) == "length 4000 is not a multiple of 64");
  CHECK(fails(reconstruct(2, r6.all().first(3), one, 4096)) ==
        "3 blocks with 2 parity: need 2..64 data blocks");
}

TEST_CASE("apply_deltas equals a full recompute") {
  std::mt19937_64 rng(0x5eed0004);
  for (size_t len : kLengths)
    for (Config c : configs()) {
      CAPTURE(len);
      CAPTURE(c.members);
      CAPTURE(c.parity);
      Row r(c.members - c.parity, c.parity, len);
      r.fill_random(rng, 0, r.k);
      compute(r.data(), r.p(), r.q(), len);
      // Each single data index, then a few random subsets (including all).
      std::vector<std::vector<unsigned>> touched;
      for (unsigned k = 0; k < r.k; k++) touched.push_back({k});
      std::vector<unsigned> all_k;
      for (unsigned k = 0; k < r.k; k++) all_k.push_back(k);
      touched.push_back(all_k);
      for (int t = 0; t < 4; t++) {
        std::vector<unsigned> subset;
        for (unsigned k = 0; k < r.k; k++)
          if (rng() & 1) subset.push_back(k);
        touched.push_back(subset);
      }
      Row delta(r.k, 0, len);
      for (const auto& set : touched) {
        std::vector<Delta> deltas;
        for (unsigned k : set) {
          // New data; delta = old ^ new.
          auto old = r.copy(k);
          r.fill_random(rng, k, k + 1);
          for (size_t i = 0; i < len; i++) delta.blocks[k][i] = old[i] ^ r.blocks[k][i];
          deltas.push_back({k, delta.blocks[k]});
        }
        apply_deltas(r.k, deltas, r.p(), r.q(), len);
        std::vector<std::byte> p, q;
        oracle_parity(r, p, q);
        CHECK(r.equals(r.k, p));
        if (c.parity == 2) CHECK(r.equals(r.k + 1, q));
      }
    }
}

TEST_CASE("apply_deltas with q == nullptr leaves Q alone") {
  std::mt19937_64 rng(0x5eed0005);
  Row r(4, 2, 4096);
  r.fill_random(rng, 0, 4);
  compute(r.data(), r.p(), r.q(), 4096);
  auto q_before = r.copy(5);
  Row delta(1, 0, 4096);
  delta.fill_random(rng, 0, 1);
  for (size_t i = 0; i < 4096; i++) r.blocks[2][i] ^= delta.blocks[0][i];
  Delta d{2, delta.blocks[0]};
  apply_deltas(4, {&d, 1}, r.p(), nullptr, 4096);
  std::vector<std::byte> p, q;
  oracle_parity(r, p, q);
  CHECK(r.equals(4, p));
  CHECK(r.equals(5, q_before));
}

TEST_CASE("verify detects a flipped byte in data, P and Q") {
  std::mt19937_64 rng(0x5eed0006);
  for (size_t len : kLengths)
    for (Config c : configs()) {
      Row r(c.members - c.parity, c.parity, len);
      r.fill_random(rng, 0, r.k);
      compute(r.data(), r.p(), r.q(), len);
      REQUIRE(verify(c.parity, r.all(), len));
      for (unsigned b = 0; b < r.blocks.size(); b++)
        for (size_t pos : {size_t(0), size_t(1), len / 2 + 7, len - 64, len - 1}) {
          for (uint8_t bit : {uint8_t(0x01), uint8_t(0x80)}) {
            CAPTURE(len);
            CAPTURE(c.members);
            CAPTURE(c.parity);
            CAPTURE(b);
            CAPTURE(pos);
            r.blocks[b][pos] ^= std::byte{bit};
            CHECK_FALSE(verify(c.parity, r.all(), len));
            r.blocks[b][pos] ^= std::byte{bit};
          }
        }
      CHECK(verify(c.parity, r.all(), len));
    }
}

TEST_CASE("verify catches a byte swap between data blocks only with Q") {
  // P is blind to two data blocks exchanging a byte; Q (position-weighted) is not.
  std::mt19937_64 rng(0x5eed0007);
  Row r(4, 2, 4096);
  r.fill_random(rng, 0, 4);
  r.blocks[1][100] = std::byte{0x11};
  r.blocks[2][100] = std::byte{0x22};
  compute(r.data(), r.p(), r.q(), 4096);
  std::swap(r.blocks[1][100], r.blocks[2][100]);
  CHECK(verify(1, r.all().first(5), 4096));
  CHECK_FALSE(verify(2, r.all(), 4096));
}

TEST_CASE("reconstruct is safe from several threads at once") {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([t, &failures] {
      std::mt19937_64 rng(0x5eed0100 + t);
      const size_t len = 65536;
      Row r(6 - t % 2, 2, len);
      r.fill_random(rng, 0, r.k);
      compute(r.data(), r.p(), r.q(), len);
      std::vector<std::vector<std::byte>> original;
      for (unsigned b = 0; b < r.blocks.size(); b++) original.push_back(r.copy(b));
      for (int iter = 0; iter < 50; iter++)
        for (const auto& missing : missing_sets(unsigned(r.blocks.size()), 2)) {
          for (unsigned m : missing) std::memset(r.blocks[m], 0x5a, len);
          if (!reconstruct(2, r.all(), missing, len).ok()) failures[t]++;
          for (unsigned m : missing)
            if (!r.equals(m, original[m])) failures[t]++;
        }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; t++) CHECK(failures[t] == 0);
}

namespace {

// XORs a random nonzero byte into `count` random positions of block b;
// equal position seeds pick the same positions.
void corrupt(Row& r, unsigned b, uint64_t position_seed, uint64_t value_seed, int count) {
  std::mt19937_64 pos(position_seed), val(value_seed);
  for (int i = 0; i < count; i++) r.blocks[b][pos() % r.len] ^= std::byte(1 + val() % 255);
}

}  // namespace

TEST_CASE("locate_corruption names the one corrupt block of a RAID6 row") {
  std::mt19937_64 rng(0x5eed0008);
  for (size_t len : kLengths)
    for (unsigned k : {2u, 3u, 4u, 6u, 13u}) {
      Row r(k, 2, len);
      r.fill_random(rng, 0, k);
      compute(r.data(), r.p(), r.q(), len);
      CHECK(locate_corruption(2, r.all(), len) == std::nullopt);  // nothing to locate
      for (unsigned b = 0; b < k + 2; b++)
        for (int count : {1, 40, int(len)}) {  // one byte, scattered bytes, most of the block
          CAPTURE(len);
          CAPTURE(k);
          CAPTURE(b);
          CAPTURE(count);
          const auto original = r.copy(b);
          corrupt(r, b, rng(), rng(), count);
          CHECK(locate_corruption(2, r.all(), len) == b);
          std::memcpy(r.blocks[b], original.data(), len);
        }
      CHECK(verify(2, r.all(), len));
    }
}

TEST_CASE("locate_corruption gives up when two blocks are wrong") {
  std::mt19937_64 rng(0x5eed0009);
  for (unsigned k : {2u, 4u, 7u}) {
    const size_t len = 8192;
    Row r(k, 2, len);
    r.fill_random(rng, 0, k);
    compute(r.data(), r.p(), r.q(), len);
    for (unsigned a = 0; a < k + 2; a++)
      for (unsigned b = a + 1; b < k + 2; b++)
        for (bool same_bytes : {true, false}) {
          CAPTURE(k);
          CAPTURE(a);
          CAPTURE(b);
          CAPTURE(same_bytes);
          const auto old_a = r.copy(a), old_b = r.copy(b);
          // Same bytes with different errors: identical errors in two data
          // blocks would cancel in P and look exactly like a bad Q.
          const uint64_t seed = rng();
          corrupt(r, a, seed, rng(), 16);
          corrupt(r, b, same_bytes ? seed : seed + 1, rng(), 16);
          CHECK(locate_corruption(2, r.all(), len) == std::nullopt);
          std::memcpy(r.blocks[a], old_a.data(), len);
          std::memcpy(r.blocks[b], old_b.data(), len);
        }
  }
}

TEST_CASE("locate_corruption cannot locate with RAID5's single parity") {
  std::mt19937_64 rng(0x5eed000a);
  Row r(4, 1, 4096);
  r.fill_random(rng, 0, 4);
  compute(r.data(), r.p(), nullptr, 4096);
  for (unsigned b = 0; b < 5; b++) {
    const auto original = r.copy(b);
    corrupt(r, b, rng(), rng(), 8);
    REQUIRE_FALSE(verify(1, r.all(), 4096));
    CHECK(locate_corruption(1, r.all(), 4096) == std::nullopt);
    std::memcpy(r.blocks[b], original.data(), 4096);
  }
}
