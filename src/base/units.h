// Human units for sizes and durations, as written in config files and
// printed by the tools.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace r5 {

// "4096", "64KiB", "256MiB", "1GiB", "2TiB" (binary units, case-sensitive
// suffixes KiB MiB GiB TiB, optional "B" for bytes). nullopt when malformed or
// overflowing 64 bits.
std::optional<uint64_t> parse_size(std::string_view text);
// "10s", "500ms", "2m", "1h". nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// 1536 -> "1.5KiB", 268435456 -> "256MiB": exact when possible, else one decimal.
std::string format_size(uint64_t bytes);

}  // namespace r5
