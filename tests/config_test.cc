// The config is the user's interface: every key, default and error message
// is pinned here word for word, because a vague message is a support call.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using r5::config::Config;
using r5::config::JournalMode;
using r5::config::JournalSync;
using r5::geometry::Layout;

namespace {

// Smallest valid config: every optional key left out.
const std::string kMinimal = R"([array]
name = "t"
level = 5
members = ["m0", "m1", "m2"]

[journal]
path = "j"
)";

constexpr const char* kFile = "conf/t.toml";

// Replaces the first `from` in `text`; the test is wrong if it is absent.
std::string with(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "test bug: '" << from << "' not in config");
  return text.replace(at, from.size(), to);
}

// Appends `line` to the [table] section of kMinimal (adding the section when absent).
std::string add(const std::string& table, const std::string& line) {
  std::string text = kMinimal;
  std::string header = "[" + table + "]\n";
  size_t at = text.find(header);
  if (at == std::string::npos) return text + "\n" + header + line + "\n";
  return text.insert(at + header.size(), line + "\n");
}

// The error message, or "OK".
std::string error_of(const std::string& text, const fs::path& file = kFile) {
  auto r = r5::config::parse(text, file);
  if (r.ok()) return "OK";
  CHECK(r.error().kind == r5::ErrorKind::kInvalid);
  CHECK(r.error().err == EINVAL);
  CHECK(r.error().message.find('\n') == std::string::npos);
  return r.error().message;
}

Config parse_ok(const std::string& text, const fs::path& file = "/etc/r5/t.toml") {
  auto r = r5::config::parse(text, file);
  INFO(text);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
  return std::move(r).value();
}

std::string repeat(char c, size_t n) { return std::string(n, c); }

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "r5cfs-config-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(path_ / name, std::ios::binary);
    out << text;
    REQUIRE(out.good());
  }

 private:
  fs::path path_;
};

// The source tree's conf/ folder, wherever the test runs from.
fs::path conf_dir() {
  std::vector<fs::path> candidates = {fs::path(__FILE__).parent_path().parent_path() / "conf"};
  fs::path dir = fs::current_path();
  for (int i = 0; i < 4; i++, dir = dir.parent_path()) candidates.push_back(dir / "conf");
  for (const fs::path& c : candidates)
    if (fs::exists(c / "demo.toml") && fs::exists(c / "demo-raid6.toml")) return c;
  FAIL("conf/demo.toml not found from " << fs::current_path());
  return {};
}

}  // namespace

TEST_CASE("defaults of every optional key") {
  Config c = parse_ok(kMinimal);
  CHECK(c.file == "/etc/r5/t.toml");
  CHECK(c.array.name == "t");
  CHECK(c.array.level == 5);
  CHECK(c.array.layout == Layout::kLeftSymmetric);
  CHECK(c.array.chunk_size == 512 * 1024);
  CHECK(c.array.member_size == 0);
  CHECK(c.array.members == std::vector<fs::path>{"/etc/r5/m0", "/etc/r5/m1", "/etc/r5/m2"});
  CHECK(c.journal.path == "/etc/r5/j");
  CHECK(c.journal.size == 0);
  CHECK(c.journal.mode == JournalMode::kWriteBack);
  CHECK(c.journal.sync == JournalSync::kFsync);
  CHECK(c.journal.drain_on_unmount == false);
  CHECK(c.cache.memory == 256ull << 20);
  CHECK(c.cache.max_age == 10s);
  CHECK(c.mount.image == "array.img");
  CHECK(c.mount.control == "/run/r5cfs/t.sock");
  CHECK(c.array.sync_speed_max == 200ull << 20);
}

TEST_CASE("every key set") {
  Config c = parse_ok(R"(
# comment
[array]
name = "Big.array_2-x"
level = 6
layout = "left-symmetric"
chunk_size = "64KiB"
member_size = "1GiB"
members = ["/dev/disk/a", "b", "c", "d", "e", "f"]
sync_speed_max = "50MiB"

[journal]
path = "/ssd/journal"
size = 67108864
mode = "write-through"
sync = "always"
drain_on_unmount = true

[cache]
memory = "1GiB"
max_age = "500ms"

[mount]
image = "disk.raw"
control = "run/big.sock"
)");
  CHECK(c.array.name == "Big.array_2-x");
  CHECK(c.array.level == 6);
  CHECK(c.array.layout == Layout::kLeftSymmetric);
  CHECK(c.array.chunk_size == 64 * 1024);
  CHECK(c.array.member_size == 1ull << 30);
  CHECK(c.array.members.size() == 6);
  CHECK(c.array.members[0] == "/dev/disk/a");
  CHECK(c.array.members[5] == "/etc/r5/f");
  CHECK(c.journal.path == "/ssd/journal");
  CHECK(c.journal.size == 64ull << 20);
  CHECK(c.journal.mode == JournalMode::kWriteThrough);
  CHECK(c.journal.sync == JournalSync::kAlways);
  CHECK(c.journal.drain_on_unmount == true);
  CHECK(c.cache.memory == 1ull << 30);
  CHECK(c.cache.max_age == 500ms);
  CHECK(c.mount.image == "disk.raw");
  CHECK(c.mount.control == "/etc/r5/run/big.sock");
  CHECK(c.array.sync_speed_max == 50ull << 20);
}

