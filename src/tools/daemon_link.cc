#include "tools/daemon_link.h"

#include <charconv>
#include <filesystem>

#include <fmt/format.h>

#include "control/server.h"
#include "engine/engine.h"
#include "tools/commands.h"

namespace r5::tools {

std::optional<UniqueFd> connect_daemon(const config::Config& cfg, int& exit_code, bool report_unmounted) {
  Result<UniqueFd> fd = control::connect_to(cfg.mount.control);
  if (fd.ok()) return std::move(*fd);
  if (fd.error().kind == ErrorKind::kNotFound) {
    if (report_unmounted)
      fmt::print(stderr, "r5cfs: array '{}' is not mounted (no daemon on {}); for the members' superblocks use r5cfs info\n",
               cfg.array.name, cfg.mount.control.native());
    exit_code = kExitNotMounted;
  } else {
    fmt::print(stderr, "r5cfs: cannot reach the daemon of array '{}': {}\n", cfg.array.name, fd.error().message);
    exit_code = kExitArray;
  }
  return std::nullopt;
}

std::optional<nlohmann::json> request(int fd, const nlohmann::json& req, int& exit_code) {
  Result<nlohmann::json> reply = control::call(fd, req);
  if (!reply.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", reply.error().message);
    exit_code = kExitArray;
    return std::nullopt;
  }
  if (!reply->value("ok", false)) {
    fmt::print(stderr, "r5cfs: {}\n", reply->value("error", std::string("the daemon refused the request")));
    exit_code = reply->value("exit", kExitArray);
    return std::nullopt;
  }
  return std::move(*reply);
}

std::optional<uint32_t> member_slot(const config::Config& cfg, const std::string& member) {
  const auto& members = cfg.array.members;
  uint32_t slot = 0;
  auto [end, ec] = std::from_chars(member.data(), member.data() + member.size(), slot);
  if (ec == std::errc() && end == member.data() + member.size()) {
    if (slot < members.size()) return slot;
    fmt::print(stderr, "r5cfs: no member in slot {}: array '{}' has slots 0 to {}\n", slot, cfg.array.name, members.size() - 1);
    return std::nullopt;
  }
  namespace fs = std::filesystem;
  std::error_code e1;
  const fs::path wanted = fs::weakly_canonical(fs::absolute(member), e1);
  for (uint32_t i = 0; i < members.size(); ++i) {
    std::error_code e2;
    if (!e1 && fs::weakly_canonical(members[i], e2) == wanted && !e2) return i;
  }
  fmt::print(stderr, "r5cfs: '{}' is not a member of array '{}' (see array.members in {}, or give a slot number)\n", member,
             cfg.array.name, cfg.file.native());
  return std::nullopt;
}

}  // namespace r5::tools

namespace r5::tools {

int with_offline_array(const config::Config& cfg, const std::function<int(engine::Engine&)>& body) {
  auto server = control::Server::bind(cfg.mount.control);
  if (!server.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", server.error().message);
    return kExitArray;
  }
  auto engine = engine::Engine::open(cfg);
  if (!engine.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", engine.error().message);
    return engine.error().kind == ErrorKind::kInvalid ? kExitUsage : kExitArray;
  }
  return body(**engine);
}

}  // namespace r5::tools
