// Following a long operation (check, rebuild) to its end: a progress bar on
// a terminal, a plain line every 10 s otherwise.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace r5::tools {

// `poll` returns the operation's progress (fields state, percent, next_row,
// rows, bytes, seconds, bytes_per_second; as control::check_json and
// rebuild_json make them) or nullopt on an error it printed. `detail` adds
// operation-specific text to the line. Returns the final progress, or
// nullopt when polling failed or the user interrupted (after on_interrupt).
std::optional<nlohmann::json> follow(const std::string& what, const std::function<std::optional<nlohmann::json>()>& poll,
                                     const std::function<std::string(const nlohmann::json&)>& detail,
                                     const std::function<void()>& on_interrupt);
// Whether SIGINT or SIGTERM arrived since follow() started.
bool interrupted();

}  // namespace r5::tools
