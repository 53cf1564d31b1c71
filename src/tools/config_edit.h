// Edits a config file in place, keeping everything else (comments, layout)
// as it is: the admin commands that change what the config says (replace,
// journal mode/remove/add). The file is replaced atomically (written beside
// it, synced, renamed). When an edit is not possible (a layout the editor
// does not handle), it fails with the reason and changes nothing; callers
// then print the exact line to change.
#pragma once

#include <filesystem>
#include <string>
#include <optional>
#include <string_view>

#include "base/result.h"

namespace r5::tools {

// TOML text of a basic string; nullopt when it would need escapes.
std::optional<std::string> toml_string(const std::string& s);

// Sets table.key to `value` (TOML text, e.g. "\"none\"" or "true"): replaces
// the value where the key is written, or adds a line under the [table] header.
Status set_config_value(const std::filesystem::path& file, std::string_view table, std::string_view key,
                        const std::string& value);
// Comments out the line of table.key (nothing to do when absent).
Status remove_config_key(const std::filesystem::path& file, std::string_view table, std::string_view key);
// Replaces the string array.members[index] by `path`.
Status set_member_path(const std::filesystem::path& file, size_t index, const std::string& path);

}  // namespace r5::tools
