#include "tools/progress.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/units.h"

namespace r5::tools {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<bool> got_signal{false};

std::string eta_text(double seconds) {
  auto s = uint64_t(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

std::string line(const json& p, const std::string& detail, bool bar) {
  const double percent = p["percent"], rate = p["bytes_per_second"], seconds = p["seconds"];
  const uint64_t next = p["next_row"], rows = p["rows"], start = p["start_row"];
  // From the pace of this run (which may have resumed part way).
  const std::string eta = next > start && seconds > 0 ? eta_text(double(rows - next) * seconds / double(next - start)) : "-";
  std::string text = fmt::format("{:5.1f}%  row {} of {}  {}/s  ETA {}{}", percent, next, rows, format_size(uint64_t(rate)),
                                 eta, detail);
  if (!bar) return text;
  constexpr int kWidth = 30;
  const int filled = int(percent / 100 * kWidth);
  return fmt::format("[{}{}] {}", std::string(size_t(filled), '#'), std::string(size_t(kWidth - filled), '.'), text);
}

}  // namespace

bool interrupted() { return got_signal; }

std::optional<json> follow(const std::string& what, const std::function<std::optional<json>()>& poll,
                           const std::function<std::string(const json&)>& detail, const std::function<void()>& on_interrupt) {
  struct sigaction sa {};
  sa.sa_handler = [](int) { got_signal = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const bool tty = isatty(STDOUT_FILENO) == 1;
  auto last_line = Clock::now();
  for (;;) {
    std::optional<json> p = poll();
    if (!p) return std::nullopt;
    const bool running = (*p)["state"] == "running";
    if (tty) {
      fmt::print("\r{}\033[K{}", line(*p, detail(*p), true), running ? "" : "\n");
    } else if (running && Clock::now() - last_line >= std::chrono::seconds(10)) {
      fmt::print("{}: {}\n", what, line(*p, detail(*p), false));
      last_line = Clock::now();
    }
    std::fflush(stdout);
    if (!running) return p;
    if (got_signal) {
      if (tty) fmt::print("\n");
      on_interrupt();
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 500));
  }
}

}  // namespace r5::tools
