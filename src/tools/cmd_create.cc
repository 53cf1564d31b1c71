#include <fmt/format.h>
#include <unistd.h>

#include "engine/creator.h"
#include "base/units.h"
#include "tools/commands.h"

namespace r5::tools {
namespace {

void print_progress(uint64_t done, uint64_t total) {
  fmt::print(stderr, "r5cfs: writing zeros (existing member, or the journal): {:.0f}% ({} of {})\n", total ? 100.0 * double(done) / double(total) : 100.0,
             format_size(done), format_size(total));
}

}  // namespace

int run_create(const CreateArgs& args) {
  auto cfg = load_config(args.config);
  if (!cfg) return kExitUsage;
  auto created = engine::create_array(*cfg, {.force = args.force, .progress = print_progress});
  if (!created.ok()) {
    fmt::print(stderr, "r5cfs: {}\n", created.error().message);
    return created.error().kind == ErrorKind::kIo ? kExitArray : kExitUsage;
  }
  for (const std::string& n : created->notices) fmt::print(stderr, "r5cfs: {}\n", n);
  const auto g = created->sb.geometry();
  fmt::print("created array '{}' (uuid {}): RAID{} {} members, {}, chunk {}, capacity {} ({} bytes)\n", created->sb.name,
             format::uuid_to_string(created->sb.array_uuid), g.level, g.members, geometry::layout_name(g.layout),
             format_size(g.chunk_size), format_size(g.capacity()), g.capacity());
  return kExitOk;
}

}  // namespace r5::tools
