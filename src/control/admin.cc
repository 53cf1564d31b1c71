// Requests: {"op": "status"}, {"op": "fail", "slot": N}, {"op": "drain"},
// {"op": "check", "repair": B, "restart": B}, {"op": "check-progress"},
// {"op": "check-stop"}, {"op": "replace", "slot": N, "path": P, "force": B},
// {"op": "rebuild-progress"}, {"op": "journal-mode", "mode": M},
// {"op": "journal-remove", "force": B}, {"op": "journal-add", "path": P,
// "size": N, "mode": M, "force": B}.
#include "control/admin.h"

#include "base/log.h"
#include "control/status.h"

namespace r5::control {

using nlohmann::json;

namespace {

json done(const Status& st) {
  if (st.ok()) return {{"ok", true}};
  return {{"ok", false}, {"error", st.error().message}, {"exit", 2}};
}

}  // namespace

json handle_request(engine::Engine& engine, const json& request) {
  const std::string op = request.value("op", "");
  if (op == "status") return {{"ok", true}, {"status", status_json(engine)}};
  if (op == "fail") {
    const uint32_t slot = request.at("slot").get<uint32_t>();
    log::warn("control: the administrator fails member slot {}", slot);
    return done(engine.fail_member(slot));
  }
  if (op == "check") {
    const bool repair = request.value("repair", false), restart = request.value("restart", false);
    Status st = engine.start_check(repair, restart);
    // Joining a check that runs already is what a second `r5cfs check` does.
    if (!st.ok() && st.error().kind == ErrorKind::kBusy && engine.check_progress().repair == repair)
      return {{"ok", true}, {"attached", true}};
    return done(st);
  }
  if (op == "check-progress") return {{"ok", true}, {"check", check_json(engine.check_progress())}};
  if (op == "check-stop") {
    engine.stop_check();
    return {{"ok", true}, {"check", check_json(engine.check_progress())}};
  }
  if (op == "replace") {
    const uint32_t slot = request.at("slot").get<uint32_t>();
    const std::string path = request.at("path").get<std::string>();
    log::warn("control: the administrator replaces slot {} with {}", slot, path);
    return done(engine.start_replace(slot, path, request.value("force", false)));
  }
  if (op == "rebuild-progress") return {{"ok", true}, {"rebuild", rebuild_json(engine.rebuild_progress())}};
  if (op == "journal-mode" || op == "journal-add") {
    const std::string name = request.at("mode").get<std::string>();
    std::optional<config::JournalMode> mode = config::parse_mode(name);
    if (!mode) return {{"ok", false}, {"error", fmt::format("unknown journal mode '{}'", name)}, {"exit", 1}};
    if (op == "journal-mode") {
      log::warn("control: the administrator sets journal mode {}", name);
      return done(engine.set_mode(*mode));
    }
    const std::string path = request.at("path").get<std::string>();
    log::warn("control: the administrator adds the journal {}", path);
    return done(engine.add_journal(path, request.at("size").get<uint64_t>(), *mode, request.value("force", false)));
  }
  if (op == "journal-remove") {
    log::warn("control: the administrator removes the journal{}", request.value("force", false) ? " (forced)" : "");
    return done(engine.remove_journal(request.value("force", false)));
  }
  if (op == "drain") {
    log::info("control: draining the journal");
    return done(engine.drain());
  }
  return {{"ok", false}, {"error", fmt::format("unknown request '{}' (is r5cfs newer than the daemon?)", op)}, {"exit", 1}};
}

}  // namespace r5::control
