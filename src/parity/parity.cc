// ISA-L does all GF(2^8) work: pq_gen's Q is md's syndrome (generator {02},
// polynomial 0x11d, data block 0 has coefficient g^0), and the ec_* functions
// use the same field, so decode rows built with gf_mul match it.
#include "parity/parity.h"

#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace r5::parity {
namespace {

// Bounds for the stack arrays below; r5cfs stops at 32 members anyway.
constexpr size_t kMaxData = 64;
constexpr size_t kMaxBlocks = kMaxData + 2;
// ISA-L takes int lengths: longer buffers go through in slices.
constexpr size_t kSlice = size_t(1) << 30;

// compute/apply_deltas/verify have no error channel: a broken precondition is
// a bug in the caller, and silently wrong parity would be worse than a crash.
[[noreturn]] void contract_violation(const char* func, const char* what) {
  std::fprintf(stderr, "r5::parity::%s: %s\n", func, what);
  std::abort();
}

unsigned char* bytes(std::byte* p) { return reinterpret_cast<unsigned char*>(p); }

// g^k with g = {02}.
unsigned char gf_pow2(unsigned k) {
  unsigned char c = 1;
  for (unsigned i = 0; i < k; i++) c = gf_mul(c, 2);
  return c;
}

template <typename Fn>
void for_each_slice(size_t len, Fn fn) {
  for (size_t off = 0; off < len; off += kSlice) fn(off, int(std::min(kSlice, len - off)));
}

// blocks[lost] = XOR of blocks[0..count) except blocks[lost].
void xor_rebuild(std::span<std::byte* const> blocks, size_t count, size_t lost, size_t len) {
  void* v[kMaxBlocks];
  for_each_slice(len, [&](size_t off, int n) {
    size_t j = 0;
    for (size_t i = 0; i < count; i++)
      if (i != lost) v[j++] = blocks[i] + off;
    v[j++] = blocks[lost] + off;
    if (xor_gen(int(j), n, v) != 0) contract_violation("reconstruct", "xor_gen rejected the buffers");
  });
}

// RAID6 with two lost blocks, at least one of them data, or Q alone: each
// lost block is a GF(2^8) combination of the survivors, with coefficients in
// closed form (O(k) gf_mul; inverting the generator submatrix with
// gf_invert_matrix costs ~130 us at k=30, far more than decoding 4 KiB).
// With g_i = g^i, P' = P + sum D_i and Q' = Q + sum g_i D_i over the intact
// data blocks i:
//   {x, Q}: D_x = P'                      Q = sum (g_i + g_x) D_i + g_x P
//   {x, P}: D_x = Q' / g_x                P = D_x + sum D_i
//   {x, y}: D_x = (g_y P' + Q') / (g_x + g_y)    D_y = P' + D_x
//   {Q}:    Q = sum g_i D_i
Status decode_rebuild(unsigned k, std::span<std::byte* const> blocks, std::span<const unsigned> missing,
                      size_t len) {
  const unsigned p = k, q = k + 1;
  unsigned char g[kMaxData];
  g[0] = 1;
  for (unsigned i = 1; i < k; i++) g[i] = gf_mul(g[i - 1], 2);

  const unsigned x = missing[0];
  const unsigned y = missing.size() == 2 ? missing[1] : q;  // x == y == Q when Q alone is lost
  // Sources: the intact data blocks, then P and/or Q when intact.
  unsigned src_index[kMaxBlocks];
  unsigned n = 0;
  for (unsigned i = 0; i < (missing.size() == 1 ? k : k + 2); i++)
    if (i != x && i != y) src_index[n++] = i;
  if (n != k) return invalid("RAID6 decode: unexpected set of missing blocks");

  unsigned char scale = 0;  // 1/g_x for {x, P}, 1/(g_x + g_y) for {x, y}
  if (y == p)
    scale = gf_inv(g[x]);
  else if (y < k)
    scale = gf_inv(g[x] ^ g[y]);

  // coef[t * k + j]: weight of source j in lost block t.
  unsigned char coef[2 * kMaxData];
  const unsigned rows = unsigned(missing.size());
  for (unsigned j = 0; j < k; j++) {
    const unsigned s = src_index[j];
    unsigned char a, b = 0;
    if (missing.size() == 1) {  // {Q}
      a = g[s];
    } else if (y == q) {  // {x, Q}
      a = 1;
      b = s == p ? g[x] : g[s] ^ g[x];
    } else if (y == p) {  // {x, P}
      a = s == q ? scale : gf_mul(g[s], scale);
      b = s == q ? scale : 1 ^ a;
    } else {  // {x, y}
      a = s == q ? scale : s == p ? gf_mul(g[y], scale) : gf_mul(g[y] ^ g[s], scale);
      b = s == q ? scale : 1 ^ a;
    }
    coef[j] = a;
    if (rows == 2) coef[k + j] = b;
  }
  unsigned char tables[kMaxData * 2 * 32];
  ec_init_tables(int(k), int(rows), coef, tables);

  unsigned char* src[kMaxData];
  unsigned char* dst[2];
  for_each_slice(len, [&](size_t off, int len_slice) {
    for (unsigned j = 0; j < k; j++) src[j] = bytes(blocks[src_index[j]]) + off;
    for (unsigned t = 0; t < rows; t++) dst[t] = bytes(blocks[missing[t]]) + off;
    ec_encode_data(len_slice, int(k), int(rows), tables, src, dst);
  });
  return {};
}

}  // namespace

