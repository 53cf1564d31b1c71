// Engine::open, the mount's first steps over an array of real files: what it
// records on the members, and in which order.
#include <doctest/doctest.h>

#include <filesystem>

#include "array/assembly.h"
#include "engine/creator.h"
#include "engine/engine.h"
#include "support/temp_dir.h"

using namespace r5;
namespace fs = std::filesystem;

namespace {

config::Config write_back_array(const fs::path& dir) {
  auto cfg = config::parse(R"([array]
name = "open"
level = 5
chunk_size = "64KiB"
member_size = "16MiB"
members = ["m0.img", "m1.img", "m2.img", "m3.img", "m4.img"]
[journal]
mode = "write-back"
path = "journal.img"
size = "16MiB"
)",
                           dir / "a.toml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.error().message);
  auto created = engine::create_array(*cfg, {});
  REQUIRE_MESSAGE(created.ok(), created.error().message);
  return *cfg;
}

}  // namespace

// The journal's replay writes the members that are there. Were a missing
// member recorded as failed only after it, a crash in between would let the
// member rejoin at the next mount with its blocks of the repaired rows stale.
// So the record comes first: here the journal cannot be opened at all, and
// the missing member is recorded anyway.
TEST_CASE("a member missing at a mount is recorded as failed before the journal is opened") {
  test::TempDir dir("open");
  const config::Config cfg = write_back_array(dir.path);
  fs::rename(dir.path / "m3.img", dir.path / "m3.away");
  fs::rename(dir.path / "journal.img", dir.path / "journal.away");
  fs::create_directory(dir.path / "journal.img");  // opening it fails

  auto opened = engine::Engine::open(cfg);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().message.find("journal.img") != std::string::npos);
  std::vector<array::ExaminedMember> examined = array::examine(cfg, /*read_only=*/true);
  for (uint32_t i : {0u, 1u, 2u, 4u}) {
    CAPTURE(i);
    REQUIRE(examined[i].sb.has_value());
    CHECK(examined[i].sb->failed_mask == 1u << 3);
    // The refused mount changed nothing else: no resync is due at the next one.
    CHECK(examined[i].sb->state == format::ArrayState::kClean);
  }

  // Back with its old superblock, the member stays out of the array.
  fs::remove(dir.path / "journal.img");
  fs::rename(dir.path / "journal.away", dir.path / "journal.img");
  fs::rename(dir.path / "m3.away", dir.path / "m3.img");
  auto assembled = array::assemble(cfg, array::examine(cfg, true));
  REQUIRE_MESSAGE(assembled.ok(), assembled.error().message);
  CHECK(assembled->degraded());
  CHECK(assembled->roles[3] != array::MemberRole::kActive);
  auto reopened = engine::Engine::open(cfg);
  REQUIRE_MESSAGE(reopened.ok(), reopened.error().message);
  CHECK((*reopened)->array().members().failed_count() == 1);
  REQUIRE((*reopened)->close().ok());
}
