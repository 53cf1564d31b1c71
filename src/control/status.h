// The live state of a mounted array as one JSON object: what `r5cfs status`
// prints, and its stable --json output (r5cfs(8), STATUS FIELDS). Fields are
// only ever added, never renamed or removed; "version" counts additions.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace r5::control {

inline constexpr int kStatusVersion = 1;

nlohmann::json status_json(engine::Engine& engine);
// The parity check's progress (the "check" field of the status).
nlohmann::json check_json(const engine::Scrubber::Progress& p);
// A rebuild's progress (the "rebuild" field of the status).
nlohmann::json rebuild_json(const engine::Rebuilder::Progress& p);

}  // namespace r5::control
