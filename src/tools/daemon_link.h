// How the admin tool reaches the daemon of a mounted array: the control
// socket named by the config (mount.control).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "base/unique_fd.h"
#include "config/config.h"
#include "control/channel.h"

namespace r5::tools {

// The connection, or nullopt with a message printed: `exit_code` is then
// kExitNotMounted when no daemon serves the array (printed only when
// `report_unmounted`), kExitArray otherwise.
std::optional<UniqueFd> connect_daemon(const config::Config& cfg, int& exit_code, bool report_unmounted = true);
// Sends a request; prints the error and sets exit_code when it fails or is refused.
std::optional<nlohmann::json> request(int fd, const nlohmann::json& req, int& exit_code);

// A member named by slot number or by path (as in the config, or any path
// naming the same file). nullopt with a message printed when it is neither.
std::optional<uint32_t> member_slot(const config::Config& cfg, const std::string& member);

}  // namespace r5::tools

namespace r5::engine {
class Engine;
}

namespace r5::tools {

// Runs `body` on the array assembled by this process (not mounted), holding
// its control socket so no daemon can mount it meanwhile. Returns body's exit
// code, or prints why the array could not be assembled and returns an error.
int with_offline_array(const config::Config& cfg, const std::function<int(engine::Engine&)>& body);

}  // namespace r5::tools
