// r5cfs check: the parity check (scrub) of an array, with progress. Online
// the daemon runs it and this command follows it (an interrupted command
// leaves it running); offline this process runs it.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/units.h"
#include "control/status.h"
#include "tools/commands.h"
#include "tools/daemon_link.h"

namespace r5::tools {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<bool> interrupted{false};

std::string eta_text(double seconds) {
  auto s = uint64_t(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

std::string progress_line(const json& c, bool bar) {
  const double percent = c["percent"], rate = c["bytes_per_second"];
  const uint64_t next = c["next_row"], rows = c["rows"];
  const double eta = rate > 0 && c["rows_checked"].get<uint64_t>() > 0
                         ? double(rows - next) * (double(c["bytes"].get<uint64_t>()) / double(c["rows_checked"].get<uint64_t>())) / rate
                         : 0;
  std::string text = fmt::format("{:5.1f}%  row {} of {}  {}/s  ETA {}  {} mismatches", percent, next, rows,
                                 format_size(uint64_t(rate)), rate > 0 ? eta_text(eta) : "-", c["mismatches"].get<uint64_t>());
  if (c["repair"].get<bool>()) text += fmt::format(", {} repaired", c["repaired"].get<uint64_t>());
  if (!bar) return text;
  constexpr int kWidth = 30;
  int filled = int(percent / 100 * kWidth);
  return fmt::format("[{}{}] {}", std::string(size_t(filled), '#'), std::string(size_t(kWidth - filled), '.'), text);
}

// Shows progress until the check ends (or the user interrupts) and returns
// the exit code: 0 when the array's parity is consistent at the end.
int follow(const std::function<std::optional<json>()>& poll, const std::function<void()>& on_interrupt) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  auto last_line = Clock::now();
  for (;;) {
    std::optional<json> c = poll();
    if (!c) return kExitArray;
    const std::string state = (*c)["state"];
    if (state == "running") {
      if (tty) {
        fmt::print("\r{}\033[K", progress_line(*c, true));
        std::fflush(stdout);
      } else if (Clock::now() - last_line >= std::chrono::seconds(10)) {
        fmt::print("check: {}\n", progress_line(*c, false));
        std::fflush(stdout);
        last_line = Clock::now();
      }
      if (interrupted) {
        if (tty) fmt::print("\n");
        on_interrupt();
        return 130;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 500));
      continue;
    }
    if (tty) fmt::print("\r{}\033[K\n", progress_line(*c, true));
    const uint64_t mismatches = (*c)["mismatches"], repaired = (*c)["repaired"];
    fmt::print("check {}: {} rows checked in {:.1f} s, {} mismatches{}\n", state, (*c)["rows_checked"].get<uint64_t>(),
               (*c)["seconds"].get<double>(), mismatches,
               (*c)["repair"].get<bool>() ? fmt::format(", {} repaired", repaired) : "");
    if (mismatches > 0) {
      std::string rows;
      for (const json& r : (*c)["mismatch_rows"]) rows += fmt::format(" {}", r.get<uint64_t>());
      fmt::print("mismatching rows{}:{}\n", mismatches > (*c)["mismatch_rows"].size() ? " (the first ones)" : "", rows);
    }
    if (state == "failed") {
      fmt::print(stderr, "r5cfs: check failed: {}\n", (*c)["error"].get<std::string>());
      return kExitArray;
    }
    if (state == "stopped") {
      fmt::print("stopped at row {}: r5cfs check resumes there\n", (*c)["next_row"].get<uint64_t>());
      return kExitArray;
    }
    if (mismatches > repaired) fmt::print("run r5cfs check --repair to rewrite the parity of these rows (see r5cfs(8))\n");
    return mismatches > repaired ? kExitArray : kExitOk;
  }
}

}  // namespace

int run_check(const CheckArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  struct sigaction sa {};
  sa.sa_handler = [](int) { interrupted = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  int rc = kExitOk;
  if (std::optional<UniqueFd> fd = connect_daemon(*cfg, rc, /*report_unmounted=*/false)) {
    const int sock = fd->get();
    if (args.stop) {
      std::optional<json> reply = request(sock, {{"op", "check-stop"}}, rc);
      if (!reply) return rc;
      fmt::print("check of array '{}' {} at row {} of {}\n", cfg->array.name, (*reply)["check"]["state"].get<std::string>(),
                 (*reply)["check"]["next_row"].get<uint64_t>(), (*reply)["check"]["rows"].get<uint64_t>());
      return kExitOk;
    }
    std::optional<json> started =
        request(sock, {{"op", "check"}, {"repair", args.repair}, {"restart", args.restart}}, rc);
    if (!started) return rc;
    if (started->value("attached", false)) fmt::print("following the check that is running already\n");
    if (args.no_wait) return kExitOk;
    return follow(
        [&]() -> std::optional<json> {
          std::optional<json> reply = request(sock, {{"op", "check-progress"}}, rc);
          if (!reply) return std::nullopt;
          return (*reply)["check"];
        },
        [&] {
          fmt::print("the check goes on in the daemon: follow it with r5cfs status, stop it with r5cfs check --stop\n");
        });
  }
  if (rc != kExitNotMounted) return rc;
  if (args.stop || args.no_wait) {
    fmt::print(stderr, "r5cfs: array '{}' is not mounted: no check runs\n", cfg->array.name);
    return kExitNotMounted;
  }
  return with_offline_array(*cfg, [&](engine::Engine& engine) -> int {
    if (Status st = engine.start_check(args.repair, args.restart); !st.ok()) {
      fmt::print(stderr, "r5cfs: {}\n", st.error().message);
      return kExitArray;
    }
    return follow([&]() -> std::optional<json> { return control::check_json(engine.check_progress()); },
                  [&] { engine.stop_check(); fmt::print("interrupted: r5cfs check resumes at the row it reached\n"); });
  });
}

}  // namespace r5::tools