TEST_CASE("inline tables and dotted keys are the same config") {
  Config c = parse_ok(R"(
array = { name = "t", level = 5, members = ["a", "b", "c"] }
journal.path = "j"
journal.mode = "none"
cache.max_age = "2m"
)");
  CHECK(c.array.members.size() == 3);
  CHECK(c.journal.mode == JournalMode::kNone);
  CHECK(c.cache.max_age == 2min);
}

TEST_CASE("the demo configs are valid") {
  fs::path dir = conf_dir();
  SUBCASE("RAID5") {
    auto r = r5::config::load(dir / "demo.toml");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    const Config& c = *r;
    CHECK(c.array.level == 5);
    CHECK(c.array.layout == Layout::kLeftSymmetric);
    CHECK(c.array.chunk_size == 64 * 1024);
    CHECK(c.array.member_size == 256ull << 20);
    REQUIRE(c.array.members.size() == 5);
    // Members and journal share one "demo" folder, wherever the file puts it.
    fs::path folder = c.journal.path.parent_path();
    CHECK(folder.is_absolute());
    CHECK(folder.filename() == "demo");
    CHECK(c.journal.path.filename() == "journal.img");
    for (int i = 0; i < 5; i++) CHECK(c.array.members[i] == folder / ("m" + std::to_string(i) + ".img"));
    CHECK(c.journal.size == 64ull << 20);
    CHECK(c.journal.mode == JournalMode::kWriteBack);
    CHECK(c.journal.sync == JournalSync::kFsync);
    CHECK(c.cache.memory == 256ull << 20);
    CHECK(c.cache.max_age == 10s);
    CHECK(c.mount.image == "array.img");
  }
  SUBCASE("RAID6") {
    auto r = r5::config::load(dir / "demo-raid6.toml");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    const Config& c = *r;
    CHECK(c.array.level == 6);
    CHECK(c.array.chunk_size == 64 * 1024);
    REQUIRE(c.array.members.size() == 6);
    fs::path folder = c.journal.path.parent_path();
    CHECK(folder.is_absolute());
    CHECK(folder.filename() == "demo6");
    CHECK(c.journal.path.filename() == "journal.img");
    for (int i = 0; i < 6; i++) CHECK(c.array.members[i] == folder / ("m" + std::to_string(i) + ".img"));
    CHECK(c.journal.mode == JournalMode::kWriteBack);
  }
}

