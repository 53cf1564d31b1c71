// r5cfs status: the live state of a mounted array, from its daemon.
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/units.h"
#include "engine/engine.h"
#include "tools/commands.h"
#include "tools/daemon_link.h"

namespace r5::tools {
namespace {

using nlohmann::json;

std::string size_classes(const json& counts) {
  std::string out;
  for (const char* name : engine::RequestCounters::kClassName)
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", name, counts.value(name, uint64_t(0)));
  return out;
}

void print_text(const json& s) {
  const json& a = s["array"];
  fmt::print("Array:      {} (uuid {})\n", a["name"].get<std::string>(), a["uuid"].get<std::string>());
  fmt::print("Level:      RAID{}, layout {}, chunk {}, capacity {}\n", a["level"].get<int>(),
             a["layout"].get<std::string>(), format_size(a["chunk_size"]), format_size(a["capacity"]));
  fmt::print("State:      {}{}\n", a["state"].get<std::string>(), a["read_only"].get<bool>() ? ", read-only" : "");
  if (!s["error"].is_null()) fmt::print("Error:      {}\n", s["error"].get<std::string>());
  fmt::print("Members:\n");
  for (const json& m : s["members"])
    fmt::print("  {:>3}  {:<10} {}\n", m["slot"].get<int>(), m["state"].get<std::string>(), m["path"].get<std::string>());

  const json& j = s["journal"];
  fmt::print("Journal:    mode {}", j["mode"].get<std::string>());
  if (j.contains("blocks")) {
    fmt::print(", sync {}, {}\n", j["sync"].get<std::string>(), j["path"].get<std::string>());
    fmt::print("            {:.1f}% full ({} of {} blocks, {} reserved for parity), tail seq {} at {}, head seq {} at {}\n",
               j["fill_percent"].get<double>(), j["used_blocks"].get<uint64_t>(), j["blocks"].get<uint64_t>(),
               j["reserved_blocks"].get<uint64_t>(), j["tail"]["sequence"].get<uint64_t>(),
               j["tail"]["position"].get<uint64_t>(), j["head"]["sequence"].get<uint64_t>(),
               j["head"]["position"].get<uint64_t>());
    fmt::print("            {} commits of {} writes, {} records, {} written, {} syncs, {} waits for space\n",
               j["commits"].get<uint64_t>(), j["writes_committed"].get<uint64_t>(), j["records"].get<uint64_t>(),
               format_size(j["bytes"]), j["syncs"].get<uint64_t>(), j["space_waits"].get<uint64_t>());
    const json& r = j["replay"];
    fmt::print("            replay at mount: {:.3f} s, {} records, {} rows repaired, {} dirty pages\n",
               r["seconds"].get<double>(), r["records"].get<uint64_t>(), r["repaired_rows"].get<uint64_t>(),
               r["dirty_pages"].get<uint64_t>());
  } else {
    fmt::print("\n");
  }
  if (const json& c = s["cache"]; !c.is_null()) {
    fmt::print("Cache:      {} dirty stripes ({} full), {} of {} in pages, {} served from the pool\n",
               c["dirty_stripes"].get<uint64_t>(), c["full_stripes"].get<uint64_t>(),
               format_size(c["pages"].get<uint64_t>() * 4096), format_size(c["pages_max"].get<uint64_t>() * 4096),
               format_size(c["read_bytes"]));
    fmt::print("            {} flushes of {} stripes ({} full), {} checkpoints, {} stripes awaiting one\n",
               c["flushes"].get<uint64_t>(), c["stripes_flushed"].get<uint64_t>(), c["full_stripes_flushed"].get<uint64_t>(),
               c["checkpoints"].get<uint64_t>(), c["unsynced_stripes"].get<uint64_t>());
  }
  const json& q = s["requests"];
  fmt::print("Reads:      {}\n", size_classes(q["reads"]));
  fmt::print("Writes:     {}\n", size_classes(q["writes"]));
  fmt::print("            {} fsyncs, {} read errors, {} write errors\n", q["fsyncs"].get<uint64_t>(),
             q["read_errors"].get<uint64_t>(), q["write_errors"].get<uint64_t>());
  const json& io = s["array_io"];
  fmt::print("Stripes:    {} full-stripe writes, {} reconstruct-writes, {} read-modify-writes, {} degraded writes\n",
             io["full_stripe_writes"].get<uint64_t>(), io["reconstruct_writes"].get<uint64_t>(),
             io["read_modify_writes"].get<uint64_t>(), io["degraded_writes"].get<uint64_t>());
  fmt::print("Members IO: {} read, {} written, {} syncs, {} degraded reads\n", format_size(io["member_bytes_read"]),
             format_size(io["member_bytes_written"]), io["member_syncs"].get<uint64_t>(),
             io["degraded_reads"].get<uint64_t>());
  if (const json& c = s["check"]; c["state"] != "idle")
    fmt::print("Check:      {}{} at row {} of {} ({:.1f}%), {} mismatches, {} repaired\n", c["state"].get<std::string>(),
               c["repair"].get<bool>() ? " (repair)" : "", c["next_row"].get<uint64_t>(), c["rows"].get<uint64_t>(),
               c["percent"].get<double>(), c["mismatches"].get<uint64_t>(), c["repaired"].get<uint64_t>());
  if (const json& r = s["rebuild"]; r["state"] != "idle")
    fmt::print("Rebuild:    {} of slot {} onto {} at row {} of {} ({:.1f}%){}\n", r["state"].get<std::string>(),
               r["slot"].get<uint32_t>(), r["path"].get<std::string>(), r["next_row"].get<uint64_t>(),
               r["rows"].get<uint64_t>(), r["percent"].get<double>(),
               r["error"].is_null() ? "" : ": " + r["error"].get<std::string>());
  const json& rs = s["resync"];
  if (rs["pending"].get<bool>() || rs["rows_checked"].get<uint64_t>() > 0)
    fmt::print("Resync:     {}, {} rows checked, {} repaired\n", rs["pending"].get<bool>() ? "running" : "done",
               rs["rows_checked"].get<uint64_t>(), rs["rows_repaired"].get<uint64_t>());
}

}  // namespace

int run_status(const StatusArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  int rc = kExitOk;
  std::optional<UniqueFd> fd = connect_daemon(*cfg, rc);
  if (!fd) return rc;
  const bool tty = isatty(STDOUT_FILENO) == 1;
  for (;;) {
    std::optional<json> reply = request(fd->get(), {{"op", "status"}}, rc);
    if (!reply) return rc;
    const json& s = (*reply)["status"];
    if (args.watch && tty) fmt::print("\033[H\033[2J");  // redraw in place
    if (args.json)
      fmt::print("{}\n", s.dump(args.watch ? -1 : 2));  // --watch --json: one object per line
    else
      print_text(s);
    if (!args.watch) return kExitOk;
    if (!tty && !args.json) fmt::print("\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(args.interval));
  }
}

}  // namespace r5::tools
