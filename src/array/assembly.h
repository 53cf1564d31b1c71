// Assembly: from the member paths of a config to a set of members that agree
// on one array, like mdadm --assemble. examine() only reads; assemble() decides
// which members take part, re-orders them by the slot in their superblock
// (with a notice), and leaves out foreign, stale, failed, inconsistent or
// blank members with a precise message. It refuses (error) when the config
// and the members disagree on the geometry, when slots collide, or when too
// few members remain.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "array/member_set.h"
#include "config/config.h"

namespace r5::array {

struct ExaminedMember {
  std::string path;
  enum class Found { kSuperblock, kMissing, kUnreadable, kNoSuperblock, kCorrupt } found = Found::kMissing;
  std::string problem;  // why it is not kSuperblock
  bool busy = false;    // another r5cfs process holds it (kUnreadable)
  std::optional<format::MemberSuperblock> sb;
  uint64_t device_size = 0;
  std::unique_ptr<io::Device> device;
};

std::vector<ExaminedMember> examine(const config::Config& cfg, bool read_only);

// Role of a configured path after assembly.
enum class MemberRole { kActive, kFailed, kMissing, kStale, kForeign, kBlank, kCorrupt, kUnreadable, kInconsistent, kRebuilding };
std::string_view role_name(MemberRole role);

struct Assembled {
  format::MemberSuperblock sb;      // freshest superblock, failed_mask includes missing slots
  std::vector<MemberSlot> slots;    // slot order; null device = not taking part
  std::vector<MemberRole> roles;    // per configured path (config order)
  std::vector<std::string> notices; // one line each, for the log and the tools
  MemberSlot rebuilding;            // the new device of the slot sb.rebuild names, if found
  bool degraded() const;
};

Result<Assembled> assemble(const config::Config& cfg, std::vector<ExaminedMember> examined);

}  // namespace r5::array
