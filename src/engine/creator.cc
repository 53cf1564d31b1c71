#include "engine/creator.h"

#include <blkid/blkid.h>
#include <uuid/uuid.h>

#include <ctime>
#include <optional>

#include "array/aligned_buffer.h"
#include "base/units.h"
#include "io/device.h"
#include "engine/journaled_cache.h"
#include "journal/writer.h"

namespace r5::engine {
namespace {

// A filesystem, partition table or RAID signature blkid recognises, or "".
std::string foreign_signature(const std::string& path) {
  blkid_probe pr = blkid_new_probe_from_filename(path.c_str());
  if (pr == nullptr) return "";
  blkid_probe_enable_superblocks(pr, 1);
  blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
  blkid_probe_enable_partitions(pr, 1);
  std::string found;
  if (blkid_do_safeprobe(pr) == 0) {
    const char* type = nullptr;
    if (blkid_probe_lookup_value(pr, "TYPE", &type, nullptr) == 0 && type) found = type;
    else if (blkid_probe_lookup_value(pr, "PTTYPE", &type, nullptr) == 0 && type) found = std::string(type) + " partition table";
    else found = "unknown";
  }
  blkid_free_probe(pr);
  return found;
}

struct Plan {
  std::filesystem::path path;
  bool exists = false;
  uint64_t size = 0;
};

}  // namespace

Status check_unused(const std::filesystem::path& path, io::Device& dev, bool force) {
  if (force) return {};
  AlignedBuffer block(format::kSuperblockSize);
  if (dev.size() >= format::kSuperblockSize) {
    R5_TRY(dev.read(0, block.span()));
    std::span<const std::byte, format::kSuperblockSize> b(block.data(), format::kSuperblockSize);
    auto member = format::decode_member_superblock(b);
    if (member.ok())
      return Error{ErrorKind::kBusy, EEXIST, fmt::format("{}: already a member of r5cfs array '{}' (uuid {}); use --force to overwrite it",
                                                         path.string(), member->name, format::uuid_to_string(member->array_uuid))};
    if (member.error().kind != ErrorKind::kNotFound)
      return Error{ErrorKind::kBusy, EEXIST, fmt::format("{}: carries a damaged r5cfs superblock ({}); use --force to overwrite it",
                                                         path.string(), member.error().message)};
    auto journal = format::decode_journal_superblock(b);
    if (journal.ok() || journal.error().kind != ErrorKind::kNotFound)
      return Error{ErrorKind::kBusy, EEXIST, fmt::format("{}: already holds an r5cfs journal; use --force to overwrite it", path.string())};
  }
  if (std::string sig = foreign_signature(path.string()); !sig.empty())
    return Error{ErrorKind::kBusy, EEXIST,
                 fmt::format("{}: contains a filesystem or partition signature ({}); use --force to overwrite it", path.string(), sig)};
  return {};
}

namespace {

// Checks one path that create will use; `key` names the config key of the
// size to give it when it does not exist yet.
Result<Plan> plan_device(const std::string& file, const std::filesystem::path& path, uint64_t size_if_missing,
                         std::string_view key, bool force, std::vector<std::string>& notices) {
  Plan p{path};
  std::error_code ec;
  p.exists = std::filesystem::exists(path, ec);
  if (!p.exists) {
    if (size_if_missing == 0) return invalid(fmt::format("{}: {}: missing, needed to create {}", file, key, path.string()));
    p.size = size_if_missing;
    return p;
  }
  auto dev = io::open_file(path, {.read_only = true});
  if (!dev.ok()) return dev.error();
  p.size = (*dev)->size();
  R5_TRY(check_unused(path, **dev, force));
  if (size_if_missing && p.size != size_if_missing)
    notices.push_back(fmt::format("{} exists with {} bytes; using its size, not {} {}", path.string(), p.size, key, size_if_missing));
  return p;
}

// The journal must hold what the journal modes need for this geometry.
Status check_journal_size(const config::Config& cfg, uint64_t size) {
  geometry::Geometry g;
  g.level = cfg.array.level;
  g.layout = cfg.array.layout;
  g.members = uint32_t(cfg.array.members.size());
  g.chunk_size = cfg.array.chunk_size;
  uint64_t min_blocks = format::kMinJournalBlocks;
  if (cfg.journal.mode != config::JournalMode::kNone) {
    if (Status st = JournaledCache::check_geometry(g); !st.ok())
      return invalid(fmt::format("{}: journal.mode: {}", cfg.file.string(), st.error().message));
    min_blocks = JournaledCache::min_journal_blocks(g);
  }
  if (size / format::kJournalBlock < min_blocks)
    return invalid(fmt::format("{}: {} is too small for the journal of this array (chunk {}, {} members, journal mode "
                               "{}): at least {}",
                               cfg.journal.path.string(), format_size(size), format_size(cfg.array.chunk_size),
                               cfg.array.members.size(), config::mode_name(cfg.journal.mode),
                               format_size(min_blocks * format::kJournalBlock)));
  return {};
}

// Creates (or zeroes) the journal device and writes an empty log for the array.
Status make_journal(const Plan& journal, const format::MemberSuperblock& sb, void (*progress)(uint64_t, uint64_t)) {
  std::error_code ec;
  if (!journal.exists) std::filesystem::create_directories(journal.path.parent_path(), ec);
  R5_ASSIGN_OR_RETURN(std::unique_ptr<io::Device> dev,
                      io::open_file(journal.path, {.create = !journal.exists, .create_size = journal.size}));
  if (std::filesystem::is_regular_file(journal.path, ec)) R5_TRY(io::write_zeros(*dev, progress));
  R5_TRY(journal::format_journal(*dev, sb, journal.size / format::kJournalBlock));
  return {};
}

}  // namespace

Status add_journal(const config::Config& cfg, const format::MemberSuperblock& sb, bool force,
                   std::vector<std::string>& notices) {
  R5_ASSIGN_OR_RETURN(Plan journal,
                      plan_device(cfg.file.string(), cfg.journal.path, cfg.journal.size, "journal.size", force, notices));
  R5_TRY(check_journal_size(cfg, journal.size));
  return make_journal(journal, sb, nullptr);
}

Result<Created> create_array(const config::Config& cfg, const CreateOptions& options) {
  const std::string file = cfg.file.string();
  const uint32_t chunk = cfg.array.chunk_size;
  const uint64_t data_offset = std::max<uint64_t>(format::kMinDataOffset, chunk);
  const uint64_t overhead = data_offset + format::kTailReserve;
  Created created;

  // 1. Check everything; touch nothing.
  std::vector<Plan> plans;
  for (const auto& path : cfg.array.members) {
    R5_ASSIGN_OR_RETURN(Plan p, plan_device(file, path, cfg.array.member_size, "array.member_size", options.force, created.notices));
    if (p.size < overhead + chunk)
      return invalid(fmt::format("{}: {} bytes is too small: a member needs at least {} ({} metadata + one {} chunk)",
                                 path.string(), p.size, format_size(overhead + chunk), format_size(overhead), format_size(chunk)));
    plans.push_back(std::move(p));
  }
  std::optional<Plan> journal;
  if (!cfg.journal.path.empty()) {
    R5_ASSIGN_OR_RETURN(journal, plan_device(file, cfg.journal.path, cfg.journal.size, "journal.size", options.force, created.notices));
    R5_TRY(check_journal_size(cfg, journal->size));
  }
  uint64_t data_size = UINT64_MAX;
  for (const Plan& p : plans) data_size = std::min(data_size, (p.size - overhead) / chunk * chunk);

  format::MemberSuperblock sb;
  uuid_generate(sb.array_uuid.data());
  sb.name = cfg.array.name;
  sb.level = cfg.array.level;
  sb.layout = cfg.array.layout;
  sb.chunk_size = chunk;
  sb.member_count = uint32_t(plans.size());
  sb.state = format::ArrayState::kClean;
  sb.data_offset = data_offset;
  sb.data_size = data_size;
  sb.events = 1;
  sb.create_time = sb.update_time = uint64_t(std::time(nullptr));

  // 2. Create, zero, write superblocks.
  std::vector<std::unique_ptr<io::Device>> devices;
  for (const Plan& p : plans) {
    std::error_code ec;
    if (!p.exists && p.path.has_parent_path()) std::filesystem::create_directories(p.path.parent_path(), ec);
    auto dev = io::open_file(p.path, {.create = !p.exists, .create_size = p.size});
    if (!dev.ok()) return dev.error();
    if (p.exists) R5_TRY(io::zero_out(**dev, options.progress));
    devices.push_back(std::move(*dev));
  }
  AlignedBuffer block(format::kSuperblockSize);
  for (uint32_t slot = 0; slot < devices.size(); ++slot) {
    sb.slot = slot;
    format::encode(sb, std::span<std::byte, format::kSuperblockSize>(block.data(), format::kSuperblockSize));
    R5_TRY(devices[slot]->write(0, block.span()));
    R5_TRY(devices[slot]->sync());
  }
  sb.slot = 0;
  if (journal) R5_TRY(make_journal(*journal, sb, options.progress));
  created.sb = sb;
  return created;
}

}  // namespace r5::engine
