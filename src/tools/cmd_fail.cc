// r5cfs fail: marks a member of a mounted array failed, as if it had
// returned an I/O error (for drills, or to take a dying disk out).
#include <fmt/format.h>

#include "tools/commands.h"
#include "tools/daemon_link.h"

namespace r5::tools {

int run_fail(const MemberArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  std::optional<uint32_t> slot = member_slot(*cfg, args.member);
  if (!slot) return kExitUsage;
  int rc = kExitOk;
  std::optional<UniqueFd> fd = connect_daemon(*cfg, rc);
  if (!fd) return rc;
  if (!request(fd->get(), {{"op", "fail"}, {"slot", *slot}}, rc)) return rc;
  fmt::print("member {} (slot {}) of array '{}' is failed; the array runs degraded. To rebuild it onto a new device:\n"
             "  r5cfs replace {} {} NEW_PATH\n",
             cfg->array.members[*slot].native(), *slot, cfg->array.name, cfg->file.native(), *slot);
  return kExitOk;
}

}  // namespace r5::tools
