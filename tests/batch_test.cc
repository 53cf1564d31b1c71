// io::run_batch over real files (io_uring) and memory devices together.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <random>

#include "array/aligned_buffer.h"
#include "io/batch.h"
#include "io/memory_device.h"

using namespace r5;

TEST_CASE("a batch of writes, syncs and reads over files and memory devices") {
  auto dir = std::filesystem::temp_directory_path() / ("r5cfs-batch-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::vector<std::unique_ptr<io::Device>> devs;
  for (int i = 0; i < 3; ++i) {
    auto d = io::open_file(dir / ("f" + std::to_string(i)), {.create = true, .create_size = 1 << 20});
    REQUIRE_MESSAGE(d.ok(), d.error().message);
    devs.push_back(std::move(*d));
  }
  devs.push_back(std::make_unique<io::MemoryDevice>("mem", 1 << 20));

  std::mt19937_64 rng(3);
  AlignedBuffer out(devs.size() * 8 * 4096), in(devs.size() * 8 * 4096);
  for (size_t i = 0; i < out.size(); ++i) out.data()[i] = std::byte(rng());
  std::vector<io::IoOp> ops;
  for (size_t d = 0; d < devs.size(); ++d)
    for (size_t p = 0; p < 8; ++p)
      ops.push_back(io::IoOp::write(devs[d].get(), (p * 3 + 1) * 4096, out.data() + (d * 8 + p) * 4096, 4096));
  for (auto& dev : devs) ops.push_back(io::IoOp::sync(dev.get()));
  io::run_batch(ops);
  for (auto& op : ops) CHECK_MESSAGE(op.status.ok(), op.status.error().message);

  ops.clear();
  for (size_t d = 0; d < devs.size(); ++d)
    for (size_t p = 0; p < 8; ++p)
      ops.push_back(io::IoOp::read(devs[d].get(), (p * 3 + 1) * 4096, in.data() + (d * 8 + p) * 4096, 4096));
  io::run_batch(ops);
  for (auto& op : ops) CHECK(op.status.ok());
  CHECK(std::memcmp(in.data(), out.data(), out.size()) == 0);

  SUBCASE("a read past the end of a file fails that op only") {
    std::vector<io::IoOp> two = {io::IoOp::read(devs[0].get(), 1 << 20, in.data(), 4096),
                                 io::IoOp::read(devs[1].get(), 0, in.data() + 4096, 4096)};
    io::run_batch(two);
    CHECK(!two[0].status.ok());
    CHECK(two[0].status.error().message.find("f0") != std::string::npos);
    CHECK(two[1].status.ok());
  }
  SUBCASE("an injected error is reported on its op") {
    auto* mem = static_cast<io::MemoryDevice*>(devs[3].get());
    mem->fail_writes = true;
    std::vector<io::IoOp> one = {io::IoOp::write(mem, 0, out.data(), 4096)};
    io::run_batch(one);
    CHECK(one[0].status.error().err == EIO);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("open_file reports the path and the reason") {
  auto d = io::open_file("/nonexistent-r5cfs/x.img", {});
  REQUIRE(!d.ok());
  CHECK(d.error().message.find("/nonexistent-r5cfs/x.img") != std::string::npos);
  CHECK(d.error().err == ENOENT);
}

TEST_CASE("page-cache writes and O_DIRECT writes on one file stay coherent (the journal mixes them)") {
  auto dir = std::filesystem::temp_directory_path() / ("r5cfs-cached-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto d = io::open_file(dir / "j", {.create = true, .create_size = 1 << 20, .cached_writes = true});
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  io::Device& dev = **d;
  AlignedBuffer a(3 * 4096), b(4096), in(3 * 4096);
  std::memset(a.data(), 0xa1, a.size());
  std::memset(b.data(), 0xb2, b.size());
  // Cached pages, then a direct write into the middle of them: the direct
  // read must see the cached pages around the direct one, which wins.
  REQUIRE(dev.write_cached(8192, a.span()).ok());
  REQUIRE(dev.write(12288, b.span()).ok());
  REQUIRE(dev.read(8192, in.span()).ok());
  CHECK(std::to_integer<int>(in.data()[0]) == 0xa1);
  CHECK(std::to_integer<int>(in.data()[4096]) == 0xb2);
  CHECK(std::to_integer<int>(in.data()[8192]) == 0xa1);
  // And a cached write over a direct one, read back directly after a sync.
  REQUIRE(dev.write_cached(12288, a.span().subspan(0, 4096)).ok());
  REQUIRE(dev.sync().ok());
  REQUIRE(dev.read(12288, in.span().subspan(0, 4096)).ok());
  CHECK(std::to_integer<int>(in.data()[100]) == 0xa1);
  std::filesystem::remove_all(dir);
}
