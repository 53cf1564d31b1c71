// What the daemon does for each control request (r5cfs(8) subcommands that
// act on a mounted array). Requests: {"op": "status"}, {"op": "fail",
// "slot": N}, {"op": "drain"}.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace r5::control {

nlohmann::json handle_request(engine::Engine& engine, const nlohmann::json& request);

}  // namespace r5::control
