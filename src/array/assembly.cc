#include "array/assembly.h"

#include <algorithm>
#include <bit>
#include <map>

#include "array/aligned_buffer.h"
#include "base/log.h"
#include "base/units.h"

namespace r5::array {

std::string_view role_name(MemberRole role) {
  switch (role) {
    case MemberRole::kActive: return "active";
    case MemberRole::kFailed: return "failed";
    case MemberRole::kMissing: return "missing";
    case MemberRole::kStale: return "stale";
    case MemberRole::kForeign: return "foreign";
    case MemberRole::kBlank: return "no-superblock";
    case MemberRole::kCorrupt: return "corrupt";
    case MemberRole::kUnreadable: return "unreadable";
    case MemberRole::kInconsistent: return "inconsistent";
    case MemberRole::kRebuilding: return "rebuilding";
  }
  return "?";
}

bool Assembled::degraded() const { return sb.failed_mask != 0; }

std::vector<ExaminedMember> examine(const config::Config& cfg, bool read_only) {
  std::vector<ExaminedMember> out;
  for (const auto& path : cfg.array.members) {
    ExaminedMember m;
    m.path = path.string();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      m.found = ExaminedMember::Found::kMissing;
      m.problem = "does not exist";
      out.push_back(std::move(m));
      continue;
    }
    auto dev = io::open_file(path, {.read_only = read_only});
    if (!dev.ok()) {
      m.found = ExaminedMember::Found::kUnreadable;
      m.problem = dev.error().message;
      m.busy = dev.error().kind == ErrorKind::kBusy;
      out.push_back(std::move(m));
      continue;
    }
    m.device_size = (*dev)->size();
    AlignedBuffer block(format::kSuperblockSize);
    Status st = m.device_size >= format::kSuperblockSize ? (*dev)->read(0, block.span())
                                                          : invalid("smaller than a superblock");
    if (!st.ok()) {
      m.found = ExaminedMember::Found::kUnreadable;
      m.problem = st.error().message;
    } else if (auto sb = format::decode_member_superblock(
                   std::span<const std::byte, format::kSuperblockSize>(block.data(), format::kSuperblockSize));
               sb.ok()) {
      m.found = ExaminedMember::Found::kSuperblock;
      m.sb = *sb;
      m.device = std::move(*dev);
    } else {
      m.found = sb.error().kind == ErrorKind::kNotFound ? ExaminedMember::Found::kNoSuperblock
                                                         : ExaminedMember::Found::kCorrupt;
      m.problem = sb.error().message;
    }
    log::debug("examined {}: {}{}", m.path, m.sb ? fmt::format("slot {} events {}", m.sb->slot, m.sb->events) : "no superblock",
               m.problem.empty() ? "" : " (" + m.problem + ")");
    out.push_back(std::move(m));
  }
  return out;
}

