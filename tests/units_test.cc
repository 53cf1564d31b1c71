// Sizes and durations are what users type into configs: every accepted form
// is pinned, and every near miss must be refused rather than guessed.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "base/units.h"

using namespace std::chrono_literals;
using r5::format_size;
using r5::parse_duration;
using r5::parse_size;

TEST_CASE("parse_size accepts plain bytes") {
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("1") == 1u);
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("0004096") == 4096u);
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<uint64_t>::max());
}

TEST_CASE("parse_size accepts every suffix") {
  CHECK(parse_size("4096B") == 4096u);
  CHECK(parse_size("0B") == 0u);
  CHECK(parse_size("64KiB") == 64u << 10);
  CHECK(parse_size("256MiB") == 256u << 20);
  CHECK(parse_size("1GiB") == 1ull << 30);
  CHECK(parse_size("2TiB") == 2ull << 40);
  CHECK(parse_size("0TiB") == 0u);
  // The largest exact multiple of each unit still fits.
  CHECK(parse_size("16777215TiB") == 16777215ull << 40);
  CHECK(parse_size("17179869183GiB") == 17179869183ull << 30);
}

TEST_CASE("parse_size refuses malformed text") {
  const char* bad[] = {
      "",        "B",      "KiB",   "-1",     "+1",     " 1",      "1 ",     "1 KiB",  "1.5KiB", "1,5KiB",
      "1e3",     "0x10",   "1K",    "1KB",    "1kib",   "1kiB",    "1KIB",   "1Ki",    "1k",     "1M",
      "1MB",     "1G",     "1T",    "1PiB",   "1EiB",   "1b",      "1BB",    "1KiBB",  "KiB1",   "1KiB ",
      "one",     "1_000",  "1\n",   "\t1",    "1ms",    "1s",
  };
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK_FALSE(parse_size(text).has_value());
  }
  // A NUL inside the text is not a terminator here.
  CHECK_FALSE(parse_size(std::string_view("1\0KiB", 5)).has_value());
}

TEST_CASE("parse_size refuses overflow") {
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK_FALSE(parse_size("99999999999999999999999").has_value());
  CHECK_FALSE(parse_size("16777216TiB").has_value());
  CHECK_FALSE(parse_size("17179869184GiB").has_value());
  CHECK_FALSE(parse_size("18014398509481984KiB").has_value());
  CHECK(parse_size("18014398509481983KiB") == 18014398509481983ull << 10);
}

TEST_CASE("parse_duration accepts every unit") {
  CHECK(parse_duration("0ms") == 0ms);
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("10s") == 10s);
  CHECK(parse_duration("0s") == 0s);
  CHECK(parse_duration("2m") == 2min);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("010s") == 10s);
  CHECK(parse_duration("9223372036854775807ms") == std::chrono::milliseconds::max());
}

TEST_CASE("parse_duration refuses malformed text and overflow") {
  const char* bad[] = {
      "",    "10",    "s",      "ms",     "-1s",   "+1s",  "1.5s", " 1s",  "1s ", "1 s", "1S",
      "1M",  "1H",    "1min",   "1sec",   "1d",    "1us",  "1ns",  "1hr",  "1sm", "1mss",
      "1KiB",
      // One past the largest value of each unit in int64 milliseconds.
      "9223372036854775808ms", "9223372036854776s", "153722867280913m", "2562047788016h",
      "99999999999999999999999h",
  };
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
  CHECK(parse_duration("9223372036854775s") == std::chrono::seconds(9223372036854775));
  CHECK(parse_duration("2562047788015h") == std::chrono::hours(2562047788015));
}

TEST_CASE("format_size is exact when possible") {
  CHECK(format_size(0) == "0B");
  CHECK(format_size(1) == "1B");
  CHECK(format_size(1023) == "1023B");
  CHECK(format_size(1024) == "1KiB");
  CHECK(format_size(4096) == "4KiB");
  CHECK(format_size(1536) == "1.5KiB");
  CHECK(format_size(268435456) == "256MiB");
  CHECK(format_size(1ull << 30) == "1GiB");
  CHECK(format_size(3ull << 40) == "3TiB");
  CHECK(format_size(1024ull << 40) == "1024TiB");  // TiB is the largest unit
  CHECK(format_size((1ull << 20) + (1ull << 19)) == "1.5MiB");
  CHECK(format_size((1ull << 30) * 25 / 10) == "2.5GiB");
}

TEST_CASE("format_size rounds to one decimal otherwise") {
  CHECK(format_size(1025) == "1.0KiB");
  CHECK(format_size(1100) == "1.1KiB");
  CHECK(format_size(1996) == "1.9KiB");
  CHECK(format_size(2000) == "2.0KiB");
  CHECK(format_size(1048575) == "1.0MiB");  // 1023.999KiB does not print as 1024.0KiB
  CHECK(format_size((1ull << 40) - 1) == "1.0TiB");
  CHECK(format_size(std::numeric_limits<uint64_t>::max()) == "16777216.0TiB");
}

TEST_CASE("format_size output parses back when exact") {
  for (uint64_t v : {0ull, 1ull, 4096ull, 65536ull, 1ull << 20, 256ull << 20, 5ull << 30, 7ull << 40}) {
    CAPTURE(v);
    CHECK(parse_size(format_size(v)) == v);
  }
}
