#include "base/units.h"

#include <fmt/format.h>

#include <iterator>
#include <limits>

namespace r5 {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

// Binary units only: a "KB" or "k" would be ambiguous (1000 or 1024?), and a
// chunk or cache size off by 2.4% is a silent misconfiguration.
constexpr Unit kSizeUnits[] = {
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
};

constexpr Unit kDurationUnits[] = {
    {"ms", 1},
    {"s", 1000},
    {"m", 60 * 1000},
    {"h", 60 * 60 * 1000},
};

// Splits "123KiB" into 123 and "KiB". nullopt without leading digits or when
// the number overflows; no sign, no spaces, no fraction is accepted because
// each would either be meaningless or lose precision silently.
struct Number {
  uint64_t value;
  std::string_view suffix;
};

std::optional<Number> split_number(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t digit = uint64_t(text[i] - '0');
    if (value > (kMax - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    i++;
  }
  if (i == 0) return std::nullopt;
  return Number{value, text.substr(i)};
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  auto number = split_number(text);
  if (!number) return std::nullopt;
  if (number->suffix.empty()) return number->value;
  for (const Unit& unit : kSizeUnits) {
    if (number->suffix != unit.suffix) continue;
    if (number->value > std::numeric_limits<uint64_t>::max() / unit.factor) return std::nullopt;
    return number->value * unit.factor;
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto number = split_number(text);
  // A bare number has no obvious unit (seconds? milliseconds?), so it is refused.
  if (!number || number->suffix.empty()) return std::nullopt;
  using Rep = std::chrono::milliseconds::rep;
  constexpr uint64_t kMax = uint64_t(std::numeric_limits<Rep>::max());
  for (const Unit& unit : kDurationUnits) {
    if (number->suffix != unit.suffix) continue;
    if (number->value > kMax / unit.factor) return std::nullopt;
    return std::chrono::milliseconds(Rep(number->value * unit.factor));
  }
  return std::nullopt;
}

std::string format_size(uint64_t bytes) {
  size_t u = 0;
  while (u + 1 < std::size(kSizeUnits) && bytes >= kSizeUnits[u + 1].factor) u++;
  if (u == 0) return fmt::format("{}B", bytes);
  uint64_t factor = kSizeUnits[u].factor;
  uint64_t whole = bytes / factor;
  uint64_t rest = bytes % factor;
  if (rest == 0) return fmt::format("{}{}", whole, kSizeUnits[u].suffix);
  // rest < factor <= 2^40, so rest * 10 cannot overflow.
  uint64_t tenths = (rest * 10 + factor / 2) / factor;
  if (tenths == 10) {
    whole++;
    tenths = 0;
    // 1023.96KiB rounds to 1024.0KiB, which reads better as 1.0MiB.
    if (whole == 1024 && u + 1 < std::size(kSizeUnits)) return fmt::format("1.0{}", kSizeUnits[u + 1].suffix);
  }
  return fmt::format("{}.{}{}", whole, tenths, kSizeUnits[u].suffix);
}

}  // namespace r5