TEST_CASE("relative paths resolve against the config file's folder") {
  std::string text = with(kMinimal, R"(["m0", "m1", "m2"])", R"(["../disks/a.img", "./b//c/../d.img", "/abs/e"])");
  text = with(text, R"(path = "j")", R"(path = "../ssd/j")");
  SUBCASE("absolute config file") {
    Config c = parse_ok(text, "/srv/r5/conf/x.toml");
    CHECK(c.file == "/srv/r5/conf/x.toml");
    CHECK(c.array.members[0] == "/srv/r5/disks/a.img");
    CHECK(c.array.members[1] == "/srv/r5/conf/b/d.img");
    CHECK(c.array.members[2] == "/abs/e");
    CHECK(c.journal.path == "/srv/r5/ssd/j");
  }
  SUBCASE("config file path with dots is normalized") {
    Config c = parse_ok(text, "/srv/r5/./other/../conf/x.toml");
    CHECK(c.file == "/srv/r5/conf/x.toml");
    CHECK(c.array.members[0] == "/srv/r5/disks/a.img");
  }
  SUBCASE("relative config file resolves against the working directory") {
    Config c = parse_ok(text, "conf/x.toml");
    fs::path cwd = fs::current_path();
    CHECK(c.file == (cwd / "conf/x.toml").lexically_normal());
    CHECK(c.array.members[0] == (cwd / "disks/a.img").lexically_normal());
    CHECK(c.journal.path == (cwd / "ssd/j").lexically_normal());
    CHECK(c.file.is_absolute());
  }
  SUBCASE("bare config file name") {
    Config c = parse_ok(text, "x.toml");
    CHECK(c.file == (fs::current_path() / "x.toml").lexically_normal());
    CHECK(c.array.members[2] == "/abs/e");
  }
}

TEST_CASE("unknown keys and tables") {
  CHECK(error_of(add("array", "foo = 1")) ==
        "conf/t.toml: unknown key 'array.foo', expected one of: name, level, layout, chunk_size, member_size, members, sync_speed_max");
  CHECK(error_of(add("journal", "foo = 1")) ==
        "conf/t.toml: unknown key 'journal.foo', expected one of: path, size, mode, sync, drain_on_unmount");
  CHECK(error_of(add("cache", "foo = 1")) == "conf/t.toml: unknown key 'cache.foo', expected one of: memory, max_age");
  CHECK(error_of(add("mount", "foo = 1")) == "conf/t.toml: unknown key 'mount.foo', expected one of: image, control");
  CHECK(error_of(add("mounts", "image = \"a\"")) ==
        "conf/t.toml: unknown table 'mounts', expected one of the tables [array] [journal] [cache] [mount]");
  CHECK(error_of("verbose = true\n" + kMinimal) ==
        "conf/t.toml: unknown key 'verbose', expected one of the tables [array] [journal] [cache] [mount]");
  // A typo is reported as a typo, not as the key it should have been.
  CHECK(error_of(with(kMinimal, "level = 5", "levle = 5")) == "conf/t.toml: unknown key 'array.levle', expected one of: name, level, layout, chunk_size, member_size, members, sync_speed_max");
  CHECK(error_of(add("array", "[array.sub]\nx = 1")) == "conf/t.toml: unknown key 'array.sub', expected one of: name, level, layout, chunk_size, member_size, members, sync_speed_max");
  CHECK(error_of(add("array", "\"a\\nb\" = 1")) == "conf/t.toml: unknown key 'array.a\\nb', expected one of: name, level, layout, chunk_size, member_size, members, sync_speed_max");
  CHECK(error_of(kMinimal + "[[cache]]\nmemory = 1\n") == "conf/t.toml: cache: found an array, expected a table");
  CHECK(error_of("mount = 5\n" + kMinimal) == "conf/t.toml: mount: found integer 5, expected a table");
}

TEST_CASE("missing required keys") {
  CHECK(error_of(with(kMinimal, "name = \"t\"\n", "")) == "conf/t.toml: array.name: missing, expected a string");
  CHECK(error_of(with(kMinimal, "level = 5\n", "")) == "conf/t.toml: array.level: missing, expected 5 or 6");
  CHECK(error_of(with(kMinimal, "members = [\"m0\", \"m1\", \"m2\"]\n", "")) ==
        "conf/t.toml: array.members: missing, expected an array of member paths");
  CHECK(error_of(with(kMinimal, "path = \"j\"\n", "")) ==
        "conf/t.toml: journal.path: missing, expected a path (required unless journal.mode = \"none\")");
  CHECK(error_of(with(kMinimal, "path = \"j\"\n", "mode = \"write-through\"\n")) ==
        "conf/t.toml: journal.path: missing, expected a path (required unless journal.mode = \"none\")");
  CHECK(error_of("") == "conf/t.toml: array.name: missing, expected a string");
  CHECK(error_of("[journal]\nmode = \"none\"\n") == "conf/t.toml: array.name: missing, expected a string");

  Config c = parse_ok(with(kMinimal, "path = \"j\"\n", "mode = \"none\"\n"));
  CHECK(c.journal.mode == JournalMode::kNone);
  CHECK(c.journal.path.empty());
  // No [journal] table at all is fine for mode none only, and mode defaults to write-back.
  CHECK(error_of(with(kMinimal, "[journal]\npath = \"j\"\n", "")) ==
        "conf/t.toml: journal.path: missing, expected a path (required unless journal.mode = \"none\")");
}

TEST_CASE("wrong types") {
  const std::string kSize = "a size such as 65536 or \"64KiB\" (suffix B, KiB, MiB, GiB or TiB)";
  const std::string kDuration = "a duration such as \"10s\" or \"500ms\" (suffix ms, s, m or h)";
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {with(kMinimal, "name = \"t\"", "name = 5"), "array.name: found integer 5, expected a string"},
      {with(kMinimal, "level = 5", "level = \"5\""), "array.level: found \"5\", expected 5 or 6"},
      {with(kMinimal, "level = 5", "level = 5.0"), "array.level: found float 5.0, expected 5 or 6"},
      {with(kMinimal, "level = 5", "level = true"), "array.level: found boolean true, expected 5 or 6"},
      {add("array", "layout = 2"),
       "array.layout: found integer 2, expected \"left-asymmetric\", \"right-asymmetric\", \"left-symmetric\" or "
       "\"right-symmetric\""},
      {add("array", "chunk_size = 1.5"), "array.chunk_size: found float 1.5, expected " + kSize},
      {add("array", "chunk_size = [65536]"), "array.chunk_size: found an array, expected " + kSize},
      {add("array", "member_size = false"), "array.member_size: found boolean false, expected " + kSize},
      {add("array", "member_size = 1979-05-27"), "array.member_size: found date 1979-05-27, expected " + kSize},
      {with(kMinimal, R"(members = ["m0", "m1", "m2"])", R"(members = "m0 m1 m2")"),
       "array.members: found \"m0 m1 m2\", expected an array of member paths"},
      {with(kMinimal, R"(members = ["m0", "m1", "m2"])", R"(members = { a = "m0" })"),
       "array.members: found a table, expected an array of member paths"},
      {with(kMinimal, R"(["m0", "m1", "m2"])", R"(["m0", 1, "m2"])"),
       "array.members[1]: found integer 1, expected a string"},
      {with(kMinimal, R"(["m0", "m1", "m2"])", R"(["m0", "m1", ["m2"]])"),
       "array.members[2]: found an array, expected a string"},
      {with(kMinimal, "path = \"j\"", "path = 1"), "journal.path: found integer 1, expected a string"},
      {add("journal", "size = \"big\""), "journal.size: found \"big\", expected " + kSize},
      {add("journal", "mode = false"),
       "journal.mode: found boolean false, expected \"write-back\", \"write-through\" or \"none\""},
      {add("journal", "sync = 1"), "journal.sync: found integer 1, expected \"fsync\" or \"always\""},
      {add("journal", "drain_on_unmount = \"yes\""), "journal.drain_on_unmount: found \"yes\", expected true or false"},
      {add("journal", "drain_on_unmount = 1"), "journal.drain_on_unmount: found integer 1, expected true or false"},
      {add("cache", "memory = 1e9"), "cache.memory: found float 1000000000.0, expected " + kSize},
      {add("cache", "max_age = 10"), "cache.max_age: found integer 10, expected " + kDuration},
      {add("cache", "max_age = 07:32:00"), "cache.max_age: found time 07:32:00, expected " + kDuration},
      {add("cache", "max_age = 1979-05-27T07:32:00Z"),
       "cache.max_age: found date-time 1979-05-27T07:32:00Z, expected " + kDuration},
      {add("mount", "image = 5"), "mount.image: found integer 5, expected a string"},
      {add("mount", "image = [\"a\"]"), "mount.image: found an array, expected a string"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    CHECK(error_of(c.text) == "conf/t.toml: " + c.message);
  }
}

TEST_CASE("array.name") {
  CHECK(parse_ok(with(kMinimal, "name = \"t\"", "name = \"" + repeat('n', 31) + "\"")).array.name == repeat('n', 31));
  CHECK(parse_ok(with(kMinimal, "name = \"t\"", "name = \"aZ09._-\"")).array.name == "aZ09._-");
  const std::string kExpected = "expected 1 to 31 letters, digits, '.', '_' or '-'";
  CHECK(error_of(with(kMinimal, "name = \"t\"", "name = \"\"")) == "conf/t.toml: array.name: found \"\", " + kExpected);
  CHECK(error_of(with(kMinimal, "name = \"t\"", "name = \"a b\"")) ==
        "conf/t.toml: array.name: found \"a b\", " + kExpected);
  CHECK(error_of(with(kMinimal, "name = \"t\"", "name = \"a/b\"")) ==
        "conf/t.toml: array.name: found \"a/b\", " + kExpected);
  CHECK(error_of(with(kMinimal, "name = \"t\"", "name = \"\u00e4\"")) ==
        "conf/t.toml: array.name: found \"\u00e4\", " + kExpected);
  CHECK(error_of(with(kMinimal, "name = \"t\"", "name = \"" + repeat('n', 32) + "\"")) ==
        "conf/t.toml: array.name: found \"" + repeat('n', 32) + "\", " + kExpected);
  // Control characters stay escaped so the message remains one line.
  CHECK(error_of(with(kMinimal, "name = \"t\"", R"(name = "a\nb\u0001\"\\")")) ==
        "conf/t.toml: array.name: found \"a\\nb\\u0001\\\"\\\\\", " + kExpected);
}

TEST_CASE("array.level") {
  CHECK(parse_ok(kMinimal).array.level == 5);
  CHECK(parse_ok(with(with(kMinimal, "level = 5", "level = 6"), "\"m2\"]", "\"m2\", \"m3\"]")).array.level == 6);
  for (const char* bad : {"4", "7", "0", "-5", "1", "0x5", "9223372036854775807", "-9223372036854775808"}) {
    CAPTURE(bad);
    std::string shown = std::string(bad) == "0x5" ? "5" : bad;
    if (shown == "5") continue;  // 0x5 is 5
    CHECK(error_of(with(kMinimal, "level = 5", std::string("level = ") + bad)) ==
          "conf/t.toml: array.level: found integer " + shown + ", expected 5 or 6");
  }
  CHECK(parse_ok(with(kMinimal, "level = 5", "level = 0x5")).array.level == 5);
}

TEST_CASE("array.layout") {
  struct Named {
    const char* name;
    Layout layout;
  };
  const Named kNamed[] = {{"left-asymmetric", Layout::kLeftAsymmetric},
                         {"right-asymmetric", Layout::kRightAsymmetric},
                         {"left-symmetric", Layout::kLeftSymmetric},
                         {"right-symmetric", Layout::kRightSymmetric}};
  for (Named n : kNamed) {
    CAPTURE(n.name);
    CHECK(parse_ok(add("array", std::string("layout = \"") + n.name + "\"")).array.layout == n.layout);
  }
  const std::string kAll =
      "expected \"left-asymmetric\", \"right-asymmetric\", \"left-symmetric\" or \"right-symmetric\"";
  CHECK(error_of(add("array", "layout = \"left\"")) == "conf/t.toml: array.layout: found \"left\", " + kAll);
  CHECK(error_of(add("array", "layout = \"Left-Symmetric\"")) ==
        "conf/t.toml: array.layout: found \"Left-Symmetric\", " + kAll);
  CHECK(error_of(add("array", "layout = \"\"")) == "conf/t.toml: array.layout: found \"\", " + kAll);

  std::string raid6 = with(with(kMinimal, "level = 5", "level = 6"), "\"m2\"]", "\"m2\", \"m3\"]");
  CHECK(parse_ok(raid6).array.layout == Layout::kLeftSymmetric);
  CHECK(parse_ok(with(raid6, "level = 6", "level = 6\nlayout = \"left-symmetric\"")).array.layout ==
        Layout::kLeftSymmetric);
  for (const char* other : {"left-asymmetric", "right-asymmetric", "right-symmetric"}) {
    CAPTURE(other);
    CHECK(error_of(with(raid6, "level = 6", std::string("level = 6\nlayout = \"") + other + "\"")) ==
          std::string("conf/t.toml: array.layout: found \"") + other + "\", expected \"left-symmetric\" for RAID6");
  }
}

TEST_CASE("array.chunk_size") {
  struct Good {
    const char* value;
    uint32_t bytes;
  };
  for (Good g : {Good{"4096", 4096}, Good{"\"4096\"", 4096}, Good{"\"4096B\"", 4096}, Good{"\"4KiB\"", 4096},
                 Good{"\"64KiB\"", 65536}, Good{"65536", 65536}, Good{"\"1MiB\"", 1 << 20},
                 Good{"\"64MiB\"", 64 << 20}, Good{"67108864", 64 << 20}, Good{"0x10000", 65536}}) {
    CAPTURE(g.value);
    CHECK(parse_ok(add("array", std::string("chunk_size = ") + g.value)).array.chunk_size == g.bytes);
  }
  const std::string kPow = "expected a power of two >= 4KiB";
  const std::string kSize = "expected a size such as 65536 or \"64KiB\" (suffix B, KiB, MiB, GiB or TiB)";
  struct Bad {
    const char* value;
    std::string message;
  };
  const Bad bad[] = {
      {"\"60KiB\"", "found \"60KiB\", " + kPow},
      {"61440", "found integer 61440, " + kPow},
      {"\"2KiB\"", "found \"2KiB\", " + kPow},
      {"2048", "found integer 2048, " + kPow},
      {"0", "found integer 0, " + kPow},
      {"\"0\"", "found \"0\", " + kPow},
      {"4097", "found integer 4097, " + kPow},
      {"\"96MiB\"", "found \"96MiB\", " + kPow},
      {"\"128MiB\"", "found \"128MiB\", expected at most 64MiB"},
      {"\"1TiB\"", "found \"1TiB\", expected at most 64MiB"},
      {"9223372036854775807", "found integer 9223372036854775807, " + kPow},
      {"4611686018427387904", "found integer 4611686018427387904, expected at most 64MiB"},
      {"-4096", "found integer -4096, " + kSize},
      {"-9223372036854775808", "found integer -9223372036854775808, " + kSize},
      {"\"-4KiB\"", "found \"-4KiB\", " + kSize},
      {"\"1.5MiB\"", "found \"1.5MiB\", " + kSize},
      {"\"64 KiB\"", "found \"64 KiB\", " + kSize},
      {"\"64kib\"", "found \"64kib\", " + kSize},
      {"\"64K\"", "found \"64K\", " + kSize},
      {"\"\"", "found \"\", " + kSize},
      {"\"99999999999999999999\"", "found \"99999999999999999999\", " + kSize},
      {"\"16777216TiB\"", "found \"16777216TiB\", " + kSize},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.value);
    CHECK(error_of(add("array", std::string("chunk_size = ") + b.value)) ==
          "conf/t.toml: array.chunk_size: " + b.message);
  }
}

TEST_CASE("array.member_size") {
  CHECK(parse_ok(add("array", "member_size = \"4MiB\"")).array.member_size == 4u << 20);
  CHECK(parse_ok(add("array", "member_size = 4194304")).array.member_size == 4u << 20);
  CHECK(parse_ok(add("array", "member_size = \"3TiB\"")).array.member_size == 3ull << 40);
  CHECK(parse_ok(add("array", "member_size = 4194305")).array.member_size == 4194305u);
  CHECK(error_of(add("array", "member_size = 4194303")) ==
        "conf/t.toml: array.member_size: found integer 4194303, expected at least 4MiB");
  CHECK(error_of(add("array", "member_size = \"1MiB\"")) ==
        "conf/t.toml: array.member_size: found \"1MiB\", expected at least 4MiB");
  CHECK(error_of(add("array", "member_size = 0")) ==
        "conf/t.toml: array.member_size: found integer 0, expected at least 4MiB");
  CHECK(error_of(add("array", "member_size = -1")) ==
        "conf/t.toml: array.member_size: found integer -1, expected a size such as 65536 or \"64KiB\" (suffix B, "
        "KiB, MiB, GiB or TiB)");
}

TEST_CASE("array.members count") {
  auto members = [](int n) {
    std::string list = "[";
    for (int i = 0; i < n; i++) list += (i ? ", \"m" : "\"m") + std::to_string(i) + "\"";
    return list + "]";
  };
  auto raid = [&](int level, int n) {
    return with(with(kMinimal, "level = 5", "level = " + std::to_string(level)), R"(["m0", "m1", "m2"])",
                members(n));
  };
  CHECK(parse_ok(raid(5, 3)).array.members.size() == 3);
  CHECK(parse_ok(raid(5, 32)).array.members.size() == 32);
  CHECK(parse_ok(raid(6, 4)).array.members.size() == 4);
  CHECK(parse_ok(raid(6, 32)).array.members.size() == 32);
  CHECK(error_of(raid(5, 2)) == "conf/t.toml: array.members: found 2 members, expected at least 3 for RAID5");
  CHECK(error_of(raid(5, 0)) == "conf/t.toml: array.members: found 0 members, expected at least 3 for RAID5");
  CHECK(error_of(raid(6, 3)) == "conf/t.toml: array.members: found 3 members, expected at least 4 for RAID6");
  CHECK(error_of(raid(5, 33)) == "conf/t.toml: array.members: found 33 members, expected at most 32");
  CHECK(error_of(raid(6, 1000)) == "conf/t.toml: array.members: found 1000 members, expected at most 32");
  // Slot order is the order written.
  Config c = parse_ok(with(kMinimal, R"(["m0", "m1", "m2"])", R"(["z", "a", "m"])"));
  CHECK(c.array.members == std::vector<fs::path>{"/etc/r5/z", "/etc/r5/a", "/etc/r5/m"});
}

TEST_CASE("array.members bad paths") {
  CHECK(error_of(with(kMinimal, R"(["m0", "m1", "m2"])", R"(["m0", "", "m2"])")) ==
        "conf/t.toml: array.members[1]: found \"\", expected a path");
  CHECK(error_of(with(kMinimal, R"(["m0", "m1", "m2"])", R"(["m0", "m1", "m\u0000x"])")) ==
        "conf/t.toml: array.members[2]: found \"m\\u0000x\", expected a path without NUL characters");
  // Creating the array would overwrite the config.
  CHECK(error_of(with(kMinimal, R"(["m0", "m1", "m2"])", R"(["m0", "t.toml", "m2"])"), "/etc/r5/t.toml") ==
        "/etc/r5/t.toml: array.members[1]: \"t.toml\" is the config file itself");
  CHECK(error_of(with(kMinimal, R"(path = "j")", R"(path = "../r5/t.toml")"), "/etc/r5/t.toml") ==
        "/etc/r5/t.toml: journal.path: \"../r5/t.toml\" is the config file itself");
}

TEST_CASE("duplicate members") {
  auto members = [](const std::string& list) { return with(kMinimal, R"(["m0", "m1", "m2"])", list); };
  CHECK(error_of(members(R"(["demo/m0.img", "demo/m1.img", "demo/m2.img", "demo/m1.img"])")) ==
        "conf/t.toml: array.members: \"demo/m1.img\" is listed twice");
  CHECK(error_of(members(R"(["a", "b", "./a"])")) ==
        "conf/t.toml: array.members: \"./a\" is listed twice (also as \"a\")");
  CHECK(error_of(members(R"(["a", "b", "x/../a"])")) ==
        "conf/t.toml: array.members: \"x/../a\" is listed twice (also as \"a\")");
  CHECK(error_of(members(R"(["/etc/r5/a", "b", "a"])"), "/etc/r5/t.toml") ==
        "/etc/r5/t.toml: array.members: \"a\" is listed twice (also as \"/etc/r5/a\")");
  CHECK(error_of(members(R"(["a", "b", "a//"])")) ==
        "conf/t.toml: array.members: \"a//\" is listed twice (also as \"a\")");

  SUBCASE("symlinks to one file collide") {
    TempDir dir;
    dir.write("m0.img", "");
    fs::create_directory(dir.path() / "sub");
    fs::create_symlink(dir.path() / "m0.img", dir.path() / "link.img");
    fs::create_directory_symlink("sub", dir.path() / "sublink");
    fs::path file = dir.path() / "t.toml";
    std::string f = file.string();
    CHECK(error_of(members(R"(["m0.img", "m1.img", "link.img"])"), file) ==
          f + ": array.members: \"link.img\" is listed twice (also as \"m0.img\")");
    // The folder is a link, the file does not exist yet.
    CHECK(error_of(members(R"(["sub/m1.img", "m0.img", "sublink/m1.img"])"), file) ==
          f + ": array.members: \"sublink/m1.img\" is listed twice (also as \"sub/m1.img\")");
    // The stored path is lexical: the link itself, not its target.
    Config c = parse_ok(members(R"(["link.img", "m1.img", "m2.img"])"), file);
    CHECK(c.array.members[0] == dir.path() / "link.img");
    // A link to the journal is the journal.
    CHECK(error_of(with(members(R"(["link.img", "m1.img", "m2.img"])"), R"(path = "j")", R"(path = "m0.img")"),
                   file) == f + ": journal.path: \"m0.img\" is also array.members[0]");
  }
}

TEST_CASE("journal.path equal to a member") {
  CHECK(error_of(with(kMinimal, R"(path = "j")", R"(path = "m1")")) ==
        "conf/t.toml: journal.path: \"m1\" is also array.members[1]");
  CHECK(error_of(with(kMinimal, R"(path = "j")", R"(path = "./x/../m2")")) ==
        "conf/t.toml: journal.path: \"./x/../m2\" is also array.members[2]");
  CHECK(error_of(with(kMinimal, R"(path = "j")", R"(path = "/etc/r5/m0")"), "/etc/r5/t.toml") ==
        "/etc/r5/t.toml: journal.path: \"/etc/r5/m0\" is also array.members[0]");
  // Even with mode none the journal file must not be a member: it is a typo either way.
  CHECK(error_of(with(kMinimal, R"(path = "j")", "path = \"m0\"\nmode = \"none\"")) ==
        "conf/t.toml: journal.path: \"m0\" is also array.members[0]");
  CHECK(error_of(with(kMinimal, R"(path = "j")", R"(path = "")")) ==
        "conf/t.toml: journal.path: found \"\", expected a path");
}

TEST_CASE("journal keys") {
  CHECK(parse_ok(add("journal", "mode = \"write-back\"")).journal.mode == JournalMode::kWriteBack);
  CHECK(parse_ok(add("journal", "mode = \"write-through\"")).journal.mode == JournalMode::kWriteThrough);
  CHECK(parse_ok(add("journal", "mode = \"none\"")).journal.mode == JournalMode::kNone);
  CHECK(parse_ok(add("journal", "mode = \"none\"")).journal.path == "/etc/r5/j");
  CHECK(parse_ok(add("journal", "sync = \"fsync\"")).journal.sync == JournalSync::kFsync);
  CHECK(parse_ok(add("journal", "sync = \"always\"")).journal.sync == JournalSync::kAlways);
  CHECK(parse_ok(add("journal", "drain_on_unmount = false")).journal.drain_on_unmount == false);
  CHECK(parse_ok(add("journal", "drain_on_unmount = true")).journal.drain_on_unmount == true);
  CHECK(parse_ok(add("journal", "size = \"1MiB\"")).journal.size == 1u << 20);
  CHECK(parse_ok(add("journal", "size = 1048576")).journal.size == 1u << 20);
  CHECK(parse_ok(add("journal", "size = \"2GiB\"")).journal.size == 2ull << 30);

  CHECK(error_of(add("journal", "mode = \"writeback\"")) ==
        "conf/t.toml: journal.mode: found \"writeback\", expected \"write-back\", \"write-through\" or \"none\"");
  CHECK(error_of(add("journal", "mode = \"None\"")) ==
        "conf/t.toml: journal.mode: found \"None\", expected \"write-back\", \"write-through\" or \"none\"");
  CHECK(error_of(add("journal", "sync = \"fdatasync\"")) ==
        "conf/t.toml: journal.sync: found \"fdatasync\", expected \"fsync\" or \"always\"");
  CHECK(error_of(add("journal", "size = \"1023KiB\"")) ==
        "conf/t.toml: journal.size: found \"1023KiB\", expected at least 1MiB");
  CHECK(error_of(add("journal", "size = 0")) == "conf/t.toml: journal.size: found integer 0, expected at least 1MiB");
}

TEST_CASE("mode_name and sync_name") {
  CHECK(r5::config::mode_name(JournalMode::kWriteBack) == "write-back");
  CHECK(r5::config::mode_name(JournalMode::kWriteThrough) == "write-through");
  CHECK(r5::config::mode_name(JournalMode::kNone) == "none");
  CHECK(r5::config::sync_name(JournalSync::kFsync) == "fsync");
  CHECK(r5::config::sync_name(JournalSync::kAlways) == "always");
}

TEST_CASE("cache keys") {
  CHECK(parse_ok(add("cache", "memory = \"16MiB\"")).cache.memory == 16u << 20);
  CHECK(parse_ok(add("cache", "memory = 16777216")).cache.memory == 16u << 20);
  CHECK(parse_ok(add("cache", "memory = \"4GiB\"")).cache.memory == 4ull << 30);
  CHECK(error_of(add("cache", "memory = \"15MiB\"")) ==
        "conf/t.toml: cache.memory: found \"15MiB\", expected at least 16MiB");
  CHECK(error_of(add("cache", "memory = 16777215")) ==
        "conf/t.toml: cache.memory: found integer 16777215, expected at least 16MiB");

  CHECK(parse_ok(add("cache", "max_age = \"1ms\"")).cache.max_age == 1ms);
  CHECK(parse_ok(add("cache", "max_age = \"500ms\"")).cache.max_age == 500ms);
  CHECK(parse_ok(add("cache", "max_age = \"30s\"")).cache.max_age == 30s);
  CHECK(parse_ok(add("cache", "max_age = \"5m\"")).cache.max_age == 5min);
  CHECK(parse_ok(add("cache", "max_age = \"24h\"")).cache.max_age == 24h);
  const std::string kDuration = "expected a duration such as \"10s\" or \"500ms\" (suffix ms, s, m or h)";
  for (const char* bad : {"10", "1.5s", "10 s", "-1s", "10sec", "1d", "", "9223372036854775808ms"}) {
    CAPTURE(bad);
    CHECK(error_of(add("cache", std::string("max_age = \"") + bad + "\"")) ==
          std::string("conf/t.toml: cache.max_age: found \"") + bad + "\", " + kDuration);
  }
  CHECK(error_of(add("cache", "max_age = \"0s\"")) ==
        "conf/t.toml: cache.max_age: found \"0s\", expected between 1ms and 24h");
  CHECK(error_of(add("cache", "max_age = \"86400001ms\"")) ==
        "conf/t.toml: cache.max_age: found \"86400001ms\", expected between 1ms and 24h");
  CHECK(error_of(add("cache", "max_age = \"2562047788015h\"")) ==
        "conf/t.toml: cache.max_age: found \"2562047788015h\", expected between 1ms and 24h");
}

TEST_CASE("mount.image") {
  CHECK(parse_ok(add("mount", "image = \"disk.raw\"")).mount.image == "disk.raw");
  CHECK(parse_ok(add("mount", "image = \"...\"")).mount.image == "...");
  CHECK(parse_ok(add("mount", "image = \".hidden img\"")).mount.image == ".hidden img");
  CHECK(parse_ok(add("mount", "image = \"" + repeat('i', 255) + "\"")).mount.image == repeat('i', 255));
  const std::string kPlain = "expected a plain file name (no '/', not \".\" or \"..\")";
  for (const char* bad : {"", ".", "..", "a/b", "/array.img", "array.img/", "/"}) {
    CAPTURE(bad);
    CHECK(error_of(add("mount", std::string("image = \"") + bad + "\"")) ==
          std::string("conf/t.toml: mount.image: found \"") + bad + "\", " + kPlain);
  }
  CHECK(error_of(add("mount", "image = \"a\\u0000b\"")) ==
        "conf/t.toml: mount.image: found \"a\\u0000b\", " + kPlain);
  CHECK(error_of(add("mount", "image = \"" + repeat('i', 256) + "\"")) ==
        "conf/t.toml: mount.image: found \"" + repeat('i', 256) + "\", expected a file name of at most 255 bytes");
}

TEST_CASE("mount.control") {
  CHECK(parse_ok(add("mount", "control = \"/tmp/x.sock\"")).mount.control == "/tmp/x.sock");
  const std::string long_path = "/" + repeat('s', 107);
  CHECK(error_of(add("mount", "control = \"" + long_path + "\"")) ==
        "conf/t.toml: mount.control: \"" + long_path + "\" is longer than 107 bytes, the limit of a UNIX socket path");
  CHECK(error_of(add("mount", "control = 5")) == "conf/t.toml: mount.control: found integer 5, expected a string");
}

TEST_CASE("array.sync_speed_max") {
  CHECK(parse_ok(add("array", "sync_speed_max = 0")).array.sync_speed_max == 0);
  CHECK(parse_ok(add("array", "sync_speed_max = \"1GiB\"")).array.sync_speed_max == 1ull << 30);
  CHECK(error_of(add("array", "sync_speed_max = \"fast\"")).find("array.sync_speed_max: found \"fast\", expected a size") !=
        std::string::npos);
}

TEST_CASE("TOML syntax errors carry line and column") {
  CHECK(error_of("[array]\nname = \"t\"\nlevel = \n") ==
        "conf/t.toml:3:9: Error while parsing key-value pair: expected value, saw '\\n'");
  CHECK(error_of("[array]\nname = \"x\"\nname = \"y\"\n") ==
        "conf/t.toml:3:8: Error while parsing key-value pair: cannot redefine existing string 'name'");
  CHECK(error_of(kMinimal + "[array]\n") ==
        "conf/t.toml:8:1: Error while parsing table header: cannot redefine existing table 'array'");
  std::string unterminated = error_of("\n\n\nname = \"t");
  CHECK(unterminated.rfind("conf/t.toml:4:", 0) == 0);
  std::string overflow = error_of(add("array", "chunk_size = 99999999999999999999"));
  CHECK(overflow.rfind("conf/t.toml:2:", 0) == 0);
  std::string nul = error_of(std::string("[array]\nname = \"t\0\"\n", 20));
  CHECK(nul.rfind("conf/t.toml:2:", 0) == 0);
  CHECK(nul.find('\0') == std::string::npos);
}

TEST_CASE("load reads the file") {
  TempDir dir;
  dir.write("r.toml", with(kMinimal, R"(["m0", "m1", "m2"])", R"(["d/m0", "d/m1", "d/m2"])"));
  auto r = r5::config::load(dir.path() / "r.toml");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(r->file == dir.path() / "r.toml");
  CHECK(r->array.members[2] == dir.path() / "d/m2");
  CHECK(r->journal.path == dir.path() / "j");

  SUBCASE("errors name the file") {
    dir.write("bad.toml", add("array", "chunk_size = \"60KiB\""));
    fs::path bad = dir.path() / "bad.toml";
    auto e = r5::config::load(bad);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().kind == r5::ErrorKind::kInvalid);
    CHECK(e.error().message == bad.string() + ": array.chunk_size: found \"60KiB\", expected a power of two >= 4KiB");
  }
  SUBCASE("missing file") {
    fs::path none = dir.path() / "none.toml";
    auto e = r5::config::load(none);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().kind == r5::ErrorKind::kNotFound);
    CHECK(e.error().err == ENOENT);
    CHECK(e.error().message == none.string() + ": No such file or directory");
  }
  SUBCASE("a directory") {
    auto e = r5::config::load(dir.path());
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().err == EISDIR);
    CHECK(e.error().message == dir.path().string() + ": Is a directory");
  }
  SUBCASE("a huge file is not read to the end") {
    dir.write("huge.toml", "# " + std::string(2 << 20, 'x') + "\n");
    auto e = r5::config::load(dir.path() / "huge.toml");
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().kind == r5::ErrorKind::kInvalid);
    CHECK(e.error().message == (dir.path() / "huge.toml").string() + ": larger than 1MiB, not a config file");
  }
  SUBCASE("syntax error position") {
    dir.write("syntax.toml", "[array]\nname = \"t\"\nlevel = 5 6\n");
    auto e = r5::config::load(dir.path() / "syntax.toml");
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.rfind((dir.path() / "syntax.toml").string() + ":3:", 0) == 0);
  }
}

