// The fault matrix (issue 4, item 5): {read EIO, write EIO, fdatasync EIO,
// ENOSPC, device gone, bit flip on read, bit flip on write, dropped write} x
// {each member, the journal} x {once, persistent}, each cell a SUBCASE named
// after it ("member m2 × write EIO × persistent × RAID6 × write-back").
//
// Every cell runs a random workload against a reference model on FaultDevices
// (tests/support/fault_device.h), single-threaded: the journaled cache's
// flusher is not started and drain() does its work on the test thread, so a
// cell repeats exactly from its seed. The seed is in every failure message;
// R5CFS_FAULT_SEED=<n> changes the base seed. A watchdog aborts a cell that
// hangs.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <bit>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "base/checksum.h"
#include "engine/journaled_cache.h"
#include "journal/reader.h"
#include "journal/writer.h"
#include "support/fault_device.h"
#include "support/memory_array.h"

using namespace r5;
using engine::JournaledCache;
using test::Fault;
using test::FaultKind;

namespace {

constexpr uint32_t kChunk = 16384;
constexpr uint64_t kRows = 32;
constexpr uint64_t kJournalBlocks = 1024;
constexpr uint64_t kPage = 4096;

// ---- Seeds and the watchdog -----------------------------------------------------

uint64_t base_seed() {
  const char* env = std::getenv("R5CFS_FAULT_SEED");
  return env ? std::strtoull(env, nullptr, 0) : 0x5eed'4a11;
}

uint64_t cell_seed(const std::string& cell) {
  return checksum({reinterpret_cast<const std::byte*>(cell.data()), cell.size()}, base_seed());
}

// A hang is a failure: a cell running longer than kLimit aborts the run with
// its name and seed. Waits are bounded by the deadline, never by sleeping.
class Watchdog {
 public:
  static constexpr auto kLimit = std::chrono::seconds(60);
  static Watchdog& get() {
    static Watchdog w;
    return w;
  }
  void enter(std::string what) {
    std::lock_guard lock(mu_);
    what_ = std::move(what);
    deadline_ = std::chrono::steady_clock::now() + kLimit;
    ++generation_;
    cv_.notify_all();
  }
  void leave() {
    std::lock_guard lock(mu_);
    what_.clear();
    ++generation_;
    cv_.notify_all();
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }

