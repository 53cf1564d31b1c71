// r5cfs info: like mdadm --examine, from the members' superblocks, offline.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "array/assembly.h"
#include "base/units.h"
#include "tools/commands.h"

namespace r5::tools {
namespace {

std::string_view found_name(array::ExaminedMember::Found f) {
  using F = array::ExaminedMember::Found;
  switch (f) {
    case F::kSuperblock: return "superblock";
    case F::kMissing: return "missing";
    case F::kUnreadable: return "unreadable";
    case F::kNoSuperblock: return "no-superblock";
    case F::kCorrupt: return "corrupt-superblock";
  }
  return "?";
}

// The commands that assemble the members' data areas with the kernel's md,
// for when r5cfs is unavailable (r5cfs(8), RECOVERY WITHOUT R5CFS).
std::vector<std::string> mdadm_commands(const format::MemberSuperblock& sb, const std::vector<std::string>& slot_paths,
                                        uint64_t failed_mask) {
  std::vector<std::string> lines;
  std::string devices;
  for (size_t slot = 0; slot < slot_paths.size(); ++slot) {
    if ((failed_mask >> slot) & 1) {
      devices += " missing";
      continue;
    }
    lines.push_back(fmt::format("L{}=$(losetup --find --show --offset {} --sizelimit {} {})", slot, sb.data_offset,
                                sb.data_size + format::kTailReserve, slot_paths[slot]));
    devices += fmt::format(" $L{}", slot);
  }
  lines.push_back(fmt::format("mdadm --create /dev/md/{} --assume-clean --metadata=1.0 --bitmap=none --level={} "
                              "--layout={} --chunk={} --raid-devices={} --size={}{}",
                              sb.name, sb.level, geometry::layout_name(sb.layout), sb.chunk_size / 1024,
                              sb.member_count, sb.data_size / 1024, devices));
  return lines;
}

}  // namespace

int run_info(const InfoArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  std::vector<array::ExaminedMember> examined = array::examine(*cfg, /*read_only=*/true);
  struct Row {
    std::string path, found, problem;
    std::optional<format::MemberSuperblock> sb;
    uint64_t device_size;
  };
  std::vector<Row> rows;
  for (const auto& m : examined)
    rows.push_back({m.path, std::string(found_name(m.found)), m.problem, m.sb, m.device_size});
  auto assembled = array::assemble(*cfg, std::move(examined));

  nlohmann::json j;
  j["config"] = cfg->file.string();
  j["assembles"] = assembled.ok();
  if (!assembled.ok()) j["error"] = assembled.error().message;
  if (assembled.ok()) {
    const format::MemberSuperblock& sb = assembled->sb;
    const geometry::Geometry g = sb.geometry();
    std::vector<std::string> slot_paths;
    for (const auto& s : assembled->slots) slot_paths.push_back(s.path);
    j["name"] = sb.name;
    j["uuid"] = format::uuid_to_string(sb.array_uuid);
    j["level"] = sb.level;
    j["layout"] = geometry::layout_name(sb.layout);
    j["chunk_size"] = sb.chunk_size;
    j["member_count"] = sb.member_count;
    j["data_members_per_row"] = g.data_count();
    j["capacity"] = g.capacity();
    j["data_offset"] = sb.data_offset;
    j["data_size"] = sb.data_size;
    j["state"] = sb.state == format::ArrayState::kClean ? "clean" : "dirty";
    j["events"] = sb.events;
    if (sb.check) j["check"] = {{"next_row", sb.check->next_row}, {"repair", sb.check->repair}};
    j["degraded"] = assembled->degraded();
    j["failed_slots"] = nlohmann::json::array();
    for (uint32_t s = 0; s < sb.member_count; ++s)
      if ((sb.failed_mask >> s) & 1) j["failed_slots"].push_back(s);
    j["notices"] = assembled->notices;
    j["mdadm_commands"] = mdadm_commands(sb, slot_paths, sb.failed_mask);
  }
  j["members"] = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    nlohmann::json m;
    m["path"] = rows[i].path;
    m["found"] = rows[i].found;
    m["state"] = assembled.ok() ? std::string(array::role_name(assembled->roles[i])) : rows[i].found;
    m["device_size"] = rows[i].device_size;
    if (!rows[i].problem.empty()) m["problem"] = rows[i].problem;
    if (rows[i].sb) {
      m["slot"] = rows[i].sb->slot;
      m["events"] = rows[i].sb->events;
      m["data_offset"] = rows[i].sb->data_offset;
      m["data_size"] = rows[i].sb->data_size;
      m["uuid"] = format::uuid_to_string(rows[i].sb->array_uuid);
    }
    j["members"].push_back(m);
  }

  if (args.json) {
    fmt::print("{}\n", j.dump(2));
    return assembled.ok() ? kExitOk : kExitArray;
  }
  if (assembled.ok()) {
    fmt::print("Array:        {} (uuid {})\n", j["name"].get<std::string>(), j["uuid"].get<std::string>());
    fmt::print("Level:        RAID{}, layout {}, chunk {}\n", assembled->sb.level, geometry::layout_name(assembled->sb.layout),
               format_size(assembled->sb.chunk_size));
    fmt::print("Members:      {} ({} data + {} parity per row)\n", assembled->sb.member_count,
               assembled->sb.geometry().data_count(), assembled->sb.geometry().parity_count());
    fmt::print("Capacity:     {} bytes ({})\n", assembled->sb.geometry().capacity(), format_size(assembled->sb.geometry().capacity()));
    fmt::print("Data area:    offset {} bytes, size {} bytes on each member\n", assembled->sb.data_offset, assembled->sb.data_size);
    fmt::print("State:        {}{}, events {}\n", j["state"].get<std::string>(), assembled->degraded() ? ", DEGRADED" : "",
               assembled->sb.events);
    if (const auto& c = assembled->sb.check)
      fmt::print("Check:        interrupted at row {} of {}{}; r5cfs check resumes it\n", c->next_row,
                 assembled->sb.geometry().rows, c->repair ? " (with repair)" : "");
  } else {
    fmt::print("Array:        does not assemble: {}\n", assembled.error().message);
  }
  fmt::print("\n{:<5} {:<14} {:>8} {:>12}  {}\n", "Slot", "State", "Events", "Data offset", "Path");
  for (const auto& m : j["members"]) {
    fmt::print("{:<5} {:<14} {:>8} {:>12}  {}{}\n", m.contains("slot") ? std::to_string(m["slot"].get<uint32_t>()) : "-",
               m["state"].get<std::string>(), m.contains("events") ? std::to_string(m["events"].get<uint64_t>()) : "-",
               m.contains("data_offset") ? std::to_string(m["data_offset"].get<uint64_t>()) : "-", m["path"].get<std::string>(),
               m.contains("problem") ? fmt::format(" ({})", m["problem"].get<std::string>()) : "");
  }
  if (assembled.ok()) {
    for (const std::string& n : assembled->notices) fmt::print("notice: {}\n", n);
    fmt::print("\nTo assemble the data areas with Linux md when r5cfs is unavailable (see r5cfs(8)):\n");
    for (const auto& line : j["mdadm_commands"]) fmt::print("  {}\n", line.get<std::string>());
  }
  return assembled.ok() ? kExitOk : kExitArray;
}

}  // namespace r5::tools