Result<Assembled> assemble(const config::Config& cfg, std::vector<ExaminedMember> examined) {
  const std::string file = cfg.file.string();
  const uint32_t n = uint32_t(cfg.array.members.size());
  Assembled a;
  a.roles.assign(examined.size(), MemberRole::kMissing);
  // Never assemble around a member another process is using: it would be
  // marked failed for good while it is merely busy.
  for (const auto& m : examined)
    if (m.busy) return Error{ErrorKind::kBusy, EBUSY, fmt::format("{}: cannot assemble: {}", file, m.problem)};

  // The array is the UUID most members carry (ties: the freshest).
  std::map<format::Uuid, std::pair<uint32_t, uint64_t>> votes;
  for (const auto& m : examined)
    if (m.sb) {
      auto& v = votes[m.sb->array_uuid];
      v.first++;
      v.second = std::max(v.second, m.sb->events);
    }
  if (votes.empty())
    return not_found(fmt::format("{}: no member carries an r5cfs superblock (run 'r5cfs create {}' first)", file, file));
  auto best = std::max_element(votes.begin(), votes.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  const format::Uuid uuid = best->first;

  const format::MemberSuperblock* freshest = nullptr;
  for (const auto& m : examined)
    if (m.sb && m.sb->array_uuid == uuid && (!freshest || m.sb->events > freshest->events)) freshest = &*m.sb;
  a.sb = *freshest;

  // The config must describe the array the members belong to.
  auto mismatch = [&](std::string_view key, auto config_value, auto member_value) {
    return invalid(fmt::format("{}: {}: config says {}, but the members were created with {}", file, key, config_value,
                               member_value));
  };
  if (a.sb.level != cfg.array.level) return mismatch("array.level", cfg.array.level, a.sb.level);
  if (a.sb.layout != cfg.array.layout)
    return mismatch("array.layout", geometry::layout_name(cfg.array.layout), geometry::layout_name(a.sb.layout));
  if (a.sb.chunk_size != cfg.array.chunk_size)
    return mismatch("array.chunk_size", format_size(cfg.array.chunk_size), format_size(a.sb.chunk_size));
  if (a.sb.member_count != n) return mismatch("array.members", fmt::format("{} members", n), fmt::format("{} members", a.sb.member_count));

  a.slots.resize(n);
  std::vector<int> slot_owner(n, -1);
  for (size_t i = 0; i < examined.size(); ++i) {
    ExaminedMember& m = examined[i];
    auto leave_out = [&](MemberRole role, std::string why) {
      a.roles[i] = role;
      a.notices.push_back(fmt::format("member {}: {}; left out", m.path, why));
    };
    if (!m.sb) {
      using F = ExaminedMember::Found;
      MemberRole role = m.found == F::kNoSuperblock ? MemberRole::kBlank
                        : m.found == F::kCorrupt      ? MemberRole::kCorrupt
                        : m.found == F::kUnreadable   ? MemberRole::kUnreadable
                                                      : MemberRole::kMissing;
      leave_out(role, m.problem);
      continue;
    }
    const format::MemberSuperblock& s = *m.sb;
    if (s.array_uuid != uuid) {
      leave_out(MemberRole::kForeign, fmt::format("belongs to another r5cfs array ('{}', uuid {}), not {}", s.name,
                                                  format::uuid_to_string(s.array_uuid), format::uuid_to_string(uuid)));
      continue;
    }
    if (s.geometry() != a.sb.geometry() || s.data_offset != a.sb.data_offset) {
      leave_out(MemberRole::kInconsistent, "its superblock disagrees with the other members on the geometry");
      continue;
    }
    if (m.device_size < s.data_offset + s.data_size) {
      leave_out(MemberRole::kInconsistent, fmt::format("device is {} bytes, smaller than its data area end {}",
                                                       m.device_size, s.data_offset + s.data_size));
      continue;
    }
    const bool slot_failed = (a.sb.failed_mask >> s.slot) & 1;
    if (slot_failed && a.sb.rebuild && a.sb.rebuild->slot == s.slot && s.events >= a.sb.rebuild->start_events &&
        !a.rebuilding.device) {
      // The new device r5cfs replace is rebuilding the slot onto (the failed
      // device it replaces stopped at lower events).
      a.roles[i] = MemberRole::kRebuilding;
      a.notices.push_back(fmt::format("member {}: slot {} is being rebuilt onto it ({} of {} rows done); the rebuild resumes",
                                      m.path, s.slot, a.sb.rebuild->next_row, a.sb.geometry().rows));
      a.rebuilding = MemberSlot{m.path, std::move(m.device)};
      continue;
    }
    if (slot_failed) {
      leave_out(MemberRole::kFailed, fmt::format("slot {} is marked failed in the newest superblocks", s.slot));
      continue;
    }
    if (s.events < a.sb.events) {
      leave_out(MemberRole::kStale, fmt::format("stale (events {} < {}): it missed updates while out of the array",
                                                s.events, a.sb.events));
      continue;
    }
    if (slot_owner[s.slot] >= 0)
      return invalid(fmt::format("{}: members {} and {} both claim slot {}; remove the copy from array.members", file,
                                 examined[size_t(slot_owner[s.slot])].path, m.path, s.slot));
    slot_owner[s.slot] = int(i);
    if (s.slot != i)
      a.notices.push_back(fmt::format("member {} is listed at position {} of array.members but holds slot {}; using it as slot {}",
                                      m.path, i, s.slot, s.slot));
    a.roles[i] = MemberRole::kActive;
    a.slots[s.slot] = MemberSlot{m.path, std::move(m.device)};
  }

  for (uint32_t slot = 0; slot < n; ++slot) {
    if (a.slots[slot].device) continue;
    // Best guess for messages: the path configured at that position.
    a.slots[slot].path = a.roles[slot] != MemberRole::kActive ? examined[slot].path : fmt::format("(slot {})", slot);
    a.sb.failed_mask |= uint64_t(1) << slot;
  }
  const uint32_t lost = uint32_t(std::popcount(a.sb.failed_mask));
  if (lost > a.sb.geometry().parity_count()) {
    std::string detail;
    for (size_t i = 0; i < examined.size(); ++i)
      detail += fmt::format("{}{}: {}", detail.empty() ? "" : "; ", examined[i].path, role_name(a.roles[i]));
    return io_error(ENODEV, fmt::format("{}: cannot start: {} of {} members unavailable, RAID{} survives {} ({})", file,
                                        lost, n, a.sb.level, a.sb.geometry().parity_count(), detail));
  }
  if (lost > 0) a.notices.push_back(fmt::format("array '{}' starts degraded: {} of {} members unavailable", a.sb.name, lost, n));
  return a;
}

}  // namespace r5::array
