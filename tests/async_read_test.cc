// The asynchronous read path: io::AsyncQueue (one ring thread submitting and
// reaping for many submitters) and Engine::read_async over an array of real
// files, in mode none and write-back, checked against a model byte array:
// direct member reads, pages from the pool, pieces that are not whole pages,
// a degraded array, and a member read that fails under the ring (the read
// is redone through the array, which fails the member and reconstructs).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "array/aligned_buffer.h"
#include "engine/creator.h"
#include "engine/engine.h"
#include "io/async_queue.h"
#include "io/memory_device.h"
#include "support/temp_dir.h"

using namespace r5;
namespace fs = std::filesystem;

namespace {

// A file of `size` bytes where byte i is pattern(i).
std::byte pattern(uint64_t i) { return std::byte(uint8_t((i * 2654435761u) >> 13)); }

// Waits for a done callback that may run on another thread.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  size_t left;
  explicit Latch(size_t n) : left(n) {}
  void count_down() {
    std::lock_guard lock(mu);
    if (--left == 0) cv.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return left == 0; });
  }
};

constexpr uint64_t kSize = 4 << 20;

// A file of kSize pattern bytes in `dir`, opened read-only (with O_DIRECT).
std::unique_ptr<io::Device> pattern_file(const test::TempDir& dir) {
  std::vector<std::byte> data(kSize);
  for (uint64_t i = 0; i < kSize; ++i) data[i] = pattern(i);
  std::ofstream(dir.path / "f", std::ios::binary).write(reinterpret_cast<const char*>(data.data()), kSize);
  auto dev = io::open_file(dir.path / "f", io::OpenOptions{.read_only = true});
  REQUIRE(dev.ok());
  REQUIRE((*dev)->fd() >= 0);
  return std::move(*dev);
}

}  // namespace

