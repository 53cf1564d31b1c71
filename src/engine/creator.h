// r5cfs create: checks every member first (exists or can be created, no
// r5cfs superblock or filesystem signature unless forced, big enough), and
// only then creates missing files, zeroes every member (so parity is
// consistent from the start) and writes the superblocks.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "format/ondisk.h"
#include "io/device.h"

namespace r5::engine {

struct CreateOptions {
  bool force = false;
  void (*progress)(uint64_t done, uint64_t total) = nullptr;
};

struct Created {
  format::MemberSuperblock sb;      // slot 0's copy
  std::vector<std::string> notices;
};

Result<Created> create_array(const config::Config& cfg, const CreateOptions& options);

// r5cfs journal add: creates and formats the journal cfg.journal names (size
// cfg.journal.size when the file is missing) for the array of `sb`, after
// the same checks as create.
Status add_journal(const config::Config& cfg, const format::MemberSuperblock& sb, bool force,
                   std::vector<std::string>& notices);

// Refuses (unless forced) a device that holds an r5cfs member or journal
// superblock, or anything blkid recognises (create, replace).
Status check_unused(const std::filesystem::path& path, io::Device& dev, bool force);

}  // namespace r5::engine