void compute(std::span<std::byte* const> data, std::byte* p, std::byte* q, size_t len) {
  const size_t k = data.size();
  if (k < 2 || k > kMaxData) contract_violation("compute", "needs 2..64 data blocks");
  if (len % 64 != 0) contract_violation("compute", "len must be a multiple of 64");
  void* v[kMaxBlocks];
  for_each_slice(len, [&](size_t off, int n) {
    for (size_t i = 0; i < k; i++) v[i] = data[i] + off;
    v[k] = p + off;
    int rc;
    if (q) {
      v[k + 1] = q + off;
      rc = pq_gen(int(k + 2), n, v);
    } else {
      rc = xor_gen(int(k + 1), n, v);
    }
    if (rc != 0) contract_violation("compute", "ISA-L rejected the buffers (alignment or length)");
  });
}

void apply_deltas(unsigned data_count, std::span<const Delta> deltas, std::byte* p, std::byte* q, size_t len) {
  if (data_count > kMaxData) contract_violation("apply_deltas", "too many data blocks");
  if (len % 64 != 0) contract_violation("apply_deltas", "len must be a multiple of 64");
  const int rows = q ? 2 : 1;
  for (const Delta& d : deltas) {
    if (d.data_index >= data_count) contract_violation("apply_deltas", "data_index out of range");
    // One source with coefficients 1 (P) and g^k (Q): one pass over the delta
    // updates both parities.
    unsigned char coef[2] = {1, gf_pow2(d.data_index)};
    unsigned char tables[2 * 32];
    ec_init_tables(1, rows, coef, tables);
    // ISA-L's prototype is not const-correct; it only reads the source.
    auto* src = const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(d.delta));
    for_each_slice(len, [&](size_t off, int n) {
      unsigned char* coding[2] = {bytes(p) + off, q ? bytes(q) + off : nullptr};
      ec_encode_data_update(n, 1, rows, 0, tables, src + off, coding);
    });
  }
}

Status reconstruct(unsigned parity_count, std::span<std::byte* const> blocks, std::span<const unsigned> missing,
                   size_t len) {
  if (parity_count != 1 && parity_count != 2)
    return invalid(fmt::format("parity count must be 1 or 2, found {}", parity_count));
  if (blocks.size() < parity_count + 2 || blocks.size() > kMaxData + parity_count)
    return invalid(fmt::format("{} blocks with {} parity: need 2..{} data blocks", blocks.size(), parity_count,
                               kMaxData));
  if (missing.size() > parity_count)
    return invalid(fmt::format("{} blocks missing, {} parity can rebuild at most {}", missing.size(),
                               parity_count == 1 ? "single" : "double", parity_count));
  for (size_t i = 0; i < missing.size(); i++) {
    if (missing[i] >= blocks.size())
      return invalid(fmt::format("missing block {} out of range (row has {} blocks)", missing[i], blocks.size()));
    if (i > 0 && missing[i] <= missing[i - 1]) return invalid("missing block list must be strictly ascending");
  }
  if (len % 64 != 0) return invalid(fmt::format("length {} is not a multiple of 64", len));
  if (missing.empty() || len == 0) return {};

  const unsigned k = unsigned(blocks.size()) - parity_count;
  const unsigned p = k;
  // One block lost among data and P: XOR of the others (the common degraded
  // case, and all of RAID5).
  if (missing.size() == 1 && missing[0] <= p) {
    xor_rebuild(blocks, k + 1, missing[0], len);
    return {};
  }
  // Both parities lost: regenerate them from intact data.
  if (missing.size() == 2 && missing[0] == p) {
    compute(blocks.first(k), blocks[p], blocks[p + 1], len);
    return {};
  }
  return decode_rebuild(k, blocks, missing, len);
}

