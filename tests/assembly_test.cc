// create_array + examine + assemble on real member files: the happy path and
// every member problem assembly must explain.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "array/assembly.h"
#include "engine/creator.h"
#include "journal/reader.h"

using namespace r5;
namespace fs = std::filesystem;

namespace {

struct Workspace {
  fs::path dir;
  explicit Workspace(const std::string& tag) {
    dir = fs::temp_directory_path() / ("r5cfs-assembly-" + tag + "-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Workspace() { fs::remove_all(dir); }

  config::Config config(uint32_t level, uint32_t members, const std::string& name = "a") const {
    config::Config c;
    c.file = dir / (name + ".toml");
    c.array.name = name;
    c.array.level = level;
    c.array.chunk_size = 65536;
    c.array.member_size = 8 << 20;
    for (uint32_t i = 0; i < members; ++i) c.array.members.push_back(dir / (name + std::to_string(i) + ".img"));
    c.journal.mode = config::JournalMode::kNone;
    return c;
  }
};

Result<array::Assembled> assemble(const config::Config& c, bool read_only = true) {
  return array::assemble(c, array::examine(c, read_only));
}

bool has_notice(const array::Assembled& a, const std::string& text) {
  for (const auto& n : a.notices)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a created array assembles with every member active") {
  Workspace w("ok");
  auto c = w.config(5, 4);
  auto created = engine::create_array(c, {});
  REQUIRE_MESSAGE(created.ok(), created.error().message);
  CHECK(created->sb.data_offset == 1 << 20);
  CHECK(created->sb.data_size == (8 << 20) - (2 << 20));
  auto a = assemble(c);
  REQUIRE_MESSAGE(a.ok(), a.error().message);
  CHECK(!a->degraded());
  CHECK(a->notices.empty());
  for (auto r : a->roles) CHECK(r == array::MemberRole::kActive);
}

TEST_CASE("create refuses existing members and tiny files; --force overrides") {
  Workspace w("create");
  auto c = w.config(5, 3);
  REQUIRE(engine::create_array(c, {}).ok());
  auto again = engine::create_array(c, {});
  REQUIRE(!again.ok());
  CHECK(again.error().message.find("already a member of r5cfs array 'a'") != std::string::npos);
  CHECK(engine::create_array(c, {.force = true}).ok());

  auto small = w.config(5, 3, "s");
  { std::ofstream(small.array.members[1]) << "tiny"; }
  auto r = engine::create_array(small, {});
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("too small") != std::string::npos);
  CHECK(!fs::exists(small.array.members[0]));  // nothing was created

  auto nosize = w.config(5, 3, "n");
  nosize.array.member_size = 0;
  r = engine::create_array(nosize, {});
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("array.member_size: missing") != std::string::npos);
}

TEST_CASE("members listed out of order are re-ordered by slot") {
  Workspace w("order");
  auto c = w.config(5, 4);
  REQUIRE(engine::create_array(c, {}).ok());
  std::swap(c.array.members[0], c.array.members[2]);
  auto a = assemble(c);
  REQUIRE(a.ok());
  CHECK(!a->degraded());
  CHECK(has_notice(*a, "holds slot 2"));
  CHECK(a->slots[2].path == c.array.members[0].string());
}

TEST_CASE("missing, stale, foreign, blank and truncated members are left out with a reason") {
  Workspace w("out");
  auto c = w.config(6, 6);
  REQUIRE(engine::create_array(c, {}).ok());

  SUBCASE("missing member: degraded") {
    fs::remove(c.array.members[1]);
    auto a = assemble(c);
    REQUIRE(a.ok());
    CHECK(a->degraded());
    CHECK(a->sb.failed_mask == 2u);
    CHECK(a->roles[1] == array::MemberRole::kMissing);
    CHECK(has_notice(*a, "starts degraded"));
  }
  SUBCASE("foreign member") {
    auto other = w.config(6, 6, "b");
    REQUIRE(engine::create_array(other, {}).ok());
    c.array.members[3] = other.array.members[3];
    auto a = assemble(c);
    REQUIRE(a.ok());
    CHECK(a->roles[3] == array::MemberRole::kForeign);
    CHECK(has_notice(*a, "belongs to another r5cfs array ('b'"));
  }
  SUBCASE("stale member: older events") {
    fs::copy_file(c.array.members[0], w.dir / "old0.img");
    {
      auto a = assemble(c, /*read_only=*/false);
      REQUIRE(a.ok());
      array::MemberSet set(a->sb, std::move(a->slots));
      REQUIRE(set.write_superblocks(format::ArrayState::kClean).ok());
    }
    fs::copy_file(w.dir / "old0.img", c.array.members[0], fs::copy_options::overwrite_existing);
    auto a = assemble(c);
    REQUIRE(a.ok());
    CHECK(a->roles[0] == array::MemberRole::kStale);
    CHECK(has_notice(*a, "stale (events 1 < 2)"));
  }
  SUBCASE("blank member") {
    fs::resize_file(c.array.members[4], 0);
    fs::resize_file(c.array.members[4], 8 << 20);
    auto a = assemble(c);
    REQUIRE(a.ok());
    CHECK(a->roles[4] == array::MemberRole::kBlank);
    CHECK(has_notice(*a, "no r5cfs member superblock"));
  }
  SUBCASE("truncated member") {
    fs::resize_file(c.array.members[5], 4 << 20);
    auto a = assemble(c);
    REQUIRE(a.ok());
    CHECK(a->roles[5] == array::MemberRole::kInconsistent);
    CHECK(has_notice(*a, "smaller than its data area end"));
  }
  SUBCASE("three members gone: RAID6 cannot start") {
    for (int i : {0, 2, 4}) fs::remove(c.array.members[size_t(i)]);
    auto a = assemble(c);
    REQUIRE(!a.ok());
    CHECK(a.error().message.find("cannot start: 3 of 6 members unavailable") != std::string::npos);
  }
  SUBCASE("a failed member recorded in the superblocks stays out") {
    {
      auto a = assemble(c, /*read_only=*/false);
      REQUIRE(a.ok());
      array::MemberSet set(a->sb, std::move(a->slots));
      REQUIRE(set.mark_failed(2, "drill").ok());
    }
    auto a = assemble(c);
    REQUIRE(a.ok());
    CHECK(a->roles[2] == array::MemberRole::kFailed);
    CHECK(a->sb.failed_mask == 4u);
  }
}

TEST_CASE("config and members disagreeing on geometry is refused, naming the key") {
  Workspace w("geo");
  auto c = w.config(5, 4);
  REQUIRE(engine::create_array(c, {}).ok());
  auto chunk = c;
  chunk.array.chunk_size = 131072;
  auto a = assemble(chunk);
  REQUIRE(!a.ok());
  CHECK(a.error().message.find("array.chunk_size: config says 128KiB, but the members were created with 64KiB") !=
        std::string::npos);
  auto level = c;
  level.array.level = 6;
  a = assemble(level);
  REQUIRE(!a.ok());
  CHECK(a.error().message.find("array.level") != std::string::npos);

  auto dup = c;
  dup.array.members[1] = w.dir / "copy0.img";
  fs::copy_file(c.array.members[0], dup.array.members[1]);
  a = assemble(dup);
  REQUIRE(!a.ok());
  CHECK(a.error().message.find("both claim slot 0") != std::string::npos);
}

TEST_CASE("create formats the journal named by journal.path, and refuses to overwrite one") {
  Workspace w("journal");
  auto c = w.config(5, 3);
  c.journal.path = w.dir / "j" / "journal.img";
  c.journal.size = 4 << 20;
  auto created = engine::create_array(c, {});
  REQUIRE_MESSAGE(created.ok(), created.error().message);
  auto dev = io::open_file(c.journal.path, {.read_only = true});
  REQUIRE(dev.ok());
  auto sb = journal::read_superblock(**dev);
  REQUIRE_MESSAGE(sb.ok(), sb.error().message);
  CHECK(sb->array_uuid == created->sb.array_uuid);
  CHECK(sb->block_count == 1024);
  CHECK(sb->data_size == created->sb.data_size);
  CHECK((sb->flags & format::kJournalClean) != 0);
  auto scan = journal::scan(**dev, *sb);
  REQUIRE(scan.ok());
  CHECK(scan->records.empty());

  // Another array's create must not take this journal over.
  auto other = w.config(5, 3, "b");
  other.journal.path = c.journal.path;
  auto again = engine::create_array(other, {});
  REQUIRE(!again.ok());
  CHECK(again.error().message.find("already holds an r5cfs journal") != std::string::npos);
  CHECK(!fs::exists(other.array.members[0]));

  auto nosize = w.config(5, 3, "n");
  nosize.journal.path = w.dir / "j2.img";
  auto r = engine::create_array(nosize, {});
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("journal.size: missing, needed to create") != std::string::npos);
}
