// One TOML file describes one array. load() validates everything and returns
// an immutable Config, or one error line naming the file, the key, the value
// found and what was expected. It never touches any file but the config.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "geometry/layout.h"

namespace r5::config {

enum class JournalMode { kWriteBack, kWriteThrough, kNone };
enum class JournalSync { kFsync, kAlways };

std::string_view mode_name(JournalMode mode);  // "write-back" | "write-through" | "none"
std::optional<JournalMode> parse_mode(std::string_view name);
std::string_view sync_name(JournalSync sync);  // "fsync" | "always"

struct ArrayConfig {
  std::string name;
  uint32_t level = 5;
  geometry::Layout layout = geometry::Layout::kLeftSymmetric;
  uint32_t chunk_size = 512 * 1024;
  uint64_t member_size = 0;                   // 0: not given (existing files / devices keep their size)
  std::vector<std::filesystem::path> members;  // absolute, in slot order
  uint64_t sync_speed_max = 200ull << 20;      // bytes/s of array data a check or rebuild may read; 0: no limit
};

struct JournalConfig {
  std::filesystem::path path;  // absolute; empty allowed only with mode none
  uint64_t size = 0;           // 0: not given
  JournalMode mode = JournalMode::kWriteBack;
  JournalSync sync = JournalSync::kFsync;
  bool drain_on_unmount = false;
};

struct CacheConfig {
  uint64_t memory = 256ull << 20;
  std::chrono::milliseconds max_age{10'000};
};

struct MountConfig {
  std::string image = "array.img";  // a plain file name, no '/'
  std::filesystem::path control;     // the daemon's control socket; absolute (default /run/r5cfs/<name>.sock)
};

struct Config {
  std::filesystem::path file;  // the config file itself, absolute
  ArrayConfig array;
  JournalConfig journal;
  CacheConfig cache;
  MountConfig mount;
};

Result<Config> load(const std::filesystem::path& file);
// Parses `text` as if read from `file` (relative paths resolve against file's folder).
Result<Config> parse(std::string_view text, const std::filesystem::path& file);

}  // namespace r5::config
