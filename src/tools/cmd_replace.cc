// r5cfs replace: rebuilds a member onto a new file or device, online through
// the daemon (the array keeps serving I/O) or offline, with progress; the
// config file is updated to name the new member.
#include <filesystem>

#include <fmt/format.h>

#include "control/status.h"
#include "engine/engine.h"
#include "tools/commands.h"
#include "tools/config_edit.h"
#include "tools/daemon_link.h"
#include "tools/progress.h"

namespace r5::tools {
namespace {

using nlohmann::json;

// Points the config at the new member, or says exactly what to change.
void update_config(const config::Config& cfg, uint32_t slot, const std::string& path) {
  if (Status st = set_member_path(cfg.file, slot, path); !st.ok()) {
    fmt::print(stderr,
               "r5cfs: could not update {} ({}).\n"
               "EDIT IT NOW, before the next mount, or the rebuild cannot resume: array.members[{}] must be \"{}\"\n",
               cfg.file.native(), st.error().message, slot, path);
    return;
  }
  fmt::print("{}: array.members[{}] is now \"{}\"\n", cfg.file.native(), slot, path);
}

int report(const json& r) {
  const std::string state = r["state"];
  if (state == "done") {
    fmt::print("slot {} rebuilt onto {} in {:.1f} s: the array is back to full redundancy if no other member failed\n",
               r["slot"].get<uint32_t>(), r["path"].get<std::string>(), r["seconds"].get<double>());
    return kExitOk;
  }
  if (state == "failed") {
    fmt::print(stderr, "r5cfs: the rebuild failed: {}\n", r["error"].get<std::string>());
    return kExitArray;
  }
  fmt::print("the rebuild {} at row {} of {}; it resumes at the next mount or r5cfs replace with the same arguments\n",
             state, r["next_row"].get<uint64_t>(), r["rows"].get<uint64_t>());
  return kExitArray;
}

std::string no_detail(const json&) { return ""; }

}  // namespace

int run_replace(const ReplaceArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  std::optional<uint32_t> slot = member_slot(*cfg, args.member);
  if (!slot) return kExitUsage;
  std::error_code ec;
  const std::string path = std::filesystem::absolute(args.new_path, ec).lexically_normal().native();

  int rc = kExitOk;
  if (std::optional<UniqueFd> fd = connect_daemon(*cfg, rc, /*report_unmounted=*/false)) {
    const int sock = fd->get();
    if (!request(sock, {{"op", "replace"}, {"slot", *slot}, {"path", path}, {"force", args.force}}, rc)) return rc;
    update_config(*cfg, *slot, path);
    if (args.no_wait) {
      fmt::print("rebuilding slot {} onto {} in the daemon; follow it with r5cfs status\n", *slot, path);
      return kExitOk;
    }
    std::optional<json> end = follow(
        "rebuild",
        [&]() -> std::optional<json> {
          std::optional<json> reply = request(sock, {{"op", "rebuild-progress"}}, rc);
          if (!reply) return std::nullopt;
          return (*reply)["rebuild"];
        },
        no_detail, [] { fmt::print("the rebuild goes on in the daemon: follow it with r5cfs status\n"); });
    if (!end) return interrupted() ? 130 : rc;
    return report(*end);
  }
  if (rc != kExitNotMounted) return rc;
  if (args.no_wait) {
    fmt::print(stderr, "r5cfs: array '{}' is not mounted: --no-wait needs the daemon\n", cfg->array.name);
    return kExitNotMounted;
  }
  return with_offline_array(*cfg, [&](engine::Engine& engine) -> int {
    if (Status st = engine.start_replace(*slot, path, args.force); !st.ok()) {
      fmt::print(stderr, "r5cfs: {}\n", st.error().message);
      return st.error().kind == ErrorKind::kInvalid ? kExitUsage : kExitArray;
    }
    update_config(*cfg, *slot, path);
    std::optional<json> end = follow(
        "rebuild", [&]() -> std::optional<json> { return control::rebuild_json(engine.rebuild_progress()); }, no_detail,
        [] { fmt::print("interrupted: the rebuild stops and resumes at the next mount\n"); });
    // Closing the engine stops an interrupted rebuild and records its position.
    return end ? report(*end) : 130;
  });
}

}  // namespace r5::tools
