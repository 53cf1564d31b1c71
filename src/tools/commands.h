// Subcommands of the r5cfs admin tool. Each returns the process exit code:
// 0 success, 1 usage or configuration error, 2 array or device problem.
#pragma once

#include <optional>
#include <string>

#include "config/config.h"

namespace r5::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitArray = 2;

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

}  // namespace r5::tools
