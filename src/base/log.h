// Logging: stderr in the foreground, syslog once the daemon detaches.
// Thread-safe; one line per message.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace r5::log {

enum class Level { kError, kWarning, kInfo, kDebug };

// Switches output to syslog with the given identity (after daemonizing).
void use_syslog(const char* ident);
// The program name that prefixes stderr lines ("r5cfs" by default).
void set_ident(const char* ident);
void set_verbose(bool verbose);
void write(Level level, std::string_view message);

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace r5::log
