// The FUSE front end: a directory holding one regular file, the array image.
// Callbacks reach the engine through the session userdata (no globals), never
// throw, and reply exactly once.
#pragma once

#include <fuse_lowlevel.h>

#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace r5::fuse {

inline constexpr fuse_ino_t kImageIno = 2;
inline constexpr size_t kMaxRequest = 1 << 20;  // max_write and max_readahead
inline constexpr unsigned kMaxBackground = 32;   // asynchronous requests the kernel keeps in flight

struct State {
  engine::Engine* engine = nullptr;
  std::string image_name;
  uid_t uid = 0;
  gid_t gid = 0;
  timespec mount_time{};
  bool read_only = false;
  std::function<void()> on_started;
};

inline State& state_of(fuse_req_t req) { return *static_cast<State*>(fuse_req_userdata(req)); }
void fill_attr(const State& state, fuse_ino_t ino, struct stat* st);
// Replies with the errno of a failed Status, or 0.
void reply_status(fuse_req_t req, const Status& st);

// The callbacks, one file per group (ops_attr.cc, ops_io.cc).
void op_init(void* userdata, fuse_conn_info* conn);
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_statfs(fuse_req_t req, fuse_ino_t ino);
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi);

struct MountOptions {
  bool foreground = false;
  bool read_only = false;
  std::vector<std::string> fuse_options;  // passed to the kernel mount (allow_other, nodev, ...)
  // Called once the daemon has detached and the kernel sent INIT: start
  // threads here (none may cross the fork of daemonizing).
  std::function<void()> on_started;
};

// Mounts, daemonizes unless foreground, serves until unmounted or signalled,
// then unmounts. Returns 0 on a clean end.
Status serve(engine::Engine& engine, const std::string& mountpoint, const MountOptions& options);

}  // namespace r5::fuse