// The daemon parses configs a user hands it; no input may crash it. Mutate
// the demo config byte by byte (deterministic seed) and check every result is
// a config or one invalid-argument line.
TEST_CASE("mutated configs never crash") {
  std::ifstream in(conf_dir() / "demo.toml", std::ios::binary);
  std::string demo((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!demo.empty());
  std::mt19937 rng(12345);
  const std::string kAlphabet = "[]{}=\"'.,#\\\n 0123456789-+_abcdefxyzKMGiBmsh\x01\xff";
  int ok = 0;
  for (int round = 0; round < 4000; round++) {
    std::string text = demo;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); e++) {
      size_t at = rng() % text.size();
      switch (rng() % 4) {
        case 0: text[at] = kAlphabet[rng() % kAlphabet.size()]; break;
        case 1: text.erase(at, 1 + rng() % 8); break;
        case 2: text.insert(at, 1, kAlphabet[rng() % kAlphabet.size()]); break;
        case 3: text.resize(at); break;
      }
    }
    auto r = r5::config::parse(text, "fuzz.toml");
    if (r.ok()) {
      ok++;
      continue;
    }
    INFO(text);
    CHECK(r.error().kind == r5::ErrorKind::kInvalid);
    CHECK(r.error().message.rfind("fuzz.toml:", 0) == 0);
    CHECK(r.error().message.find('\n') == std::string::npos);
  }
  CHECK(ok > 0);  // some mutations land in comments
}
