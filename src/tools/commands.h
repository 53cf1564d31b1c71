// Subcommands of the r5cfs admin tool. Each returns the process exit code:
// 0 success, 1 usage or configuration error, 2 array or device problem,
// 3 the array is not mounted (for commands that need its daemon).
#pragma once

#include <optional>
#include <string>

#include "config/config.h"

namespace r5::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitArray = 2;
inline constexpr int kExitNotMounted = 3;

// Loads and validates a config; prints the error and returns nullopt on failure.
std::optional<config::Config> load_config(const std::string& path);

struct CreateArgs {
  std::string config;
  bool force = false;
};
int run_create(const CreateArgs& args);

struct InfoArgs {
  std::string config;
  bool json = false;
};
int run_info(const InfoArgs& args);

struct JournalArgs {
  std::string config;
  bool json = false;
};
int run_journal_inspect(const JournalArgs& args);
int run_journal_drain(const std::string& config);
struct JournalModeArgs {
  std::string config, mode;
};
int run_journal_mode(const JournalModeArgs& args);
struct JournalRemoveArgs {
  std::string config;
  bool force = false;
};
int run_journal_remove(const JournalRemoveArgs& args);
struct JournalAddArgs {
  std::string config, path, size, mode = "write-back";
  bool force = false;
};
int run_journal_add(const JournalAddArgs& args);

struct StatusArgs {
  std::string config;
  bool json = false;
  bool watch = false;   // print again every `interval` seconds
  double interval = 2;
};
int run_status(const StatusArgs& args);

struct MemberArgs {
  std::string config;
  std::string member;  // slot number or path
};
int run_fail(const MemberArgs& args);

struct CheckArgs {
  std::string config;
  bool repair = false, restart = false, stop = false, no_wait = false;
};
int run_check(const CheckArgs& args);

struct ReplaceArgs {
  std::string config;
  std::string member;    // slot number or path
  std::string new_path;  // file (created when missing) or block device
  bool force = false, no_wait = false;
};
int run_replace(const ReplaceArgs& args);

}  // namespace r5::tools
