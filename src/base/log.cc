#include "base/log.h"

#include <syslog.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace r5::log {
namespace {

std::atomic<bool> g_syslog{false};
std::atomic<bool> g_verbose{false};
std::atomic<const char*> g_ident{"r5cfs"};
std::mutex g_stderr_mutex;  // keeps lines from interleaving

const char* prefix(Level level) {
  switch (level) {
    case Level::kError: return "error: ";
    case Level::kWarning: return "warning: ";
    case Level::kInfo: return "";
    case Level::kDebug: return "debug: ";
  }
  return "";
}

int syslog_priority(Level level) {
  switch (level) {
    case Level::kError: return LOG_ERR;
    case Level::kWarning: return LOG_WARNING;
    case Level::kInfo: return LOG_INFO;
    case Level::kDebug: return LOG_DEBUG;
  }
  return LOG_INFO;
}

}  // namespace

void use_syslog(const char* ident) {
  openlog(ident, LOG_PID, LOG_DAEMON);
  g_syslog = true;
}

void set_verbose(bool verbose) { g_verbose = verbose; }

void set_ident(const char* ident) { g_ident = ident; }

void write(Level level, std::string_view message) {
  if (level == Level::kDebug && !g_verbose) return;
  if (g_syslog) {
    syslog(syslog_priority(level), "%.*s", int(message.size()), message.data());
    return;
  }
  std::lock_guard lock(g_stderr_mutex);
  fmt::print(stderr, "{}: {}{}\n", g_ident.load(), prefix(level), message);
}

}  // namespace r5::log