bool verify(unsigned parity_count, std::span<std::byte* const> blocks, size_t len) {
  if (parity_count != 1 && parity_count != 2) contract_violation("verify", "parity count must be 1 or 2");
  if (blocks.size() < parity_count + 2 || blocks.size() > kMaxData + parity_count)
    contract_violation("verify", "needs 2..64 data blocks");
  if (len % 64 != 0) contract_violation("verify", "len must be a multiple of 64");
  void* v[kMaxBlocks];
  bool ok = true;
  for_each_slice(len, [&](size_t off, int n) {
    if (!ok) return;
    for (size_t i = 0; i < blocks.size(); i++) v[i] = blocks[i] + off;
    int vects = int(blocks.size());
    ok = (parity_count == 1 ? xor_check(vects, n, v) : pq_check(vects, n, v)) == 0;
  });
  return ok;
}

std::optional<unsigned> locate_corruption(unsigned parity_count, std::span<std::byte* const> blocks, size_t len) {
  if (parity_count != 1 && parity_count != 2) contract_violation("locate_corruption", "parity count must be 1 or 2");
  if (blocks.size() < parity_count + 2 || blocks.size() > kMaxData + parity_count)
    contract_violation("locate_corruption", "needs 2..64 data blocks");
  if (len % 64 != 0) contract_violation("locate_corruption", "len must be a multiple of 64");
  if (parity_count == 1) return std::nullopt;

  const unsigned k = unsigned(blocks.size()) - 2;
  unsigned char g[kMaxData];  // g[z] = g^z, the Q coefficient of data index z
  for (unsigned z = 0; z < k; z++) g[z] = gf_pow2(z);
  // Fresh P and Q of the data, a slice at a time so that no heap is needed.
  constexpr size_t kStep = 4096;
  alignas(64) unsigned char fresh_p[kStep], fresh_q[kStep];
  bool p_bad = false, q_bad = false;
  // A single bad data block z adds e to P and g^z * e to Q at each byte:
  // the first differing byte fixes z, every later one must agree with it.
  bool one_data_block = true;
  std::optional<unsigned> z;
  void* v[kMaxBlocks];
  for (size_t off = 0; off < len; off += kStep) {
    const size_t n = std::min(kStep, len - off);
    for (unsigned i = 0; i < k; i++) v[i] = blocks[i] + off;
    v[k] = fresh_p;
    v[k + 1] = fresh_q;
    if (pq_gen(int(k + 2), int(n), v) != 0) contract_violation("locate_corruption", "pq_gen rejected the buffers");
    const unsigned char* p = bytes(blocks[k]) + off;
    const unsigned char* q = bytes(blocks[k + 1]) + off;
    for (size_t i = 0; i < n; i++) {
      const unsigned char dp = p[i] ^ fresh_p[i], dq = q[i] ^ fresh_q[i];
      p_bad |= dp != 0;
      q_bad |= dq != 0;
      if (!one_data_block || (dp == 0 && dq == 0)) continue;
      if (dp == 0 || dq == 0) {
        one_data_block = false;
      } else if (z) {
        one_data_block = gf_mul(g[*z], dp) == dq;
      } else {
        for (unsigned c = 0; c < k && !z; c++)
          if (gf_mul(g[c], dp) == dq) z = c;
        one_data_block = z.has_value();
      }
    }
  }
  if (p_bad && q_bad) return one_data_block ? z : std::nullopt;
  if (p_bad) return k;
  if (q_bad) return k + 1;
  return std::nullopt;
}

void xor_into(std::byte* dst, const std::byte* src, size_t len) {
  auto* d = reinterpret_cast<uint64_t*>(dst);
  auto* s = reinterpret_cast<const uint64_t*>(src);
  for (size_t i = 0; i < len / 8; ++i) d[i] ^= s[i];
}

}  // namespace r5::parity
