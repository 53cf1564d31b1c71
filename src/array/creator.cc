#include "array/creator.h"

#include <blkid/blkid.h>
#include <uuid/uuid.h>

#include <ctime>

#include "array/aligned_buffer.h"
#include "base/units.h"
#include "io/device.h"

namespace r5::array {
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

Result<Created> create_array(const config::Config& cfg, const CreateOptions& options) {
  const std::string file = cfg.file.string();
  const uint32_t chunk = cfg.array.chunk_size;
  const uint64_t data_offset = std::max<uint64_t>(format::kMinDataOffset, chunk);
  const uint64_t overhead = data_offset + format::kTailReserve;
  Created created;

  // 1. Check everything; touch nothing.
  std::vector<Plan> plans;
  for (const auto& path : cfg.array.members) {
    Plan p{path};
    std::error_code ec;
    p.exists = std::filesystem::exists(path, ec);
    if (!p.exists) {
      if (cfg.array.member_size == 0)
        return invalid(fmt::format("{}: array.member_size: missing, needed to create {}", file, path.string()));
      p.size = cfg.array.member_size;
    } else {
      auto dev = io::open_file(path, {.read_only = true});
      if (!dev.ok()) return dev.error();
      p.size = (*dev)->size();
      AlignedBuffer block(format::kSuperblockSize);
      if (p.size >= format::kSuperblockSize) {
        R5_TRY((*dev)->read(0, block.span()));
        auto sb = format::decode_member_superblock(std::span<const std::byte, format::kSuperblockSize>(block.data(), format::kSuperblockSize));
        const bool is_r5cfs = sb.ok() || sb.error().kind != ErrorKind::kNotFound;
        if (is_r5cfs && !options.force) {
          return Error{ErrorKind::kBusy, EEXIST,
                       sb.ok() ? fmt::format("{}: already a member of r5cfs array '{}' (uuid {}); use --force to overwrite it",
                                             path.string(), sb->name, format::uuid_to_string(sb->array_uuid))
                               : fmt::format("{}: carries a damaged r5cfs superblock ({}); use --force to overwrite it",
                                             path.string(), sb.error().message)};
        }
      }
      if (std::string sig = foreign_signature(path.string()); !sig.empty() && !options.force)
        return Error{ErrorKind::kBusy, EEXIST,
                     fmt::format("{}: contains a filesystem or partition signature ({}); use --force to overwrite it", path.string(), sig)};
      if (cfg.array.member_size && p.size != cfg.array.member_size)
        created.notices.push_back(fmt::format("{} exists with {} bytes; using its size, not array.member_size {}",
                                              path.string(), p.size, cfg.array.member_size));
    }
    if (p.size < overhead + chunk)
      return invalid(fmt::format("{}: {} bytes is too small: a member needs at least {} ({} metadata + one {} chunk)",
                                 path.string(), p.size, format_size(overhead + chunk), format_size(overhead), format_size(chunk)));
    plans.push_back(std::move(p));
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
  created.sb = sb;
  return created;
}

}  // namespace r5::array
