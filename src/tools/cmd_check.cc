// r5cfs check: the parity check (scrub) of an array, with progress. Online
// the daemon runs it and this command follows it (an interrupted command
// leaves it running); offline this process runs it.
#include <fmt/format.h>

#include "engine/engine.h"
#include "control/status.h"
#include "tools/commands.h"
#include "tools/daemon_link.h"
#include "tools/progress.h"

namespace r5::tools {
namespace {

using nlohmann::json;

// The summary of a finished check; the exit code: 0 when the parity is
// consistent at the end.
int report(const json& c) {
  const std::string state = c["state"];
  const uint64_t mismatches = c["mismatches"], repaired = c["repaired"];
  fmt::print("check {}: {} rows checked in {:.1f} s, {} mismatches{}\n", state, c["rows_checked"].get<uint64_t>(),
             c["seconds"].get<double>(), mismatches, c["repair"].get<bool>() ? fmt::format(", {} repaired", repaired) : "");
  if (mismatches > 0) {
    std::string rows;
    for (const json& r : c["mismatch_rows"]) rows += fmt::format(" {}", r.get<uint64_t>());
    fmt::print("mismatching rows{}:{}\n", mismatches > c["mismatch_rows"].size() ? " (the first ones)" : "", rows);
  }
  if (state == "failed") {
    fmt::print(stderr, "r5cfs: check failed: {}\n", c["error"].get<std::string>());
    return kExitArray;
  }
  if (state == "stopped") {
    fmt::print("stopped at row {}: r5cfs check resumes there\n", c["next_row"].get<uint64_t>());
    return kExitArray;
  }
  if (mismatches > repaired) fmt::print("run r5cfs check --repair to rewrite the parity of these rows (see r5cfs(8))\n");
  return mismatches > repaired ? kExitArray : kExitOk;
}

std::string detail(const json& c) {
  std::string text = fmt::format("  {} mismatches", c["mismatches"].get<uint64_t>());
  if (c["repair"].get<bool>()) text += fmt::format(", {} repaired", c["repaired"].get<uint64_t>());
  return text;
}

}  // namespace

int run_check(const CheckArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
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
    std::optional<json> end = follow(
        "check",
        [&]() -> std::optional<json> {
          std::optional<json> reply = request(sock, {{"op", "check-progress"}}, rc);
          if (!reply) return std::nullopt;
          return (*reply)["check"];
        },
        detail,
        [] { fmt::print("the check goes on in the daemon: follow it with r5cfs status, stop it with r5cfs check --stop\n"); });
    if (!end) return interrupted() ? 130 : rc;
    return report(*end);
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
    std::optional<json> end = follow(
        "check", [&]() -> std::optional<json> { return control::check_json(engine.check_progress()); }, detail,
        [&] {
          engine.stop_check();
          fmt::print("interrupted: r5cfs check resumes at the row it reached\n");
        });
    return end ? report(*end) : 130;
  });
}

}  // namespace r5::tools
