// What the daemon does for each control request (r5cfs(8) subcommands that
// act on a mounted array); the requests are listed in admin.cc.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace r5::control {

nlohmann::json handle_request(engine::Engine& engine, const nlohmann::json& request);

}  // namespace r5::control