 private:
  Watchdog() : thread_([this] { run(); }) {}
  void run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (what_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const uint64_t watched = generation_;
      if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout && generation_ == watched && !stop_) {
        std::fprintf(stderr, "fault_matrix: HANG: %s did not finish within %lld s\n", what_.c_str(),
                     static_cast<long long>(kLimit.count()));
        std::abort();
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

struct Watched {
  explicit Watched(const std::string& what) { Watchdog::get().enter(what); }
  ~Watched() { Watchdog::get().leave(); }
};

// ---- The rig ----------------------------------------------------------------------

enum class Mode { kNone, kWriteBack };
const char* mode_name(Mode m) { return m == Mode::kNone ? "none" : "write-back"; }

// Hands the cache a journal the rig keeps, so the device outlives a failed open.
class Borrowed final : public io::Device {
 public:
  explicit Borrowed(io::Device& d) : d_(d) {}
  const std::string& name() const override { return d_.name(); }
  uint64_t size() const override { return d_.size(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return d_.read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override { return d_.write(offset, buf); }
  Status sync() override { return d_.sync(); }

 private:
  io::Device& d_;
};

struct Images {
  std::vector<std::vector<std::byte>> members;
  std::vector<std::byte> journal;
};

// The freshest member superblock, as assembly picks it.
format::MemberSuperblock freshest(const Images& img) {
  std::optional<format::MemberSuperblock> best;
  for (const auto& m : img.members) {
    auto sb = format::decode_member_superblock(std::span<const std::byte, format::kSuperblockSize>(m.data(), format::kSuperblockSize));
    if (sb.ok() && (!best || sb->events > best->events)) best = *sb;
  }
  REQUIRE(best.has_value());
  return *best;
}

JournaledCache::Options cache_options(bool force = false) {
  JournaledCache::Options o;
  o.memory = 1 << 20;  // the pool's floor applies; it holds the whole 2 MiB array
  o.force = force;
  return o;
}

// An array of FaultDevices with a journal. Single-threaded: see the file comment.
struct Rig {
  Mode mode;
  format::MemberSuperblock sb;
  std::vector<test::FaultDevice*> members;  // owned by the array
  std::unique_ptr<test::FaultDevice> journal;
  std::unique_ptr<array::RaidArray> array;
  std::unique_ptr<JournaledCache> cache;

  // A new array: superblocks written as at a first start, journal formatted.
  Rig(uint32_t level, Mode m, uint64_t seed)
      : mode(m), sb(test::test_superblock(level, geometry::Layout::kLeftSymmetric, level == 5 ? 5 : 6, kChunk, kRows)) {
    sb.data_offset = kChunk;  // small devices: every cell builds several
    build(seed, nullptr);
    REQUIRE(array->members().write_superblocks(format::ArrayState::kDirty).ok());
    REQUIRE(journal::format_journal(*journal, sb, kJournalBlocks).ok());
  }
  // The devices as `img` holds them; the freshest superblock says which members failed.
  Rig(const Images& img, Mode m, uint64_t seed) : mode(m), sb(freshest(img)) { build(seed, &img); }

  Status open(bool force = false) {
    auto c = JournaledCache::open(*array, std::make_unique<Borrowed>(*journal), cache_options(force));
    if (!c.ok()) return c.error();
    cache = std::move(*c);
    return {};
  }
  // Contents now, or what a power loss now would leave.
  Images images(bool durable) const {
    Images img;
    for (auto* m : members) img.members.push_back(durable ? m->durable() : m->snapshot());
    img.journal = durable ? journal->durable() : journal->snapshot();
    return img;
  }
  geometry::Geometry geometry() const { return sb.geometry(); }
  uint64_t failed_mask() { return array->members().failed_mask(); }

  Status write(uint64_t off, std::span<const std::byte> in) { return mode == Mode::kNone ? array->write(off, in) : cache->write(off, in); }
  Status read(uint64_t off, std::span<std::byte> out) { return mode == Mode::kNone ? array->read(off, out) : cache->read(off, out); }
  Status fsync() { return mode == Mode::kNone ? array->sync() : cache->fsync(); }
  // The flusher's work, on this thread.
  Status drain() { return mode == Mode::kNone ? Status{} : cache->drain(); }

 private:
  void build(uint64_t seed, const Images* img) {
    std::vector<array::MemberSlot> slots;
    for (uint32_t i = 0; i < sb.member_count; ++i) {
      auto dev = std::make_unique<test::FaultDevice>("m" + std::to_string(i), sb.data_offset + sb.data_size, seed + 1 + i);
      if (img) dev->load(img->members[i]);
      members.push_back(dev.get());
      slots.push_back({"m" + std::to_string(i), std::move(dev)});
    }
    array = std::make_unique<array::RaidArray>(std::make_unique<array::MemberSet>(sb, std::move(slots)));
    journal = std::make_unique<test::FaultDevice>("journal", kJournalBlocks * kPage, seed);
    if (img) journal->load(img->journal);
  }
};

// ---- The model ----------------------------------------------------------------------

uint64_t page_hash(const std::byte* p) { return checksum({p, kPage}, 0); }

struct Model {
  std::vector<std::byte> replied;  // the newest replied data
  std::vector<std::byte> visible;  // what reads return: a failed write is in the pool too
  // Per page: every content since the last completed fsync (what recovery may
  // return, I1/I2), and every content it ever had (anything else is garbage).
  std::vector<std::vector<uint64_t>> since_sync;
  std::vector<std::set<uint64_t>> ever;

  explicit Model(uint64_t capacity) : replied(capacity), visible(capacity), since_sync(capacity / kPage), ever(capacity / kPage) {
    synced();
    for (uint64_t p = 0; p < ever.size(); ++p) ever[p].insert(since_sync[p][0]);
  }
  void write(uint64_t off, std::span<const std::byte> data, bool ok) {
    std::memcpy(visible.data() + off, data.data(), data.size());
    if (ok) std::memcpy(replied.data() + off, data.data(), data.size());
    for (uint64_t p = off / kPage; p * kPage < off + data.size(); ++p) {
      const uint64_t h = page_hash(visible.data() + p * kPage);
      since_sync[p].push_back(h);
      ever[p].insert(h);
    }
  }
  void synced() {
    for (uint64_t p = 0; p < since_sync.size(); ++p) since_sync[p] = {page_hash(replied.data() + p * kPage)};
  }
};

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t x = rng();
    std::memcpy(v.data() + i, &x, std::min<size_t>(8, n - i));
  }
  return v;
}

std::vector<std::byte> read_all(Rig& r) {
  std::vector<std::byte> got(r.array->capacity());
  Status st = r.read(0, got);
  REQUIRE_MESSAGE(st.ok(), st.error().message);
  return got;
}

// Pages of `got` whose content is not among `allowed(page)`.
template <typename Allowed>
std::string bad_pages(const std::vector<std::byte>& got, Allowed allowed) {
  std::string bad;
  for (uint64_t p = 0; p < got.size() / kPage; ++p)
    if (!allowed(p, page_hash(got.data() + p * kPage))) bad += fmt::format(" {}", p);
  return bad;
}

// One offset and length: sub-page, page, multi-page, full stripe or several rows.
std::pair<uint64_t, size_t> random_extent(std::mt19937_64& rng, const geometry::Geometry& g) {
  const uint64_t cap = g.capacity(), row = g.row_data_bytes();
  switch (rng() % 5) {
    case 0: {
      const uint64_t off = rng() % cap;
      return {off, size_t(1 + rng() % std::min<uint64_t>(kPage - 1, cap - off))};
    }
    case 1: return {rng() % (cap / kPage) * kPage, kPage};
    case 2: {
      const uint64_t off = rng() % (cap - 12 * kPage);
      return {off, size_t(2 * kPage + rng() % (10 * kPage))};
    }
    case 3: return {rng() % g.rows * row, size_t(row)};
    default: {
      const uint64_t rows = 1 + rng() % 2;
      return {rng() % (g.rows - rows + 1) * row, size_t(rows * row)};
    }
  }
}

struct Failure {
  std::string op;
  Error error;
};

// Random writes, reads (checked against the model), fsyncs and drains. With
// `strict`, every operation must succeed. Otherwise the first failure is
// returned, and every later write, fsync and drain must fail with EIO (the
// cache is read-only after it), changing nothing that reads return.
std::optional<Failure> workload(Rig& r, Model& m, std::mt19937_64& rng, int ops, bool strict) {
  const geometry::Geometry g = r.geometry();
  std::optional<Failure> first;
  auto outcome = [&](const char* op, const Status& st) {
    if (first) {  // read-only since the first failure
      CHECK_MESSAGE(!st.ok(), op, " succeeded after the failure");
      if (!st.ok()) CHECK_MESSAGE(st.error().err == EIO, op, " after the failure: ", st.error().message);
      return st.ok();
    }
    if (st.ok()) return true;
    REQUIRE_MESSAGE(!strict, op, " failed: ", st.error().message);
    first = Failure{op, st.error()};
    return false;
  };
  for (int i = 0; i < ops; ++i) {
    const int what = int(rng() % 20);
    if (what < 12) {
      auto [off, len] = random_extent(rng, g);
      auto data = random_bytes(rng, len);
      const bool failed_before = first.has_value();
      const bool ok = outcome("write", r.write(off, data));
      if (ok || !failed_before) m.write(off, data, ok);  // the first failing write is in the pool; later ones fail early
    } else if (what < 17) {
      const auto extent = random_extent(rng, g);  // no structured binding: doctest's macros capture these
      const uint64_t off = extent.first;
      const size_t len = extent.second;
      std::vector<std::byte> got(len);
      Status st = r.read(off, got);
      REQUIRE_MESSAGE(st.ok(), "read: ", st.error().message);
      REQUIRE_MESSAGE(std::memcmp(got.data(), m.visible.data() + off, len) == 0, "read at ", off, " +", len);
    } else if (what < 19) {
      if (outcome("fsync", r.fsync())) m.synced();
    }
    // Drains keep the journal from filling up (no flusher runs).
    if (what == 19 || i % 10 == 9) outcome("drain", r.drain());
  }
  return first;
}

// ---- Member-side checks -----------------------------------------------------------

std::span<const std::byte> chunk_of(const Rig& r, const std::vector<std::byte>& image, uint64_t row) {
  return {image.data() + r.sb.data_offset + row * kChunk, kChunk};
}

// What every member's chunk of every row must hold for the array contents
// `bytes`: [member][row].
std::vector<std::vector<std::vector<std::byte>>> expected_chunks(const Rig& r, const std::vector<std::byte>& bytes) {
  const geometry::Geometry g = r.geometry();
  const uint32_t d = g.data_count();
  std::vector<std::vector<std::vector<std::byte>>> out(g.members, std::vector<std::vector<std::byte>>(g.rows));
  AlignedBuffer buf(size_t(g.members) * kChunk);
  for (uint64_t row = 0; row < g.rows; ++row) {
    std::byte* blocks[geometry::kMaxMembers];
    for (uint32_t role = 0; role < g.members; ++role) blocks[role] = buf.data() + size_t(role) * kChunk;
    for (uint32_t k = 0; k < d; ++k) std::memcpy(blocks[k], bytes.data() + row * g.row_data_bytes() + k * kChunk, kChunk);
    parity::compute({blocks, d}, blocks[d], g.parity_count() == 2 ? blocks[d + 1] : nullptr, kChunk);
    const geometry::RowMap map = geometry::map_row(g, row);
    for (uint32_t role = 0; role < g.members; ++role) {
      const uint32_t member = role < d ? map.data[role] : role == d ? map.p : map.q;
      out[member][row].assign(blocks[role], blocks[role] + kChunk);
    }
  }
  return out;
}

// (member, row) pairs, among active members, that differ from what a healthy
// array holding `bytes` would store: data and P/Q.
std::string stray_chunks(Rig& r, const std::vector<std::byte>& bytes) {
  const auto expect = expected_chunks(r, bytes);
  std::string bad;
  for (uint32_t m = 0; m < r.members.size(); ++m) {
    if ((r.failed_mask() >> m) & 1) continue;
    const auto image = r.members[m]->snapshot();
    for (uint64_t row = 0; row < kRows; ++row) {
      auto c = chunk_of(r, image, row);
      if (!std::equal(c.begin(), c.end(), expect[m][row].begin())) bad += fmt::format(" m{}/row{}", m, row);
    }
  }
  return bad;
}

uint32_t differing_bits(std::span<const std::byte> a, std::span<const std::byte> b) {
  uint32_t n = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) n += uint32_t(std::popcount(uint8_t(a[i] ^ b[i])));
  return n;
}

std::string cell_name(const std::string& target, FaultKind k, bool persistent, uint32_t level, const char* mode) {
  return fmt::format("{} × {} × {} × RAID{} × {}", target, test::fault_name(k), persistent ? "persistent" : "once", level, mode);
}

// Runs `body(level, mode, member, persistent, seed)` for every member cell of
// `kind`, each in its own SUBCASE.
template <typename Body>
void member_cells(FaultKind kind, Body body) {
  for (uint32_t level : {5u, 6u})
    for (Mode mode : {Mode::kNone, Mode::kWriteBack})
      for (uint32_t m = 0; m < (level == 5 ? 5u : 6u); ++m)
        for (bool persistent : {false, true}) {
          const std::string name = cell_name("member m" + std::to_string(m), kind, persistent, level, mode_name(mode));
          SUBCASE(name.c_str()) {
            const uint64_t seed = cell_seed(name);
            INFO(name, ": seed ", seed, " (base R5CFS_FAULT_SEED=", base_seed(), ")");
            Watched w(name + fmt::format(" (seed {})", seed));
            body(level, mode, m, persistent, seed);
          }
        }
}

// A member that fails: md's behaviour. The member is marked failed in the
// others' superblocks and the array goes on degraded; no caller sees an error.
void member_failure_cell(FaultKind kind, uint32_t level, Mode mode, uint32_t m, bool persistent, uint64_t seed) {
  Rig r(level, mode, seed);
  if (mode == Mode::kWriteBack) REQUIRE(r.open().ok());
  Model model(r.array->capacity());
  std::mt19937_64 rng(seed);
  workload(r, model, rng, 30, true);
  REQUIRE(r.drain().ok());
  // The Nth operation of the kind fails; N small enough that it comes.
  const uint64_t range = kind == FaultKind::kSyncEio ? 3 : kind == FaultKind::kGone ? 4 : 8;
  r.members[m]->arm(Fault{kind, 1 + rng() % range, persistent, r.sb.data_offset});
  // A whole read first: read faults fire here, in the array's own read path.
  CHECK(read_all(r) == model.visible);
  workload(r, model, rng, 100, true);
  REQUIRE(r.drain().ok());
  CHECK(r.members[m]->fired() >= 1);
  CHECK(r.failed_mask() == (uint64_t(1) << m));
  CHECK(read_all(r) == model.replied);
  // The survivors hold exactly the data and parity of the model: the lost
  // member's data is defined by them.
  CHECK_MESSAGE(stray_chunks(r, model.replied).empty(), "stray:", stray_chunks(r, model.replied));
  if (mode == Mode::kWriteBack) REQUIRE(r.cache->close(true).ok());

  Rig again(r.images(false), mode, seed);
  CHECK(again.failed_mask() == (uint64_t(1) << m));  // recorded in the survivors' superblocks
  if (mode == Mode::kWriteBack) REQUIRE(again.open().ok());
  CHECK(read_all(again) == model.replied);
}

// Members carry no checksums (like md): a flipped or lost member block is
// silent corruption the read path cannot detect. Scrub (`r5cfs check`, a
// later issue) is what finds it. These cells pin down what happens today.
void member_corruption_cell(FaultKind kind, uint32_t level, Mode mode, uint32_t m, bool persistent, uint64_t seed) {
  Rig r(level, mode, seed);
  if (mode == Mode::kWriteBack) REQUIRE(r.open().ok());
  const geometry::Geometry g = r.geometry();
  const uint32_t d = g.data_count();
  Model model(r.array->capacity());
  std::mt19937_64 rng(seed);
  workload(r, model, rng, 60, true);
  REQUIRE(r.drain().ok());
  const Fault fault{kind, 1, persistent, r.sb.data_offset};

  if (kind == FaultKind::kFlipOnRead) {
    // A whole read: one read per row in which m holds data; each flipped read
    // returns one wrong bit, inside m's chunk. Nothing notices.
    r.members[m]->arm(fault);
    const auto got = read_all(r);
    r.members[m]->disarm();
    uint64_t data_rows = 0;
    for (uint64_t row = 0; row < kRows; ++row) {
      const geometry::RowMap map = geometry::map_row(g, row);
      for (uint32_t k = 0; k < d; ++k) {
        const size_t at = size_t(row * g.row_data_bytes() + k * kChunk);
        const uint32_t bits = differing_bits({got.data() + at, kChunk}, {model.replied.data() + at, kChunk});
        if (map.data[k] == m) {
          ++data_rows;
          CHECK(bits <= 1);
        } else {
          CHECK(bits == 0);
        }
      }
    }
    CHECK(r.members[m]->fired() == (persistent ? data_rows : 1));
    CHECK(differing_bits(got, model.replied) == r.members[m]->fired());
    // The stored data was never touched: read again, it is right.
    CHECK(read_all(r) == model.replied);
    CHECK_MESSAGE(stray_chunks(r, model.replied).empty(), "stray:", stray_chunks(r, model.replied));
  } else {
    // Two full-stripe writes; each gives m exactly one write (its chunk of the row).
    const Images before = r.images(false);
    const uint64_t r1 = rng() % kRows, r2 = (r1 + 1 + rng() % (kRows - 1)) % kRows;
    r.members[m]->arm(fault);
    for (uint64_t row : {r1, r2}) {
      auto data = random_bytes(rng, g.row_data_bytes());
      REQUIRE(r.write(row * g.row_data_bytes(), data).ok());
      model.write(row * g.row_data_bytes(), data, true);
    }
    REQUIRE(r.fsync().ok());
    REQUIRE(r.drain().ok());
    r.members[m]->disarm();
    CHECK(r.members[m]->fired() == (persistent ? 2u : 1u));
    const auto expect = expected_chunks(r, model.replied);
    std::set<uint64_t> damaged;
    for (uint32_t i = 0; i < g.members; ++i) {
      const auto image = r.members[i]->snapshot();
      for (uint64_t row = 0; row < kRows; ++row) {
        CAPTURE(i);
        CAPTURE(row);
        auto c = chunk_of(r, image, row);
        if (std::equal(c.begin(), c.end(), expect[i][row].begin())) continue;
        damaged.insert(row);
        CHECK(i == m);
        CHECK((row == r1 || row == r2));
        if (kind == FaultKind::kFlipOnWrite) {
          CHECK(differing_bits(c, expect[i][row]) == 1);
        } else {
          auto old = chunk_of(r, before.members[i], row);
          CHECK(std::equal(c.begin(), c.end(), old.begin()));  // the dropped write left the old chunk
        }
      }
    }
    CHECK(damaged.size() == (persistent ? 2u : 1u));
    // Reads return what is stored, wrong where m holds data of a damaged row;
    // the damaged rows' parity no longer matches, every other row's does.
    const auto got = read_all(r);
    std::vector<std::vector<std::byte>> images;
    for (auto* dev : r.members) images.push_back(dev->snapshot());
    for (uint64_t row = 0; row < kRows; ++row) {
      CAPTURE(row);
      const geometry::RowMap map = geometry::map_row(g, row);
      std::byte* blocks[geometry::kMaxMembers];
      for (uint32_t role = 0; role < g.members; ++role) {
        const uint32_t member = role < d ? map.data[role] : role == d ? map.p : map.q;
        blocks[role] = images[member].data() + r.sb.data_offset + row * kChunk;
      }
      CHECK(parity::verify(g.parity_count(), {blocks, g.members}, kChunk) == !damaged.count(row));
      const size_t at = size_t(row * g.row_data_bytes());
      const bool wrong = std::memcmp(got.data() + at, model.replied.data() + at, g.row_data_bytes()) != 0;
      CHECK(wrong == (damaged.count(row) && map.role[m] < d));
      for (uint32_t k = 0; k < d; ++k) CHECK(std::memcmp(got.data() + at + k * kChunk, blocks[k], kChunk) == 0);
    }
  }
  CHECK(r.failed_mask() == 0);  // undetected: no member is failed
}

// ---- Journal-side helpers ---------------------------------------------------------

template <typename Body>
void journal_cell(const std::string& name, Body body) {
  SUBCASE(name.c_str()) {
    const uint64_t seed = cell_seed(name);
    INFO(name, ": seed ", seed, " (base R5CFS_FAULT_SEED=", base_seed(), ")");
    Watched w(name + fmt::format(" (seed {})", seed));
    body(seed);
  }
}

// A write-back rig with a logged history: random workload, fsynced, drained.
struct History {
  Rig rig;
  Model model;
  std::mt19937_64 rng;
  History(uint32_t level, uint64_t seed) : rig(level, Mode::kWriteBack, seed), model(rig.array->capacity()), rng(seed) {
    REQUIRE(rig.open().ok());
    workload(rig, model, rng, 40, true);
    REQUIRE(rig.fsync().ok());
    model.synced();
  }
  // A page-aligned write of `pages` pages somewhere, then an fsync, both replied.
  void synced_write(size_t pages) {
    const size_t len = pages * kPage;
    const uint64_t off = rng() % ((rig.array->capacity() - len) / kPage) * kPage;
    auto data = random_bytes(rng, len);
    REQUIRE(rig.write(off, data).ok());
    REQUIRE(rig.fsync().ok());
    model.write(off, data, true);
    model.synced();
  }
};

constexpr uint64_t kRingStart = format::JournalSuperblock::kCopies * kPage;

// The byte offset of ring block `blocks` after the one at `at` (wrapping).
uint64_t ring_advance(uint64_t at, uint64_t blocks) {
  const uint64_t ring = kJournalBlocks * kPage - kRingStart;
  return kRingStart + (at - kRingStart + blocks * kPage) % ring;
}

// Where the next record goes: after the last write into the ring.
uint64_t journal_head(const test::FaultDevice& j) {
  const auto writes = j.writes();
  for (auto it = writes.rbegin(); it != writes.rend(); ++it)
    if (it->first >= kRingStart) return ring_advance(it->first, it->second / kPage);
  return kRingStart;
}

void check_refused_as_damage(const Status& st) {
  REQUIRE(!st.ok());
  CHECK(st.error().kind == ErrorKind::kCorruption);
  CHECK(st.error().message.find("journal") != std::string::npos);
  CHECK(st.error().message.find("-o force") != std::string::npos);
}

}  // namespace

// ---- Member rows --------------------------------------------------------------------

TEST_CASE("fault matrix: member × read EIO") {
  member_cells(FaultKind::kReadEio, [](auto... a) { member_failure_cell(FaultKind::kReadEio, a...); });
}
TEST_CASE("fault matrix: member × write EIO") {
  member_cells(FaultKind::kWriteEio, [](auto... a) { member_failure_cell(FaultKind::kWriteEio, a...); });
}
TEST_CASE("fault matrix: member × fdatasync EIO") {
  member_cells(FaultKind::kSyncEio, [](auto... a) { member_failure_cell(FaultKind::kSyncEio, a...); });
}
TEST_CASE("fault matrix: member × write ENOSPC") {
  member_cells(FaultKind::kWriteEnospc, [](auto... a) { member_failure_cell(FaultKind::kWriteEnospc, a...); });
}
TEST_CASE("fault matrix: member × gone (ENXIO)") {
  member_cells(FaultKind::kGone, [](auto... a) { member_failure_cell(FaultKind::kGone, a...); });
}
TEST_CASE("fault matrix: member × bit flip on read (undetected)") {
  member_cells(FaultKind::kFlipOnRead, [](auto... a) { member_corruption_cell(FaultKind::kFlipOnRead, a...); });
}
TEST_CASE("fault matrix: member × bit flip on write (undetected)") {
  member_cells(FaultKind::kFlipOnWrite, [](auto... a) { member_corruption_cell(FaultKind::kFlipOnWrite, a...); });
}
TEST_CASE("fault matrix: member × dropped write (undetected)") {
  member_cells(FaultKind::kDropWrite, [](auto... a) { member_corruption_cell(FaultKind::kDropWrite, a...); });
}

// The flusher reads what a stripe's parity needs straight from the members:
// the data pages the pool lacks (reconstruct-write) or, when that reads
// fewer pages, the old content of the dirty pages and the old parity
// (read-modify-write). If that fails, it reads the lacking pages (again),
// and through the array when they fail once more. A one-time read error
// there is absorbed: the member stays active (unlike the array's own read
// path, which fails it). A persistent one fails the member.
TEST_CASE("fault matrix: member × read EIO in a flush's reads of old or absent pages") {
  for (bool rmw : {false, true})
    for (bool persistent : {false, true}) {
      const std::string where = rmw ? "member (data index 0 of the row) flush read-modify-write read"
                                    : "member (data index 1 of the row) flush reconstruct-write read";
      journal_cell(cell_name(where, FaultKind::kReadEio, persistent, 5, "write-back"), [&](uint64_t seed) {
        Rig r(5, Mode::kWriteBack, seed);
        REQUIRE(r.open().ok());
        const geometry::Geometry g = r.geometry();
        Model model(r.array->capacity());
        std::mt19937_64 rng(seed);
        workload(r, model, rng, 30, true);
        REQUIRE(r.drain().ok());
        // Pages 0 and 2 of one row's first chunk (two runs of one column):
        // the flush reads those two and parity pages 0 and 2 (read-modify-
        // write: 4 pages, against 6). With the same pages of chunks 2 and 3
        // too it reads pages 0 and 2 of chunk 1 (reconstruct-write: 2, against 8).
        const uint64_t row = rng() % kRows, at = row * g.row_data_bytes();
        for (uint64_t chunk : rmw ? std::vector<uint64_t>{0} : std::vector<uint64_t>{0, 2, 3})
          for (uint64_t off : {at + chunk * g.chunk_size, at + chunk * g.chunk_size + 2 * kPage}) {
            auto data = random_bytes(rng, kPage);
            REQUIRE(r.write(off, data).ok());
            model.write(off, data, true);
          }
        const uint32_t m = geometry::map_row(g, row).data[rmw ? 0 : 1];
        r.members[m]->arm(Fault{FaultKind::kReadEio, 1, persistent, r.sb.data_offset});
        REQUIRE(r.drain().ok());
        CHECK(r.members[m]->fired() >= 1);
        // The reconstruct-write's second read fails the member at once; after
        // a failed read-modify-write read the member is not read again until
        // the array reads the row.
        CHECK(read_all(r) == model.replied);
        CHECK(r.failed_mask() == (persistent ? uint64_t(1) << m : 0));
        CHECK_MESSAGE(stray_chunks(r, model.replied).empty(), "stray:", stray_chunks(r, model.replied));
      });
    }
}

// ---- Journal rows -------------------------------------------------------------------

// The journal fails while running: the first failing commit and every later
// write, fsync and drain return EIO (naming the device's error); reads go on
// returning the newest data; nothing replied before a completed fsync is lost
// after a power loss, or after a restart with what the devices hold.
TEST_CASE("fault matrix: journal × {write EIO, fdatasync EIO, write ENOSPC, gone} while running") {
  for (FaultKind kind : {FaultKind::kWriteEio, FaultKind::kSyncEio, FaultKind::kWriteEnospc, FaultKind::kGone})
    for (bool persistent : {false, true})
      for (uint32_t level : {5u, 6u})
        journal_cell(cell_name("journal", kind, persistent, level, "write-back"), [&](uint64_t seed) {
          History h(level, seed);
          Rig& r = h.rig;
          const uint64_t range = kind == FaultKind::kSyncEio ? 4 : 10;
          r.journal->arm(Fault{kind, 1 + h.rng() % range, persistent});
          const auto failure = workload(r, h.model, h.rng, 100, false);
          REQUIRE(failure.has_value());
          CHECK(r.journal->fired() >= 1);
          INFO("first failure: ", failure->op, ": ", failure->error.message);
          CHECK(failure->error.err == EIO);  // whatever the device said
          CHECK(failure->error.message.find("journal") != std::string::npos);
          REQUIRE(r.cache->failure().has_value());
          CHECK(read_all(r) == h.model.visible);
          const Status drained = r.cache->drain();
          REQUIRE(!drained.ok());
          CHECK(drained.error().err == EIO);
          const Status closed = r.cache->close(true);
          REQUIRE(!closed.ok());
          CHECK(closed.error().err == EIO);

          for (bool power_loss : {true, false}) {
            CAPTURE(power_loss);
            Rig again(r.images(power_loss), Mode::kWriteBack, seed);
            REQUIRE(again.open().ok());
            const auto got = read_all(again);
            const std::string bad = bad_pages(got, [&](uint64_t p, uint64_t hash) {
              const auto& ok = h.model.since_sync[p];
              return std::find(ok.begin(), ok.end(), hash) != ok.end();
            });
            CHECK_MESSAGE(bad.empty(), "pages neither as at the last fsync nor as a later write left them:", bad);
            REQUIRE(again.cache->drain().ok());
            CHECK(stray_chunks(again, got).empty());
            REQUIRE(again.cache->close(true).ok());
          }
        });
}

// The journal is only read when the array opens: a read error or a vanished
// journal then fails the open with the device's error, naming the journal,
// and damages nothing. A one-time error is gone on the next attempt.
TEST_CASE("fault matrix: journal × {read EIO, gone} at open") {
  for (FaultKind kind : {FaultKind::kReadEio, FaultKind::kGone})
    for (bool persistent : {false, true})
      journal_cell(cell_name("journal", kind, persistent, 5, "write-back"), [&](uint64_t seed) {
        History h(5, seed);
        h.synced_write(1 + h.rng() % 3);
        Rig again(h.rig.images(true), Mode::kWriteBack, seed);
        // The first read is the superblock's, the second the log's.
        again.journal->arm(Fault{kind, 1 + h.rng() % 2, persistent});
        Status st = again.open();
        REQUIRE(!st.ok());
        CHECK(st.error().err == (kind == FaultKind::kGone ? ENXIO : EIO));
        CHECK(st.error().message.find("journal") != std::string::npos);
        CHECK(again.journal->fired() == 1);
        st = again.open();
        CHECK(st.ok() == !persistent);
        if (persistent) {
          again.journal->disarm();
          REQUIRE(again.open().ok());
        }
        CHECK(read_all(again) == h.model.replied);
      });
}

// A bit flipped while replay reads a logged block: the checksum catches it.
// With synced records after it, open refuses (nothing to lose silently); if it
// is the last record, it is taken for the torn end and its write is lost. No
// flipped byte is ever returned. A one-time flip is gone on the next open.
TEST_CASE("fault matrix: journal × bit flip on read (replay)") {
  for (bool persistent : {false, true})
    for (bool meta : {true, false})
      for (bool records_after : {true, false}) {
        const std::string name = cell_name("journal", FaultKind::kFlipOnRead, persistent, 5, "write-back") +
                                 (meta ? " × metadata block" : " × data block") +
                                 (records_after ? " × synced records after it" : " × last record");
        journal_cell(name, [&](uint64_t seed) {
          History h(5, seed);
          REQUIRE(h.rig.drain().ok());
          const std::vector<std::byte> before = h.model.replied;
          const size_t writes_before = h.rig.journal->writes().size();
          h.synced_write(1 + h.rng() % 3);
          const auto writes = h.rig.journal->writes();
          const uint64_t meta_at = writes[writes_before].first;  // a record's first write starts with its metadata block
          const uint64_t last_at = writes.back().first + writes.back().second - kPage;  // its last data block
          if (records_after) h.synced_write(1 + h.rng() % 3);
          const uint64_t target = meta ? meta_at : last_at;

          Rig again(h.rig.images(true), Mode::kWriteBack, seed);
          again.journal->arm(Fault{FaultKind::kFlipOnRead, 1, persistent, target, target + kPage});
          Status st = again.open();
          // A persistent flip may fire again where the look-ahead past the end rereads the block.
          CHECK((persistent ? again.journal->fired() >= 1 : again.journal->fired() == 1));
          if (!records_after) {
            REQUIRE_MESSAGE(st.ok(), st.error().message);
            CHECK(read_all(again) == before);
            return;
          }
          check_refused_as_damage(st);
          if (!persistent) {
            REQUIRE(again.open().ok());  // the device holds the right bytes
            CHECK(read_all(again) == h.model.replied);
            return;
          }
          check_refused_as_damage(again.open());
          REQUIRE(again.open(true).ok());  // forced: up to the damage
          CHECK(read_all(again) == before);
        });
      }
}

// A journal write that lands with a flipped bit, or not at all, is found by
// the next open: refused when synced records follow it, taken for the torn
// end when none do (its write is lost); never returned as data. Persistent:
// the next record is damaged too. A dropped one leaves nothing behind, so the
// log just ends; a flipped one still proves the damage if its metadata block
// came through (decided from the device, then asserted).
TEST_CASE("fault matrix: journal × {bit flip on write, dropped write}") {
  enum class Target { kMeta, kData, kAnywhere };
  struct Variant {
    FaultKind kind;
    bool persistent;
    Target target;
  };
  for (Variant v : {Variant{FaultKind::kFlipOnWrite, false, Target::kMeta}, Variant{FaultKind::kFlipOnWrite, false, Target::kData},
                    Variant{FaultKind::kFlipOnWrite, true, Target::kAnywhere}, Variant{FaultKind::kDropWrite, false, Target::kAnywhere},
                    Variant{FaultKind::kDropWrite, true, Target::kAnywhere}})
    for (bool records_after : {true, false}) {
      if (v.persistent && !records_after) continue;  // nothing for the fault to fire on twice
      const char* where = v.target == Target::kMeta ? "metadata block" : v.target == Target::kData ? "data block" : "record";
      const std::string name = cell_name("journal", v.kind, v.persistent, 5, "write-back") + " × " + where +
                               (records_after ? " × synced records after it" : " × last record");
      journal_cell(name, [&](uint64_t seed) {
        History h(5, seed);
        test::FaultDevice& j = *h.rig.journal;
        REQUIRE(h.rig.drain().ok());
        const std::vector<std::byte> before = h.model.replied;
        // The next record: its metadata block at the head, then its data blocks.
        const uint64_t head = journal_head(j);
        const size_t pages = size_t(1 + h.rng() % 3);
        Fault f{v.kind, 1, v.persistent, kRingStart, kJournalBlocks * kPage};
        if (v.target != Target::kAnywhere) {
          f.from = v.target == Target::kMeta ? head : ring_advance(head, pages);
          f.to = f.from + kPage;
        }
        j.arm(f);
        h.synced_write(pages);
        CHECK(j.fired() >= 1);
        bool refused = records_after;
        if (records_after) {
          const size_t writes_before_b = j.writes().size();
          h.synced_write(1 + h.rng() % 3);
          if (v.persistent) {
            CHECK(j.fired() >= 2);
            refused = false;  // dropped: nothing of it on the device
            if (v.kind == FaultKind::kFlipOnWrite) {
              auto sb = journal::read_superblock(j);
              REQUIRE(sb.ok());
              const auto image = j.durable();
              const uint64_t b_meta = j.writes()[writes_before_b].first;
              refused = format::decode_meta_block(std::span<const std::byte, kPage>(image.data() + b_meta, kPage), sb->seed()).ok();
            }
          } else {
            CHECK(j.fired() == 1);
          }
        }
        Rig again(h.rig.images(true), Mode::kWriteBack, seed);
        Status st = again.open();
        if (!refused) {
          REQUIRE_MESSAGE(st.ok(), st.error().message);
          CHECK(read_all(again) == before);
          return;
        }
        check_refused_as_damage(st);
        Rig forced(h.rig.images(true), Mode::kWriteBack, seed);
        REQUIRE(forced.open(true).ok());  // up to the damage
        CHECK(read_all(forced) == before);
      });
    }
}
