// Editing a config file in place (r5cfs replace, journal mode/remove/add):
// the value changes, everything else (comments, layout, other keys) stays,
// and the result parses to what was asked.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "tools/config_edit.h"

namespace fs = std::filesystem;
using namespace r5;

namespace {

const char* kConfig = R"(# demo
[array]
name = "t"   # the name
level = 5
members = [
  "m0",      # first
  "m1",
  "m2",
]

[journal]
path = "j.img"   # fast device
size = "16MiB"
mode = "write-back"          # comment kept

[cache]
memory = "64MiB"
)";

struct TempConfig {
  fs::path dir = fs::temp_directory_path() / fs::path("r5cfs-config-edit-" + std::to_string(::getpid()));
  fs::path file = dir / "t.toml";
  explicit TempConfig(const std::string& text) {
    fs::create_directories(dir);
    std::ofstream(file) << text;
  }
  ~TempConfig() { fs::remove_all(dir); }
  std::string text() const {
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  config::Config parsed() const {
    auto c = config::load(file);
    REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
    return *c;
  }
};

}  // namespace

TEST_CASE("set_member_path rewrites one member and nothing else") {
  TempConfig t(kConfig);
  REQUIRE(tools::set_member_path(t.file, 1, "/new/m1.img").ok());
  config::Config c = t.parsed();
  CHECK(c.array.members[0] == t.dir / "m0");
  CHECK(c.array.members[1] == "/new/m1.img");
  CHECK(c.array.members[2] == t.dir / "m2");
  std::string expected = kConfig;
  expected.replace(expected.find("\"m1\""), 4, "\"/new/m1.img\"");
  CHECK(t.text() == expected);
  CHECK(!tools::set_member_path(t.file, 3, "/x").ok());
  CHECK(!tools::set_member_path(t.file, 0, "/with\"quote").ok());
  CHECK(t.text() == expected);  // a refused edit changes nothing
}

TEST_CASE("set_config_value replaces a value, adds a key, adds a table") {
  TempConfig t(kConfig);
  REQUIRE(tools::set_config_value(t.file, "journal", "mode", "\"none\"").ok());
  CHECK(t.text().find("mode = \"none\"          # comment kept") != std::string::npos);
  REQUIRE(tools::set_config_value(t.file, "journal", "sync", "\"always\"").ok());
  REQUIRE(tools::set_config_value(t.file, "mount", "image", "\"disk.raw\"").ok());
  config::Config c = t.parsed();
  CHECK(c.journal.mode == config::JournalMode::kNone);
  CHECK(c.journal.sync == config::JournalSync::kAlways);
  CHECK(c.mount.image == "disk.raw");
  CHECK(c.cache.memory == 64ull << 20);
  CHECK(t.text().rfind("# demo\n[array]", 0) == 0);
}

TEST_CASE("remove_config_key comments the line out") {
  TempConfig t(kConfig);
  REQUIRE(tools::remove_config_key(t.file, "journal", "path").ok());
  REQUIRE(tools::remove_config_key(t.file, "journal", "size").ok());
  REQUIRE(tools::remove_config_key(t.file, "journal", "absent").ok());
  REQUIRE(tools::set_config_value(t.file, "journal", "mode", "\"none\"").ok());
  CHECK(t.text().find("# path = \"j.img\"   # fast device") != std::string::npos);
  config::Config c = t.parsed();
  CHECK(c.journal.path.empty());
  CHECK(c.journal.mode == config::JournalMode::kNone);
}

TEST_CASE("a table without a header line is refused, not mangled") {
  TempConfig t("journal.mode = \"write-back\"\n[array]\nname = \"t\"\nlevel = 5\nmembers = [\"a\", \"b\", \"c\"]\n");
  CHECK(tools::set_config_value(t.file, "journal", "mode", "\"none\"").ok());  // the key exists: replaced in place
  CHECK(!tools::set_config_value(t.file, "journal", "sync", "\"always\"").ok());
  CHECK(t.parsed().journal.mode == config::JournalMode::kNone);
}
