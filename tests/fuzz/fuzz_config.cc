// Config parser: the input is the text of a config file. parse() must turn
// anything into a Config or one error line; a Config must satisfy every
// rule r5cfs.toml(5) states.
#include <algorithm>
#include <string_view>

#include "config/config.h"
#include "fuzz_common.h"

using namespace r5;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A folder that does not exist: member paths resolve without touching real files.
  static const std::filesystem::path kFile = "/nonexistent-r5cfs-fuzz/conf/array.toml";
  auto config = config::parse(std::string_view(reinterpret_cast<const char*>(data), size), kFile);
  if (!config.ok()) {
    FUZZ_CHECK(config.error().kind == ErrorKind::kInvalid);
    FUZZ_CHECK(!config.error().message.empty());
    FUZZ_CHECK(config.error().message.find('\n') == std::string::npos);
    return 0;
  }
  const config::ArrayConfig& a = config->array;
  FUZZ_CHECK(a.level == 5 || a.level == 6);
  FUZZ_CHECK(!a.name.empty() && a.name.size() <= format::kNameMax - 1);
  FUZZ_CHECK(a.members.size() >= (a.level == 6 ? 4u : 3u) && a.members.size() <= geometry::kMaxMembers);
  FUZZ_CHECK(std::all_of(a.members.begin(), a.members.end(), [](const auto& p) { return p.is_absolute(); }));
  geometry::Geometry g{a.level, a.layout, uint32_t(a.members.size()), a.chunk_size, 1};
  FUZZ_CHECK(g.validate().ok());
  FUZZ_CHECK(a.member_size == 0 || a.member_size >= (4ull << 20));
  const config::JournalConfig& j = config->journal;
  FUZZ_CHECK(!j.path.empty() || j.mode == config::JournalMode::kNone);
  FUZZ_CHECK(j.path.empty() || j.path.is_absolute());
  FUZZ_CHECK(std::find(a.members.begin(), a.members.end(), j.path) == a.members.end());
  FUZZ_CHECK(config->cache.memory >= (16ull << 20));
  FUZZ_CHECK(config->cache.max_age.count() >= 1 && config->cache.max_age <= std::chrono::hours(24));
  const std::string& image = config->mount.image;
  FUZZ_CHECK(!image.empty() && image != "." && image != ".." && image.find('/') == std::string::npos);
  return 0;
}