TEST_CASE("AsyncQueue: groups from many threads complete once each, with the right bytes") {
  test::TempDir dir{"async"};
  auto dev = pattern_file(dir);

  io::AsyncQueue queue;
  constexpr int kThreads = 4, kGroups = 300;
  std::atomic<int> done_calls{0}, wrong{0}, on_submitter{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::thread::id submitter = std::this_thread::get_id();
      std::mt19937_64 rng(t);
      for (int g = 0; g < kGroups; ++g) {
        // 1 to 20 reads of 4-64 KiB into one buffer, like a request's chunks.
        const size_t n = 1 + rng() % 20;
        auto buf = std::make_shared<AlignedBuffer>(n * 65536);
        std::vector<io::IoOp> ops;
        std::vector<uint64_t> offsets;
        for (size_t i = 0; i < n; ++i) {
          const size_t len = (1 + rng() % 16) * 4096;
          const uint64_t off = rng() % ((kSize - len) / 4096) * 4096;
          ops.push_back(io::IoOp::read(dev.get(), off, buf->data() + i * 65536, len));
        }
        queue.submit(std::move(ops), [&, buf, submitter](std::span<io::IoOp> done) {
          for (const io::IoOp& op : done) {
            if (!op.status.ok()) ++wrong;
            for (size_t b = 0; b < op.len; ++b)
              if (op.buf[b] != pattern(op.offset + b)) {
                ++wrong;
                break;
              }
          }
          ++done_calls;
          on_submitter += std::this_thread::get_id() == submitter;
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  queue.wait_idle();
  CHECK(done_calls == kThreads * kGroups);
  CHECK(wrong == 0);
  CHECK(on_submitter == 0);  // the ring thread ran them: io_uring works here
}

TEST_CASE("AsyncQueue: a group larger than the submission queue, and groups in flight when it is destroyed") {
  test::TempDir dir{"async"};
  auto dev = pattern_file(dir);
  AlignedBuffer buf(1000 * 4096), more_buf(200 * 4 * 4096);
  std::atomic<int> done_calls{0}, wrong{0};
  auto check = [&](std::span<io::IoOp> done) {
    for (const io::IoOp& op : done) {
      if (!op.status.ok()) ++wrong;
      for (size_t b = 0; b < op.len; b += 512)
        if (op.buf[b] != pattern(op.offset + b)) ++wrong;
    }
    ++done_calls;
  };
  auto queue = std::make_unique<io::AsyncQueue>();
  // 1000 reads of 4 KiB in one group: the SQ holds 256.
  std::vector<io::IoOp> ops;
  for (uint64_t i = 0; i < 1000; ++i) ops.push_back(io::IoOp::read(dev.get(), i * 4096, buf.data() + i * 4096, 4096));
  queue->submit(std::move(ops), check);
  // 200 more groups, then the queue goes away at once: every done still runs.
  for (int g = 0; g < 200; ++g) {
    std::vector<io::IoOp> more;
    for (uint64_t i = 0; i < 4; ++i) {
      const uint64_t off = (1000 + uint64_t(g) % 5 * 4 + i) * 4096;
      more.push_back(io::IoOp::read(dev.get(), off, more_buf.data() + (uint64_t(g) * 4 + i) * 4096, 4096));
    }
    queue->submit(std::move(more), check);
  }
  queue.reset();
  CHECK(done_calls == 201);
  CHECK(wrong == 0);
}

TEST_CASE("AsyncQueue: a read past the end fails with its own status; devices without a descriptor run inline") {
  test::TempDir dir{"async"};
  {
    std::vector<char> data(8192, 'x');
    std::ofstream(dir.path / "f", std::ios::binary).write(data.data(), std::streamsize(data.size()));
  }
  auto dev = io::open_file(dir.path / "f", io::OpenOptions{.read_only = true});
  REQUIRE(dev.ok());
  io::AsyncQueue queue;
  AlignedBuffer buf(3 * 4096);
  Latch latch(1);
  std::vector<io::IoOp> ops{io::IoOp::read(dev->get(), 0, buf.data(), 4096),
                            io::IoOp::read(dev->get(), 4096, buf.data() + 4096, 8192)};  // 4 KiB beyond the end
  bool first_ok = false, second_failed = false;
  queue.submit(std::move(ops), [&](std::span<io::IoOp> done) {
    first_ok = done[0].status.ok();
    second_failed = !done[1].status.ok();
    latch.count_down();
  });
  latch.wait();
  CHECK(first_ok);
  CHECK(second_failed);

  io::MemoryDevice mem("mem", 65536);
  REQUIRE(mem.fd() < 0);
  bool ran = false;
  queue.submit({io::IoOp::read(&mem, 0, buf.data(), 4096)}, [&](std::span<io::IoOp> done) { ran = done[0].status.ok(); });
  CHECK(ran);  // before submit returned
  queue.wait_idle();
}

namespace {

constexpr uint64_t kMemberSize = 16 << 20;

// An array of files in a temporary folder, created like r5cfs create and
// opened like mount.r5cfs, with a model of what it must read back.
struct FileArray {
  test::TempDir dir{"async"};
  uint32_t members;
  std::unique_ptr<engine::Engine> engine;
  std::vector<std::byte> model;

  FileArray(uint32_t level, uint32_t n, const char* mode) : members(n) {
    std::string list;
    for (uint32_t i = 0; i < n; ++i) list += fmt::format("{}\"m{}.img\"", i ? ", " : "", i);
    const std::string text = fmt::format(R"([array]
name = "async"
level = {}
chunk_size = "64KiB"
member_size = "16MiB"
members = [{}]
[journal]
mode = "{}"
path = "journal.img"
size = "16MiB"
[cache]
memory = "32MiB"
)",
                                         level, list, mode);
    auto cfg = config::parse(text, dir.path / "a.toml");
    REQUIRE_MESSAGE(cfg.ok(), cfg.error().message);
    auto created = engine::create_array(*cfg, {});
    REQUIRE_MESSAGE(created.ok(), created.error().message);
    auto opened = engine::Engine::open(*cfg);
    REQUIRE_MESSAGE(opened.ok(), opened.error().message);
    engine = std::move(*opened);
    engine->start_background();
    model.assign(engine->capacity(), std::byte{0});
  }

  void write(uint64_t off, size_t len, std::mt19937_64& rng) {
    std::vector<std::byte> data(len);
    for (std::byte& b : data) b = std::byte(rng());
    REQUIRE(engine->write(off, data).ok());
    std::memcpy(model.data() + off, data.data(), len);
  }

  // read_async of [off, off + len) into an aligned buffer (shifted by
  // `misalign` bytes), waited for, compared with the model.
  bool read_matches(uint64_t off, size_t len, size_t misalign = 0) {
    AlignedBuffer buf(len + misalign);
    Latch latch(1);
    Status result;
    engine->read_async(off, {buf.data() + misalign, len}, [&](Status st) {
      result = std::move(st);
      latch.count_down();
    });
    latch.wait();
    REQUIRE_MESSAGE(result.ok(), result.error().message);
    return std::memcmp(buf.data() + misalign, model.data() + off, len) == 0;
  }
};

void random_reads_match(FileArray& a, std::mt19937_64& rng, int count) {
  int wrong = 0;
  for (int i = 0; i < count; ++i) {
    const bool pages = rng() % 4 != 0;
    size_t len = pages ? (1 + rng() % 64) * 4096 : 1 + rng() % 300000;
    uint64_t off = pages ? rng() % ((a.model.size() - len) / 4096) * 4096 : rng() % (a.model.size() - len);
    if (!a.read_matches(off, len, pages ? 0 : rng() % 2 * 512)) ++wrong;
  }
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("Engine::read_async matches the model: direct reads, the pool, partial pages, concurrent readers") {
  for (const char* mode : {"none", "write-back"}) {
    for (uint32_t level : {5u, 6u}) {
      CAPTURE(mode);
      CAPTURE(level);
      FileArray a(level, level == 5 ? 5 : 6, mode);
      std::mt19937_64 rng(level);
      for (int i = 0; i < 200; ++i) {
        const size_t len = (1 + rng() % 32) * 4096 - (rng() % 3 == 0 ? rng() % 4096 : 0);
        a.write(rng() % (a.model.size() - len), len, rng);
      }
      const uint64_t before = a.engine->array().counters().member_bytes_read.load();
      random_reads_match(a, rng, 300);
      // Whole-page reads went to the members through the ring and are counted.
      CHECK(a.engine->array().counters().member_bytes_read.load() > before);

      // Concurrent readers while a writer changes other ranges: every read
      // of a range nobody writes matches.
      const uint64_t half = a.model.size() / 2 / 4096 * 4096;
      std::atomic<bool> stop{false};
      std::thread writer([&] {
        std::mt19937_64 wrng(99);
        std::vector<std::byte> data(65536, std::byte{7});
        while (!stop) REQUIRE(a.engine->write(half + wrng() % ((a.model.size() - half - 65536) / 4096) * 4096, data).ok());
      });
      std::atomic<int> wrong{0};
      std::vector<std::thread> readers;
      for (int t = 0; t < 3; ++t) {
        readers.emplace_back([&, t] {
          std::mt19937_64 r(t);
          for (int i = 0; i < 150; ++i) {
            const size_t len = (1 + r() % 64) * 4096;
            if (!a.read_matches(r() % ((half - len) / 4096) * 4096, len)) ++wrong;
          }
        });
      }
      for (std::thread& t : readers) t.join();
      stop = true;
      writer.join();
      CHECK(wrong == 0);
      REQUIRE(a.engine->close().ok());
    }
  }
}

TEST_CASE("Engine::read_async on a degraded array reconstructs, also when the member fails during the reads") {
  FileArray a(6, 6, "none");
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100; ++i) a.write(rng() % (a.model.size() / 4096 - 64) * 4096, 65536, rng);
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 r(t + 10);
      for (int i = 0; i < 200; ++i) {
        const size_t len = (1 + r() % 64) * 4096;
        if (!a.read_matches(r() % ((a.model.size() - len) / 4096) * 4096, len)) ++wrong;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(a.engine->fail_member(2).ok());
  for (std::thread& t : readers) t.join();
  CHECK(wrong == 0);
  const uint64_t degraded = a.engine->array().counters().degraded_reads.load();
  random_reads_match(a, rng, 200);
  CHECK(a.engine->array().counters().degraded_reads.load() > degraded);
  REQUIRE(a.engine->close().ok());
}

TEST_CASE("a member read that fails under the ring is redone through the array, which fails the member") {
  FileArray a(5, 5, "write-back");
  std::mt19937_64 rng(6);
  for (int i = 0; i < 100; ++i) a.write(rng() % (a.model.size() / 4096 - 64) * 4096, 65536, rng);
  REQUIRE(a.engine->drain().ok());  // the data on the members, none in the pool
  // Member 3 loses everything past its superblock area: its reads come back
  // short, an error under the ring and again in read().
  REQUIRE(truncate((a.dir.path / "m3.img").c_str(), 8192) == 0);
  // Row 0's data chunk 3 is on member 3 (left-symmetric: P on member 4):
  // a whole-page read of it goes to the ring, fails there, fails the member
  // and comes back right from parity.
  CHECK(a.read_matches(3 * 65536, 65536));
  CHECK((a.engine->array().members().failed_mask() >> 3 & 1) == 1);
  random_reads_match(a, rng, 200);
  CHECK((a.engine->array().members().failed_mask() >> 3 & 1) == 1);
  CHECK(a.engine->array().counters().degraded_reads.load() > 0);
  (void)a.engine->close();  // member 3 cannot take its clean superblock
}
