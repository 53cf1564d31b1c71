// Rewrites one member path in a config file in place, keeping everything
// else (comments, layout) as it is (r5cfs replace).
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"

namespace r5::tools {

// Replaces the string array.members[index] of `file` by `new_path`. Refuses
// (kInvalid, with the reason) when that string is not written as a plain
// basic string the edit can rewrite exactly; the file is replaced atomically
// (written beside it, synced, renamed).
Status set_member_path(const std::filesystem::path& file, size_t index, const std::string& new_path);

}  // namespace r5::tools
